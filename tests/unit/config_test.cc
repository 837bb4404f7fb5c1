// loadConfig: defaults, YAML file, SW_* environment overrides and their validation.
#include "core/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "test_util.h"

namespace sw {
namespace {

using sw::testing::TempDir;

// Every variable applyEnvOverrides reads; saved, cleared and restored around each test.
const char* const kEnvVars[] = {
    "SW_HTTP_PORT",        "SW_MQTT_PORT",          "SW_HTTP_MAX_BODY_BYTES",
    "SW_IO_THREADS",       "SW_API_THREADS",        "SW_DEVICE_MAX_MSGS_PER_S",
    "SW_DEVICE_BURST",     "SW_ACCESS_TOKEN_TTL_S", "SW_RETENTION_INTERVAL_S",
    "SW_STORAGE_SYNC_WAL", "SW_HTTP_BIND",          "SW_DATA_DIR",
    "SW_ADMIN_PASSWORD",   "SW_LOG_LEVEL",
};

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kEnvVars) {
      if (const char* v = std::getenv(name))
        saved_[name] = v;
      else
        saved_[name] = std::nullopt;
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value)
        setenv(name.c_str(), value->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  }
  std::string writeFile(const std::string& text, const std::string& name = "sensoworks.yaml") {
    std::string path = dir_.file(name);
    std::ofstream(path) << text;
    return path;
  }

  TempDir dir_;
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST_F(ConfigTest, DefaultsWithoutFileOrEnvironment) {
  auto c = loadConfig("");
  ASSERT_TRUE(c) << c.error().message;
  const Config d;
  EXPECT_EQ(c->http_bind, "0.0.0.0");
  EXPECT_EQ(c->http_port, 8080);
  EXPECT_EQ(c->http_max_body_bytes, 16u * 1024 * 1024);
  EXPECT_EQ(c->mqtt_port, 1883);
  EXPECT_EQ(c->data_dir, "./data");
  EXPECT_FALSE(c->storage_sync_wal);
  EXPECT_TRUE(c->admin_password.empty());
  EXPECT_EQ(c->access_token_ttl_s, 900);
  EXPECT_EQ(c->refresh_token_ttl_s, 30 * 24 * 3600);
  EXPECT_EQ(c->device_max_msgs_per_s, 100.0);
  EXPECT_EQ(c->device_burst, 200.0);
  EXPECT_EQ(c->ingest_max_points_per_request, 200000u);
  EXPECT_EQ(c->io_threads, 0);
  EXPECT_EQ(c->api_threads, 8);
  EXPECT_EQ(c->api_queue, 1024u);
  EXPECT_EQ(c->retention_interval_s, 3600);
  EXPECT_EQ(c->shutdown_grace_s, 20);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->http_port, d.http_port);
}

TEST_F(ConfigTest, LoadsEveryKeyFromYaml) {
  auto path = writeFile(R"(
http:
  bind: 127.0.0.1
  port: 9000
  max_body_bytes: 1048576
mqtt:
  port: 11883
storage:
  data_dir: /var/lib/sensoworks
  sync_wal: true
security:
  admin_password: "s3cret: with colon"
  access_token_ttl_s: 60
  refresh_token_ttl_s: 3600
ingest:
  device_max_msgs_per_s: 2.5
  device_burst: 10
  max_points_per_request: 5000
runtime:
  io_threads: 3
  api_threads: 4
  api_queue: 64
  retention_interval_s: 30
  shutdown_grace_s: 5
log:
  level: debug
unknown_section:
  whatever: 1
)");
  auto c = loadConfig(path);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_bind, "127.0.0.1");
  EXPECT_EQ(c->http_port, 9000);
  EXPECT_EQ(c->http_max_body_bytes, 1048576u);
  EXPECT_EQ(c->mqtt_port, 11883);
  EXPECT_EQ(c->data_dir, "/var/lib/sensoworks");
  EXPECT_TRUE(c->storage_sync_wal);
  EXPECT_EQ(c->admin_password, "s3cret: with colon");
  EXPECT_EQ(c->access_token_ttl_s, 60);
  EXPECT_EQ(c->refresh_token_ttl_s, 3600);
  EXPECT_EQ(c->device_max_msgs_per_s, 2.5);
  EXPECT_EQ(c->device_burst, 10.0);
  EXPECT_EQ(c->ingest_max_points_per_request, 5000u);
  EXPECT_EQ(c->io_threads, 3);
  EXPECT_EQ(c->api_threads, 4);
  EXPECT_EQ(c->api_queue, 64u);
  EXPECT_EQ(c->retention_interval_s, 30);
  EXPECT_EQ(c->shutdown_grace_s, 5);
  EXPECT_EQ(c->log_level, "debug");
}

