"""MQTT helpers for the black-box tests of the broker in docs/mqtt.md.

- `MqttClient`: a paho-mqtt (1.6.x API) client for 3.1.1 or 5.0 with synchronous helpers
  (connect and wait for CONNACK, subscribe and wait for SUBACK, publish and wait for the
  acknowledgement) and a `Collector` of received messages (wait for N messages, assert quiet).
- `RawClient`: a raw TCP client (send bytes, read packets or exact bytes with a timeout, detect
  the server closing the connection) plus packet builders/decoders written here from the MQTT
  3.1.1 and 5.0 specifications. Nothing is imported from the server's sources.
- Device / application factories over the REST API.

paho 1.6.x notes: on_publish does not expose v5 PUBACK reason codes and a server DISCONNECT with
remaining length 1 (`E0 01 rc`) is reported without its reason; tests that check reason codes use
`RawClient`.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from swtest import metric_value, now_ms, unique

HOST = "127.0.0.1"
WAIT = 5.0      # how long we wait for something that must happen
QUIET = 0.7     # how long we watch for something that must not happen

V311 = 4  # protocol level of MQTT 3.1.1
V5 = 5

# packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, \
    PINGREQ, PINGRESP, DISCONNECT, AUTH = range(1, 16)
PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
                8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
                14: "DISCONNECT", 15: "AUTH"}

# v5 reason codes used by docs/mqtt.md
RC_SUCCESS = 0x00
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL = 0x84
RC_NOT_AUTHORIZED = 0x87
RC_SERVER_SHUTTING_DOWN = 0x8B
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_NAME_INVALID = 0x90
RC_RECEIVE_MAX_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97
RC_ADMINISTRATIVE_ACTION = 0x98
RC_PAYLOAD_FORMAT_INVALID = 0x99
# 3.1.1 CONNACK return codes
V3_UNACCEPTABLE_PROTOCOL = 1
V3_NOT_AUTHORIZED = 5
V3_SUBACK_FAILURE = 0x80

PUB_OK = (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS)  # v5 PUBACK/PUBREC codes meaning "accepted"

# v5 property identifiers
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_RESPONSE_TOPIC = 0x08
P_CORRELATION_DATA = 0x09
P_SUBSCRIPTION_ID = 0x0B
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_CLIENT_ID = 0x12
P_SERVER_KEEP_ALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM_INFO = 0x17
P_WILL_DELAY = 0x18
P_REQUEST_RESPONSE_INFO = 0x19
P_RESPONSE_INFO = 0x1A
P_SERVER_REFERENCE = 0x1C
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_SUB_AVAILABLE = 0x28
P_SUB_ID_AVAILABLE = 0x29
P_SHARED_SUB_AVAILABLE = 0x2A

_BYTE_PROPS = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_INT2_PROPS = {0x13, 0x21, 0x22, 0x23}
_INT4_PROPS = {0x02, 0x11, 0x18, 0x27}
_VARINT_PROPS = {0x0B}
_UTF8_PROPS = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}
_BINARY_PROPS = {0x09, 0x16}
_PAIR_PROPS = {0x26}
_MULTI_PROPS = {0x26, 0x0B}  # may appear several times: decoded as lists


# ============================================================================================
# Encoding
# ============================================================================================
def varint(n: int) -> bytes:
    assert 0 <= n <= 268_435_455
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n: int) -> bytes:
    return struct.pack("!H", n)


def u32(n: int) -> bytes:
    return struct.pack("!I", n)


def utf8(s) -> bytes:
    """A length-prefixed string; bytes are sent as they are (for invalid UTF-8 tests)."""
    b = s if isinstance(s, (bytes, bytearray)) else s.encode("utf-8")
    return u16(len(b)) + bytes(b)


def binary(b) -> bytes:
    b = b if isinstance(b, (bytes, bytearray)) else str(b).encode()
    return u16(len(b)) + bytes(b)


def encode_props(props: dict | list | None) -> bytes:
    """props: {id: value} (user properties 0x26: list of (k, v); subscription id 0x0B: int or list)
    or a list of (id, value) pairs, encoded in that order (duplicates allowed, for tests)."""
    if not props:
        return varint(0)
    items = props.items() if isinstance(props, dict) else props
    out = bytearray()
    for pid, val in items:
        vals = val if (pid in _MULTI_PROPS and isinstance(val, list)) else [val]
        for v in vals:
            out += varint(pid)
            if pid in _BYTE_PROPS:
                out += bytes([v])
            elif pid in _INT2_PROPS:
                out += u16(v)
            elif pid in _INT4_PROPS:
                out += u32(v)
            elif pid in _VARINT_PROPS:
                out += varint(v)
            elif pid in _UTF8_PROPS:
                out += utf8(v)
            elif pid in _BINARY_PROPS:
                out += binary(v)
            elif pid in _PAIR_PROPS:
                out += utf8(v[0]) + utf8(v[1])
            else:  # unknown identifier: raw bytes (for malformed-property tests)
                out += bytes(v)
    return varint(len(out)) + bytes(out)


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(len(body)) + body


def connect_packet(version: int = V5, client_id="", username=None, password=None, clean: bool = True,
                   keepalive: int = 60, props=None, will: dict | None = None, level: int | None = None,
                   proto_name=None, reserved_flag: bool = False) -> bytes:
    """CONNECT. will = {"topic", "payload", "qos", "retain", "props"}."""
    level = version if level is None else level
    name = proto_name if proto_name is not None else ("MQIsdp" if level == 3 else "MQTT")
    flags = 0
    if clean:
        flags |= 0x02
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    if reserved_flag:
        flags |= 0x01
    body = utf8(name) + bytes([level, flags]) + u16(keepalive)
    if version == V5:
        body += encode_props(props)
    body += utf8(client_id)
    if will:
        if version == V5:
            body += encode_props(will.get("props"))
        body += utf8(will["topic"]) + binary(will.get("payload", b""))
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password)
    return packet(CONNECT, 0, body)


def publish_packet(topic, payload=b"", qos: int = 0, retain: bool = False, dup: bool = False,
                   pid: int | None = None, props=None, version: int = V5, flags: int | None = None) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    elif not isinstance(payload, (bytes, bytearray)):
        payload = json.dumps(payload).encode()
    if flags is None:
        flags = (0x08 if dup else 0) | ((qos & 3) << 1) | (1 if retain else 0)
    body = utf8(topic)
    if (flags >> 1) & 3:
        body += u16(1 if pid is None else pid)
    if version == V5:
        body += encode_props(props)
    body += bytes(payload)
    return packet(PUBLISH, flags, body)


def ack_packet(ptype: int, pid: int, rc: int | None = None, props=None, version: int = V5) -> bytes:
    """PUBACK / PUBREC / PUBREL / PUBCOMP."""
    body = u16(pid)
    if version == V5 and (rc not in (None, 0) or props):
        body += bytes([rc or 0])
        if props:
            body += encode_props(props)
    return packet(ptype, 0x02 if ptype == PUBREL else 0, body)


def sub_options(qos: int = 0, no_local: bool = False, rap: bool = False, rh: int = 0) -> int:
    return qos | (0x04 if no_local else 0) | (0x08 if rap else 0) | (rh << 4)


def subscribe_packet(pid: int, filters, props=None, version: int = V5, flags: int = 0x02) -> bytes:
    """filters: list of (filter, options byte); options = sub_options(...) or a plain QoS."""
    body = u16(pid)
    if version == V5:
        body += encode_props(props)
    for f, opts in filters:
        body += utf8(f) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe_packet(pid: int, filters, props=None, version: int = V5) -> bytes:
    body = u16(pid)
    if version == V5:
        body += encode_props(props)
    for f in filters:
        body += utf8(f)
    return packet(UNSUBSCRIBE, 0x02, body)


PINGREQ_BYTES = b"\xc0\x00"
PINGRESP_BYTES = b"\xd0\x00"


def disconnect_packet(rc: int | None = None, props=None, version: int = V5) -> bytes:
    if version != V5 or (rc in (None, 0) and not props):
        return b"\xe0\x00"
    body = bytes([rc or 0])
    if props:
        body += encode_props(props)
    return packet(DISCONNECT, 0, body)


# ============================================================================================
# Decoding
# ============================================================================================
class MalformedReply(AssertionError):
    pass


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    mult, val = 1, 0
    for i in range(4):
        if pos >= len(data):
            raise MalformedReply("truncated variable byte integer")
        b = data[pos]
        pos += 1
        val += (b & 0x7F) * mult
        if not b & 0x80:
            return val, pos
        mult *= 128
    raise MalformedReply("variable byte integer longer than 4 bytes")


def _read_utf8(data: bytes, pos: int) -> tuple[str, int]:
    n = struct.unpack_from("!H", data, pos)[0]
    return data[pos + 2:pos + 2 + n].decode("utf-8", errors="replace"), pos + 2 + n


def decode_props(data: bytes, pos: int) -> tuple[dict, int]:
    n, pos = _read_varint(data, pos)
    end = pos + n
    props: dict = {}
    while pos < end:
        pid, pos = _read_varint(data, pos)
        if pid in _BYTE_PROPS:
            v = data[pos]
            pos += 1
        elif pid in _INT2_PROPS:
            v = struct.unpack_from("!H", data, pos)[0]
            pos += 2
        elif pid in _INT4_PROPS:
            v = struct.unpack_from("!I", data, pos)[0]
            pos += 4
        elif pid in _VARINT_PROPS:
            v, pos = _read_varint(data, pos)
        elif pid in _UTF8_PROPS:
            v, pos = _read_utf8(data, pos)
        elif pid in _BINARY_PROPS:
            ln = struct.unpack_from("!H", data, pos)[0]
            v = data[pos + 2:pos + 2 + ln]
            pos += 2 + ln
        elif pid in _PAIR_PROPS:
            k, pos = _read_utf8(data, pos)
            vv, pos = _read_utf8(data, pos)
            v = (k, vv)
        else:
            raise MalformedReply(f"unknown property 0x{pid:02x} in a server packet")
        if pid in _MULTI_PROPS:
            props.setdefault(pid, []).append(v)
        else:
            if pid in props:
                raise MalformedReply(f"property 0x{pid:02x} twice in a server packet")
            props[pid] = v
    if pos != end:
        raise MalformedReply("property length mismatch")
    return props, end


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes
    raw: bytes
    version: int = V5
    # decoded fields (depending on type)
    rc: int | None = None
    session_present: bool | None = None
    props: dict = field(default_factory=dict)
    pid: int | None = None
    topic: str | None = None
    payload: bytes | None = None
    qos: int = 0
    retain: bool = False
    dup: bool = False
    codes: list | None = None

    @property
    def name(self) -> str:
        return PACKET_NAMES.get(self.type, str(self.type))

    def json(self):
        return json.loads(self.payload)

    def __repr__(self):
        parts = [self.name]
        for k in ("rc", "session_present", "pid", "topic", "qos", "retain", "dup", "codes"):
            v = getattr(self, k)
            if v not in (None, False) and not (k == "qos" and v == 0):
                parts.append(f"{k}={v!r}")
        if self.props:
            parts.append(f"props={self.props!r}")
        if self.payload is not None:
            parts.append(f"payload={self.payload[:120]!r}")
        return "<" + " ".join(parts) + ">"


def decode_packet(raw: bytes, version: int = V5) -> Packet:
    ptype, flags = raw[0] >> 4, raw[0] & 0x0F
    _, pos = _read_varint(raw, 1)
    body = raw[pos:]
    p = Packet(ptype, flags, body, raw, version)
    v5 = version == V5
    if ptype == CONNACK:
        p.session_present = bool(body[0] & 1)
        p.rc = body[1]
        if v5 and len(body) > 2:
            p.props, _ = decode_props(body, 2)
    elif ptype == PUBLISH:
        p.qos = (flags >> 1) & 3
        p.retain = bool(flags & 1)
        p.dup = bool(flags & 8)
        p.topic, q = _read_utf8(body, 0)
        if p.qos:
            p.pid = struct.unpack_from("!H", body, q)[0]
            q += 2
        if v5:
            p.props, q = decode_props(body, q)
        p.payload = body[q:]
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.pid = struct.unpack_from("!H", body, 0)[0]
        p.rc = body[2] if (v5 and len(body) > 2) else 0
        if v5 and len(body) > 3:
            p.props, _ = decode_props(body, 3)
    elif ptype in (SUBACK, UNSUBACK):
        p.pid = struct.unpack_from("!H", body, 0)[0]
        q = 2
        if v5:
            p.props, q = decode_props(body, 2)
        p.codes = list(body[q:])
    elif ptype == DISCONNECT:
        p.rc = body[0] if body else 0
        if v5 and len(body) > 1:
            p.props, _ = decode_props(body, 1)
    return p


# ============================================================================================
# Raw socket client
# ============================================================================================
class ConnectionClosed(AssertionError):
    pass


class RawClient:
    """A hand-driven MQTT connection over a plain socket.

    Packets read while waiting for something else are kept in `inbox` (in order) for later
    `expect` calls. With auto_ack (default) incoming QoS 1/2 PUBLISHes are acknowledged and
    PUBRELs completed as they are read."""

    def __init__(self, port: int, version: int = V5, host: str = HOST, auto_ack: bool = True):
        self.port = port
        self.version = version
        self.auto_ack = auto_ack
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.inbox: list[Packet] = []
        self.closed = False
        self._pid = 0
        self.connack: Packet | None = None

    # -- bytes ---------------------------------------------------------------------------------
    def send(self, data: bytes, ignore_errors: bool = False) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            if not ignore_errors:
                raise

    def _fill(self, deadline: float) -> bool:
        """Reads more bytes; False on timeout; raises ConnectionClosed on EOF/reset."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            raise ConnectionClosed(f"connection closed by the server (unparsed bytes {self.buf!r})")
        self.buf += chunk
        return True

    def recv_exact(self, n: int, timeout: float = WAIT) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise AssertionError(f"timeout waiting for {n} bytes (got {self.buf!r})")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def wait_closed(self, timeout: float = WAIT) -> bytes:
        """Every byte received until the server closes the connection (fails on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not self._fill(deadline):
                    raise AssertionError(f"connection still open after {timeout}s (received {self.buf!r})")
            except ConnectionClosed:
                out, self.buf = self.buf, b""
                return out

    def is_open(self, wait: float = 0.3) -> bool:
        """True when the server has not closed the connection within `wait` seconds
        (bytes received meanwhile are kept)."""
        deadline = time.monotonic() + wait
        try:
            while self._fill(deadline):
                pass
        except ConnectionClosed:
            return False
        return True

    # -- packets -------------------------------------------------------------------------------
    def _try_parse(self) -> Packet | None:
        if len(self.buf) < 2:
            return None
        try:
            ln, pos = _read_varint(self.buf, 1)
        except MalformedReply:
            if len(self.buf) >= 5:
                raise
            return None
        if len(self.buf) < pos + ln:
            return None
        raw, self.buf = self.buf[:pos + ln], self.buf[pos + ln:]
        return decode_packet(raw, self.version)

    def read_packet(self, timeout: float = WAIT) -> Packet | None:
        """The next packet from the wire (None on timeout; ConnectionClosed on close)."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._try_parse()
            if p is not None:
                self._auto(p)
                return p
            if not self._fill(deadline):
                return None

    def _auto(self, p: Packet) -> None:
        if not self.auto_ack:
            return
        if p.type == PUBLISH and p.qos == 1:
            self.send(ack_packet(PUBACK, p.pid, version=self.version), ignore_errors=True)
        elif p.type == PUBLISH and p.qos == 2:
            self.send(ack_packet(PUBREC, p.pid, version=self.version), ignore_errors=True)
        elif p.type == PUBREL:
            self.send(ack_packet(PUBCOMP, p.pid, version=self.version), ignore_errors=True)

    def expect(self, ptype: int, timeout: float = WAIT, pid: int | None = None, pred=None) -> Packet:
        """The first packet of `ptype` (and `pid`, and pred(p)); others are kept in the inbox."""
        def ok(p):
            return p.type == ptype and (pid is None or p.pid == pid) and (pred is None or pred(p))
        for i, p in enumerate(self.inbox):
            if ok(p):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self.read_packet(max(0.0, deadline - time.monotonic()))
            except ConnectionClosed:
                raise ConnectionClosed(f"connection closed while waiting for {PACKET_NAMES[ptype]} "
                                       f"(inbox {self.inbox})") from None
            if p is None:
                raise AssertionError(f"no {PACKET_NAMES[ptype]} within {timeout}s (inbox {self.inbox})")
            if ok(p):
                return p
            self.inbox.append(p)

    def drain(self, duration: float = QUIET) -> list[Packet]:
        """Reads for `duration`; returns (and removes) everything in the inbox plus what arrived."""
        deadline = time.monotonic() + duration
        try:
            while True:
                p = self.read_packet(max(0.0, deadline - time.monotonic()))
                if p is None:
                    break
                self.inbox.append(p)
        except ConnectionClosed:
            pass
        out, self.inbox = self.inbox, []
        return out

    def publishes(self, n: int, timeout: float = WAIT, topic: str | None = None) -> list[Packet]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(out)} of {n} PUBLISHes within {timeout}s: {out}")
            try:
                out.append(self.expect(PUBLISH, left, pred=(lambda p: p.topic == topic) if topic else None))
            except AssertionError as e:
                if isinstance(e, ConnectionClosed):
                    raise
                raise AssertionError(f"got {len(out)} of {n} PUBLISHes within {timeout}s: {out}") from None
        return out

    def no_publish(self, duration: float = QUIET, topic: str | None = None) -> None:
        got = [p for p in self.drain(duration) if p.type == PUBLISH and (topic is None or p.topic == topic)]
        assert not got, f"unexpected PUBLISH: {got}"

    def next_pid(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid

    # -- operations ----------------------------------------------------------------------------
    def connect(self, username=None, password=None, client_id=None, clean: bool = True, keepalive: int = 60,
                props=None, will=None, expect_rc: int | None = 0, timeout: float = WAIT) -> Packet:
        cid = unique("raw") if client_id is None else client_id
        self.client_id = cid
        self.send(connect_packet(self.version, cid, username, password, clean, keepalive, props, will))
        p = self.read_packet(timeout)
        assert p is not None, "no CONNACK"
        assert p.type == CONNACK, f"expected CONNACK, got {p}"
        self.connack = p
        if expect_rc is not None:
            assert p.rc == expect_rc, f"CONNACK rc {p.rc:#x} != {expect_rc:#x}: {p}"
        return p

    def subscribe(self, filters, qos: int = 0, props=None, timeout: float = WAIT) -> list[int]:
        """filters: a filter string (with qos) or a list of (filter, options byte)."""
        if isinstance(filters, str):
            filters = [(filters, qos)]
        pid = self.next_pid()
        self.send(subscribe_packet(pid, filters, props, self.version))
        return self.expect(SUBACK, timeout, pid=pid).codes

    def unsubscribe(self, filters, timeout: float = WAIT) -> list[int]:
        if isinstance(filters, str):
            filters = [filters]
        pid = self.next_pid()
        self.send(unsubscribe_packet(pid, filters, None, self.version))
        return self.expect(UNSUBACK, timeout, pid=pid).codes

    def publish(self, topic, payload=b"", qos: int = 0, retain: bool = False, props=None,
                timeout: float = WAIT) -> Packet | None:
        """QoS 0: None. QoS 1: the PUBACK. QoS 2: the PUBREC (the PUBREL/PUBCOMP exchange is
        completed when the PUBREC accepted the message)."""
        pid = self.next_pid() if qos else None
        self.send(publish_packet(topic, payload, qos, retain, pid=pid, props=props, version=self.version))
        if qos == 1:
            return self.expect(PUBACK, timeout, pid=pid)
        if qos == 2:
            rec = self.expect(PUBREC, timeout, pid=pid)
            if rec.rc < 0x80:
                self.send(ack_packet(PUBREL, pid, version=self.version))
                comp = self.expect(PUBCOMP, timeout, pid=pid)
                assert comp.rc == 0, comp
            return rec
        return None

    def ping(self, timeout: float = WAIT) -> None:
        self.send(PINGREQ_BYTES)
        self.expect(PINGRESP, timeout)

    def disconnect(self, rc: int | None = None, props=None) -> None:
        try:
            self.send(disconnect_packet(rc, props, self.version))
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        """Closes the socket without DISCONNECT (an abrupt close for the will tests)."""
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ============================================================================================
# paho client
# ============================================================================================
@dataclass
class Msg:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    props: object = None  # paho Properties (v5) or None

    def json(self):
        return json.loads(self.payload)

    def prop(self, name: str, default=None):
        return getattr(self.props, name, default) if self.props is not None else default

    def __repr__(self):
        return f"<Msg {self.topic} qos={self.qos} retain={self.retain} {self.payload[:120]!r}>"


class Collector:
    """Thread-safe list of received messages."""

    def __init__(self):
        self.cv = threading.Condition()
        self.msgs: list[Msg] = []

    def add(self, m: Msg) -> None:
        with self.cv:
            self.msgs.append(m)
            self.cv.notify_all()

    @staticmethod
    def _pred(topic=None, pred=None):
        def f(m):
            if topic is not None and (m.topic != topic if isinstance(topic, str) else not topic(m.topic)):
                return False
            return pred is None or pred(m)
        return f

    def matching(self, topic=None, pred=None) -> list[Msg]:
        f = self._pred(topic, pred)
        with self.cv:
            return [m for m in self.msgs if f(m)]

    def wait_for(self, n: int, timeout: float = WAIT, topic=None, pred=None) -> list[Msg]:
        """Waits until at least n matching messages arrived; returns the first n."""
        f = self._pred(topic, pred)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                got = [m for m in self.msgs if f(m)]
                if len(got) >= n:
                    return got[:n]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"received {len(got)} of {n} messages within {timeout}s "
                                         f"(topic {topic!r}); all received: {self.msgs}")
                self.cv.wait(left)

    def wait_one(self, timeout: float = WAIT, topic=None, pred=None) -> Msg:
        return self.wait_for(1, timeout, topic, pred)[0]

    def quiet(self, duration: float = QUIET, topic=None, pred=None) -> None:
        """Asserts no (further) matching message arrives within `duration`."""
        f = self._pred(topic, pred)
        with self.cv:
            before = len([m for m in self.msgs if f(m)])
        time.sleep(duration)
        got = self.matching(topic, pred)
        assert len(got) == before, f"unexpected messages: {got[before:]}"

    def clear(self) -> None:
        with self.cv:
            self.msgs.clear()

    def __len__(self):
        with self.cv:
            return len(self.msgs)


