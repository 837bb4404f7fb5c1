// sw_loadgen: multi-connection HTTP/1.1 ingest load generator used by bench/run.sh.
//
// Sends the same deterministic data set to Sensoworks (device HTTP API, JSON) or to
// InfluxDB 1.x (/write, line protocol) so both can be compared in one run:
//   devices x 10 keys (k0..k9) at 1 Hz over `hours` of simulated time from a fixed epoch,
//   each value a pseudo-random walk with one decimal, 100 timestamps x 10 keys = 1,000
//   points per request.
// Devices are split over the connections (device d -> connection d % C), so each device's
// batches go out in time order on one keep-alive connection. Each connection runs on its own
// thread with blocking Asio sockets: simple, and the servers, not the client, are the
// bottleneck on this machine. Prints one JSON object on stdout.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ingest/codecs/codec_util.h"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr int kKeys = 10;
constexpr int kTimestampsPerRequest = 100;

struct Options {
  std::string mode;  // "sensoworks" | "influx"
  std::string host = "127.0.0.1";
  std::string port;
  int devices = 100;
  double hours = 6;
  int connections = 16;
  std::string tokens_file;
  std::string db = "bench";
  int64_t start_ms = 1'700'000'000'000;  // 2023-11-14T22:13:20Z, fixed so runs are comparable
  double max_seconds = 900;              // stop sending after this, the run is then reported as partial
};

void usage() {
  std::cerr << "usage: sw_loadgen --mode sensoworks|influx --port PORT [--host 127.0.0.1]\n"
               "         [--devices 100] [--hours 6] [--connections 16] [--tokens FILE]\n"
               "         [--db bench] [--start-ms 1700000000000] [--max-seconds 900]\n"
               "  sensoworks: POST /api/v1/{token}/telemetry, one token per device line in --tokens\n"
               "  influx:     POST /write?db=DB&precision=ms (line protocol, measurement m, tag device=dN)\n";
}

std::optional<Options> parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") return std::nullopt;
    if (i + 1 >= argc) {
      std::cerr << "missing value for " << a << "\n";
      return std::nullopt;
    }
    std::string v = argv[++i];
    if (a == "--mode")
      o.mode = v;
    else if (a == "--host")
      o.host = v;
    else if (a == "--port")
      o.port = v;
    else if (a == "--devices")
      o.devices = std::atoi(v.c_str());
    else if (a == "--hours")
      o.hours = std::atof(v.c_str());
    else if (a == "--connections")
      o.connections = std::atoi(v.c_str());
    else if (a == "--tokens")
      o.tokens_file = v;
    else if (a == "--db")
      o.db = v;
    else if (a == "--start-ms")
      o.start_ms = std::atoll(v.c_str());
    else if (a == "--max-seconds")
      o.max_seconds = std::atof(v.c_str());
    else {
      std::cerr << "unknown option " << a << "\n";
      return std::nullopt;
    }
  }
  if ((o.mode != "sensoworks" && o.mode != "influx") || o.port.empty() || o.devices <= 0 || o.hours <= 0 ||
      o.connections <= 0) {
    return std::nullopt;
  }
  if (o.mode == "sensoworks" && o.tokens_file.empty()) {
    std::cerr << "--tokens is required in sensoworks mode\n";
    return std::nullopt;
  }
  return o;
}

// splitmix64: tiny, deterministic, good enough for a random walk.
uint64_t nextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// One device's 10 random walks, kept in tenths so the text form is exact ("21.3").
struct DeviceSeries {
  uint64_t rng;
  int64_t tenths[kKeys];

  explicit DeviceSeries(int device) : rng(0x5eed0000ULL + static_cast<uint64_t>(device)) {
    for (int k = 0; k < kKeys; ++k) tenths[k] = 200 + static_cast<int64_t>(nextRandom(rng) % 200);  // 20.0..39.9
  }
  void step() {
    for (int k = 0; k < kKeys; ++k) tenths[k] += static_cast<int64_t>(nextRandom(rng) % 11) - 5;  // +-0.5
  }
};

void appendTenths(std::string& out, int64_t t) {
  if (t < 0) {
    out.push_back('-');
    t = -t;
  }
  fmt::format_to(std::back_inserter(out), "{}.{}", t / 10, t % 10);
}

// Appends the body for timestamps [ts0, ts0 + n s) of one device and advances its walks.
void buildSensoworksBody(std::string& out, DeviceSeries& s, int64_t ts0, int n) {
  out.push_back('[');
  for (int i = 0; i < n; ++i) {
    s.step();
    if (i) out.push_back(',');
    fmt::format_to(std::back_inserter(out), "{{\"ts\":{},\"values\":{{", ts0 + int64_t{i} * 1000);
    for (int k = 0; k < kKeys; ++k) {
      fmt::format_to(std::back_inserter(out), "{}\"k{}\":", k ? "," : "", k);
      appendTenths(out, s.tenths[k]);
    }
    out.append("}}");
  }
  out.push_back(']');
}

