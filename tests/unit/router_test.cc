// Router (matching, parameters, precedence, 404/405/401), query and percent decoding, problem
// details, JSON helpers, the OpenAPI completeness check over the real route table, the device
// routes that talk to live connections (MQTT credentials, RPC, state), and deferred responses
// through the real HTTP server.
#include "api/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <mutex>
#include <semaphore>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/handler_util.h"
#include "api/http_server.h"
#include "api/json_util.h"
#include "api/problem.h"
#include "api/services.h"
#include "core/config.h"
#include "core/metrics.h"
#include "ingest/device_channel.h"
#include "ingest/pipeline.h"
#include "runtime/blocking_pool.h"
#include "runtime/io_workers.h"
#include "security/crypto.h"
#include "security/jwt_issuer.h"
#include "storage/storage_factory.h"
#include "test_util.h"

namespace sw::api {

extern const std::string_view kOpenApiSpec;

namespace {

namespace json = boost::json;
using security::Role;
using sw::testing::TempDir;

Result<Principal> stubVerifier(std::string_view token) {
  if (token == "good") return Principal{UserId("u1"), TenantId("t1"), Role::kTenantAdmin};
  if (token == "forbidden") return fail(Code::kPermissionDenied, "no");
  return fail(Code::kUnauthenticated, "bad token");
}

Request req(std::string method, std::string path, std::string authorization = {}) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.authorization = std::move(authorization);
  return r;
}

Response text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

// Parses a problem+json body and checks its shape.
json::object problemBody(const Response& r, int status, std::string_view code) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.content_type, "application/problem+json");
  json::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << r.body;
  if (ec || !v.is_object()) return {};
  json::object o = v.as_object();
  EXPECT_EQ(o["status"], json::value(status)) << r.body;
  EXPECT_EQ(o["code"], json::value(code)) << r.body;
  EXPECT_TRUE(o.contains("title")) << r.body;
  EXPECT_TRUE(o.contains("detail")) << r.body;
  return o;
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : router_(stubVerifier) {
    router_.add("GET", "/healthz", Auth::kPublic, [](Context&) { return text(200, "health"); });
    router_.add("GET", "/api/v1/devices", Auth::kUser, [this](Context& c) {
      ++user_calls_;
      return text(200, "list:" + c.user().user_id.str() + ":" + std::string(security::roleName(c.user().role)));
    });
    router_.add("GET", "/api/v1/devices/{id}", Auth::kPublic,
                [](Context& c) { return text(200, "device:" + c.param("id")); });
    router_.add("DELETE", "/api/v1/devices/{id}", Auth::kUser,
                [](Context& c) { return text(204, "deleted:" + c.param("id")); });
    // A literal route registered after the parameter route it overlaps.
    router_.add("GET", "/api/v1/devices/count", Auth::kPublic, [](Context&) { return text(200, "count"); });
    router_.add("POST", "/api/v1/{access_token}/telemetry", Auth::kPublic,
                [](Context& c) { return text(200, "telemetry:" + c.param("access_token")); });
    router_.add("GET", "/api/v1/devices/{id}/telemetry", Auth::kPublic,
                [](Context& c) { return text(200, "ts:" + c.param("id")); });
    router_.add("GET", "/a/{x}/b/{y}", Auth::kPublic,
                [](Context& c) { return text(200, c.param("x") + "|" + c.param("y") + "|" + c.param("nope")); });
  }
  Router router_;
  int user_calls_ = 0;
};

TEST_F(RouterTest, MatchesLiteralRoutes) {
  auto r = router_.handle(req("GET", "/healthz"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "health");
}

TEST_F(RouterTest, ExtractsParameters) {
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/abc-123")).body, "device:abc-123");
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/abc/telemetry")).body, "ts:abc");
  EXPECT_EQ(router_.handle(req("POST", "/api/v1/tok3n/telemetry")).body, "telemetry:tok3n");
  // Several parameters; an unknown parameter name reads as empty.
  EXPECT_EQ(router_.handle(req("GET", "/a/1/b/2")).body, "1|2|");
}

TEST_F(RouterTest, ParametersArePercentDecoded) {
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/a%20b")).body, "device:a b");
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/%E2%82%AC")).body, "device:€");
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/%e2%82%ac")).body, "device:€");
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/a%2Fb")).body,
            "device:a/b");  // encoded slash stays in the segment
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/100%25")).body, "device:100%");
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/a+b")).body, "device:a+b");  // '+' is not a space in paths
  EXPECT_EQ(router_.handle(req("GET", "/a/%31/b/%32")).body, "1|2|");
}

TEST_F(RouterTest, MalformedParameterEncodingDoesNotMatch) {
  for (const char* path : {"/api/v1/devices/%zz", "/api/v1/devices/%4", "/api/v1/devices/%", "/api/v1/devices/ab%"}) {
    auto r = router_.handle(req("GET", path));
    EXPECT_EQ(r.status, 404) << path;
  }
}

TEST_F(RouterTest, LiteralRoutesBeatParameterRoutes) {
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/count")).body, "count");
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/counts")).body, "device:counts");
  // /api/v1/devices/{id}/telemetry (4 literals) is not taken by /api/v1/{access_token}/telemetry.
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices/x/telemetry")).body, "ts:x");

  // Precedence does not depend on registration order.
  Router reversed(stubVerifier);
  reversed.add("GET", "/x/literal", Auth::kPublic, [](Context&) { return text(200, "literal"); });
  reversed.add("GET", "/x/{p}", Auth::kPublic, [](Context& c) { return text(200, "param:" + c.param("p")); });
  reversed.add("GET", "/{a}/{b}", Auth::kPublic, [](Context&) { return text(200, "both"); });
  EXPECT_EQ(reversed.handle(req("GET", "/x/literal")).body, "literal");
  EXPECT_EQ(reversed.handle(req("GET", "/x/other")).body, "param:other");
  EXPECT_EQ(reversed.handle(req("GET", "/y/other")).body, "both");
  Router forward(stubVerifier);
  forward.add("GET", "/{a}/{b}", Auth::kPublic, [](Context&) { return text(200, "both"); });
  forward.add("GET", "/x/{p}", Auth::kPublic, [](Context& c) { return text(200, "param:" + c.param("p")); });
  forward.add("GET", "/x/literal", Auth::kPublic, [](Context&) { return text(200, "literal"); });
  EXPECT_EQ(forward.handle(req("GET", "/x/literal")).body, "literal");
  EXPECT_EQ(forward.handle(req("GET", "/x/other")).body, "param:other");
  EXPECT_EQ(forward.handle(req("GET", "/y/other")).body, "both");
}

TEST_F(RouterTest, UnknownPathIs404Problem) {
  for (const char* path : {"/nope", "/", "", "/api/v1", "/api/v1/devices/a/b/c/d", "/healthz/extra", "/HEALTHZ"}) {
    auto r = router_.handle(req("GET", path));
    problemBody(r, 404, "not_found");
  }
}

