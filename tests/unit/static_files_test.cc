// StaticFiles (the web UI served from memory): loading, content types, cache headers, gzip
// negotiation, single-page-app fallback, path traversal refusal; and the router's fallback.
#include "api/static_files.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <string>

#include "api/router.h"
#include "test_util.h"

namespace sw::api {
namespace {

using sw::testing::TempDir;

std::string header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

std::string gunzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(in.size() * 50 + 1024, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

Request get(std::string path, std::string accept_encoding = {}, std::string method = "GET") {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.accept_encoding = std::move(accept_encoding);
  return r;
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write("index.html", "<!doctype html><title>app</title><div id=app></div>");
    std::string js = "console.log('hello');\n";
    for (int i = 0; i < 200; ++i) js += "export const value" + std::to_string(i) + " = " + std::to_string(i) + ";\n";
    js_ = js;
    write("assets/index-1a2b3c.js", js_);
    write("assets/index-1a2b3c.css", "body{margin:0}");
    write("assets/font-9f8e.woff2", std::string(4096, '\x01'));
    write("favicon.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    auto loaded = StaticFiles::load(dir_.path());
    ASSERT_TRUE(loaded) << loaded.error().message;
    files_.emplace(std::move(*loaded));
  }
  void write(const std::string& rel, const std::string& content) {
    auto p = dir_.path() / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }
  const StaticFiles& ui() { return *files_; }

  TempDir dir_;
  std::string js_;
  std::optional<StaticFiles> files_;
};

TEST_F(StaticFilesTest, ServesFilesWithTypesAndCacheHeaders) {
  EXPECT_EQ(ui().fileCount(), 5u);
  auto index = ui().serve(get("/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<div id=app>"), std::string::npos);
  EXPECT_EQ(header(index, "Cache-Control"), "no-cache");
  EXPECT_EQ(ui().serve(get("/index.html")).body, index.body);

  auto js = ui().serve(get("/assets/index-1a2b3c.js"));
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js.body, js_);
  EXPECT_EQ(header(js, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(header(js, "Content-Encoding"), "");

  EXPECT_EQ(ui().serve(get("/assets/index-1a2b3c.css")).content_type, "text/css; charset=utf-8");
  EXPECT_EQ(ui().serve(get("/assets/font-9f8e.woff2")).content_type, "font/woff2");
  auto svg = ui().serve(get("/favicon.svg"));
  EXPECT_EQ(svg.content_type, "image/svg+xml");
  EXPECT_EQ(header(svg, "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, SecurityHeadersOnEveryResponse) {
  for (const char* path : {"/", "/assets/index-1a2b3c.js", "/devices/1", "/missing.png", "/../x"}) {
    auto r = ui().serve(get(path));
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(header(r, "X-Frame-Options"), "DENY") << path;
    EXPECT_EQ(header(r, "Referrer-Policy"), "no-referrer") << path;
    EXPECT_EQ(header(r, "Content-Security-Policy"),
              "default-src 'self'; img-src 'self' data: blob: http: https:; style-src 'self' 'unsafe-inline'; "
              "connect-src 'self'")
        << path;
  }
}

TEST_F(StaticFilesTest, GzipWhenAcceptedAndWorthIt) {
  auto gz = ui().serve(get("/assets/index-1a2b3c.js", "gzip, deflate, br"));
  EXPECT_EQ(gz.status, 200);
  EXPECT_EQ(header(gz, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(gz, "Vary"), "Accept-Encoding");
  EXPECT_LT(gz.body.size(), js_.size());
  EXPECT_EQ(gunzip(gz.body), js_);
  EXPECT_EQ(header(ui().serve(get("/assets/index-1a2b3c.js", "gzip;q=0")), "Content-Encoding"), "");
  EXPECT_EQ(header(ui().serve(get("/assets/index-1a2b3c.js", "br")), "Content-Encoding"), "");
  // Small files and already-compressed formats are never compressed.
  EXPECT_EQ(header(ui().serve(get("/assets/index-1a2b3c.css", "gzip")), "Content-Encoding"), "");
  EXPECT_EQ(header(ui().serve(get("/assets/font-9f8e.woff2", "gzip")), "Content-Encoding"), "");
}

TEST_F(StaticFilesTest, SpaRoutesGetIndexMissingFilesGet404) {
  const std::string index = ui().serve(get("/")).body;
  for (const char* path : {"/devices", "/devices/123", "/dashboards/abc/edit", "/assets", "/x/"}) {
    auto r = ui().serve(get(path));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body, index) << path;
    EXPECT_EQ(header(r, "Cache-Control"), "no-cache") << path;
  }
  for (const char* path : {"/missing.js", "/assets/gone-123.js", "/robots.txt", "/a/b.png"}) {
    EXPECT_EQ(ui().serve(get(path)).status, 404) << path;
  }
  // API and system names are never the app's (an encoded spelling reached the fallback).
  EXPECT_EQ(ui().serve(get("/%61pi/v1/nothing")).status, 404);
  EXPECT_EQ(ui().serve(get("/api")).status, 404);
}

TEST_F(StaticFilesTest, TraversalAndMalformedPathsAreRefused) {
  for (const char* path :
       {"/../etc/passwd", "/assets/../../etc/passwd", "/%2e%2e/etc/passwd", "/%2E%2E%2Fetc%2Fpasswd",
        "/assets/%2e%2e/index.html", "/..%2findex.html", "/..%5cindex.html", "/assets\\..\\x", "/%5c..%5cwin.ini",
        "/index.html%00.js", "/a%00", "/%zz", "/%", "/./index.html", "/a/%0a", "relative"}) {
    auto r = ui().serve(get(path));
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.content_type, "application/problem+json") << path;
  }
}

TEST_F(StaticFilesTest, HeadLikeGetOtherMethods405) {
  auto head = ui().serve(get("/assets/index-1a2b3c.js", "", "HEAD"));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, js_);  // the HTTP server sends the headers only
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "get"}) {
    auto r = ui().serve(get("/", "", m));
    EXPECT_EQ(r.status, 405) << m;
    EXPECT_EQ(header(r, "Allow"), "GET, HEAD");
  }
}

TEST(StaticFilesLoad, RefusesWhatCannotBeServed) {
  TempDir dir;
  EXPECT_FALSE(StaticFiles::load(dir.path() / "missing"));
  EXPECT_FALSE(StaticFiles::load(dir.path()));  // no index.html
  std::ofstream(dir.path() / "index.html") << "<html></html>";
  std::ofstream(dir.path() / "big.js") << std::string(5000, 'x');
  ASSERT_TRUE(StaticFiles::load(dir.path()));
  StaticFiles::Limits limits;
  limits.max_file_bytes = 4096;
  EXPECT_FALSE(StaticFiles::load(dir.path(), limits));
  limits = {};
  limits.max_files = 1;
  EXPECT_FALSE(StaticFiles::load(dir.path(), limits));
  limits = {};
  limits.max_total_bytes = 5000;
  EXPECT_FALSE(StaticFiles::load(dir.path(), limits));
  // A symbolic link (possibly pointing outside) is not served.
  std::filesystem::create_symlink("/etc/hostname", dir.path() / "link.txt");
  auto ui = StaticFiles::load(dir.path());
  ASSERT_TRUE(ui);
  EXPECT_EQ(ui->fileCount(), 2u);
  EXPECT_EQ(ui->serve(get("/link.txt")).status, 404);
}

TEST(StaticFilesLoad, PlaceholderServesTheNotBuiltPage) {
  auto ui = StaticFiles::placeholder();
  EXPECT_EQ(ui.source(), "built-in");
  for (const char* path : {"/", "/devices/1"}) {
    auto r = ui.serve(get(path));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_NE(r.body.find("make build"), std::string::npos);
  }
  EXPECT_EQ(ui.serve(get("/assets/app.js")).status, 404);
}

TEST(StaticFilesLoad, FindUiDirOrder) {
  Config config;
  config.ui_dir = "/configured/ui";
  EXPECT_EQ(findUiDir(config, "/opt/sw/bin/sensoworks"), std::filesystem::path("/configured/ui"));
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "ui" / "dist");
  std::filesystem::create_directories(dir.path() / "bin");
  config.ui_dir.clear();
  // Next to the executable: <exe dir>/../ui/dist (the working directory has no ui/dist here).
  auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path() / "bin");
  EXPECT_EQ(findUiDir(config, dir.path() / "bin" / "sensoworks"), (dir.path() / "ui" / "dist").lexically_normal());
  EXPECT_EQ(findUiDir(config, "/nonexistent/bin/sensoworks"), std::filesystem::path());
  // The working directory's ui/dist comes first.
  std::filesystem::current_path(dir.path());
  EXPECT_EQ(findUiDir(config, "/nonexistent/bin/sensoworks"), dir.path() / "ui" / "dist");
  std::filesystem::current_path(cwd);
}

