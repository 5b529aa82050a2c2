#include "services/api/order_request.h"

#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "domain/status.h"
#include "domain/utf8.h"

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
[[nodiscard]] Status CheckContentType(std::string_view content_type) {
  if (Trim(content_type).empty()) return Status::UnsupportedFormat("Content-Type must be application/json, got none");
  const size_t semi = content_type.find(';');
  if (Lower(Trim(content_type.substr(0, semi))) != "application/json") {
    return Status::UnsupportedFormat("Content-Type must be application/json, got '" + std::string(content_type) + "'");
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
      return Status::UnsupportedFormat("Content-Type charset must be utf-8, got '" + charset + "'");
    }
  }
  return Status::Ok();
}

// The boundary with nlohmann::json, which reports bad JSON by throwing: it is
// driven through its SAX interface instead, which hands a syntax error or a
// number out of range to parse_error() as a value, so nothing is thrown. It
// builds the same document json::parse would, and refuses duplicate keys
// (which of them would win is ambiguous, and another reader of the same
// request may pick the other) by stopping the parse at the second one.
class StrictJsonReader final : public json::json_sax_t {
 public:
  // The document in *document, or why `text` is not one we accept. Once per reader.
  [[nodiscard]] Status Read(std::string_view text, json* document) {
    if (!json::sax_parse(text, this)) {
      ORDERFLOW_CHECK(!refusal_.ok());  // whatever stops the parse says why
      return refusal_;
    }
    *document = std::move(root_);
    return Status::Ok();
  }

  bool null() override { return Add(nullptr); }
  bool boolean(bool value) override { return Add(value); }
  bool number_integer(number_integer_t value) override { return Add(value); }
  bool number_unsigned(number_unsigned_t value) override { return Add(value); }
  bool number_float(number_float_t value, const string_t&) override { return Add(value); }
  bool string(string_t& value) override { return Add(std::move(value)); }
  bool binary(binary_t& value) override { return Add(std::move(value)); }
  bool start_object(std::size_t) override { return Open(json::object()); }
  bool start_array(std::size_t) override { return Open(json::array()); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }

  bool key(string_t& name) override {
    json& object = *open_.back();
    if (object.contains(name)) {
      refusal_ = Status::Malformed("duplicate key '" + name + "' in a JSON object");
      return false;
    }
    member_ = &object[name];
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const json::exception& e) override {
    const std::string what = e.what();
    if (dynamic_cast<const json::out_of_range*>(&e) != nullptr) {
      const auto at = what.find("] ");
      refusal_ = Status::Malformed("number out of range: " + (at == std::string::npos ? what : what.substr(at + 2)));
    } else if (dynamic_cast<const json::parse_error*>(&e) != nullptr) {
      // "[json.exception.parse_error.101] parse error at line 1, column 9: ..." -> from "parse error"
      const auto at = what.find("parse error");
      refusal_ = Status::Malformed("malformed JSON: " + (at == std::string::npos ? what : what.substr(at)));
    } else {
      refusal_ = Status::Malformed("malformed request: " + what);
    }
    return false;
  }

 private:
  // Puts `value` where the parse is: the root, the open array's next element
  // or the open object's member named by the last key.
  json* Place(json value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    *member_ = std::move(value);
    return member_;
  }
  bool Add(json value) {
    Place(std::move(value));
    return true;
  }
  bool Open(json container) {
    open_.push_back(Place(std::move(container)));
    return true;
  }
  bool Close() {
    open_.pop_back();
    return true;
  }

  json root_;
  // The arrays and objects not closed yet, innermost last. Their addresses
  // hold: nothing is added to an enclosing one until the inner one closes.
  std::vector<json*> open_;
  json* member_ = nullptr;  // in the innermost open object, the member the last key named
  Status refusal_;  // why the parse stopped
};

[[nodiscard]] Status ParseJsonBody(std::string_view body_text, std::string_view content_type, bool allow_empty,
                                    json* body) {
  if (body_text.empty()) {
    if (!allow_empty) return Status::Malformed("request body is empty; send a JSON object");
    *body = json::object();
    return Status::Ok();
  }
  ORDERFLOW_RETURN_IF_ERROR(CheckContentType(content_type));
  if (const size_t bad = domain::InvalidUtf8At(body_text); bad != std::string_view::npos) {
    return Status::Malformed("request body is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  }
  ORDERFLOW_RETURN_IF_ERROR(StrictJsonReader().Read(body_text, body));
  if (!body->is_object()) {
    return Status::Malformed("request body must be a JSON object, got " + std::string(body->type_name()));
  }
  return Status::Ok();
}

[[nodiscard]] Status CheckFields(const json& body, std::initializer_list<const char*> known,
                                  const std::string& where) {
  for (const auto& [name, value] : body.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || name == k;
    if (!ok) return Status::Malformed("unknown field '" + where + name + "'");
  }
  return Status::Ok();
}

[[nodiscard]] Status RequireString(const json& body, const char* field, const std::string& where, size_t max_len,
                                    std::string* out) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return Status::Malformed("missing field '" + where + field + "'");
  if (!it->is_string()) {
    return Status::Malformed("field '" + where + field + "' must be a string, got " + std::string(it->type_name()));
  }
  const std::string& value = it->get_ref<const std::string&>();
  if (value.empty()) return Status::Malformed("field '" + where + field + "' must not be empty");
  if (value.size() > max_len) {
    return Status::Malformed("field '" + where + field + "' is longer than " + std::to_string(max_len) + " characters");
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) return Status::Malformed("field '" + where + field + "' contains control characters");
  }
  *out = value;
  return Status::Ok();
}

