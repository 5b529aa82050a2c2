#include "services/api/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "domain/hex.h"

namespace orderflow::services::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
// A connection's socket runs its handlers on its own strand; a concrete type
// (not any_io_executor) spares each handler a type-erased executor copy.
using Strand = net::strand<net::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using SteadyClock = std::chrono::steady_clock;

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Lets the process hold as many sockets as its hard limit allows: each open
// connection is a descriptor, and the soft limit is often 1,024.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = domain::HexDigit(in[i + 1]), lo = domain::HexDigit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* out) {
  out->clear();
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string name, value;
    if (!PercentDecode(part.substr(0, eq), true, &name)) return false;
    if (eq != std::string_view::npos && !PercentDecode(part.substr(eq + 1), true, &value)) return false;
    out->emplace_back(std::move(name), std::move(value));
  }
  return true;
}

std::string Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

bool Request::HasParam(std::string_view name) const {
  return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
}

std::string Request::Param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

struct Server::Impl {
  ServerOptions options;
  Handler handler;
  ErrorPage error_page;
  std::string address;
  std::atomic<size_t> connections{0};
  std::atomic<size_t> streams{0};
  std::atomic<size_t> in_flight{0};  // requests read and not yet answered
  std::atomic<bool> stopping{false};
  std::mutex mu;  // guards the two maps
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::unordered_map<Session*, std::weak_ptr<Session>> stream_sessions;
  // Declared after what sessions touch when they go: the io_context's
  // destructor destroys pending handlers, and with them the last sessions.
  net::io_context ioc;
  // Keeps the I/O threads running while no socket operation is pending (a
  // request on the worker pool, after the acceptor closed) until Stop ends.
  net::executor_work_guard<net::io_context::executor_type> keep_running{ioc.get_executor()};
  net::strand<net::io_context::executor_type> accept_strand{net::make_strand(ioc)};
  tcp::acceptor acceptor{accept_strand};
  net::steady_timer accept_retry{accept_strand};
  // Enforces the sessions' deadlines (header, body, idle, write) every
  // `reap_every`: one timer for the server instead of arming and cancelling
  // one per read and write, which cost more than a request to /healthz.
  net::steady_timer reaper{accept_strand};
  SteadyClock::duration reap_every{};
  net::thread_pool workers;
  std::vector<std::thread> io;

  Impl(const ServerOptions& o, Handler h, ErrorPage e)
      : options(o), handler(std::move(h)), error_page(std::move(e)), ioc(o.io_threads),
        workers(static_cast<size_t>(std::max(1, o.worker_threads))) {}

  void Accept();
  void Refuse(Socket socket);
  void Reap();
  std::vector<std::shared_ptr<Session>> Sessions(bool only_streams);
};

