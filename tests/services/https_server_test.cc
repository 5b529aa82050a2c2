// services/api/http_server.h over TLS (tests/fixtures/tls): a client that
// trusts the CA is served, one that trusts another CA or offers only TLS 1.1
// is refused, plain HTTP to the port gets a plain 400, a handshake that does
// not finish is cut off, and a certificate that cannot be used stops Start
// with one line naming the file.
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/ssl.h>

#include <chrono>
#include <string>

#include "domain/clock.h"
#include "services/api/http_server.h"
#include "tests/util/raw_connection.h"

namespace orderflow::services::http {
namespace {

using namespace std::chrono_literals;
using orderflow::testing::Connection;

const std::string kTls = std::string(ORDERFLOW_SOURCE_DIR) + "/tests/fixtures/tls/";

Result<std::unique_ptr<Server>> Start(ServerOptions options) {
  options.listen = "127.0.0.1:0";
  if (options.tls_cert_file.empty()) options.tls_cert_file = kTls + "server.pem";
  if (options.tls_key_file.empty()) options.tls_key_file = kTls + "server.key";
  return Server::Start(
      options,
      [](Request req, Responder responder) {
        Response res;
        res.content_type = "text/plain";
        res.body = std::string(req.secure ? "secure " : "plain ") + req.path;
        responder.Send(std::move(res));
      },
      [](int status, const std::string& message) { return Response{status, "text/plain", message + "\n", {}}; });
}

std::unique_ptr<httplib::SSLClient> Client(const std::string& address, const std::string& ca) {
  const auto colon = address.rfind(':');
  auto client = std::make_unique<httplib::SSLClient>(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  client->set_ca_cert_path(ca.c_str());
  client->enable_server_certificate_verification(true);
  client->set_connection_timeout(5, 0);
  client->set_read_timeout(5, 0);
  return client;
}

TEST(HttpsServerTest, AClientTrustingTheCaIsServedOverTlsAndKeepsItsConnection) {
  auto server = Start({});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = Client((*server)->address(), kTls + "ca.pem");
  client->set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    auto res = client->Get("/hello");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "secure /hello");  // the handler sees that it came over TLS
  }
  EXPECT_EQ((*server)->connections(), 1u);  // the three requests shared one TLS connection
}

TEST(HttpsServerTest, AClientTrustingAnotherCaRefusesTheServer) {
  auto server = Start({});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = Client((*server)->address(), kTls + "other-ca.pem");
  auto res = client->Get("/hello");
  EXPECT_FALSE(res);
  EXPECT_EQ(res.error(), httplib::Error::SSLServerVerification);
}

TEST(HttpsServerTest, Tls11IsRefusedAndTls12Served) {
  auto server = Start({});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  // The client allows TLS 1.1 (security level 0), so only the server can refuse it.
  auto old = Client((*server)->address(), kTls + "ca.pem");
  SSL_CTX_set_security_level(old->ssl_context(), 0);
  SSL_CTX_set_min_proto_version(old->ssl_context(), TLS1_1_VERSION);
  SSL_CTX_set_max_proto_version(old->ssl_context(), TLS1_1_VERSION);
  auto refused = old->Get("/hello");
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.error(), httplib::Error::SSLConnection);
  // The same client at TLS 1.2 is served: the refusal was the version's.
  auto current = Client((*server)->address(), kTls + "ca.pem");
  SSL_CTX_set_security_level(current->ssl_context(), 0);
  SSL_CTX_set_max_proto_version(current->ssl_context(), TLS1_2_VERSION);
  auto served = current->Get("/hello");
  ASSERT_TRUE(served) << httplib::to_string(served.error());
  EXPECT_EQ(served->status, 200);
}

TEST(HttpsServerTest, PlainHttpToTheTlsPortGetsAPlain400SayingUseHttps) {
  auto server = Start({});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Connection plain((*server)->address());
  ASSERT_TRUE(plain.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string reply = plain.Read(5s, "https://\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400 Bad Request\r\n")) << reply;
  EXPECT_NE(reply.find("this port speaks HTTPS: use https://"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("plain /hello"), std::string::npos) << "the handler ran for a plaintext request";
}

TEST(HttpsServerTest, AHandshakeThatDoesNotFinishIsCutOffAfterTheHandshakeTimeout) {
  ServerOptions options;
  options.handshake_timeout = 400ms;
  auto server = Start(options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Connection slow((*server)->address());
  // A TLS record header announcing a ClientHello of 512 bytes, and no more.
  const auto t = SystemClock().Now();
  ASSERT_TRUE(slow.Send(std::string("\x16\x03\x01\x02\x00", 5)));
  const std::string reply = slow.Read(10s);
  EXPECT_TRUE(slow.closed()) << "still open after 10 s";
  EXPECT_EQ(reply, "");
  EXPECT_GE(SystemClock().Now() - t, 400ms) << "closed before the handshake timeout: something else cut it";
  // Others are served meanwhile and after.
  auto client = Client((*server)->address(), kTls + "ca.pem");
  auto res = client->Get("/hello");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
}

TEST(HttpsServerTest, ACertificateOrKeyThatCannotBeUsedIsOneLineNamingTheFile) {
  ServerOptions missing;
  missing.tls_cert_file = kTls + "no-such.pem";
  auto a = Start(missing);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("--tls-cert " + kTls + "no-such.pem"), std::string::npos) << a.status().ToString();

  ServerOptions mismatched;
  mismatched.tls_cert_file = kTls + "ca.pem";  // the CA's certificate, not the key's
  auto b = Start(mismatched);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("cannot use --tls-key " + kTls + "server.key with --tls-cert " + kTls + "ca.pem"),
            std::string::npos)
      << b.status().ToString();

  ServerOptions half;
  half.tls_cert_file = kTls + "server.pem";
  half.tls_key_file = "";
  auto c = Server::Start(
      [&] {
        ServerOptions o = half;
        o.listen = "127.0.0.1:0";
        return o;
      }(),
      [](Request, Responder) {}, [](int, const std::string&) { return Response{}; });
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("both --tls-cert FILE and --tls-key FILE"), std::string::npos)
      << c.status().ToString();
  for (const auto* s : {&a.status(), &b.status(), &c.status()}) {
    EXPECT_EQ(s->message().find('\n'), std::string::npos) << s->message();
  }
}

}  // namespace
}  // namespace orderflow::services::http
