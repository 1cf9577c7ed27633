// Errors as values: Status and Result<T>.
//
// Everything the outside world can cause (files, configs, requests, memory) returns a Status or a
// Result<T> whose message names the file, tensor, field or parameter at fault. Only programmer
// bugs abort, through NIBBLE_CHECK.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace nibble::base {

// What kind of failure: lets the server map errors to HTTP statuses and the CLI to exit codes.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,   // bad user input: a flag, a request field, a config value
  kNotFound,          // a file, tensor, model or key that is not there
  kCorrupt,           // a file that exists but is malformed (truncated, bad header, wrong shape)
  kUnsupported,       // valid input we do not handle (unknown architecture, rope type, ...)
  kResourceExhausted, // memory, queue or KV-cache limits
  kIo,                // an OS-level read/write failure
  kCancelled,         // aborted by the caller
  kInternal,          // should not happen; a bug surfaced as an error rather than a crash
};

const char* error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy with "context: " put in front of the message (for adding a file name etc.).
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status invalid_argument(std::string msg) { return {ErrorCode::kInvalidArgument, std::move(msg)}; }
inline Status not_found(std::string msg) { return {ErrorCode::kNotFound, std::move(msg)}; }
inline Status corrupt(std::string msg) { return {ErrorCode::kCorrupt, std::move(msg)}; }
inline Status unsupported(std::string msg) { return {ErrorCode::kUnsupported, std::move(msg)}; }
inline Status resource_exhausted(std::string msg) { return {ErrorCode::kResourceExhausted, std::move(msg)}; }
inline Status io_error(std::string msg) { return {ErrorCode::kIo, std::move(msg)}; }
inline Status cancelled(std::string msg) { return {ErrorCode::kCancelled, std::move(msg)}; }
inline Status internal_error(std::string msg) { return {ErrorCode::kInternal, std::move(msg)}; }

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = internal_error("Result constructed from an ok Status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

[[noreturn]] void check_failed(const char* file, int line, const char* expr, const std::string& msg);

}  // namespace nibble::base

// Programmer-error assertion: always on, aborts with a message. Never for user input.
#define NIBBLE_CHECK(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond)) ::nibble::base::check_failed(__FILE__, __LINE__, #cond, std::string{__VA_ARGS__}); \
  } while (0)

#define NIBBLE_CONCAT_INNER(a, b) a##b
#define NIBBLE_CONCAT(a, b) NIBBLE_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if it is not ok.
#define NIBBLE_TRY(expr)                            \
  do {                                              \
    ::nibble::base::Status nibble_st_ = (expr);     \
    if (!nibble_st_.ok()) return nibble_st_;        \
  } while (0)

// NIBBLE_ASSIGN_OR_RETURN(auto x, make_x()); returns the error Status on failure.
#define NIBBLE_ASSIGN_OR_RETURN(lhs, expr) \
  NIBBLE_ASSIGN_OR_RETURN_IMPL(NIBBLE_CONCAT(nibble_res_, __LINE__), lhs, expr)
#define NIBBLE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
