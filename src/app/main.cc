// sensoworks: the IoT data platform server.
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/app.h"
#include "core/logging.h"
#include "sw_version.h"

int main(int argc, char** argv) {
  CLI::App cli{"Sensoworks: collect, store, analyse and serve IoT data"};
  cli.set_version_flag("--version", std::string("sensoworks ") + sw::kVersion);
  cli.require_subcommand(1);
  std::string config_path;
  auto* serve = cli.add_subcommand("serve", "Run the platform (HTTP API; storage embedded in the data dir)");
  serve->add_option("-c,--config", config_path, "YAML configuration file (SW_* environment variables override it)")
      ->check(CLI::ExistingFile);
  cli.footer(
      "Environment: SW_HTTP_PORT, SW_MQTT_PORT, SW_DATA_DIR, SW_ADMIN_PASSWORD, SW_LOG_LEVEL, SW_HTTP_BIND,\n"
      "SW_HTTP_MAX_BODY_BYTES, SW_DEVICE_MAX_MSGS_PER_S, SW_DEVICE_BURST, SW_ACCESS_TOKEN_TTL_S,\n"
      "SW_RETENTION_INTERVAL_S, SW_STORAGE_SYNC_WAL, SW_API_THREADS, SW_IO_THREADS. See README.md.");
  CLI11_PARSE(cli, argc, argv);

  if (serve->parsed()) {
    auto config = sw::loadConfig(config_path);
    if (!config) {
      std::cerr << "sensoworks: " << config.error().message << "\n";
      return 2;
    }
    sw::initLogging(config->log_level);
    return sw::app::serve(*config);
  }
  return 0;
}
