// Router (matching, parameters, precedence, 404/405/401), query and percent decoding, problem
// details, JSON helpers, and the OpenAPI completeness check over the real route table.
#include "api/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cctype>
#include <semaphore>
#include <set>
#include <string>
#include <vector>

#include "api/json_util.h"
#include "api/problem.h"
#include "api/services.h"
#include "core/config.h"
#include "core/metrics.h"
#include "ingest/pipeline.h"
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

}  // namespace
}  // namespace sw::api
