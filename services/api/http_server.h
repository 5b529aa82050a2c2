// An event-driven HTTP/1.1 server (Boost.Beast on Asio) that knows nothing
// about orders: services/api/http_api.cc puts the order API on it.
//
// A few I/O threads serve every connection; an idle keep-alive connection or
// an open event stream holds no thread, only a socket and a small session.
// The handler runs on an I/O thread and must not block there: what may wait
// (for the log's acknowledgement, for the broker) it hands to a separate
// worker pool (Server::Run), so it never stalls the I/O.
//
// Limits: at most `max_connections` open connections (beyond it a new one gets
// 503 and is closed at once), at most `max_streams` event streams, a header
// that must arrive within `header_timeout` of its first byte (a client that
// sends a byte every few seconds is cut off), a body within `body_timeout`,
// and a connection with no request for `idle_timeout` is closed. Over TLS
// (HTTPS: `tls_cert_file` and `tls_key_file`, TLS 1.2 and later), the same
// limits hold and the handshake must end within `handshake_timeout` of the
// client's first byte; plain HTTP sent to it gets a plain 400. One timer
// enforces these deadlines for every connection, looking every eighth of the
// shortest timeout (5 to 250 ms): a connection is closed up to that much
// after its deadline, and a request arms and cancels no timer of its own.
//
// Thread safety: Server's methods may be called from any thread. A Responder
// may be used from any thread, once.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/clock.h"
#include "domain/status.h"

namespace orderflow::services::http {

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  size_t max_connections = 10'000;
  size_t max_streams = 1'000;
  size_t max_body_bytes = 64 * 1024;
  size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds header_timeout{10'000};  // from a request's first byte to its last header byte
  std::chrono::milliseconds body_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};  // between requests on a connection, and before the first
  std::chrono::milliseconds handshake_timeout{10'000};  // TLS: from the client's first byte to the handshake's end
  // HTTPS: a PEM certificate chain and its PEM private key; both empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::chrono::milliseconds keep_alive_comment{15'000};  // an idle event stream gets a comment this often
  std::chrono::milliseconds shutdown_grace{5'000};  // Stop waits this long for requests in flight
  // Threads for every connection's I/O and the handlers that do not block;
  // 0: one per two cores, at least one (they share the machine with the
  // services; on 2 cores one thread had the lower p99, docs/benchmarks.md).
  int io_threads = 0;
  int worker_threads = 16;
  // The deadlines' and the stop's time; must outlive the server.
  const Clock* clock = &SystemClock();
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // percent-decoded
  std::vector<std::pair<std::string, std::string>> params;  // decoded query, in order
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool secure = false;  // arrived over TLS

  // The header's value ("" when absent); names compare case-insensitively.
  std::string Header(std::string_view name) const;
  bool HasParam(std::string_view name) const;
  std::string Param(std::string_view name) const;  // the first value, "" when absent
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Feeds one server-sent-events stream. Called on the stream's I/O strand, one
// call at a time, when the stream starts, after Server::NotifyStreams, and when
// the stream has been quiet for `keep_alive_comment`: so it must not block for
// long. Returns the frames to send now ("" for none); sets *end to finish the
// stream after them.
class EventSource {
 public:
  virtual ~EventSource() = default;
  virtual std::string Next(bool* end) = 0;
};

class Session;

// The reply to one request. Exactly one of Send or Stream, once; from any thread.
class Responder {
 public:
  explicit Responder(std::shared_ptr<Session> session);
  void Send(Response response) const;
  // Answers 200 text/event-stream and keeps the connection for `source`; 503
  // with a JSON error when `max_streams` streams are open.
  void Stream(std::shared_ptr<EventSource> source) const;

 private:
  std::shared_ptr<Session> session_;
};

// Called on an I/O thread for each complete request: must not block (hand
// blocking work to Server::Run).
using Handler = std::function<void(Request, Responder)>;

// Answered by the server itself, without the handler: malformed requests,
// bodies or headers over the limits, too many connections. Returns the
// response for `status` with `message` (the API makes it a JSON error).
using ErrorPage = std::function<Response(int status, const std::string& message)>;

class Server {
 public:
  // Binds and starts the I/O threads and the worker pool. Errors:
  // kInvalidArgument for a malformed address or a certificate or key that
  // cannot be used, kUnavailable when it cannot be bound.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, Handler handler, ErrorPage error_page);
  ~Server();  // Stop()

  // Stops accepting, ends every event stream with a final comment, waits up to
  // `shutdown_grace` for requests in flight to be answered, then closes every
  // connection and joins the threads. Idempotent.
  void Stop();

  // Runs `work` on the worker pool.
  void Run(std::function<void()> work);

  // Asks every open event stream's source for new frames (coalesced: a stream
  // already asked and not yet served is not asked twice).
  void NotifyStreams();

  const std::string& address() const;  // "HOST:PORT" actually bound
  size_t connections() const;          // open now
  size_t streams() const;              // event streams open now

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// Splits "a=1&b=x%20y" into decoded pairs ('+' is a space); false on a bad escape.
bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* out);
// Percent-decodes `in`; false on a bad escape. `plus_is_space` for query strings.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

}  // namespace orderflow::services::http
