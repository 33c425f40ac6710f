"""Raw HTTP/2 frames over a real socket, for the tests that must send what no well-behaved client
sends (frames of an unknown type, header blocks that never end, CONTINUATION floods, windows never
opened, sockets never read, HPACK bombs) and see every frame that comes back. Both HTTP/2
listeners: h2c (prior knowledge, or an HTTP/1.1 Upgrade: h2c) and TLS with ALPN "h2".

- frame(), settings_frame(), parse_settings(), Frame: frames as bytes and back.
- hpack_int(), hpack_literal(), plain_header_block(), request_frame(): header blocks put together
  byte by byte, with no HPACK state (for raw sockets, and for blocks no encoder would make).
- Conn: one connection. Well-formed header blocks are encoded and decoded with python3-hpack.
  read_frame() hands over frames exactly as they come and answers nothing; read_until() and
  response() record what comes (per stream, GOAWAYs, every frame) and answer as a client does
  (SETTINGS and PING acknowledged, flow-control credit for DATA); wait_closed() records but sends
  nothing (a client that has stopped talking, for example in the middle of a header block).
Time bounds: timeout_s is scaled by mockserver.SLOWDOWN, within_s is wall seconds (see clients.py).
"""
import socket
import ssl
import struct
import time

import hpack

from clients import Conn as HttpConn, SocketClient, connect, raw_request, tls_context
from mockserver import SLOWDOWN

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 3
SETTINGS_INITIAL_WINDOW_SIZE = 4
MAX_FRAME_BYTES = 16384  # SETTINGS_MAX_FRAME_SIZE's initial value: the largest payload we may send

ERROR_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 5: "STREAM_CLOSED",
               6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}

# First octet of an HPACK literal field with a literal name (RFC 7541 6.2.1, 6.2.2, 6.2.3).
LITERAL_INDEXED, LITERAL_NOT_INDEXED, LITERAL_NEVER_INDEXED = 0x40, 0x00, 0x10


def frame(type_, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream_id & 0x7FFFFFFF) + payload


def settings_frame(values=None):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in (values or {}).items()))


