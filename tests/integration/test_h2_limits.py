"""HTTP/2 limits that h2o 2.2.5 does not keep by itself (server/h2o_limits.c, server/stderr_limit.c),
on both HTTP/2 listeners: h2c with prior knowledge and h2 over TLS (ALPN).

- Log flood: frames of an unknown type must not make the server log (h2o wrote one stderr line per
  frame) nor starve other clients; the flooding connection is closed with ENHANCE_YOUR_CALM.
- --request-timeout for HTTP/2: an unfinished header block, a request body never sent, a response
  never read (closed window, unread socket) and a TLS handshake that stops are closed after the
  request timeout, not the idle timeout; a CONTINUATION flood is closed at once; a CONTINUATION
  after GOAWAY does not hang the worker.
- --http2-max-concurrent-streams: advertised in SETTINGS and enforced, above and below h2o's 100.
- Expect: 100-continue is answered on HTTP/2; a header block larger than h2o can buffer gets 431 and
  GOAWAY, not RST_STREAM REFUSED_STREAM (which invites retries).
Hostile clients are raw frames (h2wire.py); well-behaved ones are curl, nghttp and h2load."""
import json
import multiprocessing
import os
import signal
import socket
import ssl
import struct
import time
import urllib.request

import clients as c
import h2wire as w
from mockserver import BIN, SLOWDOWN, free_port, run
from testcase import TlsServerTestCase

REQUEST_TIMEOUT_S = 2.0
# How late a stalled connection may be closed: the sweep runs every 0.5 s and looks back one sweep.
CLOSE_SLACK_S = 1.5
TIMEOUT_ARGS = ("--request-timeout", "2s", "--idle-timeout", "30s")


def flood_unknown_frames(host, port, tls, seconds, connections):
    """Child process: opens HTTP/2 connections and writes frames of an unknown type as fast as it can,
    reconnecting whenever the server closes one, for `seconds`."""
    class Target:
        pass
    target = Target()
    target.host, target.port = host, port
    junk = w.frame(0xFF, 0, 0) * 20000
    deadline = time.monotonic() + seconds
    opened = 0
    while time.monotonic() < deadline:
        try:
            conn = w.Conn(target, tls=tls, timeout_s=2)
            conn.start()
            opened += 1
            while time.monotonic() < deadline:
                conn.send(junk)
        except (OSError, ssl.SSLError):
            pass
    connections.value = opened


def stats_at(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10 * SLOWDOWN) as r:
        return json.loads(r.read())