// One connection: reads a request, hands it to the handler, writes its reply,
// and waits for the next; or, once a handler asks for it, an event stream.
// Every member is touched on the session's strand only, except the atomics.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, Server::Impl& server)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(server) {
    ++server_.connections;
  }
  ~Session() {
    if (is_stream_) --server_.streams;
    if (awaiting_reply_) --server_.in_flight;
    std::lock_guard lock(server_.mu);
    server_.sessions.erase(this);
    server_.stream_sessions.erase(this);
    --server_.connections;
  }

  void Begin() {
    {
      std::lock_guard lock(server_.mu);
      server_.sessions.emplace(this, weak_from_this());
    }
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->WaitForRequest(); });
  }

  void Reply(Response response) {
    net::dispatch(socket_.get_executor(), [self = shared_from_this(), r = std::move(response)]() mutable {
      if (!self->awaiting_reply_) return;
      self->awaiting_reply_ = false;
      --self->server_.in_flight;
      self->Write(std::move(r), self->keep_alive_ && !self->server_.stopping.load());
    });
  }

  void StartStream(std::shared_ptr<EventSource> source) {
    net::post(socket_.get_executor(), [self = shared_from_this(), source = std::move(source)]() mutable {
      self->BeginStream(std::move(source));
    });
  }

  // From any thread: the stream's source may have something new.
  void Notify() {
    if (notify_pending_.exchange(true)) return;
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      self->notify_pending_ = false;
      self->Pull();
    });
  }

  // From any thread, at shutdown: an event stream ends with a final comment,
  // a connection waiting for a request closes, a request in flight is still
  // answered (and then the connection closes).
  void Close() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (self->is_stream_) {
        self->Pull();
      } else if (!self->awaiting_reply_ && !self->writing_) {
        self->CloseSocket();
      }
    });
  }
  void ForceClose() {
    net::post(socket_.get_executor(), [self = shared_from_this()] { self->CloseSocket(); });
  }

  // From the reaper (under Server::Impl::mu, so the session is alive): true
  // when the deadline of what the session waits for has passed.
  bool Overdue(int64_t now) const {
    const int64_t deadline = deadline_.load(std::memory_order_relaxed);
    return deadline != 0 && now >= deadline;
  }
  // From the reaper: closes the connection if it is still overdue on its strand
  // (the awaited bytes may have arrived meanwhile). What was pending then
  // completes with an error, and nothing can be answered.
  void Expire() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      if (!self->Overdue(SteadyClock::now().time_since_epoch().count())) return;
      if (self->awaiting_ != nullptr) {
        spdlog::debug("http: closed a connection whose request {} did not arrive in time", self->awaiting_);
      }
      self->CloseSocket();
    });
  }

 private:
  // What the session waits for, until when; the reaper closes it after that.
  // `what` names a request part for the log (nullptr: an idle connection or a
  // write, which close without a word).
  void SetDeadline(SteadyClock::duration timeout, const char* what) {
    awaiting_ = what;
    deadline_.store((SteadyClock::now() + timeout).time_since_epoch().count(), std::memory_order_relaxed);
  }
  void ClearDeadline() {
    awaiting_ = nullptr;
    deadline_.store(0, std::memory_order_relaxed);
  }

  void CloseSocket() {
    beast::error_code ec;
    ClearDeadline();
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  // Waits for the first byte of a request for up to `idle_timeout`; the
  // header's own timeout starts once it arrives.
  void WaitForRequest() {
    if (closing_) return CloseSocket();
    if (buffer_.size() > 0) return ReadHeader();  // the next request is here already
    SetDeadline(server_.options.idle_timeout, nullptr);
    if (buffer_.capacity() == 0) {
      // A connection that never sent anything holds no buffer while it waits.
      socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->OnReadError(ec);
        self->ReadHeader();
      });
      return;
    }
    // Keep-alive: read into the buffer the last request left, instead of
    // waiting for readiness and then reading.
    const size_t room = std::max<size_t>(512, buffer_.capacity() - buffer_.size());
    socket_.async_read_some(buffer_.prepare(room), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->OnReadError(ec);
      self->buffer_.commit(n);
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    SetDeadline(server_.options.header_timeout, "header");
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    bhttp::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnHeader(ec);
    });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    if (auto length = parser_->content_length(); length && *length > server_.options.max_body_bytes) {
      return Refuse(413, "request body exceeds " + std::to_string(server_.options.max_body_bytes) + " bytes");
    }
    if (parser_->is_done()) return OnRequest();
    SetDeadline(server_.options.body_timeout, "body");
    bhttp::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->OnReadError(ec);
      self->OnRequest();
    });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || ec == net::error::bad_descriptor) {
      return CloseSocket();  // the client left, or the reaper closed it (Expire)
    }
    if (ec == bhttp::error::header_limit) {
      return Refuse(431, "request header exceeds " + std::to_string(server_.options.max_header_bytes) + " bytes");
    }
    if (ec == bhttp::error::body_limit) {
      return Refuse(413, "request body exceeds " + std::to_string(server_.options.max_body_bytes) + " bytes");
    }
    Refuse(400, "malformed HTTP request: " + ec.message());
  }

  void OnRequest() {
    ClearDeadline();  // the handler takes what it takes
    auto& message = parser_->get();
    Request req;
    req.method = std::string(message.method_string());
    req.target = std::string(message.target());
    const size_t q = req.target.find('?');
    if (!PercentDecode(std::string_view(req.target).substr(0, q), false, &req.path) ||
        (q != std::string::npos && !ParseQuery(std::string_view(req.target).substr(q + 1), &req.params))) {
      return Refuse(400, "malformed URL: a % not followed by two hex digits");
    }
    for (const auto& field : message) req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    req.body = std::move(message.body());
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    awaiting_reply_ = true;
    ++server_.in_flight;
    try {
      server_.handler(std::move(req), Responder(shared_from_this()));
    } catch (const std::exception& e) {
      spdlog::error("http: handler failed: {}", e.what());
      Reply(server_.error_page(500, std::string("internal error: ") + e.what()));
    }
  }

  // Answers `status` and closes; what the client still sends is read and
  // dropped for a moment first, so the reply is not lost to a reset.
  void Refuse(int status, const std::string& message) {
    keep_alive_ = false;
    linger_ = true;
    Write(server_.error_page(status, message), false);
  }

  // Writes the head by hand, as Beast's serializer would (status line,
  // fields, Connection as keep_alive asks, Content-Length), into a buffer the
  // session reuses: a response then costs no fields container.
  void Write(Response r, bool keep_alive) {
    const auto status = static_cast<bhttp::status>(r.status);
    const bool bodiless =
        r.status < 200 || status == bhttp::status::no_content || status == bhttp::status::not_modified;
    char number[24];
    head_.assign(version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    head_.append(number, std::to_chars(number, number + sizeof number, r.status).ptr);
    const auto reason = bhttp::obsolete_reason(status);
    head_.append(" ").append(reason.data(), reason.size()).append("\r\n");
    if (!r.content_type.empty()) head_.append("Content-Type: ").append(r.content_type).append("\r\n");
    for (const auto& [name, value] : r.headers) head_.append(name).append(": ").append(value).append("\r\n");
    if (version_ >= 11 && !keep_alive) head_.append("Connection: close\r\n");
    if (version_ < 11 && keep_alive) head_.append("Connection: keep-alive\r\n");
    if (bodiless) {
      r.body.clear();
    } else {
      head_.append("Content-Length: ").append(number, std::to_chars(number, number + sizeof number, r.body.size()).ptr);
      head_.append("\r\n");
    }
    head_.append("\r\n");
    body_ = std::move(r.body);
    writing_ = true;
    SetDeadline(server_.options.body_timeout, nullptr);  // a client that stopped reading
    const std::array<net::const_buffer, 2> buffers{net::buffer(head_), net::buffer(body_)};
    net::async_write(socket_, buffers, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->ClearDeadline();
      self->body_ = std::string();  // an idle connection keeps no response
      if (ec) return self->CloseSocket();
      if (self->linger_) return self->Linger();
      if (!keep_alive || self->closing_) return self->CloseSocket();
      self->WaitForRequest();
    });
  }

  void Linger() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->CloseSocket();
    });
    DrainInput();
  }
  void DrainInput() {
    socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->CloseSocket();
      self->DrainInput();
    });
  }

  void BeginStream(std::shared_ptr<EventSource> source) {
    if (!awaiting_reply_) return;
    if (server_.streams.fetch_add(1) >= server_.options.max_streams) {
      --server_.streams;
      awaiting_reply_ = false;
      --server_.in_flight;
      return Write(server_.error_page(503, "too many open event streams (" +
                                               std::to_string(server_.options.max_streams) + "); retry later"),
                   keep_alive_);
    }
    awaiting_reply_ = false;
    --server_.in_flight;
    is_stream_ = true;
    source_ = std::move(source);
    {
      std::lock_guard lock(server_.mu);
      server_.stream_sessions.emplace(this, weak_from_this());
    }
    auto head = std::make_shared<std::string>(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
    writing_ = true;
    net::async_write(socket_, net::buffer(*head), [self = shared_from_this(), head](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->CloseSocket();
      self->WatchForHangUp();
      self->Pull();
    });
  }

  // A stream's client sends nothing more; any read completing means it left.
  void WatchForHangUp() {
    socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->gone_ = true;
        return self->CloseSocket();
      }
      self->WatchForHangUp();
    });
  }

  void Pull() {
    if (!is_stream_ || gone_ || ended_) return;
    if (writing_) {
      pull_again_ = true;
      return;
    }
    pull_again_ = false;
    bool end = false;
    std::string frames;
    try {
      frames = source_->Next(&end);
    } catch (const std::exception& e) {
      spdlog::warn("http: event stream ended: {}", e.what());
      end = true;
    }
    if (closing_) {
      frames += ": the server is shutting down\n\n";
      end = true;
    }
    if (frames.empty() && !end) return ArmKeepAlive();
    WriteChunk(std::move(frames), end);
  }

  void ArmKeepAlive() {
    timer_.expires_after(server_.options.keep_alive_comment);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->writing_ || self->gone_ || self->ended_) return;
      self->WriteChunk(": keep-alive\n\n", false);
    });
  }

  void WriteChunk(std::string frames, bool end) {
    timer_.cancel();
    chunk_.clear();
    if (!frames.empty()) {
      char size[20];
      auto [p, ec] = std::to_chars(size, size + sizeof size, frames.size(), 16);
      chunk_.append(size, p).append("\r\n").append(frames).append("\r\n");
    }
    if (end) {
      chunk_.append("0\r\n\r\n");
      ended_ = true;
    }
    writing_ = true;
    SetDeadline(std::chrono::seconds(30), nullptr);  // a client that stopped reading
    net::async_write(socket_, net::buffer(chunk_), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->ClearDeadline();
      if (ec || self->ended_) return self->CloseSocket();
      if (self->pull_again_ || self->closing_) return self->Pull();
      self->ArmKeepAlive();
    });
  }

  Socket socket_;
  net::steady_timer timer_;  // linger, keep-alive comments
  Server::Impl& server_;
  std::atomic<int64_t> deadline_{0};  // SteadyClock ticks since its epoch; 0: none
  const char* awaiting_ = nullptr;    // for the log when the deadline passes
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::array<char, 4096> scratch_{};
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool awaiting_reply_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool linger_ = false;
  // Event stream.
  bool is_stream_ = false;
  bool gone_ = false;
  bool ended_ = false;
  bool pull_again_ = false;
  std::atomic<bool> notify_pending_{false};
  std::shared_ptr<EventSource> source_;
  std::string chunk_;
  // The response being written: head (capacity reused) and body.
  std::string head_;
  std::string body_;
};

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
      std::make_shared<Session>(std::move(socket), *this)->Begin();
    }
    Accept();
  });
}

// Over the connection limit: one 503, written without waiting, and closed.
void Server::Impl::Refuse(Socket socket) {
  const Response r = error_page(503, "too many open connections (" + std::to_string(options.max_connections) +
                                         "); retry later");
  const std::string reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: " + r.content_type +
                            "\r\nConnection: close\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" +
                            r.body;
  beast::error_code ec;
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
  const int64_t now = SteadyClock::now().time_since_epoch().count();
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
  const auto shortest = std::min({options.header_timeout, options.body_timeout, options.idle_timeout});
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
  const auto deadline = std::chrono::steady_clock::now() + s.options.shutdown_grace;
  while (s.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Let the last replies and stream endings go out, then close what is left.
  const auto closing = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (s.connections.load() > 0 && std::chrono::steady_clock::now() < closing) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& session : s.Sessions(false)) session->ForceClose();
  const auto closed = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (s.connections.load() > 0 && std::chrono::steady_clock::now() < closed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
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