def window_update_frame(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def parse_settings(payload):
    return {struct.unpack(">H", payload[i:i + 2])[0]: struct.unpack(">I", payload[i + 2:i + 6])[0]
            for i in range(0, len(payload) - 5, 6)}


def hpack_int(value, prefix_bits, first_byte_flags=0):
    """RFC 7541 5.1 integer with the given flag bits in the first octet."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out, value = [first_byte_flags | limit], value - limit
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(out + [value])


def hpack_literal(name, value, kind=LITERAL_INDEXED):
    """A literal field with a literal (raw, not Huffman) name and value; kind is its first octet."""
    return bytes([kind]) + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def plain_header_block(path="/", authority=b"127.0.0.1"):
    """A GET's header block that leaves both HPACK tables as they were: :method GET and :scheme http
    from the static table (2 and 6, on TLS too), :path (static name 4) and :authority (static name 1)
    as literals without indexing."""
    path = path.encode() if isinstance(path, str) else path
    return (b"\x82\x86" + hpack_int(4, 4, LITERAL_NOT_INDEXED) + hpack_int(len(path), 7) + path
            + hpack_int(1, 4, LITERAL_NOT_INDEXED) + hpack_int(len(authority), 7) + authority)


def request_frame(stream_id, path="/", end_stream=True):
    """A HEADERS frame with a plain_header_block() GET, for clients without a Conn."""
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream_id, plain_header_block(path))


class Frame:
    def __init__(self, type_, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = type_, flags, stream_id, payload

    def goaway(self):
        """(last_stream_id, error name, debug text) of a GOAWAY frame."""
        last, code = struct.unpack(">II", self.payload[:8])
        return last & 0x7FFFFFFF, ERROR_NAMES.get(code, str(code)), self.payload[8:].decode("latin-1")

    def error_code(self):
        """The error name of a RST_STREAM frame."""
        code = struct.unpack(">I", self.payload[:4])[0]
        return ERROR_NAMES.get(code, str(code))

    def __repr__(self):
        return f"<Frame type={self.type} flags={self.flags:#x} stream={self.stream_id} len={len(self.payload)}>"


class Stream:
    """What came back on one stream: headers (the last value of each name, so the final :status
    wins over an interim 100), body, reset (the error name of a RST_STREAM), ended_at (monotonic
    time END_STREAM was read)."""

    def __init__(self):
        self.headers, self.body, self.reset, self.ended_at = {}, b"", None, None

    @property
    def ended(self):
        return self.ended_at is not None

    @property
    def status(self):
        return int(self.headers[":status"]) if ":status" in self.headers else None

    def __repr__(self):
        return f"<Stream status={self.status} ended={self.ended} reset={self.reset} body={self.body[:40]!r}>"


class Conn(SocketClient):
    """One HTTP/2 client connection to 127.0.0.1:port. start() sends the client preface."""

    def __init__(self, port, tls=False, timeout_s=10.0, rcvbuf_bytes=None, upgrade=None, host="127.0.0.1"):
        """upgrade=(path, body): begin as HTTP/1.1 with `Upgrade: h2c` on a POST whose body follows its
        head 0.2 s later; the answer to it is stream 1. With tls, raises AssertionError unless ALPN
        chose h2."""
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.sock = connect(host, port, timeout_s, rcvbuf_bytes)
        self.timeout = self.sock.gettimeout()
        self.buf = b""
        self.closed = False
        self.streams, self.goaways, self.frames = {}, [], []
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self._block, self._block_stream, self._block_ends_stream = b"", None, False
        try:
            if upgrade is not None:
                self._upgrade(*upgrade)
            if tls:
                self.sock = tls_context(("h2",)).wrap_socket(self.sock, server_hostname="localhost")
                if self.sock.selected_alpn_protocol() != "h2":
                    raise AssertionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
        except BaseException:
            self.sock.close()
            raise

    def _upgrade(self, path, body):
        self.send(raw_request("POST", path, {"Host": "127.0.0.1", "Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c",
                                             "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA", "Content-Length": str(len(body))}))
        time.sleep(0.2)
        self.send(body)
        http1 = HttpConn.over(self.sock)
        status, reason, _ = http1.read_head()
        if status != 101:
            raise AssertionError(f"no 101 to Upgrade: h2c: {status} {reason}")
        self.buf = http1.buf  # the server's first frames may have come with the 101
        self.streams[1] = Stream()

    def start(self, settings=None):
        """Sends the client preface with a SETTINGS frame of `settings` ({id: value}); returns self."""
        self.send(PREFACE + settings_frame(settings))
        return self

    # ---- requests ----

    def pseudo_fields(self, path="/", method="GET", authority="127.0.0.1"):
        """A request's pseudo-header fields; authority None leaves :authority out."""
        fields = [(":method", method), (":scheme", self.scheme), (":path", path)]
        if authority is not None:
            fields.append((":authority", authority))
        return fields

    def header_block(self, path="/", method="GET", authority="127.0.0.1", headers=()):
        """A request's header block, HPACK-encoded with this connection's encoder."""
        return self.encoder.encode(self.pseudo_fields(path, method, authority) + list(headers))

    def send_block(self, stream_id, block, end_stream=True):
        """A header block as HEADERS plus as many CONTINUATION frames as it needs."""
        self.stream(stream_id)
        chunks = [block[i:i + MAX_FRAME_BYTES] for i in range(0, len(block), MAX_FRAME_BYTES)] or [b""]
        out = []
        for i, chunk in enumerate(chunks):
            flags = (END_HEADERS if i == len(chunks) - 1 else 0) | (END_STREAM if i == 0 and end_stream else 0)
            out.append(frame(HEADERS if i == 0 else CONTINUATION, flags, stream_id, chunk))
        self.send(b"".join(out))

    def request(self, stream_id, path="/", method="GET", headers=(), authority="127.0.0.1", end_stream=True):
        self.send_block(stream_id, self.header_block(path, method, authority, headers), end_stream)

    def body_and_trailers(self, stream_id, body, trailers):
        self.send(frame(DATA, 0, stream_id, body))
        self.send(frame(HEADERS, END_STREAM | END_HEADERS, stream_id, self.encoder.encode(list(trailers))))

    # ---- reading ----

    def _recv(self, deadline):
        """Bytes, b"" once the server has closed, or None if nothing came before the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            return self.sock.recv(1 << 20)
        except (socket.timeout, ssl.SSLWantReadError):
            return None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return b""
        finally:
            self.sock.settimeout(self.timeout)

    def _next(self, deadline):
        """The next frame, or None when the server has closed or the deadline has passed."""
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
            chunk = self._recv(deadline)
            if chunk is None:
                if time.monotonic() >= deadline:
                    return None
                continue
            if chunk == b"":
                self.closed = True
                continue
            self.buf += chunk

    def read_frame(self, timeout_s=10.0):
        """The next frame exactly as it came, None once the server has closed, or TimeoutError.
        Records and answers nothing."""
        f = self._next(time.monotonic() + timeout_s * SLOWDOWN)
        if f is None and not self.closed:
            raise TimeoutError("no frame from the server")
        return f

    def stream(self, stream_id):
        return self.streams.setdefault(stream_id, Stream())

    def _record(self, f):
        self.frames.append(f)
        if f.type == GOAWAY:
            self.goaways.append(f.goaway())
        elif f.type == RST_STREAM:
            self.stream(f.stream_id).reset = f.error_code()
        elif f.type in (HEADERS, CONTINUATION):
            if f.type == HEADERS:
                self._block, self._block_stream, self._block_ends_stream = b"", f.stream_id, bool(f.flags & END_STREAM)
            self._block += f.payload  # the server sends neither padding nor priority
            if f.flags & END_HEADERS:
                fields = self.decoder.decode(self._block)  # every block, to keep the HPACK state in step
                target = self.stream(self._block_stream)
                target.headers.update(fields)
                if self._block_ends_stream:
                    target.ended_at = time.monotonic()
        elif f.type == DATA:
            target = self.stream(f.stream_id)
            target.body += f.payload
            if f.flags & END_STREAM:
                target.ended_at = time.monotonic()

    def _answer(self, f):
        try:
            if f.type == SETTINGS and not f.flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            elif f.type == PING and not f.flags & ACK:
                self.send(frame(PING, ACK, 0, f.payload))
            elif f.type == DATA and f.payload:
                # credit back at once, on the stream and the connection: a response never waits on us
                self.send(window_update_frame(f.stream_id, len(f.payload)) + window_update_frame(0, len(f.payload)))
        except OSError:
            pass  # the server has gone: nobody is left to answer

    def read_until(self, predicate, timeout_s=10.0):
        """Reads, records and answers frames until predicate() holds, the server closes or the time is
        up; returns predicate()."""
        deadline = time.monotonic() + timeout_s * SLOWDOWN
        while not predicate():
            f = self._next(deadline)
            if f is None:
                break
            self._record(f)
            self._answer(f)
        return predicate()

    def response(self, stream_id, timeout_s=10.0):
        """The Stream once it has ended or been reset (or as it stands when the connection closed or
        the time ran out)."""
        s = self.stream(stream_id)
        self.read_until(lambda: s.ended or s.reset is not None, timeout_s)
        return s

    def wait_closed(self, within_s):
        """Reads and records frames, answering none, until the server closes: (wall seconds waited,
        GOAWAYs that came meanwhile); TimeoutError if it is still open after within_s wall seconds."""
        t0 = time.monotonic()
        first_goaway = len(self.goaways)
        while True:
            f = self._next(t0 + within_s)
            if f is None:
                if self.closed:
                    return time.monotonic() - t0, self.goaways[first_goaway:]
                raise TimeoutError(f"still open after {within_s:.1f} s")
            self._record(f)


def get(port, path="/", tls=False, timeout_s=10.0):
    """One GET on a fresh connection: (status, body)."""
    with Conn(port, tls=tls, timeout_s=timeout_s) as conn:
        conn.start()
        conn.request(1, path)
        r = conn.response(1, timeout_s=timeout_s)
        return r.status, r.body