def props(ptype, **kw) -> Properties:
    """paho Properties for packet type ptype (PacketTypes.PUBLISH, CONNECT, SUBSCRIBE, WILLMESSAGE)."""
    p = Properties(ptype)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def _rc(x) -> int:
    return getattr(x, "value", x)


_ALL_CLIENTS: list["MqttClient"] = []


class MqttClient:
    """A paho client with synchronous helpers. Use connect_client() to build and connect one."""

    def __init__(self, port: int, username=None, password=None, client_id: str | None = None,
                 version: int = V5, clean: bool = True, keepalive: int = 30, session_expiry: int | None = None,
                 connect_props: dict | None = None, will: dict | None = None):
        self.port = port
        self.version = version
        self.client_id = unique("paho") if client_id is None else client_id
        self.clean = clean
        self.keepalive = keepalive
        if version == V5:
            self.c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        else:
            self.c = mqtt.Client(client_id=self.client_id, clean_session=clean, protocol=mqtt.MQTTv311,
                                 reconnect_on_failure=False)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.connect_props = None
        if version == V5:
            cp = dict(connect_props or {})
            if session_expiry is not None:
                cp["SessionExpiryInterval"] = session_expiry
            if cp:
                self.connect_props = props(PacketTypes.CONNECT, **cp)
        if will:
            wp = None
            if version == V5 and will.get("props"):
                wp = props(PacketTypes.WILLMESSAGE, **will["props"])
            self.c.will_set(will["topic"], will.get("payload", b""), will.get("qos", 0), will.get("retain", False),
                            properties=wp)
        self.messages = Collector()
        self.handler = None  # optional fn(self, Msg) called for every message (in paho's thread)
        self.rc: int | None = None
        self.session_present: bool | None = None
        self.connack_props = None
        self.disconnect_rc = None
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._cv = threading.Condition()
        self._subacks: dict = {}
        self._unsubacks: set = set()
        self._published: set = set()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self._started = False
        _ALL_CLIENTS.append(self)

    # -- callbacks (paho thread) ----------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.rc = _rc(rc)
        self.session_present = bool(flags.get("session present"))
        self.connack_props = properties
        self._connected.set()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.disconnect_rc = _rc(rc)
        self._disconnected.set()

    def _on_message(self, client, userdata, msg):
        m = Msg(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                getattr(msg, "properties", None) if self.version == V5 else None)
        self.messages.add(m)
        if self.handler is not None:
            self.handler(self, m)

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self._cv:
            self._subacks[mid] = [_rc(g) for g in granted]
            self._cv.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, *rest):
        with self._cv:
            self._unsubacks.add(mid)
            self._cv.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self._cv:
            self._published.add(mid)
            self._cv.notify_all()

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cv:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.client_id}: timeout waiting for {what}")
                self._cv.wait(left)

    # -- operations ------------------------------------------------------------------------------
    def connect(self, timeout: float = WAIT) -> int:
        """Connects and waits for CONNACK; returns its reason/return code."""
        self._connected.clear()
        self._disconnected.clear()
        if self.version == V5:
            self.c.connect(HOST, self.port, self.keepalive, clean_start=self.clean, properties=self.connect_props)
        else:
            self.c.connect(HOST, self.port, self.keepalive)
        if not self._started:
            self.c.loop_start()
            self._started = True
        if not self._connected.wait(timeout):
            raise AssertionError(f"{self.client_id}: no CONNACK within {timeout}s "
                                 f"(disconnected: {self._disconnected.is_set()})")
        return self.rc

    def subscribe(self, topic, qos: int = 0, no_local: bool = False, rap: bool = False, rh: int = 0,
                  sub_id: int | None = None, timeout: float = WAIT) -> list[int]:
        """Subscribes and waits for SUBACK; returns the reason codes / granted QoS."""
        if self.version == V5:
            p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id) if sub_id is not None else None
            opts = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=rap, retainHandling=rh)
            rc, mid = self.c.subscribe(topic, options=opts, properties=p)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe: paho error {rc}"
        self._wait(lambda: mid in self._subacks, timeout, f"SUBACK of {topic}")
        return self._subacks[mid]

    def unsubscribe(self, topic, timeout: float = WAIT) -> None:
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        self._wait(lambda: mid in self._unsubacks, timeout, f"UNSUBACK of {topic}")

    def publish(self, topic, payload=b"", qos: int = 0, retain: bool = False, wait: bool = True,
                timeout: float = WAIT, **props_kw) -> int:
        """Publishes (props_kw: paho v5 PUBLISH property names); with wait, waits until paho has
        sent a QoS 0 message or got the PUBACK/PUBCOMP of QoS 1/2. Returns the mid."""
        if not isinstance(payload, (bytes, bytearray, str)):
            payload = json.dumps(payload)
        p = props(PacketTypes.PUBLISH, **props_kw) if props_kw else None
        info = self.c.publish(topic, payload, qos, retain, properties=p)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish: paho error {info.rc}"
        if wait:
            self._wait(lambda: info.mid in self._published, timeout, f"acknowledgement of publish to {topic}")
        return info.mid

    def wait_disconnected(self, timeout: float = WAIT) -> None:
        assert self._disconnected.wait(timeout), f"{self.client_id}: still connected after {timeout}s"

    def is_connected(self) -> bool:
        return self.c.is_connected() and not self._disconnected.is_set()

    def disconnect(self) -> None:
        """Clean DISCONNECT."""
        if self._started and not self._disconnected.is_set():
            self.c.disconnect()
            self._disconnected.wait(WAIT)
        self.stop()

    def drop(self) -> None:
        """Abrupt close: the socket goes away without DISCONNECT."""
        s = self.c.socket()
        self.stop()
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def stop(self) -> None:
        """Stops paho's network thread without waiting for its 1 s select timeout."""
        if self._started:
            self.c._thread_terminate = True
            try:
                self.c._sockpairW.send(b"0")  # wakes paho's select (paho 1.6 internals)
            except Exception:
                pass
            self.c.loop_stop()
            self._started = False