// lines[i] of POST /orders (its SKU not yet checked against the other lines).
[[nodiscard]] Status ParseLine(const json& line, size_t i, const domain::Catalog& catalog,
                                const RequestLimits& limits, domain::RequestedLine* out) {
  const std::string where = "lines[" + std::to_string(i) + "].";
  if (!line.is_object()) {
    return Status::Malformed("lines[" + std::to_string(i) + "] must be an object, got " + std::string(line.type_name()));
  }
  ORDERFLOW_RETURN_IF_ERROR(CheckFields(line, {"sku", "quantity"}, where));
  ORDERFLOW_RETURN_IF_ERROR(RequireString(line, "sku", where, 64, &out->sku));
  auto q = line.find("quantity");
  if (q == line.end() || q->is_null()) return Status::Malformed("missing field '" + where + "quantity'");
  if (!q->is_number()) {
    return Status::Malformed("field '" + where + "quantity' must be a number, got " + std::string(q->type_name()));
  }
  if (!q->is_number_integer()) return Status::Malformed("field '" + where + "quantity' must be a whole number");
  const bool too_big = q->is_number_unsigned() ? q->get<uint64_t>() > static_cast<uint64_t>(limits.max_quantity)
                                               : q->get<int64_t>() > limits.max_quantity;
  if (q->is_number_unsigned() ? q->get<uint64_t>() == 0 : q->get<int64_t>() <= 0) {
    return Status::Malformed("field '" + where + "quantity' must be at least 1");
  }
  if (too_big) {
    return Status::Malformed("field '" + where + "quantity' must be at most " + std::to_string(limits.max_quantity));
  }
  out->quantity = static_cast<int32_t>(q->get<int64_t>());
  if (catalog.Find(out->sku) == nullptr) return Status::InvalidArgument("unknown SKU '" + out->sku + "' (see GET /catalog)");
  return Status::Ok();
}

}  // namespace

Result<domain::PlaceOrder> ParsePlaceOrder(std::string_view body_text, std::string_view content_type,
                                           const domain::Catalog& catalog, const RequestLimits& limits) {
  json body;
  ORDERFLOW_RETURN_IF_ERROR(ParseJsonBody(body_text, content_type, false, &body));
  ORDERFLOW_RETURN_IF_ERROR(CheckFields(body, {"customer_id", "lines", "shipping_address"}, ""));
  domain::PlaceOrder command;
  ORDERFLOW_RETURN_IF_ERROR(RequireString(body, "customer_id", "", 128, &command.customer_id));
  auto lines = body.find("lines");
  if (lines == body.end() || lines->is_null()) return Status::Malformed("missing field 'lines'");
  if (!lines->is_array()) {
    return Status::Malformed("field 'lines' must be an array, got " + std::string(lines->type_name()));
  }
  if (lines->empty()) return Status::Malformed("field 'lines' must hold at least one line");
  if (lines->size() > limits.max_lines) {
    return Status::Malformed("an order has at most " + std::to_string(limits.max_lines) + " lines, got " +
                             std::to_string(lines->size()));
  }
  std::set<std::string> skus;
  for (size_t i = 0; i < lines->size(); ++i) {
    domain::RequestedLine line;
    ORDERFLOW_RETURN_IF_ERROR(ParseLine((*lines)[i], i, catalog, limits, &line));
    if (!skus.insert(line.sku).second) {
      return Status::Malformed("SKU '" + line.sku + "' appears in more than one line; put its whole quantity in one line");
    }
    command.lines.push_back(std::move(line));
  }
  if (auto a = body.find("shipping_address"); a != body.end() && !a->is_null()) {
    ORDERFLOW_RETURN_IF_ERROR(RequireString(body, "shipping_address", "", 500, &command.shipping_address));
  }
  return command;
}

Result<std::string> ParseCancelReason(std::string_view body_text, std::string_view content_type) {
  json body;
  ORDERFLOW_RETURN_IF_ERROR(ParseJsonBody(body_text, content_type, true, &body));
  ORDERFLOW_RETURN_IF_ERROR(CheckFields(body, {"reason"}, ""));
  std::string reason = "customer request";
  if (auto r = body.find("reason"); r != body.end() && !r->is_null()) {
    ORDERFLOW_RETURN_IF_ERROR(RequireString(body, "reason", "", 500, &reason));
  }
  return reason;
}

}  // namespace orderflow::services
