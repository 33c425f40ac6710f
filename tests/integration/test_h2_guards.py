"""Guards around libh2o 2.2.5's HTTP/2 (issue 10): h2o's clock after a quiet spell (TLS handshakes,
h2c connections, Date of a held response), requests without :authority/host or with an empty :path,
the GOAWAY of a drain, connection-specific header fields (Mint/Finch's `connection: keep-alive`) and
HPACK decompression bombs. Every case runs on h2c (prior knowledge) and on h2 over TLS (ALPN "h2").
Frames are written and read here, HPACK by python3-hpack, except the bombs' header blocks, which no
encoder would make and are put together byte by byte."""
import email.utils
import signal
import socket
import ssl
import struct
import threading
import time

import hpack

import clients as c
from mockserver import SANITIZED, SLOWDOWN
from testcase import TlsServerTestCase

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
MAX_FRAME_BYTES = 16384
PROTOCOL_ERROR = 1


def frame(type_, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream_id) + payload


class Stream:
    def __init__(self):
        self.headers, self.body, self.ended, self.reset = {}, b"", False, None
        self.ended_at = None

    @property
    def status(self):
        return int(self.headers[":status"]) if ":status" in self.headers else None


class H2:
    """One HTTP/2 client connection over a real socket, h2c or TLS with ALPN h2. Requests are written as
    frames; responses, RST_STREAM, GOAWAY and the close are recorded as they are read."""

    def __init__(self, port, tls=False, timeout_s=10.0, upgrade=None):
        """upgrade=(path, body): start as HTTP/1.1 with `Upgrade: h2c` on a POST whose body follows the
        head 0.2 s later; the answer to it is stream 1."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s * SLOWDOWN)
        self.buf = b""
        if upgrade is not None:
            path, body = upgrade
            self.send(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                      f"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            time.sleep(0.2)
            self.send(body)
            while b"\r\n\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("closed before answering the Upgrade")
                self.buf += data
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101 "):
                raise AssertionError(f"no 101 to Upgrade: h2c: {head[:80]!r}")
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock)
            assert self.sock.selected_alpn_protocol() == "h2", self.sock.selected_alpn_protocol()
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.block, self.block_stream = b"", None
        self.streams, self.goaways, self.closed, self.settings_received = {}, [], False, False
        if upgrade is not None:
            self.streams[1] = Stream()
        # a large connection window: responses never wait on it
        self.send(PREFACE + frame(SETTINGS, 0, 0) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def send_block(self, stream_id, block, end_stream=True):
        """A header block as HEADERS plus as many CONTINUATION frames as it needs."""
        self.streams[stream_id] = Stream()
        chunks = [block[i:i + MAX_FRAME_BYTES] for i in range(0, len(block), MAX_FRAME_BYTES)] or [b""]
        out = []
        for i, chunk in enumerate(chunks):
            flags = (END_HEADERS if i == len(chunks) - 1 else 0) | (END_STREAM if i == 0 and end_stream else 0)
            out.append(frame(HEADERS if i == 0 else CONTINUATION, flags, stream_id, chunk))
        self.send(b"".join(out))

    def request(self, stream_id, path="/", headers=(), authority="127.0.0.1", method="GET", end_stream=True):
        fields = [(":method", method), (":scheme", "http"), (":path", path)]
        if authority is not None:
            fields.append((":authority", authority))
        self.send_block(stream_id, self.encoder.encode(fields + list(headers)), end_stream)

    def body_and_trailers(self, stream_id, body, trailers):
        self.send(frame(DATA, 0, stream_id, body))
        block = self.encoder.encode(list(trailers))
        self.send(frame(HEADERS, END_STREAM | END_HEADERS, stream_id, block))

    def _read_frame(self, deadline):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None  # the caller's predicate tells what was missing
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except (ConnectionResetError, ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                return None
            self.buf += data
        length = int.from_bytes(self.buf[:3], "big")
        type_, flags, sid = self.buf[3], self.buf[4], struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
        return type_, flags, sid, payload

    def _handle(self, type_, flags, sid, payload):
        stream = self.streams.get(sid)
        if type_ == SETTINGS and not flags & ACK:
            self.settings_received = True
            self.send(frame(SETTINGS, ACK, 0))
        elif type_ == PING and not flags & ACK:
            self.send(frame(PING, ACK, 0, payload))
        elif type_ == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaways.append((last & 0x7FFFFFFF, code, payload[8:]))
        elif type_ == RST_STREAM and stream is not None:
            stream.reset = struct.unpack(">I", payload)[0]
        elif type_ in (HEADERS, CONTINUATION):
            self.block += payload  # the server sends no padding or priority
            if type_ == HEADERS:
                self.block_stream, self.block_end_stream = sid, bool(flags & END_STREAM)
            if flags & END_HEADERS:
                fields = self.decoder.decode(self.block)
                self.block = b""
                target = self.streams.get(self.block_stream)
                if target is not None:
                    target.headers.update({k: v for k, v in fields})
                    if self.block_end_stream:
                        target.ended, target.ended_at = True, time.monotonic()
        elif type_ == DATA and stream is not None:
            stream.body += payload
            if payload:
                self.send(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(payload))))
            if flags & END_STREAM:
                stream.ended, stream.ended_at = True, time.monotonic()

    def read_until(self, predicate, timeout_s=10.0):
        """Reads frames until predicate() holds or the connection closes; returns predicate()."""
        deadline = time.monotonic() + timeout_s * SLOWDOWN
        while not predicate():
            if self.closed:
                break
            f = self._read_frame(deadline)
            if f is None:
                break
            self._handle(*f)
        return predicate()

    def response(self, stream_id, timeout_s=10.0):
        s = self.streams[stream_id]
        self.read_until(lambda: s.ended or s.reset is not None, timeout_s)
        return s


def worker_rss_bytes(server):
    """Resident memory of the server's worker processes (VmRSS summed)."""
    total = 0
    for pid in c.children(server.proc.pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def hpack_int(value, prefix_bits, first_byte_flags):
    """RFC 7541 5.1 integer with the given flag bits in the first octet."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out, value = [first_byte_flags | limit], value - limit
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(out + [value])


def hpack_literal(name, value, indexing):
    """A literal field with a literal (raw) name: with incremental indexing (6.2.1) or without (6.2.2)."""
    first = b"\x40" if indexing else b"\x00"
    return first + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def pseudo_prefix(path):
    """:method GET, :scheme http (static 2 and 6), :path and :authority as unindexed literals."""
    return b"\x82\x86" + b"\x04" + hpack_int(len(path), 7, 0) + path + b"\x01" + hpack_int(9, 7, 0) + b"127.0.0.1"


# h2o 2.2.5 decodes a cache-digest value (base64url of a Golomb-coded set) into 8 bytes per key: this
# one, 5 bits of N=31, 5 bits of P=0, then only one-bits (each one a key), is ~24,000 keys (~190 KiB).
CACHE_DIGEST_4000 = b"-D" + b"_" * 3998
REF_NEWEST = b"\xbe"  # indexed field 62: the newest dynamic-table entry
# What an attack may add to the workers' resident memory: the bombs below added 45-193 MiB before the
# guard. A few MiB are the read buffers of a 400 KB header block; under ASan, freed memory also sits
# in its quarantine and allocator caches, and every byte has shadow memory.
RSS_GROWTH_BOUND_BYTES = (32 if SANITIZED else 8) << 20


class H2GuardsTest(TlsServerTestCase):
    def both(self, *args, **kw):
        """A server with an h2c listener and a TLS listener; returns (server, [(label, port, tls)])."""
        srv, tls_port = self.tls_server(*args, **kw)
        return srv, [("h2c", srv.port, False), ("h2-tls", tls_port, True)]

    # ---- fault 1: h2o's clock after a quiet spell ----

    def test_connections_after_an_idle_pause_all_succeed(self):
        # h2o arms its timers from its own clock, which stood still while h2o had nothing to do. After
        # 11 quiet seconds, the TLS handshake timeout (10 s) armed at accept had already expired: the
        # first handshakes were dropped. On h2c, an Upgrade: h2c POST whose body came after its head
        # was dropped the same way (h2o's request timeout, --idle-timeout here); prior knowledge was
        # spared (h2o switches to HTTP/2 inside its own loop) and is run for completeness. One server
        # per kind, so that each burst meets an h2o that has not run since the pause.
        tls_port = self.both("--delay", "0", "--idle-timeout", "5s", workers=1)[1][1][1]
        h2c_port = self.both("--delay", "0", "--idle-timeout", "5s", workers=1)[1][0][1]
        upgrade_port = self.both("--delay", "0", "--idle-timeout", "5s", workers=1)[1][0][1]
        listeners = [("h2-tls", tls_port, True), ("h2c", h2c_port, False), ("h2c-upgrade", upgrade_port, False)]
        time.sleep(11)
        results = {}

        def one(label, port, tls, i):
            try:
                upgrade = (f"/after-idle/{i}", b"0123456789") if label == "h2c-upgrade" else None
                with H2(port, tls=tls, timeout_s=10, upgrade=upgrade) as conn:
                    if upgrade is None:
                        conn.request(1, f"/after-idle/{i}")
                    results[(label, i)] = conn.response(1).status
            except Exception as e:  # judged below
                results[(label, i)] = repr(e)

        threads = [threading.Thread(target=one, args=(label, port, tls, i)) for label, port, tls in listeners for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30 * SLOWDOWN)
        self.assertEqual(len(results), 30)
        self.assertEqual({key: r for key, r in results.items() if r != 200}, {})

    def test_date_of_a_held_response_is_when_it_was_sent(self):
        srv, listeners = self.both("--delay", "0")
        for label, port, tls in listeners:
            with H2(port, tls=tls) as conn:
                for sid, path in ((1, "/wait/100"), (3, "/wait/3000")):
                    conn.request(sid, path)
                    r = conn.response(sid, timeout_s=10)
                    received = time.time()
                    self.assertEqual(r.status, 200, label)
                    date = email.utils.parsedate_to_datetime(r.headers["date"]).timestamp()
                    # Date has whole seconds: it is at most 1 s before the moment it was written
                    self.assertLess(received - date, 1.5, (label, path, r.headers["date"]))
                    self.assertGreater(received - date, -0.5, (label, path, r.headers["date"]))

    # ---- fault 3: :authority/host and :path ----

    def test_missing_authority_and_empty_path_get_400_on_their_stream_only(self):
        srv, listeners = self.both("--delay", "0")
        for label, port, tls in listeners:
            with H2(port, tls=tls) as conn:
                conn.request(1, "/no-authority", authority=None)
                conn.request(3, "/host-only", authority=None, headers=[("host", "127.0.0.1")])
                conn.request(5, "", authority="127.0.0.1")
                conn.request(7, "/after")
                no_authority, host_only, empty_path, after = (conn.response(i) for i in (1, 3, 5, 7))
                self.assertEqual(no_authority.status, 400, label)
                self.assertIn(b":authority nor host", no_authority.body)
                self.assertEqual(host_only.status, 200, label)  # RFC 9113 8.3.1: host stands in for :authority
                self.assertEqual(empty_path.status, 400, label)
                self.assertIn(b"empty :path", empty_path.body)
                self.assertEqual(after.status, 200, label)
                # No :path at all is refused by h2o itself, before the handler: RST_STREAM
                # PROTOCOL_ERROR on that stream; the connection goes on.
                conn.send_block(9, conn.encoder.encode([(":method", "GET"), (":scheme", "http"), (":authority", "x")]))
                conn.request(11, "/still-open")
                self.assertEqual(conn.response(9).reset, PROTOCOL_ERROR, label)
                self.assertEqual(conn.response(11).status, 200, label)
                self.assertEqual(conn.goaways, [], label)
        doc = c.stats(srv)
        self.assertEqual(doc["protocol_violations"]["http2_missing_authority"], 2)
        self.assertEqual(doc["protocol_violations"]["http2_empty_path"], 2)
        self.assertEqual(doc["requests"]["by_code"]["4xx"], 4)

    # ---- fault 4: draining HTTP/2 ----

    def drain_with_held_stream(self, path, tls):
        srv, listeners = self.both("--delay", "0")
        label, port, tls = listeners[1 if tls else 0]
        with H2(port, tls=tls) as conn:
            conn.request(1, path)
            self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 1))
            srv.signal(signal.SIGTERM)
            conn.read_until(lambda: False, timeout_s=8)  # everything until the server closes
            r = conn.streams[1]
            self.assertTrue(conn.closed, label)
            self.assertEqual((r.status, r.body), (200, b"Hello world!\n"), label)
            # the last GOAWAY names the last stream h2o accepted, after the first one (2^31-1)
            self.assertGreaterEqual(len(conn.goaways), 1, label)
            self.assertEqual(conn.goaways[-1][:2], (1, 0), (label, conn.goaways))
        self.assertEqual(srv.wait_exit(10), 0, srv.output())

    def test_drain_sends_final_goaway_naming_the_last_stream(self):
        # h2o sends GOAWAY(2^31-1) at once and the final GOAWAY a second later. A response held past
        # that second leaves before the close; one that leaves earlier must not let the worker exit
        # (nothing held, no HTTP/1.1 connection) before the final GOAWAY is written.
        for tls in (False, True):
            for path in ("/wait/1500", "/wait/200"):
                self.drain_with_held_stream(path, tls)

    def test_drain_does_not_wait_for_a_connection_taken_on_after_it_began(self):
        # h2o 2.2.5 sends no GOAWAY to an HTTP/2 connection it takes on once the shutdown has begun
        # (here an h2c preface that was half sent at SIGTERM): waiting for it to close would hold the
        # exit until --drain-timeout.
        srv, listeners = self.both("--delay", "0", "--drain-timeout", "10s")
        with H2(srv.port) as old:
            old.request(1, "/wait/300")
            self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 1))
            late = socket.create_connection(("127.0.0.1", srv.port), timeout=10 * SLOWDOWN)
            late.sendall(PREFACE[:10])
            time.sleep(0.1)
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            time.sleep(0.1)
            late.sendall(PREFACE[10:] + frame(SETTINGS, 0, 0))
            self.assertEqual(old.response(1).status, 200)
            old.read_until(lambda: False, timeout_s=8)  # until the server closes
            self.assertEqual(srv.wait_exit(8), 0, srv.output())
            self.assertLess(time.monotonic() - t0, 3.0 * SLOWDOWN)  # h2o's second GOAWAY comes after 1 s
            self.assertEqual(old.goaways[-1][:2], (1, 0))
            late.close()

    # ---- fault 5: connection-specific header fields ----

    def test_connection_specific_fields_are_ignored_and_counted(self):
        srv, listeners = self.both("--delay", "0")
        ignored = [("connection", "keep-alive"), ("keep-alive", "timeout=5"), ("proxy-connection", "keep-alive"),
                   ("transfer-encoding", "chunked"), ("upgrade", "h2c")]
        for label, port, tls in listeners:
            with H2(port, tls=tls) as conn:
                # Mint/Finch: two streams in flight, one of them with `connection: keep-alive`
                conn.request(1, "/wait/300", headers=[("connection", "keep-alive")])
                conn.request(3, "/wait/300")
                self.assertEqual((conn.response(1).status, conn.response(3).status), (200, 200), (label, conn.goaways))
                for i, field in enumerate(ignored[1:]):
                    conn.request(5 + 2 * i, "/", headers=[field])
                    self.assertEqual(conn.response(5 + 2 * i).status, 200, (label, field))
                # `te: trailers` is allowed; any other te is malformed: 400 on that stream alone
                conn.request(21, "/", headers=[("te", "trailers")])
                conn.request(23, "/wait/200", headers=[("te", "gzip")])
                conn.request(25, "/wait/200")
                self.assertEqual(conn.response(21).status, 200, label)
                r = conn.response(23)
                self.assertEqual(r.status, 400, label)
                self.assertIn(b"te other than", r.body)
                self.assertEqual(conn.response(25).status, 200, label)
                self.assertEqual(conn.goaways, [], label)
        doc = c.stats(srv)
        self.assertEqual(doc["protocol_violations"]["http2_connection_specific_header"], 2 * len(ignored))
        self.assertEqual(doc["protocol_violations"]["http2_te_not_trailers"], 2)
        metrics = c.curl(srv.url + "/metrics").stdout
        self.assertIn('mockupstream_protocol_violations_total{kind="http2_connection_specific_header"} 10\n', metrics)
        self.assertIn('mockupstream_protocol_violations_total{kind="http2_te_not_trailers"} 2\n', metrics)

    # ---- fault 7: HPACK bombs ----

    def bomb_server(self):
        # Under ASan, freed memory waits in a quarantine (256 MiB by default) and would count as RSS.
        env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99:quarantine_size_mb=8"} if SANITIZED else None
        return self.both("--delay", "0", workers=1, env=env)

    def good_client_served(self, port, tls):
        with H2(port, tls=tls, timeout_s=5) as conn:
            t0 = time.monotonic()
            conn.request(1, "/good")
            self.assertEqual(conn.response(1, timeout_s=5).status, 200)
            return time.monotonic() - t0

    def test_cache_digest_bomb_is_refused_without_decoding(self):
        # One 4,000-byte cache-digest entry in the dynamic table and 1,023 one-byte references to it:
        # a 5 KB request. h2o decoded every one of them (~190 KiB each, +193 MiB).
        srv, listeners = self.bomb_server()
        for label, port, tls in listeners:
            before = worker_rss_bytes(srv)
            with H2(port, tls=tls) as conn:
                block = pseudo_prefix(b"/wait/3000") + hpack_literal(b"cache-digest", CACHE_DIGEST_4000, True) + REF_NEWEST * 1023
                t0 = time.monotonic()
                conn.send_block(1, block)
                r = conn.response(1)
                self.assertEqual(r.status, 431, (label, conn.goaways))
                self.assertLess(r.ended_at - t0, 1.0 * SLOWDOWN, label)  # at once, not after the 3 s delay
                self.assertIn(b"request header fields too large", r.body)
                grown = worker_rss_bytes(srv) - before
                self.assertLess(grown, RSS_GROWTH_BOUND_BYTES, (label, grown))
                self.assertLess(self.good_client_served(port, tls), 1.0 * SLOWDOWN)
                # the connection and its HPACK table survive: the entry is still referable
                conn.send_block(3, pseudo_prefix(b"/") + REF_NEWEST)
                self.assertEqual(conn.response(3).status, 200, label)
        self.assertEqual(c.stats(srv)["protocol_violations"]["http2_header_list_too_large"], 2)

    def test_cache_digest_within_limits_is_not_decoded(self):
        # 15 references to a 4,000-byte cache-digest stay under 64 KiB of fields, so the request is
        # served; h2o would have decoded each (~2.8 MiB per request, held for the whole delay).
        srv, listeners = self.bomb_server()
        for label, port, tls in listeners:
            before = worker_rss_bytes(srv)
            with H2(port, tls=tls) as conn:
                conn.send_block(1, pseudo_prefix(b"/wait/1500") + hpack_literal(b"cache-digest", CACHE_DIGEST_4000, True)
                                + REF_NEWEST * 14)
                for sid in range(3, 33, 2):
                    conn.send_block(sid, pseudo_prefix(b"/wait/1500") + REF_NEWEST * 15)
                self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 16), label)
                grown = worker_rss_bytes(srv) - before  # 16 requests held right now
                for sid in range(1, 33, 2):
                    self.assertEqual(conn.response(sid).status, 200, (label, sid))
                self.assertLess(grown, RSS_GROWTH_BOUND_BYTES, (label, grown))

    def test_reference_bomb_is_refused_at_once(self):
        # 4 requests of 400,000 one-byte references to one small entry (1.6 MB sent) held +191 MiB
        # for the whole delay.
        srv, listeners = self.bomb_server()
        for label, port, tls in listeners:
            before = worker_rss_bytes(srv)
            with H2(port, tls=tls) as conn:
                t0 = time.monotonic()
                conn.send_block(1, pseudo_prefix(b"/wait/3000") + hpack_literal(b"x-a", b"b", True) + REF_NEWEST * 400000)
                for sid in (3, 5, 7):
                    conn.send_block(sid, pseudo_prefix(b"/wait/3000") + REF_NEWEST * 400000)
                good_s = self.good_client_served(port, tls)
                for sid in (1, 3, 5, 7):
                    r = conn.response(sid)
                    self.assertEqual(r.status, 431, (label, sid, conn.goaways))
                    self.assertLess(r.ended_at - t0, 2.0 * SLOWDOWN, (label, sid))
                grown = worker_rss_bytes(srv) - before
                self.assertLess(grown, RSS_GROWTH_BOUND_BYTES, (label, grown))
                self.assertLess(good_s, 1.0 * SLOWDOWN, label)
                conn.send_block(9, pseudo_prefix(b"/") + REF_NEWEST)  # x-a: b is still entry 62
                self.assertEqual(conn.response(9).status, 200, label)
        doc = c.stats(srv)
        self.assertEqual(doc["protocol_violations"]["http2_header_list_too_large"], 8)
        self.assertEqual(doc["held"]["peak"], 0)  # never held for the delay

    def test_header_list_limits_match_http1(self):
        # 100 fields and 64 KiB of names and values pass, one more field or byte is 431; trailers
        # count with the fields of the head.
        srv, listeners = self.both("--delay", "0")
        prefix_bytes = len(":method") + 3 + len(":scheme") + 4 + len(":path") + 1 + len(":authority") + 9
        for label, port, tls in listeners:
            with H2(port, tls=tls) as conn:
                conn.request(1, "/", headers=[(f"x-{i}", "v") for i in range(100)])
                conn.request(3, "/", headers=[(f"x-{i}", "v") for i in range(101)])
                room = 64 * 1024 - prefix_bytes - len("x-big")
                conn.request(5, "/", headers=[("x-big", "v" * room)])
                conn.request(7, "/", headers=[("x-big", "v" * (room + 1))])
                self.assertEqual([conn.response(i).status for i in (1, 3, 5, 7)], [200, 431, 200, 431], label)
                for sid, trailer_count in ((9, 40), (11, 41)):
                    conn.request(sid, "/post", method="POST", headers=[(f"x-{i}", "v") for i in range(60)], end_stream=False)
                    conn.body_and_trailers(sid, b"body", [(f"x-t{i}", "v") for i in range(trailer_count)])
                self.assertEqual([conn.response(i).status for i in (9, 11)], [200, 431], label)
                self.assertEqual(conn.goaways, [], label)
