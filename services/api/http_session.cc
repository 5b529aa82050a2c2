// One HTTP connection over a stream: a plain socket, or TLS over it. The
// template is instantiated for those two only (ServePlain, ServeTls).
#include "services/api/http_session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <type_traits>

#include "services/api/http_server_impl.h"

namespace orderflow::services::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using TlsStream = net::ssl::stream<Socket>;

Session::Session(Server::Impl& server) : server_(server) { ++server_.connections; }

Session::~Session() {
  if (is_stream_) --server_.streams;
  if (awaiting_reply_) --server_.in_flight;
  {
    std::lock_guard lock(server_.mu);
    server_.sessions.erase(this);
    server_.stream_sessions.erase(this);
    --server_.connections;
  }
  server_.Released();
}

void Session::Begin() {
  {
    std::lock_guard lock(server_.mu);
    server_.sessions.emplace(this, weak_from_this());
  }
  Start();
}

namespace {

template <class Stream>
class Connection final : public Session {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  template <class... Args>
  Connection(Server::Impl& server, Args&&... args)
      : Session(server), stream_(std::forward<Args>(args)...), timer_(stream_.get_executor()) {}

  void Reply(Response response) override {
    net::dispatch(stream_.get_executor(), [self = Self(), r = std::move(response)]() mutable {
      if (!self->awaiting_reply_) return;
      self->awaiting_reply_ = false;
      --self->server_.in_flight;
      self->server_.Released();
      self->Write(std::move(r), self->keep_alive_ && !self->server_.stopping.load());
    });
  }

  void StartStream(std::shared_ptr<EventSource> source) override {
    net::post(stream_.get_executor(), [self = Self(), source = std::move(source)]() mutable {
      self->BeginStream(std::move(source));
    });
  }

  void Notify() override {
    if (notify_pending_.exchange(true)) return;
    net::post(stream_.get_executor(), [self = Self()] {
      self->notify_pending_ = false;
      self->Pull();
    });
  }

  void Close() override {
    net::post(stream_.get_executor(), [self = Self()] {
      self->closing_ = true;
      if (self->is_stream_) {
        self->Pull();
      } else if (!self->awaiting_reply_ && !self->writing_) {
        self->CloseSocket();
      }
    });
  }
  void ForceClose() override {
    net::post(stream_.get_executor(), [self = Self()] { self->CloseSocket(); });
  }

  void Expire() override {
    net::post(stream_.get_executor(), [self = Self()] {
      if (!self->Overdue(self->server_.Ticks())) return;
      if (self->awaiting_ != nullptr) {
        spdlog::debug("http: closed a connection whose {} did not arrive in time", self->awaiting_);
      }
      self->CloseSocket();
    });
  }

 protected:
  void Start() override {
    net::dispatch(stream_.get_executor(), [self = Self()] {
      if constexpr (kTls) {
        self->Handshake();
      } else {
        self->WaitForRequest();
      }
    });
  }

 private:
  std::shared_ptr<Connection> Self() { return std::static_pointer_cast<Connection>(shared_from_this()); }
  Socket& Lowest() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  // TLS: waits up to `idle_timeout` for the client's first bytes, then gives
  // the handshake `handshake_timeout`. A client that speaks plain HTTP to
  // this port gets a plain 400 saying to use https://.
  void Handshake() {
    SetDeadline(server_.options.idle_timeout, nullptr);
    Lowest().async_read_some(buffer_.prepare(1024), [self = Self()](beast::error_code ec, size_t n) {
      if (ec) return self->CloseSocket();
      self->buffer_.commit(n);
      constexpr unsigned char kHandshakeRecord = 0x16;
      if (static_cast<const unsigned char*>(self->buffer_.data().data())[0] != kHandshakeRecord) {
        return self->RefusePlaintext();
      }
      self->SetDeadline(self->server_.options.handshake_timeout, "TLS handshake");
      if constexpr (kTls) {
        self->stream_.async_handshake(net::ssl::stream_base::server, self->buffer_.data(),
                                      [self](beast::error_code ec, size_t used) {
                                        self->buffer_.consume(used);
                                        if (ec) {
                                          spdlog::debug("http: TLS handshake failed: {}", ec.message());
                                          return self->CloseSocket();
                                        }
                                        self->ClearDeadline();
                                        self->WaitForRequest();
                                      });
      }
    });
  }

  void RefusePlaintext() {
    head_ = server_.ClosingReply(400, "this port speaks HTTPS: use https://");
    buffer_.consume(buffer_.size());
    SetDeadline(server_.options.body_timeout, nullptr);
    net::async_write(Lowest(), net::buffer(head_), [self = Self()](beast::error_code ec, size_t) {
      if (ec) return self->CloseSocket();
      self->Linger();
    });
  }

