#pragma once
// The MQTT listener: accepts TCP connections, spreads them over the I/O workers (a connection
// lives on one worker for life) and runs the protocol for each (connection.cc) against the
// Broker. Devices' telemetry and attributes go through the IngestPipeline on a blocking pool;
// acknowledgements wait for durable storage.
//
// Thread-safety: start/stopAccepting/disconnectAll are called by the owner (app) thread.
// Lifetime: connections and the accept loop refer to the server's state, so stop the IoWorkers
// (IoWorkers::stop) before destroying the server, as app.cc does; the HTTP server, by contrast,
// shares its state with its coroutines and may also be destroyed while the workers run.
#include <functional>
#include <memory>
#include <string_view>

#include "core/config.h"
#include "core/ids.h"
#include "core/status.h"
#include "ingest/pipeline.h"
#include "ingest/transports/mqtt/broker.h"
#include "runtime/blocking_pool.h"
#include "runtime/io_workers.h"
#include "storage/metadata_store.h"

namespace sw::mqtt {

// An application client (username "app"): the user's tenant and whether its role may publish.
struct AppPrincipal {
  TenantId tenant;
  UserId user;
  bool can_publish = false;
};
// Verifies a user's access token (JWT). Blocking: runs on the pool.
using AppAuthenticator = std::function<Result<AppPrincipal>(std::string_view token)>;

class MqttServer {
 public:
  MqttServer(const Config& config, runtime::IoWorkers& workers, ingest::IngestPipeline& pipeline,
             storage::MetadataStore& metadata, Broker& broker, AppAuthenticator app_auth);
  ~MqttServer();
  // Binds and starts accepting; returns the bound port (config port 0 = any free port).
  Result<int> start();
  void stopAccepting();
  // Sends DISCONNECT 0x8B (server shutting down) to every client and closes the connections.
  void disconnectAll();
  // Joins the blocking pool (after the workers stopped).
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sw::mqtt
