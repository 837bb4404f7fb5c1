// Health, readiness, metrics and the OpenAPI document.
#include "api/handler_util.h"
#include "api/services.h"
#include "sw_version.h"

namespace sw::api {

extern const std::string_view kOpenApiSpec;

void registerSystemRoutes(Router& router, Services& s) {
  router.add("GET", "/healthz", Auth::kPublic, [](Context&) { return jsonResponse(200, R"({"status":"ok"})"); });
  router.add("GET", "/readyz", Auth::kPublic, [&s](Context&) {
    if (!s.ready.load()) return problem(503, "unavailable", "not ready (starting or draining)");
    return jsonResponse(200, R"({"status":"ready"})");
  });
  router.add("GET", "/metrics", Auth::kPublic, [&s](Context&) {
    Response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = s.metrics.render();
    return r;
  });
  // What a client needs to know about this server, e.g. to show devices how to connect.
  router.add("GET", "/api/v1/info", Auth::kUser, [&s](Context&) {
    JsonWriter w;
    w.beginObject().key("version").string(kVersion).key("mqtt_port").integer(s.config.mqtt_port).endObject();
    return jsonResponse(200, w.take());
  });
  router.add("GET", "/api/v1/openapi.json", Auth::kPublic,
             [](Context&) { return jsonResponse(200, std::string(kOpenApiSpec)); });
}

}  // namespace sw::api
