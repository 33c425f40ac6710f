"""Raw HTTP/2 frames over a real socket, for the hostile HTTP/2 tests (test_h2_limits.py).

Frames are built by hand so that a test can send what no well-behaved client sends: frames of an
unknown type, a header block that never ends, zero-length CONTINUATION floods, a flow-control window
that is never opened, a socket that is never read. HPACK comes from python3-hpack (installed with
python3-h2). Both listeners: h2c with prior knowledge, or TLS with ALPN "h2"."""
import importlib
import select
import socket
import ssl
import struct
import time

import hpack


def slowdown():
    """mockserver.SLOWDOWN as it is now: tests/run.py reloads mockserver for each build, not this module."""
    return importlib.import_module("mockserver").SLOWDOWN

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 3
SETTINGS_INITIAL_WINDOW_SIZE = 4

ERROR_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 5: "STREAM_CLOSED",
               6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}


def frame(type_, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream_id & 0x7FFFFFFF) + payload


def settings_frame(values=None):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in (values or {}).items()))


def parse_settings(payload):
    return {struct.unpack(">H", payload[i:i + 2])[0]: struct.unpack(">I", payload[i + 2:i + 6])[0]
            for i in range(0, len(payload) - 5, 6)}


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


class Frame:
    def __init__(self, type_, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = type_, flags, stream_id, payload

    def goaway(self):
        """(last_stream_id, error name, debug text) of a GOAWAY frame."""
        last, code = struct.unpack(">II", self.payload[:8])
        return last & 0x7FFFFFFF, ERROR_NAMES.get(code, str(code)), self.payload[8:].decode("latin-1")

    def error_code(self):
        return ERROR_NAMES.get(struct.unpack(">I", self.payload[:4])[0])

    def __repr__(self):
        return f"<Frame type={self.type} flags={self.flags:#x} stream={self.stream_id} len={len(self.payload)}>"


class Conn:
    """One HTTP/2 connection. `start()` sends the client preface and SETTINGS; `read_frame()` returns
    frames one at a time (None once the server has closed)."""

    def __init__(self, server, tls=False, port=None, timeout_s=10.0, rcvbuf_bytes=None):
        self.tls = tls
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf_bytes is not None:  # before connect, so the window the client announces stays small
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        raw.settimeout(timeout_s * slowdown())
        raw.connect((server.host, port or server.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            self.sock = tls_context().wrap_socket(raw, server_hostname="localhost")
            if self.sock.selected_alpn_protocol() != "h2":
                raise AssertionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
        else:
            self.sock = raw
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.closed = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def start(self, settings=None):
        self.send(PREFACE + settings_frame(settings))
        return self

    def header_block(self, path="/", method="GET", authority="127.0.0.1", extra=()):
        scheme = "https" if self.tls else "http"
        return self.encoder.encode([(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
                                   + list(extra))

    def request(self, stream_id, path="/", method="GET", end_stream=True, extra=()):
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, stream_id, self.header_block(path, method, extra=extra)))

    def _recv(self, timeout_s):
        if self.tls and self.sock.pending():
            return self.sock.recv(65536)
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout_s))
        if not ready:
            return None
        try:
            return self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return None
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return b""

    def read_frame(self, timeout_s=10.0):
        """The next frame, None when the server closed, or raises TimeoutError."""
        deadline = time.monotonic() + timeout_s * slowdown()
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    f = Frame(self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                              self.buf[9:9 + length])
                    self.buf = self.buf[9 + length:]
                    return f
            if self.closed:
                return None
            chunk = self._recv(deadline - time.monotonic())
            if chunk is None:
                if time.monotonic() >= deadline:
                    raise TimeoutError("no frame from the server")
                continue
            if chunk == b"":
                self.closed = True
                continue
            self.buf += chunk

    def response(self, stream_id, timeout_s=10.0, ack_settings=True):
        """Reads until `stream_id` ends: (status, headers, body, other frames seen). Answers the
        server's SETTINGS; raises if the stream is reset or the connection closes first."""
        status, headers, body, others = None, [], b"", []
        deadline = time.monotonic() + timeout_s * slowdown()
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()) / slowdown())
            if f is None:
                raise EOFError(f"connection closed before stream {stream_id} ended; frames {others}")
            if f.type == SETTINGS and not f.flags & ACK and ack_settings:
                self.send(frame(SETTINGS, ACK, 0))
            if f.type in (HEADERS, CONTINUATION):
                decoded = self.decoder.decode(f.payload)  # every block, to keep the HPACK state in step
                if f.stream_id == stream_id:
                    for name, value in decoded:
                        name = name.decode() if isinstance(name, bytes) else name
                        value = value.decode() if isinstance(value, bytes) else value
                        if name == ":status" and (status is None or status < 200):
                            status = int(value)
                        headers.append((name, value))
                    if f.flags & END_STREAM:
                        return status, headers, body, others
                    continue
            if f.type == DATA and f.stream_id == stream_id:
                body += f.payload
                if f.flags & END_STREAM:
                    return status, headers, body, others
                continue
            if f.type == RST_STREAM and f.stream_id == stream_id:
                raise ConnectionError(f"stream {stream_id} reset: {f.error_code()}")
            others.append(f)

    def wait_closed(self, timeout_s):
        """Reads (and drops) frames until the server closes. Returns (seconds waited, GOAWAY frames
        seen) or raises TimeoutError if the connection is still open after timeout_s."""
        t0 = time.monotonic()
        goaways = []
        while True:
            left = timeout_s - (time.monotonic() - t0)
            if left <= 0:
                raise TimeoutError(f"still open after {timeout_s:.1f} s")
            try:
                f = self.read_frame(left / slowdown())
            except TimeoutError:
                raise TimeoutError(f"still open after {timeout_s:.1f} s")
            if f is None:
                return time.monotonic() - t0, goaways
            if f.type == GOAWAY:
                goaways.append(f.goaway())


def get(server, path="/", tls=False, port=None, timeout_s=10.0):
    """One GET on a fresh connection: (status, body)."""
    with Conn(server, tls=tls, port=port, timeout_s=timeout_s) as c:
        c.start()
        c.request(1, path)
        status, _, body, _ = c.response(1, timeout_s=timeout_s)
        return status, body
