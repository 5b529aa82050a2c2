// Inside services/api/http_server.cc: the server's shared state and the
// interface of one connection, plain or TLS. Only the server's own files
// include this header (it pulls in Asio).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

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

struct Server::Impl {
  ServerOptions options;
  Handler handler;
  ErrorPage error_page;
  std::string address;
  std::atomic<size_t> connections{0};
  std::atomic<size_t> streams{0};
  std::atomic<size_t> in_flight{0};  // requests read and not yet answered
  std::atomic<bool> stopping{false};
  // Stop waits on `released` for requests to be answered and connections to close.
  std::mutex stop_mu;
  std::condition_variable released;
  std::mutex mu;  // guards the two maps
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::unordered_map<Session*, std::weak_ptr<Session>> stream_sessions;
  // Certificate and key for HTTPS; null: plaintext.
  std::unique_ptr<net::ssl::context> tls;
  // Declared after what sessions touch when they go: the io_context's
  // destructor destroys pending handlers, and with them the last sessions.
  net::io_context ioc;
  // Keeps the I/O threads running while no socket operation is pending (a
  // request on the worker pool, after the acceptor closed) until Stop ends.
  net::executor_work_guard<net::io_context::executor_type> keep_running{ioc.get_executor()};
  Strand accept_strand{net::make_strand(ioc)};
  tcp::acceptor acceptor{accept_strand};
  net::steady_timer accept_retry{accept_strand};
  // Enforces the sessions' deadlines (handshake, header, body, idle, write)
  // every `reap_every`: one timer for the server instead of arming and
  // cancelling one per read and write, which cost more than a request to /healthz.
  net::steady_timer reaper{accept_strand};
  SteadyClock::duration reap_every{};
  net::thread_pool workers;
  std::vector<std::thread> io;

  Impl(const ServerOptions& o, Handler h, ErrorPage e)
      : options(o), handler(std::move(h)), error_page(std::move(e)), ioc(o.io_threads),
        workers(static_cast<size_t>(std::max(1, o.worker_threads))) {}

  int64_t Ticks() const { return options.clock->Now().time_since_epoch().count(); }
  // A request answered or a connection closed: wakes Stop, if it waits.
  void Released() {
    if (!stopping.load()) return;
    std::lock_guard lock(stop_mu);
    released.notify_all();
  }
  void Accept();
  void Refuse(Socket socket);
  void Reap();
  std::vector<std::shared_ptr<Session>> Sessions(bool only_streams);
};

}  // namespace orderflow::services::http