TEST_F(ConfigTest, PartialFileKeepsOtherDefaults) {
  auto c = loadConfig(writeFile("http:\n  port: 9001\n"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_port, 9001);
  EXPECT_EQ(c->http_bind, "0.0.0.0");
  EXPECT_EQ(c->mqtt_port, 1883);
  EXPECT_EQ(c->log_level, "info");

  auto empty = loadConfig(writeFile("", "empty.yaml"));
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(empty->http_port, 8080);
  auto comments = loadConfig(writeFile("# nothing here\n", "comments.yaml"));
  ASSERT_TRUE(comments);
  EXPECT_EQ(comments->http_port, 8080);
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  auto path = writeFile(R"(
http:
  port: 9000
mqtt:
  port: 11883
storage:
  data_dir: /from/file
security:
  admin_password: from-file
log:
  level: debug
)");
  setenv("SW_HTTP_PORT", "9100", 1);
  setenv("SW_DATA_DIR", "/from/env", 1);
  setenv("SW_ADMIN_PASSWORD", "from-env", 1);
  setenv("SW_LOG_LEVEL", "warn", 1);
  setenv("SW_MQTT_PORT", "1884", 1);
  auto c = loadConfig(path);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_port, 9100);
  EXPECT_EQ(c->data_dir, "/from/env");
  EXPECT_EQ(c->admin_password, "from-env");
  EXPECT_EQ(c->log_level, "warn");
  EXPECT_EQ(c->mqtt_port, 1884);
}

TEST_F(ConfigTest, EnvironmentOverridesWithoutFile) {
  setenv("SW_HTTP_BIND", "::1", 1);
  setenv("SW_HTTP_MAX_BODY_BYTES", "4096", 1);
  setenv("SW_IO_THREADS", "2", 1);
  setenv("SW_API_THREADS", "16", 1);
  setenv("SW_DEVICE_MAX_MSGS_PER_S", "0.5", 1);
  setenv("SW_DEVICE_BURST", "3", 1);
  setenv("SW_ACCESS_TOKEN_TTL_S", "120", 1);
  setenv("SW_RETENTION_INTERVAL_S", "10", 1);
  setenv("SW_STORAGE_SYNC_WAL", "true", 1);
  auto c = loadConfig("");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_bind, "::1");
  EXPECT_EQ(c->http_max_body_bytes, 4096u);
  EXPECT_EQ(c->io_threads, 2);
  EXPECT_EQ(c->api_threads, 16);
  EXPECT_EQ(c->device_max_msgs_per_s, 0.5);
  EXPECT_EQ(c->device_burst, 3.0);
  EXPECT_EQ(c->access_token_ttl_s, 120);
  EXPECT_EQ(c->retention_interval_s, 10);
  EXPECT_TRUE(c->storage_sync_wal);
}

TEST_F(ConfigTest, EmptyEnvironmentValuesAreIgnored) {
  setenv("SW_HTTP_PORT", "", 1);
  setenv("SW_DATA_DIR", "", 1);
  auto c = loadConfig(writeFile("http:\n  port: 9000\nstorage:\n  data_dir: /file\n"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_port, 9000);
  EXPECT_EQ(c->data_dir, "/file");
}

TEST_F(ConfigTest, BadNumbersInEnvironmentAreInvalidArgument) {
  const std::pair<const char*, const char*> cases[] = {
      {"SW_HTTP_PORT", "80a"},
      {"SW_HTTP_PORT", "abc"},
      {"SW_HTTP_PORT", " 80"},
      {"SW_HTTP_PORT", "8080 "},
      {"SW_HTTP_PORT", "1e3"},
      {"SW_HTTP_PORT", "99999999999999"},
      {"SW_HTTP_PORT", "0x50"},
      {"SW_MQTT_PORT", "18.83"},
      {"SW_HTTP_MAX_BODY_BYTES", "-1"},
      {"SW_API_THREADS", "four"},
      {"SW_DEVICE_MAX_MSGS_PER_S", "fast"},
      {"SW_DEVICE_BURST", "1.5x"},
      {"SW_ACCESS_TOKEN_TTL_S", "15m"},
      {"SW_RETENTION_INTERVAL_S", "--1"},
      {"SW_IO_THREADS", "+2"},
  };
  for (auto [name, value] : cases) {
    SCOPED_TRACE(std::string(name) + "=" + value);
    setenv(name, value, 1);
    auto c = loadConfig("");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Code::kInvalidArgument);
    EXPECT_EQ(c.error().field, name);
    Config direct;
    auto st = applyEnvOverrides(direct);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Code::kInvalidArgument);
    unsetenv(name);
  }
}

