#include "api/static_files.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <system_error>
#include <vector>

#include "api/problem.h"

namespace sw::api {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kIndex = "index.html";
constexpr std::size_t kMinCompressBytes = 256;

// Sent with every UI response. Scripts, styles, fonts and API calls come from this origin only;
// images may come from anywhere (dashboards show pictures by URL).
const std::pair<const char*, const char*> kSecurityHeaders[] = {
    {"Content-Security-Policy",
     "default-src 'self'; img-src 'self' data: blob: http: https:; style-src 'self' 'unsafe-inline'; "
     "connect-src 'self'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
};

constexpr std::string_view kPlaceholder = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sensoworks</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
code{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}</style>
</head>
<body>
<h1>Sensoworks</h1>
<p>The server is running, but the web UI was not built.</p>
<p>Build it with <code>make build</code> (needs Node.js and npm), or point <code>SW_UI_DIR</code>
(config <code>http.ui_dir</code>) at a built UI directory, then restart the server.</p>
<p>The REST API is available under <code>/api/v1</code>; its OpenAPI document is at
<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
</body>
</html>
)html";

std::string lowerAscii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Extension of the last path segment, without the dot ("" when none; a leading dot, as in
// ".env", is not an extension).
std::string_view extensionOf(std::string_view path) {
  auto slash = path.rfind('/');
  std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = last.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return last.substr(dot + 1);
}

bool compressible(std::string_view content_type) {
  return content_type.starts_with("text/") || content_type.starts_with("application/json") ||
         content_type.starts_with("application/manifest+json") || content_type.starts_with("application/xml") ||
         content_type.starts_with("application/wasm") || content_type.starts_with("image/svg+xml") ||
         content_type.starts_with("image/x-icon") || content_type.starts_with("font/ttf") ||
         content_type.starts_with("font/otf");
}

// gzip (RFC 1952) of data at the best compression; empty on failure.
std::string gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string();
}

// True when every character may appear in a served path (no control characters, NUL or '\').
bool cleanPathChars(std::string_view p) {
  return std::none_of(p.begin(), p.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f || c == '\\'; });
}

bool isReservedSegment(std::string_view seg) {
  return seg == "api" || seg == "healthz" || seg == "readyz" || seg == "metrics";
}

Response withSecurityHeaders(Response r) {
  for (const auto& [k, v] : kSecurityHeaders) r.headers.emplace_back(k, v);
  return r;
}

Response badPath() {
  return withSecurityHeaders(problem(400, "invalid_argument", "invalid path"));
}

}  // namespace

std::string_view contentTypeFor(std::string_view file_name) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"wasm", "application/wasm"},
  };
  const std::string ext = lowerAscii(extensionOf(file_name));
  for (const auto& [e, type] : kTypes) {
    if (e == ext) return type;
  }
  return "application/octet-stream";
}

bool acceptsGzip(std::string_view header) {
  bool gzip_listed = false, gzip_ok = false, any_ok = false;
  while (!header.empty()) {
    auto comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    auto semi = item.find(';');
    const std::string name = lowerAscii(trim(item.substr(0, semi)));
    double q = 1.0;
    while (semi != std::string_view::npos) {
      item = item.substr(semi + 1);
      semi = item.find(';');
      std::string_view param = trim(item.substr(0, semi));
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        std::string_view v = trim(param.substr(2));
        double parsed = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
        if (ec == std::errc() && p == v.data() + v.size()) q = parsed;
      }
    }
    if (name == "gzip" || name == "x-gzip") {
      gzip_listed = true;
      gzip_ok = q > 0;
    } else if (name == "*") {
      any_ok = q > 0;
    }
  }
  return gzip_listed ? gzip_ok : any_ok;
}

void StaticFiles::add(std::string path, std::string body) {
  StaticFile f;
  f.content_type = std::string(contentTypeFor(path));
  if (body.size() >= kMinCompressBytes && compressible(f.content_type)) {
    std::string z = gzip(body);
    if (!z.empty() && z.size() < body.size() / 10 * 9) f.gzip_body = std::move(z);
  }
  total_bytes_ += body.size();
  f.body = std::move(body);
  files_.insert_or_assign(std::move(path), std::move(f));
}

