#include "services/order_request.h"

#include <nlohmann/json.hpp>
#include <set>

namespace orderflow::services {
namespace {

using nlohmann::json;

json ParseJsonBody(std::string_view body_text, std::string_view content_type, bool allow_empty) {
  if (body_text.empty()) {
    if (allow_empty) return json::object();
    throw RequestError{400, "request body is empty; send a JSON object"};
  }
  if (content_type.find("application/json") == std::string_view::npos) {
    throw RequestError{415, "Content-Type must be application/json, got '" + std::string(content_type) + "'"};
  }
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ..." -> from "parse error"
    const auto at = what.find("parse error");
    throw RequestError{400, "malformed JSON: " + (at == std::string::npos ? what : what.substr(at))};
  }
  if (!body.is_object()) throw RequestError{400, "request body must be a JSON object, got " + std::string(body.type_name())};
  return body;
}

void CheckFields(const json& body, std::initializer_list<const char*> known, const std::string& where) {
  for (const auto& [name, value] : body.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || name == k;
    if (!ok) throw RequestError{400, "unknown field '" + where + name + "'"};
  }
}

std::string RequireString(const json& body, const char* field, const std::string& where, size_t max_len) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) throw RequestError{400, "missing field '" + where + field + "'"};
  if (!it->is_string()) {
    throw RequestError{400, "field '" + where + field + "' must be a string, got " + std::string(it->type_name())};
  }
  std::string value = it->get<std::string>();
  if (value.empty()) throw RequestError{400, "field '" + where + field + "' must not be empty"};
  if (value.size() > max_len) {
    throw RequestError{400, "field '" + where + field + "' is longer than " + std::to_string(max_len) + " characters"};
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) throw RequestError{400, "field '" + where + field + "' contains control characters"};
  }
  return value;
}

}  // namespace

std::variant<domain::PlaceOrder, RequestError> ParsePlaceOrder(std::string_view body_text,
                                                               std::string_view content_type,
                                                               const domain::Catalog& catalog,
                                                               const RequestLimits& limits) {
  try {
    const json body = ParseJsonBody(body_text, content_type, false);
    CheckFields(body, {"customer_id", "lines", "shipping_address"}, "");
    domain::PlaceOrder command;
    command.customer_id = RequireString(body, "customer_id", "", 128);
    auto lines = body.find("lines");
    if (lines == body.end() || lines->is_null()) throw RequestError{400, "missing field 'lines'"};
    if (!lines->is_array()) throw RequestError{400, "field 'lines' must be an array, got " + std::string(lines->type_name())};
    if (lines->empty()) throw RequestError{400, "field 'lines' must hold at least one line"};
    if (lines->size() > limits.max_lines) {
      throw RequestError{400, "an order has at most " + std::to_string(limits.max_lines) + " lines, got " +
                              std::to_string(lines->size())};
    }
    std::set<std::string> skus;
    for (size_t i = 0; i < lines->size(); ++i) {
      const json& line = (*lines)[i];
      const std::string where = "lines[" + std::to_string(i) + "].";
      if (!line.is_object()) {
        throw RequestError{400, "lines[" + std::to_string(i) + "] must be an object, got " + std::string(line.type_name())};
      }
      CheckFields(line, {"sku", "quantity"}, where);
      domain::RequestedLine r;
      r.sku = RequireString(line, "sku", where, 64);
      auto q = line.find("quantity");
      if (q == line.end() || q->is_null()) throw RequestError{400, "missing field '" + where + "quantity'"};
      if (!q->is_number()) {
        throw RequestError{400, "field '" + where + "quantity' must be a number, got " + std::string(q->type_name())};
      }
      if (!q->is_number_integer()) throw RequestError{400, "field '" + where + "quantity' must be a whole number"};
      const bool too_big = q->is_number_unsigned() ? q->get<uint64_t>() > static_cast<uint64_t>(limits.max_quantity)
                                                   : q->get<int64_t>() > limits.max_quantity;
      if (q->is_number_unsigned() ? q->get<uint64_t>() == 0 : q->get<int64_t>() <= 0) {
        throw RequestError{400, "field '" + where + "quantity' must be at least 1"};
      }
      if (too_big) {
        throw RequestError{400, "field '" + where + "quantity' must be at most " + std::to_string(limits.max_quantity)};
      }
      r.quantity = static_cast<int32_t>(q->get<int64_t>());
      if (catalog.Find(r.sku) == nullptr) throw RequestError{422, "unknown SKU '" + r.sku + "' (see GET /catalog)"};
      if (!skus.insert(r.sku).second) {
        throw RequestError{400, "SKU '" + r.sku + "' appears in more than one line; put its whole quantity in one line"};
      }
      command.lines.push_back(std::move(r));
    }
    if (auto a = body.find("shipping_address"); a != body.end() && !a->is_null()) {
      command.shipping_address = RequireString(body, "shipping_address", "", 500);
    }
    return command;
  } catch (const RequestError& e) {
    return e;
  } catch (const json::exception& e) {
    return RequestError{400, std::string("malformed request: ") + e.what()};
  }
}

std::variant<std::string, RequestError> ParseCancelReason(std::string_view body_text, std::string_view content_type) {
  try {
    const json body = ParseJsonBody(body_text, content_type, true);
    CheckFields(body, {"reason"}, "");
    std::string reason = "customer request";
    if (auto r = body.find("reason"); r != body.end() && !r->is_null()) reason = RequireString(body, "reason", "", 500);
    return reason;
  } catch (const RequestError& e) {
    return e;
  } catch (const json::exception& e) {
    return RequestError{400, std::string("malformed request: ") + e.what()};
  }
}

}  // namespace orderflow::services