class H2LimitsTest(TlsServerTestCase):
    def h2_server(self, *args, **kw):
        """A server with a cleartext and a TLS listener; returns it and [(label, tls, port)]."""
        srv, tls_port = self.tls_server(*args, **kw)
        return srv, [("h2c", False, srv.port), ("h2 over TLS", True, tls_port)]

    def assert_closed_at_request_timeout(self, conn, what):
        """The server closes `conn` one request timeout (not the idle timeout) after now."""
        try:
            elapsed, goaways = conn.wait_closed(REQUEST_TIMEOUT_S + CLOSE_SLACK_S * SLOWDOWN)
        except TimeoutError as e:
            self.fail(f"{what}: {e} (request timeout {REQUEST_TIMEOUT_S} s, idle timeout 30 s)")
        self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT_S - 0.1, what)
        return elapsed, goaways

    # ---- 8. log flood ----

    def test_unknown_frame_flood_neither_logs_nor_starves_others(self):
        srv, listeners = self.h2_server("--delay", "10ms", workers=1)
        for label, tls, port in listeners:
            with self.subTest(label):
                time.sleep(0.2)
                lines_before = srv.output().count("\n")
                opened = multiprocessing.Value("i", 0)
                flooder = multiprocessing.get_context("fork").Process(
                    target=flood_unknown_frames, args=(srv.host, port, tls, 3.0, opened), daemon=True)
                flooder.start()
                time.sleep(0.3)
                latencies = []
                with w.Conn(srv, tls=tls, port=port) as good:
                    good.start()
                    stream_id, until = 1, time.monotonic() + 2.5
                    while time.monotonic() < until:
                        t0 = time.monotonic()
                        good.request(stream_id, "/")
                        status, _, body, _ = good.response(stream_id, timeout_s=30)
                        latencies.append(time.monotonic() - t0)
                        self.assertEqual((status, body), (200, c.BODY))
                        stream_id += 2
                flooder.join(10 * SLOWDOWN)
                time.sleep(1.2)  # a summary line would come at the end of its one-second window
                added = srv.output().count("\n") - lines_before
                latencies.sort()
                p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
                # h2o 2.2.5 wrote ~1.3 million lines in those 3 s and the good client's p50 was 2.7 s
                self.assertLess(added, 60, srv.output()[-2000:])
                self.assertLess(p99, 0.100 * SLOWDOWN, (p50, p99, len(latencies)))
                self.assertGreaterEqual(len(latencies), 20)
                # the flooding connections were closed, so the flooder had to reconnect
                self.assertGreaterEqual(opened.value, 2)

    def test_unknown_frames_past_the_bound_end_the_connection(self):
        srv, listeners = self.h2_server("--delay", "0", workers=1)
        for label, tls, port in listeners:
            with self.subTest(label):
                lines_before = srv.output().count("\n")
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.request(1, "/")  # a real request first: it is answered
                    status, _, _, _ = conn.response(1)
                    self.assertEqual(status, 200)
                    try:
                        conn.send(w.frame(0xFF, 0, 0) * 30000)
                    except OSError:
                        pass  # closed while sending: what is checked next
                    _, goaways = conn.wait_closed(5 * SLOWDOWN)
                self.assertIn((1, "ENHANCE_YOUR_CALM", "too many frames without effect"), goaways)
                # a few unknown frames are ignored, as RFC 9113 4.1 requires
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.send(w.frame(0xFF, 0, 0) * 100 + w.frame(0x21, 0, 1, b"extension payload"))
                    conn.request(1, "/")
                    self.assertEqual(conn.response(1)[0], 200)
                time.sleep(1.2)
                self.assertLess(srv.output().count("\n") - lines_before, 5, srv.output()[-2000:])

    def test_h2c_upgrade_then_flood_is_guarded(self):
        # HTTP/1.1 Upgrade: h2c, with the flood in the same write as the request: h2o parses it when
        # the 101 is written, before any loop iteration could put a guard on the new connection.
        srv = self.server("--delay", "0", workers=1)
        lines_before = srv.output().count("\n")
        with socket.create_connection((srv.host, srv.port), timeout=10 * SLOWDOWN) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                      b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + w.PREFACE + w.settings_frame() + w.frame(0xFF, 0, 0) * 30000)
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        self.assertIn(b"HTTP/1.1 101", data)
        self.assertIn(b"too many frames without effect", data)  # the GOAWAY's debug text
        time.sleep(1.2)
        self.assertLess(srv.output().count("\n") - lines_before, 5, srv.output()[-2000:])

    # ---- 9. stalled clients ----

    def test_unfinished_header_block_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        for label, tls, port in listeners:
            with self.subTest(label):
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.send(w.frame(w.HEADERS, w.END_STREAM, 1, conn.header_block("/")))  # no END_HEADERS
                    _, goaways = self.assert_closed_at_request_timeout(conn, f"{label}: unfinished header block")
                    self.assertIn((1, "NO_ERROR", "request timeout"), goaways)

    def test_request_body_never_sent_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        for label, tls, port in listeners:
            for sent in (b"", b"0123456789"):
                with self.subTest(label, body_sent=len(sent)):
                    with w.Conn(srv, tls=tls, port=port) as conn:
                        conn.start()
                        conn.request(1, "/", method="POST", end_stream=False, extra=[("content-length", "100")])
                        if sent:
                            conn.send(w.frame(w.DATA, 0, 1, sent))
                        _, goaways = self.assert_closed_at_request_timeout(conn, f"{label}: body never sent")
                        self.assertIn((1, "NO_ERROR", "request timeout"), goaways)

    def test_stalled_request_does_not_cut_other_streams(self):
        # The connection stops taking streams at the request timeout (GOAWAY), but a response already
        # held for another stream is still delivered before it closes.
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        for label, tls, port in listeners:
            with self.subTest(label):
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.request(1, "/wait/3000")
                    conn.request(3, "/", method="POST", end_stream=False, extra=[("content-length", "5")])
                    t0 = time.monotonic()
                    status, _, body, others = conn.response(1, timeout_s=10)
                    self.assertEqual((status, body), (200, c.BODY))
                    self.assertGreaterEqual(time.monotonic() - t0, 2.9)
                    self.assertIn((3, "NO_ERROR", "request timeout"), [f.goaway() for f in others if f.type == w.GOAWAY])
                    conn.wait_closed(CLOSE_SLACK_S * SLOWDOWN)

    def test_closed_flow_control_window_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        for label, tls, port in listeners:
            with self.subTest(label):
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start({w.SETTINGS_INITIAL_WINDOW_SIZE: 0})  # the response body can never be sent
                    conn.request(1, "/")
                    self.assert_closed_at_request_timeout(conn, f"{label}: window never opened")

    def test_unread_socket_is_closed_at_request_timeout(self):
        stats_port = free_port()
        srv, listeners = self.h2_server("--delay", "0", "--body-size", "16m", "--stats-listen", f"127.0.0.1:{stats_port}",
                                        *TIMEOUT_ARGS)
        for label, tls, port in listeners:
            with self.subTest(label):
                kind = "tls" if tls else "http"
                with w.Conn(srv, tls=tls, port=port, rcvbuf_bytes=4096) as conn:
                    # windows wide open: only the socket, never read, can hold the response back
                    conn.start({w.SETTINGS_INITIAL_WINDOW_SIZE: 0x7FFFFFFF})
                    conn.send(w.frame(w.WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF - 65535)))
                    conn.request(1, "/")
                    t0 = time.monotonic()
                    open_now = lambda: stats_at(stats_port)["connections"]["by_listener"][kind]["open"]
                    self.assertEqual(open_now(), 1)
                    deadline = t0 + REQUEST_TIMEOUT_S + CLOSE_SLACK_S * SLOWDOWN
                    while open_now() != 0 and time.monotonic() < deadline:
                        time.sleep(0.05)
                    elapsed = time.monotonic() - t0
                    closed = open_now() == 0
                    self.assertTrue(closed, f"{label}: still open after {elapsed:.1f} s")
                    self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT_S - 0.1)

    def test_continuation_flood_is_closed_at_once(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        for label, tls, port in listeners:
            with self.subTest(label):
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.send(w.frame(w.HEADERS, w.END_STREAM, 1, conn.header_block("/")))
                    try:
                        conn.send(w.frame(w.CONTINUATION, 0, 1) * 10000)
                    except OSError:
                        pass
                    elapsed, goaways = conn.wait_closed(1.0 * SLOWDOWN)
                    self.assertIn((1, "ENHANCE_YOUR_CALM", "too many CONTINUATION frames"), goaways)
                self.assertEqual(w.get(srv, tls=tls, port=port), (200, c.BODY))  # the worker is fine

    def test_continuation_after_goaway_does_not_hang_the_worker(self):
        # h2o 2.2.5 answers a CONTINUATION received after its GOAWAY with "0 bytes consumed" and its
        # parse loop spins on it forever; and it ends the connection (PROTOCOL_ERROR, responses still
        # owed lost) on the CONTINUATION of a stream it ignored after its GOAWAY. Reached here by a
        # drain (SIGTERM: GOAWAY, and after 1 s a final GOAWAY) while a header block is open.
        for tls in (False, True):
            with self.subTest(tls=tls):
                srv, listeners = self.h2_server("--delay", "0", workers=1)
                _, _, port = listeners[1 if tls else 0]
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.request(1, "/wait/2500")
                    conn.send(w.frame(w.HEADERS, w.END_STREAM, 3, conn.header_block("/")))  # no END_HEADERS
                    time.sleep(0.2)
                    srv.signal(signal.SIGTERM)
                    goaways = []
                    deadline = time.monotonic() + 5 * SLOWDOWN
                    while len(goaways) < 2 and time.monotonic() < deadline:
                        f = conn.read_frame(5)
                        self.assertIsNotNone(f, "closed before the final GOAWAY")
                        if f.type == w.GOAWAY:
                            goaways.append(f.goaway())
                    self.assertEqual(goaways[-1][0], 3, goaways)
                    conn.send(w.frame(w.CONTINUATION, w.END_HEADERS, 3))
                    block = conn.header_block("/late")
                    conn.send(w.frame(w.HEADERS, w.END_STREAM, 5, block[:3]) + w.frame(w.CONTINUATION, w.END_HEADERS, 5, block[3:]))
                    conn.send(w.frame(w.PING, 0, 0, b"12345678"))
                    status, _, body, others = conn.response(1, timeout_s=5)
                    self.assertEqual((status, body), (200, c.BODY))
                    self.assertIn((w.PING, w.ACK), [(f.type, f.flags) for f in others])
                    self.assertEqual([g for g in (f.goaway() for f in others if f.type == w.GOAWAY) if g[1] != "NO_ERROR"], [])
                self.assertEqual(srv.wait_exit(10), 0, srv.output()[-2000:])

    def test_tls_handshake_that_stops_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        _, _, port = listeners[1]
        ctx = w.tls_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        with socket.create_connection(("127.0.0.1", port), timeout=10 * SLOWDOWN) as s:
            s.sendall(outgoing.read())  # a ClientHello offering h2, and then nothing
            t0 = time.monotonic()
            s.settimeout(REQUEST_TIMEOUT_S + CLOSE_SLACK_S * SLOWDOWN)
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                self.fail(f"handshake still open after {time.monotonic() - t0:.1f} s (h2o's default is 10 s)")
            elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT_S - 0.1)

    def test_request_timeout_spares_idle_and_held_connections(self):
        # Only an unfinished request or an unread response counts: an idle connection and a response
        # held for longer than the request timeout are left alone.
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        for label, tls, port in listeners:
            with self.subTest(label):
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.request(1, "/wait/3000")
                    self.assertEqual(conn.response(1, timeout_s=10)[0], 200)
                    time.sleep(REQUEST_TIMEOUT_S + 1.0)
                    conn.request(3, "/")
                    self.assertEqual(conn.response(3)[0], 200)

    # ---- 6. concurrent streams ----

    def advertised_max_streams(self, srv, tls, port):
        with w.Conn(srv, tls=tls, port=port) as conn:
            conn.start()
            values = {}
            while True:
                f = conn.read_frame(5)
                self.assertIsNotNone(f)
                if f.type == w.SETTINGS:
                    if f.flags & w.ACK:
                        return values.get(w.SETTINGS_MAX_CONCURRENT_STREAMS)
                    values.update(w.parse_settings(f.payload))
                    conn.send(w.frame(w.SETTINGS, w.ACK, 0))

    def test_max_concurrent_streams_is_advertised(self):
        for flag, expected in ((None, 128), ("300", 300), ("100", 100), ("20", 20)):
            args = ("--delay", "0") + (("--http2-max-concurrent-streams", flag) if flag else ())
            srv, listeners = self.h2_server(*args)
            for label, tls, port in listeners:
                with self.subTest(label, flag=flag):
                    self.assertEqual(self.advertised_max_streams(srv, tls, port), expected)
            srv.stop()
        srv = self.server("--delay", "0", env={"MOCKUPSTREAM_HTTP2_MAX_CONCURRENT_STREAMS": "1000"})
        r = run(["nghttp", "-v", "--timeout", str(int(10 * SLOWDOWN)), srv.url + "/"], timeout_s=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        # h2o's own SETTINGS (100), then the configured value in a second SETTINGS frame
        recv = r.stdout[r.stdout.index("recv SETTINGS"):]
        self.assertIn("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1000", recv)

    def open_streams(self, srv, tls, port, count):
        """Opens `count` streams of /wait/1000 at once, ignoring SETTINGS: (answered 200, refused)."""
        with w.Conn(srv, tls=tls, port=port) as conn:
            conn.start()
            conn.send(b"".join(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 1 + 2 * i, conn.header_block("/wait/1000"))
                               for i in range(count)))
            ok, refused, ended = 0, [], set()
            deadline = time.monotonic() + 15 * SLOWDOWN
            while len(ended) < count and time.monotonic() < deadline:
                f = conn.read_frame(10)
                self.assertIsNotNone(f, "connection closed")
                if f.type in (w.HEADERS, w.CONTINUATION):
                    conn.decoder.decode(f.payload)
                if f.type == w.SETTINGS and not f.flags & w.ACK:
                    conn.send(w.frame(w.SETTINGS, w.ACK, 0))
                if f.type == w.DATA and f.flags & w.END_STREAM:
                    ok += 1
                    ended.add(f.stream_id)
                if f.type == w.RST_STREAM:
                    self.assertEqual(f.error_code(), "REFUSED_STREAM")
                    refused.append(f.stream_id)
                    ended.add(f.stream_id)
            return ok, refused

    def test_max_concurrent_streams_is_enforced(self):
        for limit in (150, 20):
            srv, listeners = self.h2_server("--delay", "0", "--http2-max-concurrent-streams", str(limit))
            for label, tls, port in listeners:
                with self.subTest(label, limit=limit):
                    ok, refused = self.open_streams(srv, tls, port, limit + 1)
                    self.assertEqual((ok, refused), (limit, [1 + 2 * limit]))
            srv.stop()

    def test_h2load_with_more_streams_than_h2o_allowed(self):
        srv = self.server("--delay", "0", "--http2-max-concurrent-streams", "200", workers=1)
        r = run(["h2load", "-n", "1000", "-c", "1", "-m", "200", srv.url + "/wait/200"], timeout_s=60)
        self.assertIn("1000 succeeded, 0 failed, 0 errored, 0 timeout", r.stdout)
        self.assertEqual(c.stats(srv)["held"]["peak"], 200)  # h2o alone: 100

    def test_max_concurrent_streams_bad_values(self):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MOCKUPSTREAM_")}
        for args, env in ((("--http2-max-concurrent-streams", "0"), None), (("--http2-max-concurrent-streams", "16385"), None),
                          (("--http2-max-concurrent-streams", "12x"), None), ((), {"MOCKUPSTREAM_HTTP2_MAX_CONCURRENT_STREAMS": "-1"})):
            with self.subTest(args=args, env=env):
                environment = dict(clean, **(env or {}))
                p = run([BIN, "--listen", f"127.0.0.1:{free_port()}", "--workers", "1"] + list(args), env=environment, timeout_s=5)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                self.assertIn("HTTP2_MAX_CONCURRENT_STREAMS" if env else "--http2-max-concurrent-streams", p.stderr)
                self.assertIn("from 1 to 16384", p.stderr)
        p = run([BIN, "--help"], env=clean, timeout_s=5)
        self.assertIn("--http2-max-concurrent-streams N", p.stdout)
        self.assertIn("MOCKUPSTREAM_HTTP2_MAX_CONCURRENT_STREAMS, default 128", p.stdout)

    # ---- 11. Expect: 100-continue, oversized header blocks ----

    def test_expect_100_continue_is_answered(self):
        srv, listeners = self.h2_server("--delay", "0")
        for label, tls, port in listeners:
            with self.subTest(label):
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    conn.request(1, "/", method="POST", end_stream=False,
                                 extra=[("content-length", "5"), ("expect", "100-continue")])
                    while True:  # the interim response comes before any byte of the body is sent
                        f = conn.read_frame(1.0)
                        self.assertIsNotNone(f)
                        if f.type == w.HEADERS:
                            self.assertEqual(conn.decoder.decode(f.payload), [(":status", "100")])
                            self.assertFalse(f.flags & w.END_STREAM)
                            break
                    conn.send(w.frame(w.DATA, w.END_STREAM, 1, b"hello"))
                    status, _, body, _ = conn.response(1)
                    self.assertEqual((status, body), (200, c.BODY))
        # curl waits up to 1 s for the 100 before sending the body; it gets it now
        r = c.curl("-v", "--http2-prior-knowledge", "-H", "Expect: 100-continue", "--data-binary", "@-",
                   "-o", "/dev/null", "-w", "%{http_code}", srv.url + "/", input="x" * 300000)
        self.assertEqual(r.stdout, "200", r.stderr)
        self.assertIn("< HTTP/2 100", r.stderr)
        self.assertNotIn("Done waiting for 100-continue", r.stderr)

    def test_header_block_too_large_to_buffer_gets_431(self):
        srv, listeners = self.h2_server("--delay", "0")
        for label, tls, port in listeners:
            with self.subTest(label):
                with w.Conn(srv, tls=tls, port=port) as conn:
                    conn.start()
                    value = b"v" * 450000  # above h2o's buffer for a header block (H2O_MAX_REQLEN, 417,792)
                    length = bytes([0x7F]) + bytes(_hpack_int_tail(len(value) - 127))
                    # "literal never indexed, new name": the client's HPACK table is left as it was
                    block = conn.header_block("/") + b"\x10\x05x-big" + length + value
                    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
                    frames = [w.frame(w.HEADERS, w.END_STREAM, 1, chunks[0])]
                    frames += [w.frame(w.CONTINUATION, w.END_HEADERS if i == len(chunks) - 1 else 0, 1, chunk)
                               for i, chunk in enumerate(chunks[1:], 1)]
                    try:
                        conn.send(b"".join(frames))
                    except OSError:
                        pass
                    status, _, body, others = conn.response(1)  # h2o alone: RST_STREAM REFUSED_STREAM
                    self.assertEqual(status, 431, body)
                    goaways = [f.goaway() for f in others if f.type == w.GOAWAY]
                    self.assertEqual(goaways, [(1, "COMPRESSION_ERROR", "header block too large")])
                    conn.wait_closed(5 * SLOWDOWN)
                self.assertEqual(w.get(srv, tls=tls, port=port), (200, c.BODY))


def _hpack_int_tail(n):
    """The continuation bytes of an HPACK integer after a full prefix (RFC 7541 5.1)."""
    out = []
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    out.append(n)
    return out
