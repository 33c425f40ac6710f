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
Hostile clients are raw frames (tests/lib/h2frames.py); well-behaved ones are curl, nghttp and h2load.
Cases that wait for a timeout run on both listeners at once (at_once), each on its own connection."""
import multiprocessing
import signal
import time

import clients as c
import h2frames as h2
from mockserver import BIN, SLOWDOWN, clean_env, free_port, run
from testcase import TlsServerTestCase

REQUEST_TIMEOUT_S = 2.0
# How late a stalled connection may be closed: the sweep runs every 0.5 s and looks back one sweep.
CLOSE_SLACK_S = 1.5
TIMEOUT_ARGS = ("--request-timeout", "2s", "--idle-timeout", "30s")


def flood_unknown_frames(port, tls, seconds, connections):
    """Child process: opens HTTP/2 connections and writes frames of an unknown type as fast as it can,
    reconnecting whenever the server closes one, for `seconds`."""
    junk = h2.frame(0xFF, 0, 0) * 20000
    deadline = time.monotonic() + seconds
    opened = 0
    while time.monotonic() < deadline:
        try:
            conn = h2.Conn(port, tls=tls, timeout_s=2)
            conn.start()
            opened += 1
            while time.monotonic() < deadline:
                conn.send(junk)
        except OSError:
            pass
    connections.value = opened


class H2LimitsTest(TlsServerTestCase):
    def assert_closed_at_request_timeout(self, conn, what):
        """The server closes `conn` one request timeout (not the idle timeout) after noh2."""
        try:
            elapsed, goaways = conn.wait_closed(REQUEST_TIMEOUT_S + CLOSE_SLACK_S * SLOWDOWN)
        except TimeoutError as e:
            self.fail(f"{what}: {e} (request timeout {REQUEST_TIMEOUT_S} s, idle timeout 30 s)")
        self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT_S - 0.1, what)
        return elapsed, goaways

    # ---- 8. log flood ----

    def test_unknown_frame_flood_neither_logs_nor_starves_others(self):
        srv, listeners = self.h2_server("--delay", "10ms", workers=1)
        for label, port, tls in listeners:
            with self.subTest(label):
                time.sleep(0.2)
                lines_before = srv.output().count("\n")
                opened = multiprocessing.Value("i", 0)
                flooder = multiprocessing.get_context("fork").Process(
                    target=flood_unknown_frames, args=(port, tls, 3.0, opened), daemon=True)
                flooder.start()
                time.sleep(0.3)
                latencies = []
                with h2.Conn(port, tls=tls) as good:
                    good.start()
                    stream_id, until = 1, time.monotonic() + 2.5
                    while time.monotonic() < until:
                        t0 = time.monotonic()
                        good.request(stream_id, "/")
                        r = good.response(stream_id, timeout_s=30)
                        latencies.append(time.monotonic() - t0)
                        self.assertEqual((r.status, r.body), (200, c.BODY), r)
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
        for label, port, tls in listeners:
            with self.subTest(label):
                lines_before = srv.output().count("\n")
                with h2.Conn(port, tls=tls) as conn:
                    conn.start()
                    conn.request(1, "/")  # a real request first: it is answered
                    self.assertEqual(conn.response(1).status, 200)
                    try:
                        conn.send(h2.frame(0xFF, 0, 0) * 30000)
                    except OSError:
                        pass  # closed while sending: what is checked next
                    _, goaways = conn.wait_closed(5 * SLOWDOWN)
                self.assertIn((1, "ENHANCE_YOUR_CALM", "too many frames without effect"), goaways)
                # a few unknown frames are ignored, as RFC 9113 4.1 requires
                with h2.Conn(port, tls=tls) as conn:
                    conn.start()
                    conn.send(h2.frame(0xFF, 0, 0) * 100 + h2.frame(0x21, 0, 1, b"extension payload"))
                    conn.request(1, "/")
                    self.assertEqual(conn.response(1).status, 200)
                time.sleep(1.2)
                self.assertLess(srv.output().count("\n") - lines_before, 5, srv.output()[-2000:])

    def test_h2c_upgrade_then_flood_is_guarded(self):
        # HTTP/1.1 Upgrade: h2c, with the flood in the same write as the request: h2o parses it when
        # the 101 is written, before any loop iteration could put a guard on the new connection.
        srv = self.server("--delay", "0", workers=1)
        lines_before = srv.output().count("\n")
        with c.Conn.to(srv) as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                      b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + h2.PREFACE + h2.settings_frame() + h2.frame(0xFF, 0, 0) * 30000)
            data = conn.read_to_close()
        self.assertIn(b"HTTP/1.1 101", data)
        self.assertIn(b"too many frames without effect", data)  # the GOAWAY's debug text
        time.sleep(1.2)
        self.assertLess(srv.output().count("\n") - lines_before, 5, srv.output()[-2000:])

    # ---- 9. stalled clients ----

    def test_unfinished_header_block_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)

        def check(label, port, tls):
            with h2.Conn(port, tls=tls) as conn:
                conn.start()
                conn.send(h2.frame(h2.HEADERS, h2.END_STREAM, 1, conn.header_block("/")))  # no END_HEADERS
                _, goaways = self.assert_closed_at_request_timeout(conn, f"{label}: unfinished header block")
                self.assertIn((1, "NO_ERROR", "request timeout"), goaways)
        self.at_once(check, listeners)

    def test_request_body_never_sent_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)

        def check(label, port, tls, sent):
            with h2.Conn(port, tls=tls) as conn:
                conn.start()
                conn.request(1, "/", method="POST", end_stream=False, headers=[("content-length", "100")])
                if sent:
                    conn.send(h2.frame(h2.DATA, 0, 1, sent))
                _, goaways = self.assert_closed_at_request_timeout(conn, label)
                self.assertIn((1, "NO_ERROR", "request timeout"), goaways)
        self.at_once(check, [(f"{label}: body never sent, {len(sent)} bytes of it sent", port, tls, sent)
                             for label, port, tls in listeners for sent in (b"", b"0123456789")])

    def test_stalled_request_does_not_cut_other_streams(self):
        # The connection stops taking streams at the request timeout (GOAWAY), but a response already
        # held for another stream is still delivered before it closes.
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)

        def check(label, port, tls):
            with h2.Conn(port, tls=tls) as conn:
                conn.start()
                conn.request(1, "/wait/3000")
                conn.request(3, "/", method="POST", end_stream=False, headers=[("content-length", "5")])
                t0 = time.monotonic()
                r = conn.response(1, timeout_s=10)
                self.assertEqual((r.status, r.body), (200, c.BODY), r)
                self.assertGreaterEqual(time.monotonic() - t0, 2.9)
                self.assertIn((3, "NO_ERROR", "request timeout"), conn.goaways)
                conn.wait_closed(CLOSE_SLACK_S * SLOWDOWN)
        self.at_once(check, listeners)

    def test_closed_flow_control_window_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)

        def check(label, port, tls):
            with h2.Conn(port, tls=tls) as conn:
                conn.start({h2.SETTINGS_INITIAL_WINDOW_SIZE: 0})  # the response body can never be sent
                conn.request(1, "/")
                self.assert_closed_at_request_timeout(conn, f"{label}: window never opened")
        self.at_once(check, listeners)

    def test_unread_socket_is_closed_at_request_timeout(self):
        stats_port = free_port()
        srv, listeners = self.h2_server("--delay", "0", "--body-size", "16m", "--stats-listen", f"127.0.0.1:{stats_port}",
                                        *TIMEOUT_ARGS)

        def check(label, port, tls):
            kind = "tls" if tls else "http"  # each listener's own count: the two cases run at once
            with h2.Conn(port, tls=tls, rcvbuf_bytes=4096) as conn:
                # windows wide open: only the socket, never read, can hold the response back
                conn.start({h2.SETTINGS_INITIAL_WINDOW_SIZE: 0x7FFFFFFF})
                conn.send(h2.window_update_frame(0, 0x7FFFFFFF - 65535))
                conn.request(1, "/")
                t0 = time.monotonic()
                open_now = lambda: c.stats(f"http://127.0.0.1:{stats_port}")["connections"]["by_listener"][kind]["open"]
                self.assertEqual(open_now(), 1)
                deadline = t0 + REQUEST_TIMEOUT_S + CLOSE_SLACK_S * SLOWDOWN
                while open_now() != 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                elapsed = time.monotonic() - t0
                closed = open_now() == 0
                self.assertTrue(closed, f"{label}: still open after {elapsed:.1f} s")
                self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT_S - 0.1)
        self.at_once(check, listeners)

    def test_continuation_flood_is_closed_at_once(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        for label, port, tls in listeners:
            with self.subTest(label):
                with h2.Conn(port, tls=tls) as conn:
                    conn.start()
                    conn.send(h2.frame(h2.HEADERS, h2.END_STREAM, 1, conn.header_block("/")))
                    try:
                        conn.send(h2.frame(h2.CONTINUATION, 0, 1) * 10000)
                    except OSError:
                        pass
                    elapsed, goaways = conn.wait_closed(1.0 * SLOWDOWN)
                    self.assertIn((1, "ENHANCE_YOUR_CALM", "too many CONTINUATION frames"), goaways)
                self.assertEqual(h2.get(port, tls=tls), (200, c.BODY))  # the worker is fine

    def test_continuation_after_goaway_does_not_hang_the_worker(self):
        # h2o 2.2.5 answers a CONTINUATION received after its GOAWAY with "0 bytes consumed" and its
        # parse loop spins on it forever; and it ends the connection (PROTOCOL_ERROR, responses still
        # owed lost) on the CONTINUATION of a stream it ignored after its GOAWAY. Reached here by a
        # drain (SIGTERM: GOAWAY, and after 1 s a final GOAWAY) while a header block is open. One
        # server per listener (each is drained), both cases at once.
        servers = {tls: self.h2_server("--delay", "0", workers=1) for tls in (False, True)}

        def check(label, tls):
            srv, listeners = servers[tls]
            _, port, _ = listeners[1 if tls else 0]
            with h2.Conn(port, tls=tls) as conn:
                conn.start()
                conn.request(1, "/wait/2500")
                conn.send(h2.frame(h2.HEADERS, h2.END_STREAM, 3, conn.header_block("/")))  # no END_HEADERS
                time.sleep(0.2)
                srv.signal(signal.SIGTERM)
                goaways = []
                deadline = time.monotonic() + 5 * SLOWDOWN
                while len(goaways) < 2 and time.monotonic() < deadline:
                    f = conn.read_frame(5)
                    self.assertIsNotNone(f, "closed before the final GOAWAY")
                    if f.type == h2.GOAWAY:
                        goaways.append(f.goaway())
                self.assertEqual(goaways[-1][0], 3, goaways)
                conn.send(h2.frame(h2.CONTINUATION, h2.END_HEADERS, 3))
                block = conn.header_block("/late")
                conn.send(h2.frame(h2.HEADERS, h2.END_STREAM, 5, block[:3]) + h2.frame(h2.CONTINUATION, h2.END_HEADERS, 5, block[3:]))
                conn.send(h2.frame(h2.PING, 0, 0, b"12345678"))
                r = conn.response(1, timeout_s=5)
                self.assertEqual((r.status, r.body), (200, c.BODY), r)
                self.assertIn((h2.PING, h2.ACK), [(f.type, f.flags) for f in conn.frames])
                self.assertEqual([g for g in conn.goaways if g[1] != "NO_ERROR"], [])
            self.assertEqual(srv.wait_exit(10), 0, srv.output()[-2000:])
        self.at_once(check, [("h2c", False), ("h2-tls", True)])

    def test_tls_handshake_that_stops_is_closed_at_request_timeout(self):
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)
        _, port, _ = listeners[1]
        with c.Conn("127.0.0.1", port) as conn:
            conn.send(c.client_hello_bytes(["h2"]))  # a ClientHello offering h2, and then nothing
            try:
                elapsed = conn.wait_closed(REQUEST_TIMEOUT_S + CLOSE_SLACK_S * SLOWDOWN)
            except TimeoutError as e:
                self.fail(f"handshake {e} (h2o's default is 10 s)")
        self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT_S - 0.1)

    def test_request_timeout_spares_idle_and_held_connections(self):
        # Only an unfinished request or an unread response counts: an idle connection and a response
        # held for longer than the request timeout are left alone.
        srv, listeners = self.h2_server("--delay", "0", *TIMEOUT_ARGS)

        def check(label, port, tls):
            with h2.Conn(port, tls=tls) as conn:
                conn.start()
                conn.request(1, "/wait/3000")
                self.assertEqual(conn.response(1, timeout_s=10).status, 200)
                time.sleep(REQUEST_TIMEOUT_S + 1.0)
                conn.request(3, "/")
                self.assertEqual(conn.response(3).status, 200)
        self.at_once(check, listeners)

    # ---- 6. concurrent streams ----

    def advertised_max_streams(self, port, tls):
        with h2.Conn(port, tls=tls) as conn:
            conn.start()
            values = {}
            while True:
                f = conn.read_frame(5)
                self.assertIsNotNone(f)
                if f.type == h2.SETTINGS:
                    if f.flags & h2.ACK:
                        return values.get(h2.SETTINGS_MAX_CONCURRENT_STREAMS)
                    values.update(h2.parse_settings(f.payload))
                    conn.send(h2.frame(h2.SETTINGS, h2.ACK, 0))

    def test_max_concurrent_streams_is_advertised(self):
        for flag, expected in ((None, 128), ("300", 300), ("100", 100), ("20", 20)):
            args = ("--delay", "0") + (("--http2-max-concurrent-streams", flag) if flag else ())
            srv, listeners = self.h2_server(*args)
            for label, port, tls in listeners:
                with self.subTest(label, flag=flag):
                    self.assertEqual(self.advertised_max_streams(port, tls), expected)
            srv.stop()
        srv = self.server("--delay", "0", env={"MOCKUPSTREAM_HTTP2_MAX_CONCURRENT_STREAMS": "1000"})
        r = c.nghttp("-v", srv.url + "/")
        self.assertEqual(r.returncode, 0, r.stderr)
        # h2o's own SETTINGS (100), then the configured value in a second SETTINGS frame
        recv = r.stdout[r.stdout.index("recv SETTINGS"):]
        self.assertIn("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1000", recv)

    def open_streams(self, port, tls, count):
        """Opens `count` streams of /wait/1000 at once, ignoring SETTINGS: (answered 200, refused)."""
        with h2.Conn(port, tls=tls) as conn:
            conn.start()
            conn.send(b"".join(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1 + 2 * i, conn.header_block("/wait/1000"))
                               for i in range(count)))
            ok, refused, ended = 0, [], set()
            deadline = time.monotonic() + 15 * SLOWDOWN
            while len(ended) < count and time.monotonic() < deadline:
                f = conn.read_frame(10)
                self.assertIsNotNone(f, "connection closed")
                if f.type in (h2.HEADERS, h2.CONTINUATION):
                    conn.decoder.decode(f.payload)
                if f.type == h2.SETTINGS and not f.flags & h2.ACK:
                    conn.send(h2.frame(h2.SETTINGS, h2.ACK, 0))
                if f.type == h2.DATA and f.flags & h2.END_STREAM:
                    ok += 1
                    ended.add(f.stream_id)
                if f.type == h2.RST_STREAM:
                    self.assertEqual(f.error_code(), "REFUSED_STREAM")
                    refused.append(f.stream_id)
                    ended.add(f.stream_id)
            return ok, refused

    def test_max_concurrent_streams_is_enforced(self):
        cases = []
        for limit in (150, 20):
            srv, listeners = self.h2_server("--delay", "0", "--http2-max-concurrent-streams", str(limit))
            cases += [(f"{label}, limit {limit}", port, tls, limit) for label, port, tls in listeners]

        def check(label, port, tls, limit):
            ok, refused = self.open_streams(port, tls, limit + 1)
            self.assertEqual((ok, refused), (limit, [1 + 2 * limit]), label)
        self.at_once(check, cases)  # each case on its own connection; the two servers are apart

    def test_h2load_with_more_streams_than_h2o_allowed(self):
        srv = self.server("--delay", "0", "--http2-max-concurrent-streams", "200", workers=1)
        r = run(["h2load", "-n", "1000", "-c", "1", "-m", "200", srv.url + "/wait/200"], timeout_s=60)
        self.assertIn("1000 succeeded, 0 failed, 0 errored, 0 timeout", r.stdout)
        self.assertEqual(c.stats(srv)["held"]["peak"], 200)  # h2o alone: 100

    def test_max_concurrent_streams_bad_values(self):
        for args, env in ((("--http2-max-concurrent-streams", "0"), None), (("--http2-max-concurrent-streams", "16385"), None),
                          (("--http2-max-concurrent-streams", "12x"), None), ((), {"MOCKUPSTREAM_HTTP2_MAX_CONCURRENT_STREAMS": "-1"})):
            with self.subTest(args=args, env=env):
                environment = clean_env(env)
                p = run([BIN, "--listen", f"127.0.0.1:{free_port()}", "--workers", "1"] + list(args), env=environment, timeout_s=5)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                self.assertIn("HTTP2_MAX_CONCURRENT_STREAMS" if env else "--http2-max-concurrent-streams", p.stderr)
                self.assertIn("from 1 to 16384", p.stderr)
        p = run([BIN, "--help"], env=clean_env(), timeout_s=5)
        self.assertIn("--http2-max-concurrent-streams N", p.stdout)
        self.assertIn("MOCKUPSTREAM_HTTP2_MAX_CONCURRENT_STREAMS, default 128", p.stdout)

    # ---- 11. Expect: 100-continue, oversized header blocks ----

    def test_expect_100_continue_is_answered(self):
        srv, listeners = self.h2_server("--delay", "0")
        for label, port, tls in listeners:
            with self.subTest(label):
                with h2.Conn(port, tls=tls) as conn:
                    conn.start()
                    conn.request(1, "/", method="POST", end_stream=False,
                                 headers=[("content-length", "5"), ("expect", "100-continue")])
                    while True:  # the interim response comes before any byte of the body is sent
                        f = conn.read_frame(1.0)
                        self.assertIsNotNone(f)
                        if f.type == h2.HEADERS:
                            self.assertEqual(conn.decoder.decode(f.payload), [(":status", "100")])
                            self.assertFalse(f.flags & h2.END_STREAM)
                            break
                    conn.send(h2.frame(h2.DATA, h2.END_STREAM, 1, b"hello"))
                    r = conn.response(1)
                    self.assertEqual((r.status, r.body), (200, c.BODY), r)
        # curl waits up to 1 s for the 100 before sending the body; it gets it now
        r = c.curl("-v", "--http2-prior-knowledge", "-H", "Expect: 100-continue", "--data-binary", "@-",
                   "-o", "/dev/null", "-w", "%{http_code}", srv.url + "/", input="x" * 300000)
        self.assertEqual(r.stdout, "200", r.stderr)
        self.assertIn("< HTTP/2 100", r.stderr)
        self.assertNotIn("Done waiting for 100-continue", r.stderr)

    def test_header_block_too_large_to_buffer_gets_431(self):
        srv, listeners = self.h2_server("--delay", "0")
        for label, port, tls in listeners:
            with self.subTest(label):
                with h2.Conn(port, tls=tls) as conn:
                    conn.start()
                    value = b"v" * 450000  # above h2o's buffer for a header block (H2O_MAX_REQLEN, 417,792)
                    # "literal never indexed, new name": the client's HPACK table is left as it was
                    block = conn.header_block("/") + h2.hpack_literal(b"x-big", value, h2.LITERAL_NEVER_INDEXED)
                    try:
                        conn.send_block(1, block)  # HEADERS and 27 CONTINUATION frames
                    except OSError:
                        pass
                    r = conn.response(1)  # h2o alone: RST_STREAM REFUSED_STREAM
                    self.assertEqual(r.status, 431, r)
                    self.assertEqual(conn.goaways, [(1, "COMPRESSION_ERROR", "header block too large")])
                    conn.wait_closed(5 * SLOWDOWN)
                self.assertEqual(h2.get(port, tls=tls), (200, c.BODY))