TEST_F(RouterTest, WrongMethodIs405Problem) {
  problemBody(router_.handle(req("POST", "/healthz")), 405, "method_not_allowed");
  problemBody(router_.handle(req("PUT", "/api/v1/devices/abc")), 405, "method_not_allowed");
  problemBody(router_.handle(req("get", "/healthz")), 405, "method_not_allowed");  // methods are case-sensitive
  // 405 wins over 401: the method is checked before authentication.
  problemBody(router_.handle(req("POST", "/api/v1/devices")), 405, "method_not_allowed");
}

TEST_F(RouterTest, UserRoutesNeedAValidBearerToken) {
  for (const char* auth : {"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token good", "Bearergood", "good"}) {
    auto r = router_.handle(req("GET", "/api/v1/devices", auth));
    problemBody(r, 401, "unauthenticated");
    bool has_challenge = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
      return h.first == "WWW-Authenticate" && h.second.starts_with("Bearer");
    });
    EXPECT_TRUE(has_challenge) << "'" << auth << "'";
  }
  problemBody(router_.handle(req("GET", "/api/v1/devices", "Bearer bad")), 401, "unauthenticated");
  problemBody(router_.handle(req("DELETE", "/api/v1/devices/x", "Bearer bad")), 401, "unauthenticated");
  EXPECT_EQ(user_calls_, 0) << "a handler ran without authentication";

  // The verifier's error code is kept (permission_denied -> 403).
  problemBody(router_.handle(req("GET", "/api/v1/devices", "Bearer forbidden")), 403, "permission_denied");

  auto ok = router_.handle(req("GET", "/api/v1/devices", "Bearer good"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "list:u1:tenant_admin");
  // The scheme name is case-insensitive (RFC 9110 section 11.1).
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices", "bearer good")).status, 200);
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/devices", "BEARER good")).status, 200);
  EXPECT_EQ(user_calls_, 3);
  auto del = router_.handle(req("DELETE", "/api/v1/devices/d%201", "Bearer good"));
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(del.body, "deleted:d 1");
}

TEST_F(RouterTest, PublicRoutesIgnoreAuthorization) {
  EXPECT_EQ(router_.handle(req("GET", "/healthz", "Bearer bad")).status, 200);
  EXPECT_EQ(router_.handle(req("GET", "/healthz", "garbage")).status, 200);
}

TEST_F(RouterTest, RoutesListsEveryRegistration) {
  auto routes = router_.routes();
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& r : routes) got.emplace(r.method, r.pattern);
  EXPECT_EQ(routes.size(), 8u);
  EXPECT_TRUE(got.count({"GET", "/healthz"}));
  EXPECT_TRUE(got.count({"DELETE", "/api/v1/devices/{id}"}));
  EXPECT_TRUE(got.count({"POST", "/api/v1/{access_token}/telemetry"}));
  EXPECT_TRUE(got.count({"GET", "/a/{x}/b/{y}"}));
}

// ---- query strings and percent decoding ----

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ParseQuery, DecodesPairs) {
  Pairs out;
  ASSERT_TRUE(parseQuery("a=1&b=x%20y&c=%E2%82%AC", out));
  EXPECT_EQ(out, (Pairs{{"a", "1"}, {"b", "x y"}, {"c", "€"}}));
}

TEST(ParseQuery, PlusIsSpaceAndEncodedPlusIsPlus) {
  Pairs out;
  ASSERT_TRUE(parseQuery("q=a+b&k+ey=%2B1", out));
  EXPECT_EQ(out, (Pairs{{"q", "a b"}, {"k ey", "+1"}}));
}

TEST(ParseQuery, EdgeShapes) {
  Pairs out;
  ASSERT_TRUE(parseQuery("", out));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(parseQuery("&&flag&&empty=&a=1=2&", out));
  EXPECT_EQ(out, (Pairs{{"flag", ""}, {"empty", ""}, {"a", "1=2"}}));
  out.clear();
  ASSERT_TRUE(parseQuery("k=1&k=2&=v", out));  // repeated keys keep their order; empty key kept
  EXPECT_EQ(out, (Pairs{{"k", "1"}, {"k", "2"}, {"", "v"}}));
  out.clear();
  ASSERT_TRUE(parseQuery("nul=%00&amp=%26&eq=%3D", out));
  EXPECT_EQ(out, (Pairs{{"nul", std::string(1, '\0')}, {"amp", "&"}, {"eq", "="}}));
}

TEST(ParseQuery, MalformedEscapesFail) {
  for (const char* bad : {"a=%", "a=%4", "a=%zz", "a=%G1", "%=1", "%4=1", "ok=1&bad=%x", "a=100%"}) {
    Pairs out;
    EXPECT_FALSE(parseQuery(bad, out)) << bad;
  }
}

TEST(PercentDecode, Cases) {
  std::string out = "junk";
  ASSERT_TRUE(percentDecode("%41%42c", out, false));
  EXPECT_EQ(out, "ABc");  // previous content replaced
  ASSERT_TRUE(percentDecode("%7e%7E", out, false));
  EXPECT_EQ(out, "~~");
  ASSERT_TRUE(percentDecode("a+b", out, false));
  EXPECT_EQ(out, "a+b");
  ASSERT_TRUE(percentDecode("a+b", out, true));
  EXPECT_EQ(out, "a b");
  ASSERT_TRUE(percentDecode("%2B", out, true));
  EXPECT_EQ(out, "+");
  ASSERT_TRUE(percentDecode("", out, true));
  EXPECT_EQ(out, "");
  ASSERT_TRUE(percentDecode("%2541", out, false));
  EXPECT_EQ(out, "%41");  // decoded once, not twice
  for (const char* bad : {"%", "%4", "a%", "ab%4", "%G0", "%0G", "% 1", "%%41"}) {
    EXPECT_FALSE(percentDecode(bad, out, false)) << bad;
  }
}

// ---- problem details ----

TEST(Problem, IsValidJsonWithCodeAndStatus) {
  auto r = problem(404, "not_found", "no \"such\" thing\\ here\n\x01", "device.id");
  auto o = problemBody(r, 404, "not_found");
  EXPECT_EQ(o["type"], json::value("about:blank"));
  EXPECT_EQ(o["title"], json::value("Not Found"));
  EXPECT_EQ(o["detail"], json::value("no \"such\" thing\\ here\n\x01"));
  EXPECT_EQ(o["field"], json::value("device.id"));
  auto no_field = problemBody(problem(400, "invalid_argument", "bad"), 400, "invalid_argument");
  EXPECT_FALSE(no_field.contains("field"));
  // Unusual statuses still produce a title.
  auto odd = problemBody(problem(418, "teapot", "short and stout"), 418, "teapot");
  EXPECT_TRUE(odd["title"].is_string());
}

TEST(Problem, UnauthorizedCarriesAChallenge) {
  auto r = problem(401, "unauthenticated", "x");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(r.headers[0].second, "Bearer");
  EXPECT_TRUE(problem(403, "permission_denied", "x").headers.empty());
}