void buildInfluxBody(std::string& out, DeviceSeries& s, int device, int64_t ts0, int n) {
  for (int i = 0; i < n; ++i) {
    s.step();
    fmt::format_to(std::back_inserter(out), "m,device=d{} ", device);
    for (int k = 0; k < kKeys; ++k) {
      fmt::format_to(std::back_inserter(out), "{}k{}=", k ? "," : "", k);
      appendTenths(out, s.tenths[k]);
    }
    fmt::format_to(std::back_inserter(out), " {}\n", ts0 + int64_t{i} * 1000);
  }
}

struct Totals {
  std::atomic<int64_t> points{0};
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> reconnects{0};
  std::atomic<bool> timed_out{false};
  std::mutex mu;
  std::vector<double> latencies_ms;  // merged at the end of each worker
  std::string first_error;
};

// A keep-alive HTTP/1.1 client over one blocking socket.
class Connection {
 public:
  Connection(const Options& o) : opts_(o), socket_(io_) {}

  // Returns the status code, or 0 on a transport error (the socket is then reset).
  int post(const std::string& target, std::string_view content_type, const std::string& body, std::string* resp_body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      boost::system::error_code ec;
      if (!socket_.is_open()) {
        if (!connect(ec)) return 0;
      }
      head_.clear();
      fmt::format_to(std::back_inserter(head_),
                     "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                     "Connection: keep-alive\r\n\r\n",
                     target, opts_.host, opts_.port, content_type, body.size());
      std::array<asio::const_buffer, 2> bufs{asio::buffer(head_), asio::buffer(body)};
      asio::write(socket_, bufs, ec);
      if (ec) {
        // A server may close an idle keep-alive connection between requests: retry once.
        reset();
        if (attempt == 0 && fresh_) continue;
        return 0;
      }
      int status = readResponse(resp_body, ec);
      if (ec) {
        reset();
        return 0;
      }
      fresh_ = true;
      return status;
    }
    return 0;
  }

  int64_t reconnects() const { return reconnects_; }

 private:
  bool connect(boost::system::error_code& ec) {
    tcp::resolver resolver(io_);
    auto eps = resolver.resolve(opts_.host, opts_.port, ec);
    if (ec) return false;
    asio::connect(socket_, eps, ec);
    if (ec) {
      reset();
      return false;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    buf_.consume(buf_.size());
    ++reconnects_;
    fresh_ = false;
    return true;
  }

  void reset() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    buf_.consume(buf_.size());
  }

  static bool iequalsPrefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    }
    return true;
  }

  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
  }

  // Reads exactly n body bytes (some may already be buffered).
  void readExactly(size_t n, std::string* out, boost::system::error_code& ec) {
    if (buf_.size() < n) asio::read(socket_, buf_, asio::transfer_exactly(n - buf_.size()), ec);
    if (ec) return;
    if (out) out->append(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + n);
    buf_.consume(n);
  }

  std::string readLine(boost::system::error_code& ec) {
    size_t n = asio::read_until(socket_, buf_, "\r\n", ec);
    if (ec) return {};
    std::string line(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + n - 2);
    buf_.consume(n);
    return line;
  }

  int readResponse(std::string* body, boost::system::error_code& ec) {
    size_t n = asio::read_until(socket_, buf_, "\r\n\r\n", ec);
    if (ec) return 0;
    std::string head(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + n);
    buf_.consume(n);
    std::string_view h = head;
    size_t eol = h.find("\r\n");
    std::string_view status_line = h.substr(0, eol);
    int status = 0;
    if (status_line.size() >= 12) status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
    int64_t content_length = -1;
    bool chunked = false, close = false;
    for (size_t pos = eol + 2; pos < h.size();) {
      size_t e = h.find("\r\n", pos);
      if (e == std::string_view::npos || e == pos) break;
      std::string_view line = h.substr(pos, e - pos);
      pos = e + 2;
      if (iequalsPrefix(line, "content-length:")) {
        content_length = std::atoll(std::string(trim(line.substr(15))).c_str());
      } else if (iequalsPrefix(line, "transfer-encoding:")) {
        chunked = trim(line.substr(18)).find("chunked") != std::string_view::npos;
      } else if (iequalsPrefix(line, "connection:")) {
        auto v = trim(line.substr(11));
        close = v.size() == 5 && (v[0] == 'c' || v[0] == 'C');
      }
    }
    if (body) body->clear();
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    if (no_body) {
    } else if (chunked) {
      for (;;) {
        std::string size_line = readLine(ec);
        if (ec) return 0;
        size_t chunk = std::strtoull(size_line.c_str(), nullptr, 16);
        if (chunk == 0) {
          // trailers until an empty line
          for (;;) {
            std::string t = readLine(ec);
            if (ec) return 0;
            if (t.empty()) break;
          }
          break;
        }
        readExactly(chunk, body, ec);
        if (ec) return 0;
        readLine(ec);
        if (ec) return 0;
      }
    } else if (content_length >= 0) {
      readExactly(static_cast<size_t>(content_length), body, ec);
      if (ec) return 0;
    } else {
      // Body delimited by close.
      asio::read(socket_, buf_, ec);
      if (ec != asio::error::eof) return 0;
      ec.clear();
      if (body) body->append(asio::buffers_begin(buf_.data()), asio::buffers_end(buf_.data()));
      close = true;
    }
    if (close) reset();
    return status;
  }

  const Options& opts_;
  asio::io_context io_;
  tcp::socket socket_;
  asio::streambuf buf_;
  std::string head_;
  bool fresh_ = false;  // true once a request succeeded on the current socket
  int64_t reconnects_ = -1;
};

