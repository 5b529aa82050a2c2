// Overloaded{lambdas...}: one visitor for std::visit from several lambdas.
#pragma once

namespace orderflow {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out for clang 14 (the fuzz build), which lacks C++20 aggregate deduction.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace orderflow
