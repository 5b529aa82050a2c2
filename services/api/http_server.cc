#include "services/api/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/status.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <thread>

#include "services/api/http_server_impl.h"
#include "services/api/http_session.h"

namespace orderflow::services::http {

namespace beast = boost::beast;

namespace {

// Lets the process hold as many sockets as its hard limit allows: each open
// connection is a descriptor, and the soft limit is often 1,024.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// The TLS context for --tls-cert and --tls-key: TLS 1.2 and later only.
Result<std::unique_ptr<net::ssl::context>> TlsContext(const ServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Status::InvalidArgument("HTTPS needs both --tls-cert FILE and --tls-key FILE");
  }
  auto tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                   net::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  if (tls->use_certificate_chain_file(options.tls_cert_file, ec); ec) {
    return Status::InvalidArgument("cannot use --tls-cert " + options.tls_cert_file + ": " + ec.message() +
                                   "; pass a PEM certificate chain");
  }
  if (tls->use_private_key_file(options.tls_key_file, net::ssl::context::pem, ec); ec) {
    return Status::InvalidArgument("cannot use --tls-key " + options.tls_key_file + " with --tls-cert " +
                                   options.tls_cert_file + ": " + ec.message() +
                                   "; pass the certificate's PEM private key");
  }
  if (SSL_CTX_check_private_key(tls->native_handle()) != 1) {
    return Status::InvalidArgument("--tls-key " + options.tls_key_file + " does not belong to --tls-cert " +
                                   options.tls_cert_file);
  }
  return tls;
}

}  // namespace

Responder::Responder(std::shared_ptr<Session> session) : session_(std::move(session)) {}
void Responder::Send(Response response) const { session_->Reply(std::move(response)); }
void Responder::Stream(std::shared_ptr<EventSource> source) const { session_->StartStream(std::move(source)); }

void Server::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, Socket socket) {
    if (stopping.load() || ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors or a transient error: try again shortly instead of spinning.
      spdlog::warn("http: accept failed: {}; retrying", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](beast::error_code e) {
        if (!e) Accept();
      });
      return;
    }
    if (connections.load() >= options.max_connections) {
      Refuse(std::move(socket));
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (tls) {
        ServeTls(std::move(socket), *tls, *this);
      } else {
        ServePlain(std::move(socket), *this);
      }
    }
    Accept();
  });
}

std::string Server::Impl::ClosingReply(int status, const std::string& message) const {
  const Response r = error_page(status, message);
  const auto reason = beast::http::obsolete_reason(static_cast<beast::http::status>(status));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) +
         "\r\nContent-Type: " + r.content_type + "\r\nConnection: close\r\nContent-Length: " +
         std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
}

