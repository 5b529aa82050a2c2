// The API's routes: which path belongs to which route (the label of its
// metrics), which methods a route allows, and the endpoint (method, route,
// handler, access) that serves a request. Areas of the API (order routes,
// operations routes, sessions) add their endpoints; the server dispatches.
// Not thread-safe while endpoints are added; Find may then run on any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/api/http_server.h"
#include "services/api/reply.h"

namespace orderflow::services::api {

// What a request's credentials must grant (when a token is configured).
enum class Access { kOpen, kRead, kWrite };

struct Route {
  const char* label;  // also the pattern: "{id}" matches one path segment
  const char* allow;  // the methods it allows, for 405's Allow header
};

// The route `path` belongs to, with the {id} segment in *id (nullptr: none).
const Route* MatchRoute(std::string_view path, std::string* id = nullptr);
// The metrics label of `path`: its route, "static" or "unknown".
std::string RouteLabel(std::string_view path);

// Fills the response, or returns the refusal the server answers with instead.
using Handler = std::function<Status(const http::Request&, const std::string& id, http::Response&)>;
// Validates, and puts in *source the event stream the connection is handed to.
using StreamOpener =
    std::function<Status(const http::Request&, const std::string& id, std::shared_ptr<http::EventSource>*)>;

struct Endpoint {
  std::string method;
  const Route* route = nullptr;
  Handler handler;      // or
  StreamOpener stream;  // for an event stream
  Access access = Access::kRead;
  // Answers from local state at once: served on the I/O thread. The others
  // (writes waiting for the log, the broker's answers) go to the worker pool.
  bool quick = false;
};

class Router {
 public:
  // `label` must be one of the routes (router.cc); a second endpoint for the
  // same method and route replaces the first.
  void Add(std::string method, const char* label, Access access, bool quick, Handler handler);
  void AddStream(const char* label, Access access, StreamOpener opener);

  // The endpoint serving `method` on `path`, with the {id} segment in *id;
  // nullptr when there is none, with *route the path's route if it has one
  // (a method it does not allow: 405) or nullptr (no such endpoint: 404).
  const Endpoint* Find(const std::string& method, std::string_view path, std::string* id, const Route** route) const;

 private:
  void Put(Endpoint e);
  std::vector<Endpoint> endpoints_;
};

}  // namespace orderflow::services::api