TEST(Problem, ErrorResponseMapsEveryCode) {
  const std::pair<Code, int> cases[] = {{Code::kInvalidArgument, 400},  {Code::kNotFound, 404},
                                        {Code::kAlreadyExists, 409},    {Code::kUnauthenticated, 401},
                                        {Code::kPermissionDenied, 403}, {Code::kResourceExhausted, 429},
                                        {Code::kUnavailable, 503},      {Code::kInternal, 500}};
  for (auto [code, status] : cases) {
    EXPECT_EQ(httpStatusFor(code), status);
    auto r = errorResponse(Error{code, "msg", "the_field"});
    auto o = problemBody(r, status, codeName(code));
    EXPECT_EQ(o["field"], json::value("the_field"));
    EXPECT_EQ(o["detail"], json::value("msg"));
  }
}

// ---- JSON helpers ----

TEST(JsonWriter, WritesValidCompactJson) {
  JsonWriter w;
  w.beginObject();
  w.key("n").number(21.5);
  w.key("i").number(42.0);
  w.key("neg").integer(-7);
  w.key("big").number(1e20);
  w.key("nan").number(std::nan(""));
  w.key("b").boolean(false);
  w.key("z").null();
  w.key("s").string("q\"\\\n\t\x02é");
  w.key("arr").beginArray().integer(1).beginObject().endObject().beginArray().endArray().string("x").endArray();
  w.key("raw").raw(R"({"r":[1]})");
  w.key("v").beginArray();
  w.value(storage::Value(1.5)).value(storage::Value(true)).value(storage::Value(std::string("s")));
  w.value(storage::Value(storage::JsonText{R"({"j":null})"}));
  w.endArray();
  w.endObject();
  std::string out = w.take();
  EXPECT_NE(out.find(R"("n":21.5)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("i":42,)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("nan":null)"), std::string::npos) << out;
  json::error_code ec;
  json::value v = json::parse(out, ec);
  ASSERT_FALSE(ec) << out;
  EXPECT_EQ(v.at("s"), json::value("q\"\\\n\t\x02é"));
  EXPECT_EQ(v.at("big").to_number<double>(), 1e20);
  EXPECT_EQ(v.at("arr").as_array().size(), 4u);
  EXPECT_EQ(v.at("raw").at("r").as_array().size(), 1u);
  const json::array& vals = v.at("v").as_array();
  ASSERT_EQ(vals.size(), 4u);
  EXPECT_EQ(vals[0].to_number<double>(), 1.5);
  EXPECT_EQ(vals[1], json::value(true));
  EXPECT_EQ(vals[2], json::value("s"));
  EXPECT_TRUE(vals[3].at("j").is_null());
}

TEST(JsonUtil, ParseObjectAndTypedFields) {
  auto bad = parseObject("{");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Code::kInvalidArgument);
  EXPECT_EQ(bad.error().field, "body");
  auto arr = parseObject("[1]");
  ASSERT_FALSE(arr);
  EXPECT_EQ(arr.error().field, "body");
  std::string deep(100, '[');
  deep = R"({"a":)" + deep + std::string(100, ']') + "}";
  EXPECT_FALSE(parseObject(deep));  // nesting is limited

  auto o = parseObject(R"({"s":"x","e":"","n":5,"d":5.0,"f":5.5,"neg":-3,"t":true,"nul":null,
                           "m":{"k":"v"},"mbad":{"k":1},"big":18446744073709551615})");
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(optString(*o, "s")->value_or(""), "x");
  EXPECT_FALSE(optString(*o, "missing")->has_value());
  EXPECT_FALSE(optString(*o, "nul")->has_value());
  auto wrong = optString(*o, "n");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().field, "n");
  EXPECT_EQ(*reqString(*o, "s"), "x");
  EXPECT_EQ(reqString(*o, "e").error().field, "e");
  EXPECT_EQ(reqString(*o, "missing").error().field, "missing");

  EXPECT_EQ(optInt(*o, "n")->value_or(0), 5);
  EXPECT_EQ(optInt(*o, "d")->value_or(0), 5);
  EXPECT_EQ(optInt(*o, "neg")->value_or(0), -3);
  EXPECT_FALSE(optInt(*o, "missing")->has_value());
  EXPECT_EQ(optInt(*o, "f").error().field, "f");
  EXPECT_EQ(optInt(*o, "s").error().field, "s");
  EXPECT_EQ(optInt(*o, "big").error().field, "big");
  EXPECT_EQ(optNumber(*o, "f")->value_or(0), 5.5);
  EXPECT_EQ(optNumber(*o, "t").error().field, "t");

  auto m = optStringMap(*o, "m");
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((**m).at("k"), "v");
  EXPECT_EQ(optStringMap(*o, "mbad").error().field, "mbad.k");
  EXPECT_EQ(optStringMap(*o, "s").error().field, "s");
  EXPECT_EQ(toJsonText(json::value{{"a", 1}}), R"({"a":1})");
}

// ---- the real route table ----

// Builds the services exactly as the composition root does (src/app/app.cc), on temp storage.
class RealRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.data_dir = dir_.path().string();
    auto metadata = storage::openMetadataStore("sqlite", config_);
    ASSERT_TRUE(metadata) << metadata.error().message;
    metadata_ = std::move(*metadata);
    auto store = storage::openTimeSeriesStore("embedded", config_, &metrics_);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    pipeline_ = std::make_unique<ingest::IngestPipeline>(config_, *metadata_, *store_, metrics_);
    services_ = std::make_unique<Services>(
        Services{config_, *metadata_, *store_, *pipeline_, jwt_, metrics_, ready_, hashing_slots_});
    router_ = std::make_unique<Router>([this](std::string_view token) { return verifyBearer(*services_, token); });
    registerAllRoutes(*router_, *services_);
  }

  TempDir dir_;
  Config config_;
  Metrics metrics_;
  std::unique_ptr<storage::MetadataStore> metadata_;
  std::unique_ptr<storage::TimeSeriesStore> store_;
  std::unique_ptr<ingest::IngestPipeline> pipeline_;
  security::JwtIssuer jwt_{"unit-test-key-unit-test-key-unit-test-key", 900};
  std::atomic<bool> ready_{true};
  std::counting_semaphore<64> hashing_slots_{2};
  std::unique_ptr<Services> services_;
  std::unique_ptr<Router> router_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Every (method, pattern) of `routes` that spec_text does not document as
// paths[pattern][lowercase method]; a spec that is not a JSON object with "paths" reports itself.
std::vector<std::string> undocumentedRoutes(const std::vector<RouteInfo>& routes, std::string_view spec_text) {
  json::error_code ec;
  json::value spec = json::parse(spec_text, ec);
  if (ec || !spec.is_object()) return {"<the spec is not a JSON object: " + ec.message() + ">"};
  const json::value* paths_value = spec.as_object().if_contains("paths");
  const json::object* paths = paths_value ? paths_value->if_object() : nullptr;
  if (!paths) return {"<the spec has no paths object>"};
  std::vector<std::string> missing;
  for (const auto& r : routes) {
    const json::value* item = paths->if_contains(r.pattern);
    const json::object* ops = item ? item->if_object() : nullptr;
    const json::value* op = ops ? ops->if_contains(lower(r.method)) : nullptr;
    if (!op || !op->is_object()) missing.push_back(r.method + " " + r.pattern);
  }
  return missing;
}

