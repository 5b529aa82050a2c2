// Status and Result<T>: expected failures as values.
//
// Every fallible call in orderflow returns one of these, [[nodiscard]], so an
// ignored error is a compiler warning. Ignoring one on purpose is spelled
// `.IgnoreError()` so it stays searchable. Codes say whether a retry can help:
// kUnavailable is transient (retry with backoff); everything else is not.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace orderflow {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong; fix it and retry
  kMalformed,           // input that cannot be read as what it claims (bad JSON, an unknown field, a bad escape)
  kUnsupportedFormat,   // input in a format that is not spoken (a body that is not JSON)
  kUnauthenticated,     // no credential, or one that is not valid
  kPermissionDenied,    // a valid credential without the right to this
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,  // the system is not in a state that allows this
  kInUse,               // a data directory another process holds (its RocksDB lock)
  kOutOfRange,          // an offset or position outside what exists
  kUnavailable,         // transient: broker down, timeout, busy; retry
  kCorruption,          // bytes that do not decode; never retry
  kInternal,            // a bug or an unexpected library failure
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status Malformed(std::string m) { return {StatusCode::kMalformed, std::move(m)}; }
  static Status UnsupportedFormat(std::string m) { return {StatusCode::kUnsupportedFormat, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status InUse(std::string m) { return {StatusCode::kInUse, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  bool IsRetryable() const { return code_ == StatusCode::kUnavailable; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "kind: message", for logs and one-line CLI errors.
  std::string ToString() const;
  // Explicitly discards the status; grep for it when auditing.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

namespace internal {
// Aborts naming the error whose value was read (Result::value on an error).
[[noreturn]] void ValueOfError(const Status& status);
}  // namespace internal

// Holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) std::abort();  // a Result must not hold an OK status without value
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  // The value; reading it from an error is a bug, stopped with the error's message.
  T& value() & { return Checked(); }
  const T& value() const& { return Checked(); }
  T&& value() && { return std::move(Checked()); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &Checked(); }
  T& operator*() & { return Checked(); }
  const T& operator*() const& { return Checked(); }

 private:
  T& Checked() {
    if (!value_.has_value()) [[unlikely]] internal::ValueOfError(status_);
    return *value_;
  }
  const T& Checked() const {
    if (!value_.has_value()) [[unlikely]] internal::ValueOfError(status_);
    return *value_;
  }

  std::optional<T> value_;
  Status status_;
};

}  // namespace orderflow

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define ORDERFLOW_RETURN_IF_ERROR(expr)               \
  do {                                                \
    ::orderflow::Status of_status_ = (expr);          \
    if (!of_status_.ok()) return of_status_;          \
  } while (0)

// Declares or assigns `lhs` from the value of the Result `expr`, or returns
// its error from the enclosing function:
//   ORDERFLOW_ASSIGN_OR_RETURN(auto store, ProjectionStore::Open(dir, {}));
#define ORDERFLOW_ASSIGN_OR_RETURN(lhs, expr) \
  ORDERFLOW_ASSIGN_OR_RETURN_IMPL(ORDERFLOW_STATUS_CONCAT(of_result_, __LINE__), lhs, expr)
#define ORDERFLOW_ASSIGN_OR_RETURN_IMPL(result, lhs, expr) \
  auto result = (expr);                                   \
  if (!result.ok()) return result.status();               \
  lhs = std::move(result).value()
#define ORDERFLOW_STATUS_CONCAT(a, b) ORDERFLOW_STATUS_CONCAT_INNER(a, b)
#define ORDERFLOW_STATUS_CONCAT_INNER(a, b) a##b

// Always-on check for bugs (never for bad input).
#define ORDERFLOW_CHECK(cond)                                                        \
  do {                                                                               \
    if (!(cond)) ::orderflow::internal::CheckFailed(#cond, __FILE__, __LINE__);      \
  } while (0)

// The same check in debug builds only (NDEBUG unset), for hot paths; the
// condition is not evaluated in release builds.
#ifdef NDEBUG
#define ORDERFLOW_DCHECK(cond) \
  do {                         \
  } while (false && (cond))
#else
#define ORDERFLOW_DCHECK(cond) ORDERFLOW_CHECK(cond)
#endif

namespace orderflow::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}