  // What the session waits for, until when; the reaper closes it after that.
  // `what` names a request part for the log (nullptr: an idle connection or a
  // write, which close without a word).
  void SetDeadline(SteadyClock::duration timeout, const char* what) {
    awaiting_ = what;
    deadline_.store(server_.Ticks() + std::chrono::duration_cast<SteadyClock::duration>(timeout).count(),
                    std::memory_order_relaxed);
  }
  void ClearDeadline() {
    awaiting_ = nullptr;
    deadline_.store(0, std::memory_order_relaxed);
  }

  void CloseSocket() {
    beast::error_code ec;
    ClearDeadline();
    timer_.cancel();
    Lowest().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().close(ec);
  }

  // Waits for the first byte of a request for up to `idle_timeout`; the
  // header's own timeout starts once it arrives.
  void WaitForRequest() {
    if (closing_) return CloseSocket();
    if (buffer_.size() > 0) return ReadHeader();  // the next request is here already
    SetDeadline(server_.options.idle_timeout, nullptr);
    if (buffer_.capacity() == 0 && !kTls) {
      // A connection that never sent anything holds no buffer while it waits.
      // (Over TLS the handshake may have left the request in the TLS layer.)
      Lowest().async_wait(tcp::socket::wait_read, [self = Self()](beast::error_code ec) {
        if (ec) return self->OnReadError(ec);
        self->ReadHeader();
      });
      return;
    }
    // Keep-alive: read into the buffer the last request left, instead of
    // waiting for readiness and then reading.
    const size_t room = std::max<size_t>(512, buffer_.capacity() - buffer_.size());
    stream_.async_read_some(buffer_.prepare(room), [self = Self()](beast::error_code ec, size_t n) {
      if (ec) return self->OnReadError(ec);
      self->buffer_.commit(n);
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    SetDeadline(server_.options.header_timeout, "request header");
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = Self()](beast::error_code ec, size_t) {
      self->OnHeader(ec);
    });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    if (auto length = parser_->content_length(); length && *length > server_.options.max_body_bytes) {
      return Refuse(413, "request body exceeds " + std::to_string(server_.options.max_body_bytes) + " bytes");
    }
    if (parser_->is_done()) return OnRequest();
    SetDeadline(server_.options.body_timeout, "request body");
    bhttp::async_read(stream_, buffer_, *parser_, [self = Self()](beast::error_code ec, size_t) {
      if (ec) return self->OnReadError(ec);
      self->OnRequest();
    });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || ec == net::error::bad_descriptor ||
        ec == net::ssl::error::stream_truncated) {
      return CloseSocket();  // the client left, or the reaper closed it (Expire)
    }
    if (ec.category() == net::error::get_ssl_category()) {
      spdlog::debug("http: TLS error: {}", ec.message());
      return CloseSocket();  // nothing can be said over a broken TLS session
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
    req.secure = kTls;
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    awaiting_reply_ = true;
    ++server_.in_flight;
    try {
      server_.handler(std::move(req), Responder(Self()));
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
    net::async_write(stream_, buffers, [self = Self(), keep_alive](beast::error_code ec, size_t) {
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
    Lowest().shutdown(tcp::socket::shutdown_send, ec);
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([self = Self()](beast::error_code ec) {
      if (!ec) self->CloseSocket();
    });
    DrainInput();
  }
  void DrainInput() {  // raw bytes: over TLS, nothing more is decrypted
    Lowest().async_read_some(net::buffer(scratch_), [self = Self()](beast::error_code ec, size_t) {
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
      server_.Released();
      return Write(server_.error_page(503, "too many open event streams (" +
                                               std::to_string(server_.options.max_streams) + "); retry later"),
                   keep_alive_);
    }
    awaiting_reply_ = false;
    --server_.in_flight;
    server_.Released();
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
    net::async_write(stream_, net::buffer(*head), [self = Self(), head](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->CloseSocket();
      self->WatchForHangUp();
      self->Pull();
    });
  }

  // A stream's client sends nothing more; any read completing means it left.
  void WatchForHangUp() {
    stream_.async_read_some(net::buffer(scratch_), [self = Self()](beast::error_code ec, size_t) {
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
    timer_.async_wait([self = Self()](beast::error_code ec) {
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
    net::async_write(stream_, net::buffer(chunk_), [self = Self()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->ClearDeadline();
      if (ec || self->ended_) return self->CloseSocket();
      if (self->pull_again_ || self->closing_) return self->Pull();
      self->ArmKeepAlive();
    });
  }

  Stream stream_;
  net::steady_timer timer_;  // linger, keep-alive comments
  const char* awaiting_ = nullptr;    // for the log when the deadline passes
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::array<char, 4096> scratch_{};
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool linger_ = false;
  // Event stream.
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

}  // namespace

void ServePlain(Socket socket, Server::Impl& server) {
  std::make_shared<Connection<Socket>>(server, std::move(socket))->Begin();
}

void ServeTls(Socket socket, net::ssl::context& tls, Server::Impl& server) {
  std::make_shared<Connection<TlsStream>>(server, std::move(socket), tls)->Begin();
}

}  // namespace orderflow::services::http