std::string joinLines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& m : v) s += "\n  " + m;
  return s;
}

TEST_F(RealRoutes, EveryRouteIsDocumentedInOpenApi) {
  const auto routes = router_->routes();
  ASSERT_GE(routes.size(), 20u) << "registerAllRoutes registered suspiciously few routes";
  const auto missing = undocumentedRoutes(routes, kOpenApiSpec);
  EXPECT_TRUE(missing.empty()) << "routes missing from docs/api/openapi.json:" << joinLines(missing);
}

// The check above must notice a route dropped from the document: remove each documented
// operation of the real spec in turn and expect exactly that route to be reported.
TEST_F(RealRoutes, CompletenessCheckDetectsAMissingOperation) {
  const auto routes = router_->routes();
  for (const auto& r : routes) {
    json::value spec = json::parse(kOpenApiSpec);
    json::object& item = spec.at("paths").at(r.pattern).as_object();
    item.erase(lower(r.method));
    const auto missing = undocumentedRoutes(routes, json::serialize(spec));
    ASSERT_EQ(missing, (std::vector<std::string>{r.method + " " + r.pattern}));
  }
  // A whole path removed reports each of its methods.
  json::value spec = json::parse(kOpenApiSpec);
  spec.at("paths").as_object().erase("/api/v1/devices/{id}");
  EXPECT_EQ(undocumentedRoutes(routes, json::serialize(spec)).size(), 3u);  // GET, PATCH, DELETE
  EXPECT_EQ(undocumentedRoutes(routes, "{}").size(), 1u);
  EXPECT_EQ(undocumentedRoutes(routes, "not json").size(), 1u);
}

TEST_F(RealRoutes, EveryDocumentedOperationIsRouted) {
  json::value spec = json::parse(kOpenApiSpec);
  std::set<std::pair<std::string, std::string>> routed;
  for (const auto& r : router_->routes()) routed.emplace(lower(r.method), r.pattern);
  static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};
  std::vector<std::string> unrouted;
  for (const auto& [path, item] : spec.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      if (!kMethods.count(std::string(method))) continue;  // "parameters", "summary", ...
      if (!routed.count({std::string(method), std::string(path)})) {
        unrouted.push_back(std::string(method) + " " + std::string(path));
      }
    }
  }
  EXPECT_TRUE(unrouted.empty()) << "documented but not routed: " << unrouted.size() << " e.g. "
                                << (unrouted.empty() ? "" : unrouted[0]);
}

TEST_F(RealRoutes, NoDuplicateRoutes) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& r : router_->routes()) {
    EXPECT_TRUE(seen.emplace(r.method, r.pattern).second) << "duplicate " << r.method << " " << r.pattern;
  }
}

TEST_F(RealRoutes, SystemRoutesAnswer) {
  auto health = router_->handle(req("GET", "/healthz"));
  EXPECT_EQ(health.status, 200);
  auto spec = router_->handle(req("GET", "/api/v1/openapi.json"));
  EXPECT_EQ(spec.status, 200);
  EXPECT_EQ(spec.body, std::string(kOpenApiSpec));
  EXPECT_EQ(router_->handle(req("GET", "/readyz")).status, 200);
  ready_ = false;
  problemBody(router_->handle(req("GET", "/readyz")), 503, "unavailable");
  auto metrics = router_->handle(req("GET", "/metrics"));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("sw_ingest_points_total"), std::string::npos);
}

TEST_F(RealRoutes, BearerTokensAreCheckedAgainstTheUser) {
  problemBody(router_->handle(req("GET", "/api/v1/auth/me")), 401, "unauthenticated");
  problemBody(router_->handle(req("GET", "/api/v1/auth/me", "Bearer not.a.jwt")), 401, "unauthenticated");

  storage::Tenant t;
  t.name = "acme";
  auto tenant = metadata_->createTenant(t);
  ASSERT_TRUE(tenant);
  storage::User u;
  u.username = "alice";
  u.tenant_id = tenant->id;
  u.role = "tenant_admin";
  u.password_hash = "unused";
  auto user = metadata_->createUser(u);
  ASSERT_TRUE(user);
  auto token = jwt_.issue(user->id, tenant->id, Role::kTenantAdmin);
  ASSERT_TRUE(token);
  auto me = router_->handle(req("GET", "/api/v1/auth/me", "Bearer " + *token));
  EXPECT_EQ(me.status, 200) << me.body;
  EXPECT_NE(me.body.find("alice"), std::string::npos);

  // A token for another tenant than the user's is refused.
  auto other = jwt_.issue(user->id, TenantId(newUuid()), Role::kTenantAdmin);
  ASSERT_TRUE(other);
  problemBody(router_->handle(req("GET", "/api/v1/auth/me", "Bearer " + *other)), 401, "unauthenticated");
  // Deleting the user ends its tokens at once.
  ASSERT_TRUE(metadata_->deleteUser(user->id));
  problemBody(router_->handle(req("GET", "/api/v1/auth/me", "Bearer " + *token)), 401, "unauthenticated");
}

// The bucket-count guard of aggregated telemetry queries must hold for every int64 range:
// (to - from) overflows for from=INT64_MIN, to=INT64_MAX (src/api/handlers_telemetry.cc), which
// wraps to -1 and lets a 2^64 ms range through to the store.
TEST_F(RealRoutes, AggregateRangeGuardHoldsForExtremeRanges) {
  storage::Tenant t;
  t.name = "acme";
  auto tenant = metadata_->createTenant(t);
  ASSERT_TRUE(tenant);
  storage::User u;
  u.username = "viewer";
  u.tenant_id = tenant->id;
  u.role = "viewer";
  u.password_hash = "unused";
  auto user = metadata_->createUser(u);
  ASSERT_TRUE(user);
  storage::Device d;
  d.tenant_id = tenant->id;
  d.name = "d";
  d.type = "x";
  auto device = metadata_->createDevice(d, "token-hash");
  ASSERT_TRUE(device);
  auto token = jwt_.issue(user->id, tenant->id, Role::kViewer);
  ASSERT_TRUE(token);

  auto query = [&](std::string from, std::string to, std::string interval) {
    Request r = req("GET", "/api/v1/devices/" + device->id.str() + "/telemetry", "Bearer " + *token);
    r.query = {{"keys", "k"}, {"from", from}, {"to", to}, {"agg", "avg"}, {"interval", interval}};
    return router_->handle(r);
  };
  auto ok = query("0", "3600000", "1m");
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto many = query("0", "1000000000000", "1s");  // 10^9 buckets
  EXPECT_EQ(problemBody(many, 400, "invalid_argument")["field"], json::value("interval"));
  auto extreme = query("-9223372036854775808", "9223372036854775807", "1h");
  EXPECT_EQ(extreme.status, 400) << extreme.body;
  auto wide = query("-9223372036854775807", "9223372036854775807", "1d");
  EXPECT_EQ(wide.status, 400) << wide.body;
}