// Over the connection limit: one 503, written without waiting, and closed
// (over TLS only closed: a reply would need a handshake first).
void Server::Impl::Refuse(Socket socket) {
  beast::error_code ec;
  if (tls) {
    socket.close(ec);
    return;
  }
  const std::string reply =
      ClosingReply(503, "too many open connections (" + std::to_string(options.max_connections) + "); retry later");
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(reply), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

// On the accept strand, every `reap_every`: closes the sessions past their
// deadline. Under `mu` a session in the map is alive (its destructor waits
// for `mu` to leave the map), so only the overdue ones are locked.
void Server::Impl::Reap() {
  if (stopping.load()) return;
  const int64_t now = Ticks();
  std::vector<std::shared_ptr<Session>> overdue;
  {
    std::lock_guard lock(mu);
    for (const auto& [raw, weak] : sessions) {
      if (!raw->Overdue(now)) continue;
      if (auto s = weak.lock()) overdue.push_back(std::move(s));
    }
  }
  for (auto& s : overdue) s->Expire();
  reaper.expires_after(reap_every);
  reaper.async_wait([this](beast::error_code ec) {
    if (!ec) Reap();
  });
}

std::vector<std::shared_ptr<Session>> Server::Impl::Sessions(bool only_streams) {
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard lock(mu);
  for (const auto& [raw, weak] : only_streams ? stream_sessions : sessions) {
    if (auto s = weak.lock()) out.push_back(std::move(s));
  }
  return out;
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, Handler handler, ErrorPage error_page) {
  const auto colon = options.listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const std::string p = options.listen.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || ptr != p.data() + p.size() || port < 0 || port > 65535) port = -1;
  }
  if (colon == std::string::npos || colon == 0 || port < 0) {
    return Status::InvalidArgument("--http expects HOST:PORT (port 0 picks a free one), got '" + options.listen + "'");
  }
  std::string host = options.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  beast::error_code ec;
  const auto ip = net::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("--http expects an IP address as HOST, got '" + host + "'");
  RaiseDescriptorLimit();
  ServerOptions effective = options;
  if (effective.io_threads <= 0) {
    effective.io_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency() / 2));
  }
  auto impl = std::make_shared<Impl>(effective, std::move(handler), std::move(error_page));
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    auto tls = TlsContext(options);
    if (!tls.ok()) return tls.status();
    impl->tls = std::move(tls).value();
  }
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  auto fail = [&](const char* step) {
    return Status::Unavailable("cannot listen on " + options.listen + " (" + step + ": " + ec.message() +
                               "); pass --http HOST:PORT or --http off");
  };
  if (impl->acceptor.open(endpoint.protocol(), ec); ec) return fail("open");
  if (impl->acceptor.set_option(net::socket_base::reuse_address(true), ec); ec) return fail("reuse_address");
  if (impl->acceptor.bind(endpoint, ec); ec) return fail("bind");
  if (impl->acceptor.listen(net::socket_base::max_listen_connections, ec); ec) return fail("listen");
  const auto bound = impl->acceptor.local_endpoint(ec);
  impl->address = (ip.is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(bound.port());
  // A deadline is met within an eighth of the shortest timeout (at most 250 ms late).
  const auto shortest =
      std::min({options.header_timeout, options.body_timeout, options.idle_timeout, options.handshake_timeout});
  impl->reap_every = std::clamp<SteadyClock::duration>(shortest / 8, std::chrono::milliseconds(5),
                                                       std::chrono::milliseconds(250));
  net::post(impl->accept_strand, [raw = impl.get()] {
    raw->Accept();
    raw->Reap();
  });
  for (int i = 0; i < impl->options.io_threads; ++i) {
    impl->io.emplace_back([raw = impl.get()] {
      for (;;) {
        try {
          raw->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: I/O thread: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  net::post(s.accept_strand, [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
    s.accept_retry.cancel();
    s.reaper.cancel();
  });
  for (auto& session : s.Sessions(false)) session->Close();
  const Clock& clock = *s.options.clock;
  std::unique_lock lock(s.stop_mu);
  clock.WaitUntil(lock, s.released, clock.Now() + s.options.shutdown_grace, [&] { return s.in_flight.load() == 0; });
  // Let the last replies and stream endings go out, then close what is left.
  clock.WaitUntil(lock, s.released, clock.Now() + std::chrono::milliseconds(500),
                  [&] { return s.connections.load() == 0; });
  lock.unlock();
  for (auto& session : s.Sessions(false)) session->ForceClose();
  lock.lock();
  clock.WaitUntil(lock, s.released, clock.Now() + std::chrono::milliseconds(500),
                  [&] { return s.connections.load() == 0; });
  lock.unlock();
  s.workers.join();  // handlers still running finish; their replies go nowhere
  s.keep_running.reset();
  s.ioc.stop();
  for (auto& t : s.io) t.join();
  s.io.clear();
}

void Server::Run(std::function<void()> work) { net::post(impl_->workers, std::move(work)); }

void Server::NotifyStreams() {
  for (auto& session : impl_->Sessions(true)) session->Notify();
}

const std::string& Server::address() const { return impl_->address; }
size_t Server::connections() const { return impl_->connections.load(); }
size_t Server::streams() const { return impl_->streams.load(); }

}  // namespace orderflow::services::http
