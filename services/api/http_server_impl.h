// Inside the HTTP server: the state the server and its connections share
// (options, counters, the session maps, the I/O context, the TLS context).
// Only the server's own files include this header.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "services/api/http_session.h"

namespace orderflow::services::http {

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
  // The whole of a reply that ends the connection: the error page for
  // `message` as `status`, written raw before closing (over the connection
  // limit; plain HTTP at the TLS port).
  std::string ClosingReply(int status, const std::string& message) const;
  void Accept();
  void Refuse(Socket socket);
  void Reap();
  std::vector<std::shared_ptr<Session>> Sessions(bool only_streams);
};

}  // namespace orderflow::services::http