def connect_client(port: int, username=None, password=None, expect_rc: int | None = 0, **kw) -> MqttClient:
    """Builds a paho client (see MqttClient for keyword arguments), connects, waits for CONNACK and
    asserts its code (expect_rc=None: no assertion; read client.rc)."""
    c = MqttClient(port, username, password, **kw)
    rc = c.connect()
    if expect_rc is not None:
        assert rc == expect_rc, f"CONNACK code {rc:#x} != {expect_rc:#x}"
    return c


def stop_all_clients() -> None:
    """Test teardown: clean DISCONNECT for every paho client still connected, then stop them."""
    clients = list(_ALL_CLIENTS)
    _ALL_CLIENTS.clear()
    for c in clients:
        try:
            if c._started and c.c.is_connected():
                c.c.disconnect()
        except Exception:
            pass
    for c in clients:
        try:
            c._disconnected.wait(1.0) if c._started else None
            s = c.c.socket()
            c.stop()
            if s is not None:
                s.close()
        except Exception:
            pass


@pytest.fixture(autouse=True)
def _mqtt_cleanup():
    """Import into a test module: stops every paho client a test left running."""
    yield
    stop_all_clients()


# ============================================================================================
# REST-side factories
# ============================================================================================
@dataclass
class Device:
    id: str
    token: str
    name: str
    data: dict