TEST_F(ConfigTest, BadBooleanInEnvironment) {
  for (const char* good : {"1", "true", "yes"}) {
    setenv("SW_STORAGE_SYNC_WAL", good, 1);
    auto c = loadConfig("");
    ASSERT_TRUE(c) << good;
    EXPECT_TRUE(c->storage_sync_wal) << good;
  }
  for (const char* good : {"0", "false", "no"}) {
    setenv("SW_STORAGE_SYNC_WAL", good, 1);
    auto c = loadConfig(writeFile("storage:\n  sync_wal: true\n"));
    ASSERT_TRUE(c) << good;
    EXPECT_FALSE(c->storage_sync_wal) << good;
  }
  setenv("SW_STORAGE_SYNC_WAL", "maybe", 1);
  auto c = loadConfig("");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Code::kInvalidArgument);
}

TEST_F(ConfigTest, OutOfRangeValuesAreRejected) {
  setenv("SW_HTTP_PORT", "70000", 1);
  auto c = loadConfig("");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Code::kInvalidArgument);
  setenv("SW_HTTP_PORT", "-1", 1);
  c = loadConfig("");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Code::kInvalidArgument);
  unsetenv("SW_HTTP_PORT");

  auto file = loadConfig(writeFile("http:\n  port: 65536\n"));
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, Code::kInvalidArgument);
  EXPECT_EQ(file.error().field, "http.port");
  auto threads = loadConfig(writeFile("runtime:\n  api_threads: 0\n", "threads.yaml"));
  ASSERT_FALSE(threads);
  EXPECT_EQ(threads.error().code, Code::kInvalidArgument);
  // The boundaries themselves are fine.
  auto edge = loadConfig(writeFile("http:\n  port: 65535\nruntime:\n  api_threads: 1\n", "edge.yaml"));
  ASSERT_TRUE(edge) << edge.error().message;
  EXPECT_EQ(edge->http_port, 65535);
}

TEST_F(ConfigTest, MalformedYamlIsAnErrorNotAnException) {
  const char* const docs[] = {
      "http: [unclosed\n",
      "http:\n  port: 80\n   bad_indent: 1\n",
      "http:\n  port: eighty\n",  // wrong type
      "http:\n  port: 1.5\n",     // not an integer
      "http:\n  port: [1, 2]\n",  // not a scalar
      "storage:\n  sync_wal: perhaps\n",
      "ingest:\n  max_points_per_request: -5\n",
      "\"unterminated\n",
      "key: value\n\tkey2: tab\n",
  };
  int i = 0;
  for (const char* doc : docs) {
    SCOPED_TRACE(doc);
    auto path = writeFile(doc, "bad" + std::to_string(i++) + ".yaml");
    Result<Config> c;
    EXPECT_NO_THROW(c = loadConfig(path));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Code::kInvalidArgument);
    EXPECT_FALSE(c.error().message.empty());
  }
}

TEST_F(ConfigTest, UnusualButValidDocumentsDoNotThrow) {
  const char* const docs[] = {"just a scalar\n", "- a\n- b\n", "http: 8080\n", "http:\n", "~\n"};
  int i = 0;
  for (const char* doc : docs) {
    SCOPED_TRACE(doc);
    auto path = writeFile(doc, "odd" + std::to_string(i++) + ".yaml");
    EXPECT_NO_THROW((void)loadConfig(path));
  }
  auto section_not_map = loadConfig(writeFile("http: 8080\n", "notmap.yaml"));
  ASSERT_TRUE(section_not_map);
  EXPECT_EQ(section_not_map->http_port, 8080);
}

TEST_F(ConfigTest, MissingFileIsAnError) {
  Result<Config> c;
  EXPECT_NO_THROW(c = loadConfig(dir_.file("does-not-exist.yaml")));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Code::kInvalidArgument);
}

}  // namespace
}  // namespace sw
