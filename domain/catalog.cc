#include "domain/catalog.h"

namespace orderflow::domain {

Catalog::Catalog(std::string currency, std::vector<CatalogItem> items)
    : currency_(std::move(currency)), items_(std::move(items)) {
  for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].sku, i);
}

Catalog Catalog::Demo() {
  return Catalog("EUR", {
                            {"SKU-ESPRESSO", "Espresso beans, 1 kg", 2490, 50000},
                            {"SKU-GRINDER", "Burr grinder", 12900, 4000},
                            {"SKU-KETTLE", "Gooseneck kettle", 5990, 8000},
                            {"SKU-MUG", "Stoneware mug", 1450, 100000},
                            {"SKU-FILTER", "Paper filters, 100 pack", 690, 200000},
                            {"SKU-SCALE", "Brewing scale", 3990, 12000},
                            {"SKU-DRIPPER", "Ceramic dripper", 2790, 15000},
                            {"SKU-TAMPER", "Steel tamper", 3490, 6000},
                        });
}

Result<Catalog> Catalog::Parse(std::string_view text) {
  std::vector<CatalogItem> items;
  std::map<std::string, int, std::less<>> seen;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line[0] == '#' || line.rfind("sku,", 0) == 0 || line.rfind("SKU,", 0) == 0) continue;
    std::vector<std::string_view> fields;
    for (size_t start = 0;;) {
      size_t comma = line.find(',', start);
      fields.push_back(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    const std::string where = "catalog line " + std::to_string(line_no) + ": ";
    if (fields.size() != 4) return Status::InvalidArgument(where + "expected SKU,name,price_minor,stock");
    auto number = [](std::string_view s, int64_t* out) {
      if (s.empty()) return false;
      int64_t v = 0;
      for (char c : s) {
        if (c < '0' || c > '9' || v > (int64_t{1} << 40)) return false;
        v = v * 10 + (c - '0');
      }
      *out = v;
      return true;
    };
    int64_t price = 0, stock = 0;
    if (fields[0].empty()) return Status::InvalidArgument(where + "empty SKU");
    if (!number(fields[2], &price)) return Status::InvalidArgument(where + "price must be a whole number of cents");
    if (!number(fields[3], &stock) || stock > (1 << 30)) {
      return Status::InvalidArgument(where + "stock must be a whole number");
    }
    if (!seen.emplace(std::string(fields[0]), line_no).second) {
      return Status::InvalidArgument(where + "SKU " + std::string(fields[0]) + " appears twice");
    }
    items.push_back({std::string(fields[0]), std::string(fields[1]), price, static_cast<int32_t>(stock)});
  }
  if (items.empty()) return Status::InvalidArgument("the catalog has no items");
  return Catalog("EUR", std::move(items));
}

const CatalogItem* Catalog::Find(std::string_view sku) const {
  auto it = index_.find(sku);
  return it == index_.end() ? nullptr : &items_[it->second];
}

}  // namespace orderflow::domain
