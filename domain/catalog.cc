#include "domain/catalog.h"

namespace orderflow::domain {

Catalog::Catalog(std::string currency, std::vector<CatalogItem> items)
    : currency_(std::move(currency)), items_(std::move(items)) {
  for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].sku, i);
}

Catalog Catalog::Demo() {
  return Catalog("EUR", {
                            {"SKU-ESPRESSO", "Espresso beans, 1 kg", 2490, 500},
                            {"SKU-GRINDER", "Burr grinder", 12900, 40},
                            {"SKU-KETTLE", "Gooseneck kettle", 5990, 80},
                            {"SKU-MUG", "Stoneware mug", 1450, 1000},
                            {"SKU-FILTER", "Paper filters, 100 pack", 690, 2000},
                            {"SKU-SCALE", "Brewing scale", 3990, 120},
                            {"SKU-DRIPPER", "Ceramic dripper", 2790, 150},
                            {"SKU-TAMPER", "Steel tamper", 3490, 60},
                        });
}

const CatalogItem* Catalog::Find(std::string_view sku) const {
  auto it = index_.find(sku);
  return it == index_.end() ? nullptr : &items_[it->second];
}

}  // namespace orderflow::domain
