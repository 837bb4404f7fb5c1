#!/usr/bin/python3
"""A test device for the browser tests: connects over MQTT with its access token, answers every
server-to-device RPC on v1/devices/me/rpc/request/{n} with {"ok": true, "method", "echo": params},
and prints one JSON line per event on stdout ("ready" once subscribed, "request" per call)."""
import argparse
import json
import signal
import sys
import threading

import paho.mqtt.client as mqtt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()

    done = threading.Event()

    def say(**kv):
        sys.stdout.write(json.dumps(kv) + "\n")
        sys.stdout.flush()

    def on_connect(client, _userdata, _flags, rc):
        if rc != 0:
            say(event="error", detail=f"connack {rc}")
            done.set()
            return
        client.subscribe("v1/devices/me/rpc/request/+", qos=1)

    def on_subscribe(_client, _userdata, _mid, granted):
        if any(g == 0x80 for g in granted):
            say(event="error", detail=f"suback {granted}")
            done.set()
            return
        say(event="ready")

    def on_message(client, _userdata, msg):
        n = msg.topic.rsplit("/", 1)[-1]
        try:
            req = json.loads(msg.payload)
        except ValueError:
            req = {"raw": msg.payload.decode("utf-8", "replace")}
        say(event="request", id=n, request=req)
        reply = {"ok": True, "method": req.get("method"), "echo": req.get("params")}
        client.publish(f"v1/devices/me/rpc/response/{n}", json.dumps(reply), qos=1)

    client = mqtt.Client(client_id="", protocol=mqtt.MQTTv311)
    client.username_pw_set(args.token)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()
    done.wait()
    client.loop_stop()
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
