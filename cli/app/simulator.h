// Generates random valid orders against a catalog, reproducibly from a seed.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <random>

#include "domain/catalog.h"
#include "domain/order.h"

namespace orderflow::services {

class OrderSimulator {
 public:
  OrderSimulator(const domain::Catalog& catalog, uint64_t seed, int customers = 200);

  // 1-3 distinct SKUs, 1-3 units each, from one of `customers` customers.
  domain::PlaceOrder Next();

 private:
  const domain::Catalog& catalog_;
  std::mt19937_64 rng_;
  int customers_;
};

}  // namespace orderflow::services