// ---- device routes that reach live connections (ingest::DeviceChannel) ----

// Records what the REST API asks of the transports; RPC outcomes are answered inline.
class FakeChannel : public ingest::DeviceChannel {
 public:
  ingest::DeviceState state(const TenantId&, const DeviceId& device) const override {
    std::lock_guard lock(mutex);
    auto it = states.find(device.str());
    return it == states.end() ? ingest::DeviceState{} : it->second;
  }
  std::vector<DeviceId> onlineDevices(const TenantId&) const override {
    std::lock_guard lock(mutex);
    std::vector<DeviceId> out;
    for (const auto& [id, st] : states) {
      if (st.online) out.emplace_back(id);
    }
    return out;
  }
  void rpc(ingest::RpcRequest request, std::function<void(ingest::RpcOutcome)> done) override {
    std::lock_guard lock(mutex);
    requests.push_back(request);
    done(outcome);
  }
  void sharedAttributesChanged(const TenantId& tenant, const DeviceId& device, std::string json_object) override {
    std::lock_guard lock(mutex);
    pushes.push_back(tenant.str() + "|" + device.str() + "|" + json_object);
  }
  void revoke(const TenantId& tenant, const DeviceId& device) override {
    std::lock_guard lock(mutex);
    revoked.push_back(tenant.str() + "|" + device.str());
  }

  mutable std::mutex mutex;
  std::map<std::string, ingest::DeviceState> states;
  ingest::RpcOutcome outcome;
  std::vector<ingest::RpcRequest> requests;
  std::vector<std::string> pushes;
  std::vector<std::string> revoked;
};

// Runs the deferred part of a response the way the HTTP server does (completion inline here).
Response finish(Response r) {
  if (!r.deferred) return r;
  std::optional<Response> out;
  r.deferred([&out](Response final_response) { out = std::move(final_response); });
  EXPECT_TRUE(out) << "the deferred response did not complete";
  return out.value_or(Response{});
}

json::object bodyObject(const Response& r) {
  json::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << r.body;
  return v.is_object() ? v.as_object() : json::object{};
}

class DeviceRoutes : public RealRoutes {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(security::initCrypto()); }
  void SetUp() override {
    RealRoutes::SetUp();
    tenant_ = makeTenant("acme", admin_, viewer_);
    other_tenant_ = makeTenant("other", other_admin_, other_viewer_);
  }

  TenantId makeTenant(const std::string& name, std::string& admin_token, std::string& viewer_token) {
    storage::Tenant t;
    t.name = name;
    auto tenant = metadata_->createTenant(t);
    EXPECT_TRUE(tenant);
    for (auto [role, token] : {std::pair{Role::kTenantAdmin, &admin_token}, std::pair{Role::kViewer, &viewer_token}}) {
      storage::User u;
      u.username = name + "-" + std::string(security::roleName(role));
      u.tenant_id = tenant->id;
      u.role = std::string(security::roleName(role));
      u.password_hash = "unused";
      auto user = metadata_->createUser(u);
      EXPECT_TRUE(user);
      auto jwt = jwt_.issue(user->id, tenant->id, role);
      EXPECT_TRUE(jwt);
      *token = "Bearer " + *jwt;
    }
    return tenant->id;
  }

  Response call(const std::string& method, const std::string& path, const std::string& token,
                const std::string& body = {}, std::vector<std::pair<std::string, std::string>> query = {}) {
    Request r = req(method, path, token);
    r.body = body;
    r.query = std::move(query);
    r.content_type = "application/json";
    return finish(router_->handle(r));
  }

  std::string createDevice(const std::string& token, const std::string& body) {
    auto r = call("POST", "/api/v1/devices", token, body);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(bodyObject(r)["id"].as_string());
  }

  FakeChannel channel_;
  TenantId tenant_, other_tenant_;
  std::string admin_, viewer_, other_admin_, other_viewer_;
};

