// The product catalog: SKU, name, unit price and initial stock.
//
// Immutable after construction; safe to share between threads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "domain/status.h"

namespace orderflow::domain {

struct CatalogItem {
  std::string sku;
  std::string name;
  int64_t price_minor = 0;
  int32_t initial_stock = 0;
};

class Catalog {
 public:
  Catalog(std::string currency, std::vector<CatalogItem> items);

  // The built-in demo catalog used when no catalog file is given.
  static Catalog Demo();

  // Parses a catalog file: one `SKU,name,price_minor,stock` per line; blank
  // lines and lines starting with '#' are skipped, as is a header line starting
  // with "sku,". Currency EUR. Errors name the line and what is wrong.
  static Result<Catalog> Parse(std::string_view text);

  // Returns nullptr when the SKU is unknown. The pointer lives as long as the catalog.
  const CatalogItem* Find(std::string_view sku) const;
  const std::vector<CatalogItem>& items() const { return items_; }
  const std::string& currency() const { return currency_; }

 private:
  std::string currency_;
  std::vector<CatalogItem> items_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace orderflow::domain