Result<StaticFiles> StaticFiles::load(const fs::path& dir, const Limits& limits) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return fail(Code::kInvalidArgument, fmt::format("{} is not a directory", dir.string()));
  }
  StaticFiles out;
  out.source_ = dir.string();
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return fail(Code::kInvalidArgument, fmt::format("cannot read {}: {}", dir.string(), ec.message()));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return fail(Code::kInvalidArgument, fmt::format("cannot read {}: {}", dir.string(), ec.message()));
    const fs::file_status st = it->symlink_status(ec);
    if (ec || !fs::is_regular_file(st)) continue;  // directories are walked; links and devices skipped
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    if (out.files_.size() >= limits.max_files) {
      return fail(Code::kInvalidArgument, fmt::format("{} holds more than {} files", dir.string(), limits.max_files));
    }
    const auto size = fs::file_size(it->path(), ec);
    if (ec) return fail(Code::kInvalidArgument, fmt::format("cannot read {}: {}", rel, ec.message()));
    if (size > limits.max_file_bytes || out.total_bytes_ + size > limits.max_total_bytes) {
      return fail(Code::kInvalidArgument,
                  fmt::format("{} is too large to serve from memory (files up to {} bytes, "
                              "{} bytes in all)",
                              it->path().string(), limits.max_file_bytes, limits.max_total_bytes));
    }
    std::ifstream in(it->path(), std::ios::binary);
    std::string body(static_cast<std::size_t>(size), '\0');
    if (!in.read(body.data(), static_cast<std::streamsize>(body.size()))) {
      return fail(Code::kInvalidArgument, fmt::format("cannot read {}", it->path().string()));
    }
    out.add(rel, std::move(body));
  }
  if (!out.files_.contains(std::string(kIndex))) {
    return fail(Code::kInvalidArgument, fmt::format("{} has no index.html", dir.string()));
  }
  return out;
}

StaticFiles StaticFiles::placeholder() {
  StaticFiles out;
  out.source_ = "built-in";
  out.add(std::string(kIndex), std::string(kPlaceholder));
  return out;
}

Response StaticFiles::serve(const Request& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    Response r = problem(405, "method_not_allowed", "the web UI answers GET and HEAD only");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return withSecurityHeaders(std::move(r));
  }
  // Decode once, then judge the decoded segments: "%2e%2e", "%2f" and "%5c" are caught like
  // their plain forms. Only names loaded at start-up can be served, so nothing outside the UI
  // directory is ever read; the checks make such requests fail plainly instead of falling back.
  std::string decoded;
  if (!request.path.starts_with('/') || !percentDecode(request.path, decoded, false) || !cleanPathChars(decoded)) {
    return badPath();
  }
  std::string rel;
  bool first = true;
  for (std::size_t i = 0; i < decoded.size();) {
    std::size_t j = decoded.find('/', i);
    if (j == std::string::npos) j = decoded.size();
    std::string_view seg(decoded.data() + i, j - i);
    i = j + 1;
    if (seg.empty()) continue;
    if (seg == "." || seg == "..") return badPath();
    if (first && isReservedSegment(seg)) {
      return withSecurityHeaders(problem(404, "not_found", "no such route"));
    }
    first = false;
    if (!rel.empty()) rel.push_back('/');
    rel.append(seg);
  }

  const StaticFile* file = nullptr;
  std::string_view name = rel;
  if (auto it = files_.find(rel.empty() ? std::string(kIndex) : rel); it != files_.end()) {
    file = &it->second;
    if (rel.empty()) name = kIndex;
  } else if (!extensionOf(rel).empty()) {
    return withSecurityHeaders(problem(404, "not_found", "file not found"));
  } else {
    // A client-side route of the single-page app (/devices/123): the app shell routes it.
    auto index = files_.find(std::string(kIndex));
    if (index == files_.end()) return withSecurityHeaders(problem(404, "not_found", "file not found"));
    file = &index->second;
    name = kIndex;
  }

  Response r;
  r.status = 200;
  r.content_type = file->content_type;
  const bool gz = !file->gzip_body.empty() && acceptsGzip(request.accept_encoding);
  r.body = gz ? file->gzip_body : file->body;
  if (gz) r.headers.emplace_back("Content-Encoding", "gzip");
  if (!file->gzip_body.empty()) r.headers.emplace_back("Vary", "Accept-Encoding");
  // Vite names everything under assets/ by content hash: cache forever. Anything else
  // (index.html, public files) is revalidated, so a new build is picked up at once.
  r.headers.emplace_back("Cache-Control",
                         name.starts_with("assets/") ? "public, max-age=31536000, immutable" : "no-cache");
  return withSecurityHeaders(std::move(r));
}

fs::path findUiDir(const Config& config, const fs::path& executable) {
  if (!config.ui_dir.empty()) return fs::path(config.ui_dir);
  std::error_code ec;
  fs::path local = fs::current_path(ec) / "ui" / "dist";
  if (!ec && fs::is_directory(local, ec)) return local;
  if (!executable.empty()) {
    fs::path installed = (executable.parent_path() / ".." / "ui" / "dist").lexically_normal();
    if (fs::is_directory(installed, ec)) return installed;
  }
  return {};
}

}  // namespace sw::api