TEST_F(DeviceRoutes, DeviceJsonHasGatewayAndConnectionState) {
  auto created = call("POST", "/api/v1/devices", admin_, R"({"name":"gw","gateway":true})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto d = bodyObject(created);
  EXPECT_EQ(d["gateway"], json::value(true));
  EXPECT_TRUE(d["gateway_id"].is_null());
  EXPECT_EQ(d["online"], json::value(false));
  for (const char* k : {"last_connect", "last_disconnect", "last_activity"}) {
    ASSERT_TRUE(d.contains(k)) << k;
    EXPECT_TRUE(d[k].is_null()) << k;
  }
  EXPECT_TRUE(d.contains("credentials"));
  const std::string id(d["id"].as_string());
  auto plain = bodyObject(call("POST", "/api/v1/devices", admin_, R"({"name":"plain"})"));
  EXPECT_EQ(plain["gateway"], json::value(false));
  problemBody(call("POST", "/api/v1/devices", admin_, R"({"name":"bad","gateway":"yes"})"), 400, "invalid_argument");
  problemBody(call("POST", "/api/v1/devices", admin_, R"({"name":"bad","gateway":1})"), 400, "invalid_argument");

  // With live connections: the state comes from the channel, on GET and in lists.
  services_->devices = &channel_;
  channel_.states[id] = ingest::DeviceState{true, 1000, 500, 1500};
  auto got = bodyObject(call("GET", "/api/v1/devices/" + id, viewer_));
  EXPECT_EQ(got["gateway"], json::value(true));
  EXPECT_EQ(got["online"], json::value(true));
  EXPECT_EQ(got["last_connect"], json::value(1000));
  EXPECT_EQ(got["last_disconnect"], json::value(500));
  EXPECT_EQ(got["last_activity"], json::value(1500));
  auto list = bodyObject(call("GET", "/api/v1/devices", viewer_));
  ASSERT_EQ(list["items"].as_array().size(), 2u);
  for (const auto& item : list["items"].as_array()) {
    const auto& o = item.as_object();
    const bool is_gw = o.at("id").as_string() == id;
    EXPECT_EQ(o.at("online"), json::value(is_gw));
    EXPECT_EQ(o.at("gateway"), json::value(is_gw));
    EXPECT_TRUE(o.at("gateway_id").is_null());
    if (!is_gw) {
      EXPECT_TRUE(o.at("last_activity").is_null());
    }
  }
}

TEST_F(DeviceRoutes, MqttBasicCredentialLifecycle) {
  services_->devices = &channel_;
  const std::string id = createDevice(admin_, R"({"name":"d1"})");
  const std::string path = "/api/v1/devices/" + id + "/credentials/mqtt-basic";
  problemBody(call("GET", path, admin_), 404, "not_found");

  auto put = call("PUT", path, admin_, R"({"username":"dev-user","password":"password1"})");
  ASSERT_EQ(put.status, 200) << put.body;
  auto o = bodyObject(put);
  EXPECT_EQ(o["username"], json::value("dev-user"));
  EXPECT_TRUE(o["client_id"].is_null());
  EXPECT_FALSE(o.contains("password"));
  auto stored = metadata_->findMqttCredentialByUsername("dev-user");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->device_id, DeviceId(id));
  EXPECT_EQ(stored->tenant_id, tenant_);
  EXPECT_TRUE(stored->password_hash.starts_with("$argon2id$"));
  EXPECT_TRUE(security::verifyPassword("password1", stored->password_hash));
  EXPECT_EQ(channel_.revoked, (std::vector<std::string>{tenant_.str() + "|" + id}));

  // Replace, with a client id; viewers read it.
  put = call("PUT", path, admin_, R"({"username":"dev-user2","password":"password2","client_id":"c-1"})");
  ASSERT_EQ(put.status, 200) << put.body;
  auto got = call("GET", path, viewer_);
  ASSERT_EQ(got.status, 200) << got.body;
  o = bodyObject(got);
  EXPECT_EQ(o["username"], json::value("dev-user2"));
  EXPECT_EQ(o["client_id"], json::value("c-1"));
  EXPECT_FALSE(metadata_->findMqttCredentialByUsername("dev-user"));
  EXPECT_EQ(channel_.revoked.size(), 2u);

  // The username belongs to one device only (also across tenants).
  const std::string id2 = createDevice(admin_, R"({"name":"d2"})");
  problemBody(call("PUT", "/api/v1/devices/" + id2 + "/credentials/mqtt-basic", admin_,
                   R"({"username":"dev-user2","password":"password3"})"),
              409, "already_exists");
  const std::string foreign = createDevice(other_admin_, R"({"name":"d1"})");
  problemBody(call("PUT", "/api/v1/devices/" + foreign + "/credentials/mqtt-basic", other_admin_,
                   R"({"username":"dev-user2","password":"password3"})"),
              409, "already_exists");

  // Viewers may not write; other tenants see nothing.
  problemBody(call("PUT", path, viewer_, R"({"username":"v","password":"password1"})"), 403, "permission_denied");
  problemBody(call("DELETE", path, viewer_), 403, "permission_denied");
  for (const auto& token : {other_admin_, other_viewer_}) {
    problemBody(call("GET", path, token), 404, "not_found");
    problemBody(call("PUT", path, token, R"({"username":"x","password":"password1"})"), 404, "not_found");
    problemBody(call("DELETE", path, token), 404, "not_found");
  }
  problemBody(call("PUT", "/api/v1/devices/" + newUuid() + "/credentials/mqtt-basic", admin_,
                   R"({"username":"x","password":"password1"})"),
              404, "not_found");
  EXPECT_EQ(metadata_->getMqttCredential(tenant_, DeviceId(id))->username, "dev-user2");

  auto del = call("DELETE", path, admin_);
  EXPECT_EQ(del.status, 204) << del.body;
  EXPECT_EQ(channel_.revoked.size(), 3u);
  problemBody(call("GET", path, admin_), 404, "not_found");
  problemBody(call("DELETE", path, admin_), 404, "not_found");
}