def create_device(tenant, name: str | None = None, gateway: bool = False, type: str | None = None) -> Device:
    """A device of `tenant` (a swtest.TenantCtx) created by its tenant_admin over REST."""
    body = {"name": name or unique("dev")}
    if gateway:
        body["gateway"] = True
    if type is not None:
        body["type"] = type
    r = tenant.admin.post("/api/v1/devices", body)
    assert r.status_code == 201, f"create device: {r.status_code} {r.text}"
    d = r.json()
    return Device(d["id"], d["credentials"]["access_token"], d["name"], d)


def app_creds(tenant, role: str = "admin") -> tuple[str, str]:
    """(username, password) of an application client: 'app' + the user's access token (JWT)."""
    user = tenant.admin if role == "admin" else tenant.viewer
    return "app", user.token


def app_client(server, tenant, role: str = "admin", **kw) -> MqttClient:
    u, p = app_creds(tenant, role)
    return connect_client(server.mqtt_port, u, p, **kw)


def device_client(server, dev: Device, **kw) -> MqttClient:
    return connect_client(server.mqtt_port, dev.token, None, **kw)


def raw_app(server, tenant, role: str = "admin", version: int = V5, **kw) -> RawClient:
    c = RawClient(server.mqtt_port, version)
    u, p = app_creds(tenant, role)
    c.connect(u, p, **kw)
    return c


