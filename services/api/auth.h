// Who may call what: bearer tokens (the API token grants writes, the read
// token reads) and cookie sessions for the web page (EventSource cannot send
// an Authorization header, so the page trades its token for a cookie with
// POST /session). With no token configured everything is open.
// Thread safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "domain/clock.h"
#include "services/api/router.h"

namespace orderflow::services::api {

class Auth {
 public:
  // Sessions expire by `clock`, which must outlive this.
  Auth(std::string api_token, std::string api_read_token, const Clock& clock = SystemClock());

  // Refuses with 401 (no or a wrong credential) or 403 (a read-only one for a
  // write) unless the request's bearer token or session cookie grants `need`.
  [[nodiscard]] Status Authorize(const http::Request& req, Access need);

  // POST /session {"token"} (a cookie for 12 hours) and DELETE /session.
  void Register(Router& router);

 private:
  // What the request's credentials grant, in *granted; 401 for a wrong bearer token.
  [[nodiscard]] Status Granted(const http::Request& req, Access* granted);
  Status OpenSession(const http::Request& req, http::Response& res);
  Status CloseSession(const http::Request& req, http::Response& res);

  struct WebSession {
    Access access;
    std::chrono::steady_clock::time_point expires;
  };
  const std::string api_token_;
  const std::string api_read_token_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, WebSession> sessions_;
};

}  // namespace orderflow::services::api