TEST_F(DeviceRoutes, MqttBasicCredentialValidation) {
  const std::string id = createDevice(admin_, R"({"name":"d1"})");
  const std::string path = "/api/v1/devices/" + id + "/credentials/mqtt-basic";
  const std::pair<std::string, std::string> cases[] = {
      {R"({"password":"password1"})", "username"},
      {R"({"username":"","password":"password1"})", "username"},
      {R"({"username":5,"password":"password1"})", "username"},
      {R"({"username":"app","password":"password1"})", "username"},
      {R"({"username":")" + std::string(129, 'u') + R"(","password":"password1"})", "username"},
      {R"({"username":"a\u0000b","password":"password1"})", "username"},
      {R"({"username":"a\nb","password":"password1"})", "username"},
      {R"({"username":"u"})", "password"},
      {R"({"username":"u","password":"short7!"})", "password"},
      {R"({"username":"u","password":12345678})", "password"},
      {R"({"username":"u","password":"password1","client_id":7})", "client_id"},
      {R"({"username":"u","password":"password1","client_id":")" + std::string(257, 'c') + R"("})", "client_id"},
      {"[]", "body"},
      {"{", "body"},
  };
  for (const auto& [body, field] : cases) {
    auto r = call("PUT", path, admin_, body);
    EXPECT_EQ(problemBody(r, 400, "invalid_argument")["field"], json::value(field)) << body;
  }
  // 128 characters (not bytes) is the limit: 128 two-byte characters pass.
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xc3\xa9";
  auto ok = call("PUT", path, admin_, R"({"username":")" + wide + R"(","password":"password1"})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(metadata_->findMqttCredentialByUsername(wide));
}

TEST_F(DeviceRoutes, CredentialChangesAndDeletionRevokeConnections) {
  const std::string id = createDevice(admin_, R"({"name":"d1"})");
  // Without a channel nothing is pushed anywhere, and nothing fails.
  EXPECT_EQ(call("POST", "/api/v1/devices/" + id + "/credentials", admin_).status, 200);
  services_->devices = &channel_;
  EXPECT_EQ(call("POST", "/api/v1/devices/" + id + "/credentials", admin_).status, 200);
  EXPECT_EQ(channel_.revoked, (std::vector<std::string>{tenant_.str() + "|" + id}));
  problemBody(call("POST", "/api/v1/devices/" + id + "/credentials", viewer_), 403, "permission_denied");
  problemBody(call("DELETE", "/api/v1/devices/" + id, other_admin_), 404, "not_found");
  EXPECT_EQ(channel_.revoked.size(), 1u);
  EXPECT_EQ(call("DELETE", "/api/v1/devices/" + id, admin_).status, 204);
  EXPECT_EQ(channel_.revoked.size(), 2u);
  EXPECT_EQ(channel_.revoked.back(), tenant_.str() + "|" + id);
}

TEST_F(DeviceRoutes, SharedAttributeChangesArePushed) {
  services_->devices = &channel_;
  const std::string id = createDevice(admin_, R"({"name":"d1"})");
  const std::string path = "/api/v1/devices/" + id + "/attributes";
  auto r = call("POST", path, admin_, R"({"mode":"eco","target":21.5,"cfg":{"a":[1,2]}})", {{"scope", "shared"}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(channel_.pushes.size(), 1u);
  const std::string prefix = tenant_.str() + "|" + id + "|";
  ASSERT_TRUE(channel_.pushes[0].starts_with(prefix));
  EXPECT_EQ(json::parse(channel_.pushes[0].substr(prefix.size())),
            json::parse(R"({"mode":"eco","target":21.5,"cfg":{"a":[1,2]}})"));
  EXPECT_EQ(channel_.pushes[0].find(' '), std::string::npos);  // compact
  // Only the changed keys; the default scope is shared; server attributes are not pushed.
  ASSERT_EQ(call("POST", path, admin_, R"({"mode":"off"})").status, 200);
  ASSERT_EQ(channel_.pushes.size(), 2u);
  EXPECT_EQ(channel_.pushes[1], prefix + R"({"mode":"off"})");
  ASSERT_EQ(call("POST", path, admin_, R"({"secret":1})", {{"scope", "server"}}).status, 200);
  EXPECT_EQ(channel_.pushes.size(), 2u);
  // Refused writes push nothing.
  problemBody(call("POST", path, viewer_, R"({"mode":"x"})"), 403, "permission_denied");
  problemBody(call("POST", path, other_admin_, R"({"mode":"x"})"), 404, "not_found");
  EXPECT_EQ(channel_.pushes.size(), 2u);
}

TEST_F(DeviceRoutes, RpcOutcomesMapToResponses) {
  const std::string id = createDevice(admin_, R"({"name":"d1"})");
  const std::string path = "/api/v1/devices/" + id + "/rpc";
  // No live connections at all: offline.
  problemBody(call("POST", path, admin_, R"({"method":"reboot"})"), 409, "device_offline");

  services_->devices = &channel_;
  using Kind = ingest::RpcOutcome::Kind;
  channel_.outcome = {Kind::kSent, 7, {}};
  auto r = call("POST", path, admin_, R"({"method":"reboot","oneway":true})");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"id":7,"status":"sent"})"));
  ASSERT_EQ(channel_.requests.size(), 1u);
  const auto& first = channel_.requests[0];
  EXPECT_EQ(first.tenant, tenant_);
  EXPECT_EQ(first.device, DeviceId(id));
  EXPECT_EQ(first.method, "reboot");
  EXPECT_EQ(first.params_json, "{}");
  EXPECT_EQ(first.timeout, std::chrono::milliseconds(10000));
  EXPECT_TRUE(first.oneway);
  EXPECT_FALSE(first.queue);

  channel_.outcome = {Kind::kQueued, 8, {}};
  r = call("POST", path, admin_,
           R"({"method":"set","params":{"v":[1,true]},"timeout_ms":600000,"oneway":true,"queue":true})");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"id":8,"status":"queued"})"));
  const auto& second = channel_.requests.back();
  EXPECT_EQ(json::parse(second.params_json), json::parse(R"({"v":[1,true]})"));
  EXPECT_EQ(second.timeout, std::chrono::milliseconds(600000));
  EXPECT_TRUE(second.queue);

  channel_.outcome = {Kind::kReply, 9, R"( {"temp": 21.5} )"};
  r = call("POST", path, admin_, R"({"method":"get","params":5,"timeout_ms":1})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"id":9,"response":{"temp":21.5}})"));
  EXPECT_EQ(channel_.requests.back().params_json, "5");
  EXPECT_FALSE(channel_.requests.back().oneway);
  EXPECT_EQ(channel_.requests.back().timeout, std::chrono::milliseconds(1));
  for (const std::string reply : {"not json", "", "{\"a\":", "\xff\xfe"}) {
    channel_.outcome = {Kind::kReply, 10, reply};
    r = call("POST", path, admin_, R"({"method":"get"})");
    EXPECT_EQ(r.status, 200) << r.body;
    auto o = bodyObject(r);
    EXPECT_TRUE(o["response"].is_string()) << r.body;
  }
  channel_.outcome = {Kind::kReply, 11, "not json"};
  EXPECT_EQ(json::parse(call("POST", path, admin_, R"({"method":"get"})").body),
            json::parse(R"({"id":11,"response":"not json"})"));

  channel_.outcome = {Kind::kTimeout, 12, {}};
  r = call("POST", path, admin_, R"({"method":"get"})");
  problemBody(r, 504, "timeout");
  channel_.outcome = {Kind::kOffline, 13, {}};
  problemBody(call("POST", path, admin_, R"({"method":"get"})"), 409, "device_offline");
  channel_.outcome = {Kind::kBusy, 14, {}};
  problemBody(call("POST", path, admin_, R"({"method":"get","queue":true})"), 429, "resource_exhausted");
}

TEST_F(DeviceRoutes, RpcRequestValidationAndAccess) {
  services_->devices = &channel_;
  channel_.outcome = {ingest::RpcOutcome::Kind::kSent, 1, {}};
  const std::string id = createDevice(admin_, R"({"name":"d1"})");
  const std::string path = "/api/v1/devices/" + id + "/rpc";
  const std::pair<std::string, std::string> cases[] = {
      {R"({})", "method"},
      {R"({"method":""})", "method"},
      {R"({"method":5})", "method"},
      {R"({"method":")" + std::string(257, 'm') + R"("})", "method"},
      {R"({"method":"m","timeout_ms":0})", "timeout_ms"},
      {R"({"method":"m","timeout_ms":-5})", "timeout_ms"},
      {R"({"method":"m","timeout_ms":600001})", "timeout_ms"},
      {R"({"method":"m","timeout_ms":1.5})", "timeout_ms"},
      {R"({"method":"m","timeout_ms":"100"})", "timeout_ms"},
      {R"({"method":"m","oneway":"yes"})", "oneway"},
      {R"({"method":"m","queue":1})", "queue"},
      {"[]", "body"},
      {"nope", "body"},
  };
  for (const auto& [body, field] : cases) {
    EXPECT_EQ(problemBody(call("POST", path, admin_, body), 400, "invalid_argument")["field"], json::value(field))
        << body;
  }
  EXPECT_EQ(call("POST", path, admin_, R"({"method":")" + std::string(256, 'm') + R"("})").status, 202);
  problemBody(call("POST", path, viewer_, R"({"method":"m"})"), 403, "permission_denied");
  problemBody(call("POST", path, other_admin_, R"({"method":"m"})"), 404, "not_found");
  problemBody(call("POST", path, other_viewer_, R"({"method":"m"})"), 404, "not_found");
  problemBody(call("POST", "/api/v1/devices/" + newUuid() + "/rpc", admin_, R"({"method":"m"})"), 404, "not_found");
  EXPECT_EQ(channel_.requests.size(), 1u);  // only the valid call reached the device
}

// ---- deferred responses through the real HTTP server ----

namespace asio = boost::asio;

class DeferredHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.http_bind = "127.0.0.1";
    config_.http_port = 0;
    router_.add("GET", "/later", Auth::kPublic, [this](Context&) {
      Response r;
      r.deferred = [this](ResponseCallback done) {
        std::lock_guard lock(mutex_);
        pending_.push_back(std::move(done));
      };
      return r;
    });
    router_.add("GET", "/never", Auth::kPublic, [](Context&) {
      Response r;
      r.deferred_timeout = std::chrono::milliseconds(100);
      r.deferred = [](ResponseCallback) {};
      return r;
    });
    router_.add("GET", "/inline", Auth::kPublic, [](Context&) {
      Response r;
      r.deferred = [](ResponseCallback done) {
        done(jsonResponse(201, R"({"inline":true})"));
        done(jsonResponse(500, "{}"));  // a second completion is ignored
      };
      return r;
    });
    router_.add("GET", "/now", Auth::kPublic, [](Context&) { return jsonResponse(200, R"({"now":true})"); });
    start();
  }

  void start() {
    workers_ = std::make_unique<runtime::IoWorkers>(1);
    server_ = std::make_unique<HttpServer>(config_, *workers_, pool_, router_, metrics_);
    auto port = server_->start();
    ASSERT_TRUE(port) << port.error().message;
    port_ = static_cast<unsigned short>(*port);
    workers_->start();
  }

  // Sends one keep-alive GET on socket s (connecting it first if needed).
  void send(asio::ip::tcp::socket& s, const std::string& path) {
    if (!s.is_open()) s.connect({asio::ip::make_address("127.0.0.1"), port_});
    asio::write(s, asio::buffer("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  }

  // Reads one response (headers and a Content-Length body) from s; "" on EOF.
  std::string receive(asio::ip::tcp::socket& s, std::string& buffer) {
    boost::system::error_code ec;
    asio::read_until(s, asio::dynamic_buffer(buffer), "\r\n\r\n", ec);
    auto end = buffer.find("\r\n\r\n");
    if (end == std::string::npos) return {};
    std::string head = buffer.substr(0, end + 4);
    std::size_t length = 0;
    if (auto p = lower(head).find("content-length:"); p != std::string::npos) {
      length = std::stoul(head.substr(p + 15));
    }
    if (buffer.size() < end + 4 + length) {
      asio::read(s, asio::dynamic_buffer(buffer), asio::transfer_exactly(end + 4 + length - buffer.size()), ec);
    }
    std::string out = buffer.substr(0, end + 4 + length);
    buffer.erase(0, out.size());
    return out;
  }

  // Waits until n deferred requests are pending.
  bool waitPending(std::size_t n) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mutex_);
        if (pending_.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  ResponseCallback takePending(std::size_t i) {
    std::lock_guard lock(mutex_);
    return pending_.at(i);
  }

  bool waitIdle() {
    for (int i = 0; i < 500 && server_->inflight() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return server_->inflight() == 0;
  }

  Config config_;
  Metrics metrics_;
  Router router_{stubVerifier};
  runtime::BlockingPool pool_{2, 16};
  std::unique_ptr<runtime::IoWorkers> workers_;
  std::unique_ptr<HttpServer> server_;
  unsigned short port_ = 0;
  asio::io_context client_;
  std::mutex mutex_;
  std::vector<ResponseCallback> pending_;
};

TEST_F(DeferredHttp, CompletionFromAnotherThreadIsWritten) {
  asio::ip::tcp::socket s(client_);
  std::string buffer;
  send(s, "/later");
  ASSERT_TRUE(waitPending(1));
  EXPECT_EQ(server_->inflight(), 1u);  // drain waits for it
  std::thread([done = takePending(0)] { done(jsonResponse(200, R"({"late":true})")); }).join();
  std::string r = receive(s, buffer);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
  EXPECT_TRUE(r.ends_with(R"({"late":true})")) << r;
  // The connection goes on serving (keep-alive), deferred or not.
  send(s, "/inline");
  r = receive(s, buffer);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 201")) << r;
  EXPECT_TRUE(r.ends_with(R"({"inline":true})")) << r;
  send(s, "/now");
  EXPECT_TRUE(receive(s, buffer).ends_with(R"({"now":true})"));
  // Completing again later changes nothing.
  takePending(0)(jsonResponse(500, "{}"));
  EXPECT_TRUE(waitIdle());
}

TEST_F(DeferredHttp, NoCompletionAnswers504) {
  asio::ip::tcp::socket s(client_);
  std::string buffer;
  send(s, "/never");
  std::string r = receive(s, buffer);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 504")) << r;
  EXPECT_NE(r.find(R"("code":"timeout")"), std::string::npos) << r;
  EXPECT_TRUE(waitIdle());
}

TEST_F(DeferredHttp, ManyWaitingRequestsHoldNoPoolThread) {
  // More waiting requests than pool threads and queue slots: the pool still answers.
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> waiting;
  // One at a time: a burst could find the small test queue full and get 503, which is the
  // queue's job, not what this test is about.
  for (int i = 0; i < 24; ++i) {
    waiting.push_back(std::make_unique<asio::ip::tcp::socket>(client_));
    send(*waiting.back(), "/later");
    ASSERT_TRUE(waitPending(static_cast<std::size_t>(i) + 1));
  }
  asio::ip::tcp::socket s(client_);
  std::string buffer;
  send(s, "/now");
  EXPECT_TRUE(receive(s, buffer).starts_with("HTTP/1.1 200"));
  for (std::size_t i = 0; i < 24; ++i) takePending(i)(jsonResponse(200, "{\"i\":" + std::to_string(i) + "}"));
  // The server may register the waiting handlers in any order: every client gets an answer,
  // and the 24 answers are the 24 distinct completions.
  std::set<std::string> bodies;
  for (std::size_t i = 0; i < 24; ++i) {
    std::string b;
    std::string r = receive(*waiting[i], b);
    EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
    bodies.insert(r.substr(r.rfind("{\"i\":")));
  }
  EXPECT_EQ(bodies.size(), 24u);
  EXPECT_TRUE(waitIdle());
}

TEST_F(DeferredHttp, ClientGoneBeforeCompletionIsHarmless) {
  {
    asio::ip::tcp::socket s(client_);
    send(s, "/later");
    ASSERT_TRUE(waitPending(1));
    s.close();
  }
  takePending(0)(jsonResponse(200, "{}"));
  EXPECT_TRUE(waitIdle());
  asio::ip::tcp::socket s(client_);
  std::string buffer;
  send(s, "/now");
  EXPECT_TRUE(receive(s, buffer).starts_with("HTTP/1.1 200"));
}

TEST_F(DeferredHttp, CompletionAfterTheServerIsGoneIsHarmless) {
  asio::ip::tcp::socket a(client_), b(client_);
  send(a, "/later");
  send(b, "/later");
  ASSERT_TRUE(waitPending(2));
  // The composition root's shutdown order: stop accepting, stop the workers, destroy the
  // server, then the workers (which destroys the sessions still waiting).
  server_->stopAccepting();
  workers_->stop();
  takePending(0)(jsonResponse(200, "{}"));  // posted to a stopped worker
  server_.reset();
  takePending(1)(jsonResponse(200, "{}"));  // the server is gone: nothing is posted
  workers_.reset();
  std::vector<ResponseCallback> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(pending_);
  }
  for (auto& done : left) done(jsonResponse(200, "{}"));  // every session is gone
}

}  // namespace
}  // namespace sw::api