def raw_device(server, dev: Device, version: int = V5, **kw) -> RawClient:
    c = RawClient(server.mqtt_port, version)
    c.connect(dev.token, None, **kw)
    return c


def set_mqtt_basic(tenant, device_id: str, username: str, password: str, client_id: str | None = None):
    body = {"username": username, "password": password}
    if client_id is not None:
        body["client_id"] = client_id
    return tenant.admin.request("PUT", f"/api/v1/devices/{device_id}/credentials/mqtt-basic", json=body)


def get_device(tenant, device_id: str) -> dict:
    r = tenant.viewer.get(f"/api/v1/devices/{device_id}")
    assert r.status_code == 200, r.text
    return r.json()


def poll_device(tenant, device_id: str, pred, what: str = "device state", timeout: float = WAIT) -> dict:
    """Polls GET /api/v1/devices/{id} until pred(device) holds; returns the device."""
    def f():
        d = get_device(tenant, device_id)
        return d if pred(d) else None
    return poll(f, timeout, what=what)


def latest(tenant, device_id: str) -> dict:
    r = tenant.viewer.get(f"/api/v1/devices/{device_id}/telemetry/latest")
    assert r.status_code == 200, r.text
    return r.json()


def attributes(tenant, device_id: str, scope: str) -> dict:
    r = tenant.viewer.get(f"/api/v1/devices/{device_id}/attributes", params={"scope": scope})
    assert r.status_code == 200, r.text
    return r.json()[scope]


def set_shared(tenant, device_id: str, values: dict) -> None:
    r = tenant.admin.post(f"/api/v1/devices/{device_id}/attributes", values, params={"scope": "shared"})
    assert r.status_code == 200, r.text


def poll(fn, timeout: float = WAIT, interval: float = 0.05, what: str = "condition"):
    """Calls fn until it returns a truthy value (returned) or fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except AssertionError as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
        time.sleep(interval)


def mqtt_metric(server, name: str, labels: dict | None = None) -> float:
    v = metric_value(server.metrics(), name, labels)
    return 0.0 if v is None else v


def assert_alive(server, tenant) -> None:
    """A fresh connection still works: CONNECT, SUBSCRIBE, PUBLISH QoS 1 to itself, PINGREQ."""
    with RawClient(server.mqtt_port, V5) as c:
        u, p = app_creds(tenant)
        c.connect(u, p)
        topic = unique("alive")
        assert c.subscribe(topic, 1) == [1]
        ack = c.publish(topic, b"ping", qos=1)
        assert ack.rc in PUB_OK, ack
        got = c.publishes(1, topic=topic)[0]
        assert got.payload == b"ping"
        c.ping()
        c.disconnect()


__all__ = [n for n in dir() if not n.startswith("__")]
