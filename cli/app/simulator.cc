#include "cli/app/simulator.h"

#include <algorithm>
#include <cstdio>

namespace orderflow::services {

OrderSimulator::OrderSimulator(const domain::Catalog& catalog, uint64_t seed, int customers)
    : catalog_(catalog), rng_(seed), customers_(std::max(customers, 1)) {}

domain::PlaceOrder OrderSimulator::Next() {
  domain::PlaceOrder order;
  char customer[32];
  std::snprintf(customer, sizeof customer, "cust-%04d",
                static_cast<int>(std::uniform_int_distribution<int>(1, customers_)(rng_)));
  order.customer_id = customer;
  static constexpr const char* kStreets[] = {"Keizersgracht", "Prinsengracht", "Herengracht", "Damrak"};
  order.shipping_address = std::to_string(std::uniform_int_distribution<int>(1, 400)(rng_)) + " " +
                           kStreets[std::uniform_int_distribution<int>(0, 3)(rng_)] + ", Amsterdam";
  const auto& items = catalog_.items();
  std::vector<size_t> indexes(items.size());
  for (size_t i = 0; i < indexes.size(); ++i) indexes[i] = i;
  std::shuffle(indexes.begin(), indexes.end(), rng_);
  size_t lines = std::min<size_t>(items.size(), std::uniform_int_distribution<size_t>(1, 3)(rng_));
  for (size_t i = 0; i < lines; ++i) {
    order.lines.push_back({items[indexes[i]].sku, std::uniform_int_distribution<int32_t>(1, 3)(rng_)});
  }
  return order;
}

}  // namespace orderflow::services
