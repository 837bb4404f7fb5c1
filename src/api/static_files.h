#pragma once
// The web UI (a Vite build: index.html plus assets/*) served from memory on the API port, as
// the router's fallback for paths that are not API or system routes. Every file is read once at
// start-up (the build is small), with a gzip copy where compressing pays; a path without a file
// extension that names no file is a client-side route of the single-page app and gets
// index.html. When no build is found a small built-in page says how to build it.
//
// Thread-safety: immutable after load(); serve() may be called concurrently.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

#include "api/http_types.h"
#include "core/config.h"
#include "core/status.h"

namespace sw::api {

struct StaticFile {
  std::string content_type;
  std::string body;
  std::string gzip_body;  // empty when compressing does not pay
};

class StaticFiles {
 public:
  struct Limits {
    std::size_t max_files = 10000;
    std::size_t max_file_bytes = 32 << 20;
    std::size_t max_total_bytes = 128 << 20;  // uncompressed, all files
  };

  // Loads every regular file under dir (symbolic links are not followed). Fails (invalid_argument)
  // when dir is not a directory, has no index.html or exceeds the limits.
  static Result<StaticFiles> load(const std::filesystem::path& dir, const Limits& limits);
  static Result<StaticFiles> load(const std::filesystem::path& dir) { return load(dir, Limits{}); }
  // The built-in page telling that the UI was not built.
  static StaticFiles placeholder();

  // Answers a request of the web UI: GET and HEAD (the HTTP server drops the body of a HEAD
  // response), 405 for other methods, 400 for a path that is malformed or tries to leave the
  // UI directory (dot segments, backslashes, NUL, encoded or not), 404 for a missing file with
  // an extension. request.path is still percent-encoded.
  Response serve(const Request& request) const;

  // Where the files came from: the directory, or "built-in".
  const std::string& source() const { return source_; }
  std::size_t fileCount() const { return files_.size(); }
  std::size_t totalBytes() const { return total_bytes_; }

 private:
  StaticFiles() = default;
  void add(std::string path, std::string body);

  std::unordered_map<std::string, StaticFile> files_;  // "index.html", "assets/app-1a2b.js"
  std::string source_;
  std::size_t total_bytes_ = 0;
};

// The UI directory to serve: config.ui_dir when set (even if missing: the caller reports it);
// else ui/dist under the working directory if it exists; else <dir of executable>/../ui/dist if
// it exists; else an empty path (serve the placeholder).
std::filesystem::path findUiDir(const Config& config, const std::filesystem::path& executable);

// True when Accept-Encoding allows gzip (a "gzip", "x-gzip" or "*" coding without q=0, and gzip
// not refused explicitly).
bool acceptsGzip(std::string_view accept_encoding);

// Content-Type for a file name, by its extension (application/octet-stream when unknown).
std::string_view contentTypeFor(std::string_view file_name);

}  // namespace sw::api