TEST(StaticFilesHelpers, AcceptEncoding) {
  EXPECT_TRUE(acceptsGzip("gzip"));
  EXPECT_TRUE(acceptsGzip("GZIP"));
  EXPECT_TRUE(acceptsGzip("deflate, gzip;q=1.0, *;q=0.5"));
  EXPECT_TRUE(acceptsGzip("br;q=1, gzip;q=0.8"));
  EXPECT_TRUE(acceptsGzip("x-gzip"));
  EXPECT_TRUE(acceptsGzip("*"));
  EXPECT_TRUE(acceptsGzip(" gzip ; q=0.001 "));
  EXPECT_FALSE(acceptsGzip(""));
  EXPECT_FALSE(acceptsGzip("identity"));
  EXPECT_FALSE(acceptsGzip("br, deflate"));
  EXPECT_FALSE(acceptsGzip("gzip;q=0"));
  EXPECT_FALSE(acceptsGzip("gzip;q=0.0, *"));
  EXPECT_FALSE(acceptsGzip("*;q=0"));
  EXPECT_FALSE(acceptsGzip("gzipped"));
}

TEST(StaticFilesHelpers, ContentTypes) {
  EXPECT_EQ(contentTypeFor("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(contentTypeFor("assets/a.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(contentTypeFor("a.map"), "application/json");
  EXPECT_EQ(contentTypeFor("logo.png"), "image/png");
  EXPECT_EQ(contentTypeFor("font.woff"), "font/woff");
  EXPECT_EQ(contentTypeFor("noext"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor(".env"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor("x.unknown"), "application/octet-stream");
}

// ---- the router's fallback ----

TEST(RouterFallback, UnknownNonApiPathsGoToTheFallback) {
  Router router([](std::string_view) -> Result<Principal> { return fail(Code::kUnauthenticated, "no"); });
  router.add("GET", "/healthz", Auth::kPublic, [](Context&) {
    Response r;
    r.body = "health";
    return r;
  });
  router.add("GET", "/api/v1/devices", Auth::kUser, [](Context&) { return Response{}; });
  // Without a fallback: 404 as before.
  EXPECT_EQ(router.handle(get("/devices")).status, 404);
  router.setFallback([](Context& ctx) {
    Response r;
    r.body = "ui:" + ctx.request.method + ":" + ctx.request.path;
    return r;
  });
  EXPECT_EQ(router.handle(get("/")).body, "ui:GET:/");
  EXPECT_EQ(router.handle(get("/devices/1")).body, "ui:GET:/devices/1");
  EXPECT_EQ(router.handle(get("/assets/x.js", "", "HEAD")).body, "ui:HEAD:/assets/x.js");
  EXPECT_EQ(router.handle(get("/healthz")).body, "health");
  // API and system namespaces keep their problem responses.
  for (const char* path :
       {"/api", "/api/", "/api/v1/nothing", "/api/v1/devices/x/y/z", "/healthz/x", "/metrics/a", "/readyz/b"}) {
    auto r = router.handle(get(path));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.content_type, "application/problem+json") << path;
  }
  EXPECT_EQ(router.handle(get("/healthz", "", "POST")).status, 405);
  EXPECT_EQ(router.handle(get("/api/v1/devices", "", "DELETE")).status, 405);
}

}  // namespace
}  // namespace sw::api
