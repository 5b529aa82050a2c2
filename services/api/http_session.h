// Inside the HTTP server: the interface of one connection, plain or TLS,
// and the Asio types it runs on. Only the server's own files include this
// header (it pulls in Asio); the server's shared state is http_server_impl.h.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <memory>

#include "services/api/http_server.h"

namespace orderflow::services::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;
// A connection's socket runs its handlers on its own strand; a concrete type
// (not any_io_executor) spares each handler a type-erased executor copy.
using Strand = net::strand<net::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using SteadyClock = std::chrono::steady_clock;

// One connection: reads a request, hands it to the handler, writes its reply,
// and waits for the next; or, once a handler asks for it, an event stream.
// Every method posts to the connection's strand and may be called from any
// thread. The base keeps the server's books (the session maps and counters)
// and the deadline the reaper reads.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(Server::Impl& server);
  virtual ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Enters the server's books and starts reading (a TLS session shakes hands first).
  void Begin();
  virtual void Reply(Response response) = 0;
  virtual void StartStream(std::shared_ptr<EventSource> source) = 0;
  // The stream's source may have something new.
  virtual void Notify() = 0;
  // At shutdown: an event stream ends with a final comment, a connection
  // waiting for a request closes, a request in flight is still answered (and
  // then the connection closes).
  virtual void Close() = 0;
  virtual void ForceClose() = 0;

  // From the reaper (under Server::Impl::mu, so the session is alive): true
  // when the deadline of what the session waits for has passed.
  bool Overdue(int64_t now) const {
    const int64_t deadline = deadline_.load(std::memory_order_relaxed);
    return deadline != 0 && now >= deadline;
  }
  // From the reaper: closes the connection if it is still overdue on its strand
  // (the awaited bytes may have arrived meanwhile). What was pending then
  // completes with an error, and nothing can be answered.
  virtual void Expire() = 0;

 protected:
  virtual void Start() = 0;

  Server::Impl& server_;
  std::atomic<int64_t> deadline_{0};  // Server::Impl::Ticks() of the clock; 0: none
  bool awaiting_reply_ = false;       // a request was read and is not answered yet
  bool is_stream_ = false;            // counted in Server::Impl::streams
};

// Starts serving an accepted connection: plaintext, or TLS with `tls`.
void ServePlain(Socket socket, Server::Impl& server);
void ServeTls(Socket socket, net::ssl::context& tls, Server::Impl& server);

}  // namespace orderflow::services::http
