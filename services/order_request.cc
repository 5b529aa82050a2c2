#include "services/order_request.h"

#include <nlohmann/json.hpp>
#include <set>
#include <vector>

namespace orderflow::services {
namespace {

using nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "application/json", optionally with "; charset=utf-8": nothing else is JSON
// here (a substring match let "application/jsonp" through).
void CheckContentType(std::string_view content_type) {
  if (Trim(content_type).empty()) throw RequestError{415, "Content-Type must be application/json, got none"};
  const size_t semi = content_type.find(';');
  if (Lower(Trim(content_type.substr(0, semi))) != "application/json") {
    throw RequestError{415, "Content-Type must be application/json, got '" + std::string(content_type) + "'"};
  }
  std::string_view params = semi == std::string_view::npos ? std::string_view() : content_type.substr(semi + 1);
  while (!params.empty()) {
    const size_t next = params.find(';');
    const std::string_view param = Trim(params.substr(0, next));
    params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos || Lower(Trim(param.substr(0, eq))) != "charset") continue;
    std::string charset = Lower(Trim(param.substr(eq + 1)));
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') charset = charset.substr(1, charset.size() - 2);
    if (charset != "utf-8" && charset != "utf8") {
      throw RequestError{415, "Content-Type charset must be utf-8, got '" + charset + "'"};
    }
  }
}

// Index of the first byte that is not part of well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or npos.
size_t InvalidUtf8At(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n + 1;
  }
  return std::string_view::npos;
}

json ParseJsonBody(std::string_view body_text, std::string_view content_type, bool allow_empty) {
  if (body_text.empty()) {
    if (allow_empty) return json::object();
    throw RequestError{400, "request body is empty; send a JSON object"};
  }
  CheckContentType(content_type);
  if (const size_t bad = InvalidUtf8At(body_text); bad != std::string_view::npos) {
    throw RequestError{400, "request body is not valid UTF-8 (byte " + std::to_string(bad) + ")"};
  }
  json body;
  // Duplicate keys are refused: which of them would win is ambiguous, and
  // another reader of the same request may pick the other.
  std::vector<std::set<std::string>> keys;
  const json::parser_callback_t no_duplicates = [&keys](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: keys.emplace_back(); break;
      case json::parse_event_t::object_end: keys.pop_back(); break;
      case json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second) {
          throw RequestError{400, "duplicate key '" + parsed.get<std::string>() + "' in a JSON object"};
        }
        break;
      default: break;
    }
    return true;
  };
  try {
    body = json::parse(body_text, no_duplicates);
  } catch (const json::out_of_range& e) {
    std::string what = e.what();
    const auto at = what.find("] ");
    throw RequestError{400, "number out of range: " + (at == std::string::npos ? what : what.substr(at + 2))};
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