void runWorker(const Options& o, int worker, const std::vector<std::string>& tokens, Totals& totals,
               Clock::time_point deadline) {
  std::vector<int> devices;
  for (int d = worker; d < o.devices; d += o.connections) devices.push_back(d);
  if (devices.empty()) return;
  std::vector<DeviceSeries> series;
  series.reserve(devices.size());
  for (int d : devices) series.emplace_back(d);

  const int64_t total_seconds = static_cast<int64_t>(o.hours * 3600.0);
  const std::string content_type = o.mode == "sensoworks" ? "application/json" : "text/plain; charset=utf-8";
  const std::string influx_target = fmt::format("/write?db={}&precision=ms", o.db);

  Connection conn(o);
  std::string body, resp;
  body.reserve(kTimestampsPerRequest * 160);
  std::vector<double> lat;
  int64_t points = 0, requests = 0, errors = 0;

  for (int64_t sec = 0; sec < total_seconds; sec += kTimestampsPerRequest) {
    const int n = static_cast<int>(std::min<int64_t>(kTimestampsPerRequest, total_seconds - sec));
    const int64_t ts0 = o.start_ms + sec * 1000;
    for (size_t i = 0; i < devices.size(); ++i) {
      if (Clock::now() > deadline) {
        totals.timed_out = true;
        goto done;
      }
      body.clear();
      std::string target;
      if (o.mode == "sensoworks") {
        buildSensoworksBody(body, series[i], ts0, n);
        target = fmt::format("/api/v1/{}/telemetry", tokens[devices[i]]);
      } else {
        buildInfluxBody(body, series[i], devices[i], ts0, n);
        target = influx_target;
      }
      auto t0 = Clock::now();
      int status = conn.post(target, content_type, body, &resp);
      lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      ++requests;
      if (status >= 200 && status < 300) {
        points += int64_t{n} * kKeys;
      } else {
        ++errors;
        std::lock_guard lock(totals.mu);
        if (totals.first_error.empty()) {
          totals.first_error = fmt::format("status {} on {}: {}", status, o.mode == "sensoworks" ? "telemetry" : target,
                                           resp.substr(0, 300));
        }
      }
    }
  }
done:
  totals.points += points;
  totals.requests += requests;
  totals.errors += errors;
  totals.reconnects += std::max<int64_t>(0, conn.reconnects());
  std::lock_guard lock(totals.mu);
  totals.latencies_ms.insert(totals.latencies_ms.end(), lat.begin(), lat.end());
}

// JSON for the error text, or null.
std::string jsonStringOrNull(const std::string& s) {
  if (s.empty()) return "null";
  std::string out;
  sw::ingest::appendJsonString(out, s);
  return out;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t idx = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
  return v[idx];
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = parseArgs(argc, argv);
  if (!opts) {
    usage();
    return 2;
  }
  const Options& o = *opts;
  std::vector<std::string> tokens;
  if (o.mode == "sensoworks") {
    std::ifstream in(o.tokens_file);
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) tokens.push_back(line);
    }
    if (static_cast<int>(tokens.size()) < o.devices) {
      std::cerr << "need " << o.devices << " tokens in " << o.tokens_file << ", found " << tokens.size() << "\n";
      return 2;
    }
  }

  Totals totals;
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.max_seconds));
  std::vector<std::thread> threads;
  const int workers = std::min(o.connections, o.devices);
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] { runWorker(o, w, tokens, totals, deadline); });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  auto& lat = totals.latencies_ms;
  const double p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99);
  const double mx = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  const int64_t points = totals.points.load();
  fmt::print(
      "{{\"mode\":\"{}\",\"devices\":{},\"hours\":{},\"connections\":{},\"points\":{},\"requests\":{},"
      "\"seconds\":{:.3f},\"points_per_s\":{:.0f},\"errors\":{},\"reconnects\":{},\"timed_out\":{},"
      "\"request_ms\":{{\"p50\":{:.2f},\"p99\":{:.2f},\"max\":{:.2f}}},\"first_error\":{}}}\n",
      o.mode, o.devices, o.hours, workers, points, totals.requests.load(), seconds,
      seconds > 0 ? static_cast<double>(points) / seconds : 0.0, totals.errors.load(), totals.reconnects.load(),
      totals.timed_out.load() ? "true" : "false", p50, p99, mx, jsonStringOrNull(totals.first_error));
  return totals.errors.load() == 0 && !totals.timed_out.load() ? 0 : 1;
}
