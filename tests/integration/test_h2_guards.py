"""Guards around libh2o 2.2.5's HTTP/2 (issue 10): h2o's clock after a quiet spell (TLS handshakes,
h2c connections, Date of a held response), requests without :authority/host or with an empty :path,
the GOAWAY of a drain, connection-specific header fields (Mint/Finch's `connection: keep-alive`) and
HPACK decompression bombs. Every case runs on h2c (prior knowledge) and on h2 over TLS (ALPN "h2").
Frames are written and read with tests/lib/h2frames.py, HPACK by python3-hpack, except the bombs'
header blocks, which no encoder would make and are put together byte by byte."""
import email.utils
import signal
import threading
import time

import clients as c
import h2frames as h2
from mockserver import SANITIZED, SLOWDOWN
from testcase import TlsServerTestCase

def worker_rss_bytes(server):
    """Resident memory of the server's worker processes, summed."""
    return sum(c.rss_bytes(pid) for pid in c.children(server.proc.pid))


# h2o 2.2.5 decodes a cache-digest value (base64url of a Golomb-coded set) into 8 bytes per key: this
# one, 5 bits of N=31, 5 bits of P=0, then only one-bits (each one a key), is ~24,000 keys (~190 KiB).
CACHE_DIGEST_4000 = b"-D" + b"_" * 3998
REF_NEWEST = b"\xbe"  # indexed field 62: the newest dynamic-table entry
# What an attack may add to the workers' resident memory: the bombs below added 45-193 MiB before the
# guard. A few MiB are the read buffers of a 400 KB header block; under ASan, freed memory also sits
# in its quarantine and allocator caches, and every byte has shadow memory.
RSS_GROWTH_BOUND_BYTES = (32 if SANITIZED else 8) << 20


class H2GuardsTest(TlsServerTestCase):
    # ---- fault 1: h2o's clock after a quiet spell ----

    def test_connections_after_an_idle_pause_all_succeed(self):
        # h2o arms its timers from its own clock, which stood still while h2o had nothing to do. After
        # a quiet spell longer than the TLS handshake timeout (--request-timeout), the timeout armed
        # at accept had already expired: the first handshakes were dropped. On h2c, an Upgrade: h2c
        # POST whose body came after its head was dropped the same way (h2o's request timeout,
        # --idle-timeout here); prior knowledge was spared (h2o switches to HTTP/2 inside its own
        # loop) and is run for completeness. One server per kind, so that each burst meets an h2o
        # that has not run since the pause. What matters is a pause longer than both timeouts: 3 s
        # each and a 4 s pause (this case once paused 11 s past 10 s and 5 s timeouts).
        args = ("--delay", "0", "--idle-timeout", "3s", "--request-timeout", "3s")
        tls_port = self.h2_server(*args, workers=1)[1][1][1]
        h2c_port = self.h2_server(*args, workers=1)[1][0][1]
        upgrade_port = self.h2_server(*args, workers=1)[1][0][1]
        listeners = [("h2-tls", tls_port, True), ("h2c", h2c_port, False), ("h2c-upgrade", upgrade_port, False)]
        time.sleep(4)
        results = {}

        def one(label, port, tls, i):
            try:
                upgrade = (f"/after-idle/{i}", b"0123456789") if label == "h2c-upgrade" else None
                with h2.Conn(port, tls=tls, timeout_s=10, upgrade=upgrade).start() as conn:
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
        srv, listeners = self.h2_server("--delay", "0")

        def check(label, port, tls):  # both listeners at once, each on its own connection
            with h2.Conn(port, tls=tls).start() as conn:
                for sid, path in ((1, "/wait/100"), (3, "/wait/3000")):
                    conn.request(sid, path)
                    r = conn.response(sid, timeout_s=10)
                    received = time.time()
                    self.assertEqual(r.status, 200, label)
                    date = email.utils.parsedate_to_datetime(r.headers["date"]).timestamp()
                    # Date has whole seconds: it is at most 1 s before the moment it was written
                    self.assertLess(received - date, 1.5, (label, path, r.headers["date"]))
                    self.assertGreater(received - date, -0.5, (label, path, r.headers["date"]))
        self.at_once(check, listeners)

    # ---- fault 3: :authority/host and :path ----

    def test_missing_authority_and_empty_path_get_400_on_their_stream_only(self):
        srv, listeners = self.h2_server("--delay", "0")
        for label, port, tls in listeners:
            with h2.Conn(port, tls=tls).start() as conn:
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
                self.assertEqual(conn.response(9).reset, "PROTOCOL_ERROR", label)
                self.assertEqual(conn.response(11).status, 200, label)
                self.assertEqual(conn.goaways, [], label)
        doc = c.stats(srv)
        self.assertEqual(doc["protocol_violations"]["http2_missing_authority"], 2)
        self.assertEqual(doc["protocol_violations"]["http2_empty_path"], 2)
        self.assertEqual(doc["requests"]["by_code"]["4xx"], 4)

    # ---- fault 4: draining HTTP/2 ----

    def drain_with_held_stream(self, srv, listeners, path, tls):
        label, port, tls = listeners[1 if tls else 0]
        with h2.Conn(port, tls=tls).start() as conn:
            conn.request(1, path)
            self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 1))
            srv.signal(signal.SIGTERM)
            conn.read_until(lambda: False, timeout_s=8)  # everything until the server closes
            r = conn.streams[1]
            self.assertTrue(conn.closed, label)
            self.assertEqual((r.status, r.body), (200, b"Hello world!\n"), label)
            # the last GOAWAY names the last stream h2o accepted, after the first one (2^31-1)
            self.assertGreaterEqual(len(conn.goaways), 1, label)
            self.assertEqual(conn.goaways[-1][:2], (1, "NO_ERROR"), (label, conn.goaways))
        self.assertEqual(srv.wait_exit(10), 0, srv.output())

    def test_drain_sends_final_goaway_naming_the_last_stream(self):
        # h2o sends GOAWAY(2^31-1) at once and the final GOAWAY a second later. A response held past
        # that second leaves before the close; one that leaves earlier must not let the worker exit
        # (nothing held, no HTTP/1.1 connection) before the final GOAWAY is written.
        # A server per case (each is drained), the four cases at once.
        cases = [(f"{'h2-tls' if tls else 'h2c'} {path}", *self.h2_server("--delay", "0"), path, tls)
                 for tls in (False, True) for path in ("/wait/1500", "/wait/200")]
        self.at_once(lambda label, *case: self.drain_with_held_stream(*case), cases)

    def test_drain_does_not_wait_for_a_connection_taken_on_after_it_began(self):
        # h2o 2.2.5 sends no GOAWAY to an HTTP/2 connection it takes on once the shutdown has begun
        # (here an h2c preface that was half sent at SIGTERM): waiting for it to close would hold the
        # exit until --drain-timeout.
        srv, listeners = self.h2_server("--delay", "0", "--drain-timeout", "10s")
        with h2.Conn(srv.port).start() as old:
            old.request(1, "/wait/300")
            self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 1))
            late = c.connect(srv.host, srv.port)
            late.sendall(h2.PREFACE[:10])
            time.sleep(0.1)
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            time.sleep(0.1)
            late.sendall(h2.PREFACE[10:] + h2.settings_frame())
            self.assertEqual(old.response(1).status, 200)
            old.read_until(lambda: False, timeout_s=8)  # until the server closes
            self.assertEqual(srv.wait_exit(8), 0, srv.output())
            self.assertLess(time.monotonic() - t0, 3.0 * SLOWDOWN)  # h2o's second GOAWAY comes after 1 s
            self.assertEqual(old.goaways[-1][:2], (1, "NO_ERROR"))
            late.close()

    # ---- fault 5: connection-specific header fields ----

    def test_connection_specific_fields_are_ignored_and_counted(self):
        srv, listeners = self.h2_server("--delay", "0")
        ignored = [("connection", "keep-alive"), ("keep-alive", "timeout=5"), ("proxy-connection", "keep-alive"),
                   ("transfer-encoding", "chunked"), ("upgrade", "h2c")]
        for label, port, tls in listeners:
            with h2.Conn(port, tls=tls).start() as conn:
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
        return self.h2_server("--delay", "0", workers=1, env=env)

    def good_client_served(self, port, tls):
        with h2.Conn(port, tls=tls, timeout_s=5).start() as conn:
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
            with h2.Conn(port, tls=tls).start() as conn:
                block = h2.plain_header_block(b"/wait/3000") + h2.hpack_literal(b"cache-digest", CACHE_DIGEST_4000) + REF_NEWEST * 1023
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
                conn.send_block(3, h2.plain_header_block(b"/") + REF_NEWEST)
                self.assertEqual(conn.response(3).status, 200, label)
        self.assertEqual(c.stats(srv)["protocol_violations"]["http2_header_list_too_large"], 2)

    def test_cache_digest_within_limits_is_not_decoded(self):
        # 15 references to a 4,000-byte cache-digest stay under 64 KiB of fields, so the request is
        # served; h2o would have decoded each (~2.8 MiB per request, held for the whole delay).
        srv, listeners = self.bomb_server()
        for label, port, tls in listeners:
            before = worker_rss_bytes(srv)
            with h2.Conn(port, tls=tls).start() as conn:
                conn.send_block(1, h2.plain_header_block(b"/wait/1500") + h2.hpack_literal(b"cache-digest", CACHE_DIGEST_4000)
                                + REF_NEWEST * 14)
                for sid in range(3, 33, 2):
                    conn.send_block(sid, h2.plain_header_block(b"/wait/1500") + REF_NEWEST * 15)
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
            with h2.Conn(port, tls=tls).start() as conn:
                t0 = time.monotonic()
                conn.send_block(1, h2.plain_header_block(b"/wait/3000") + h2.hpack_literal(b"x-a", b"b") + REF_NEWEST * 400000)
                for sid in (3, 5, 7):
                    conn.send_block(sid, h2.plain_header_block(b"/wait/3000") + REF_NEWEST * 400000)
                good_s = self.good_client_served(port, tls)
                for sid in (1, 3, 5, 7):
                    r = conn.response(sid)
                    self.assertEqual(r.status, 431, (label, sid, conn.goaways))
                    self.assertLess(r.ended_at - t0, 2.0 * SLOWDOWN, (label, sid))
                grown = worker_rss_bytes(srv) - before
                self.assertLess(grown, RSS_GROWTH_BOUND_BYTES, (label, grown))
                self.assertLess(good_s, 1.0 * SLOWDOWN, label)
                conn.send_block(9, h2.plain_header_block(b"/") + REF_NEWEST)  # x-a: b is still entry 62
                self.assertEqual(conn.response(9).status, 200, label)
        doc = c.stats(srv)
        self.assertEqual(doc["protocol_violations"]["http2_header_list_too_large"], 8)
        self.assertEqual(doc["held"]["peak"], 0)  # never held for the delay

    def test_header_list_limits_match_http1(self):
        # 100 fields and 64 KiB of names and values pass, one more field or byte is 431; trailers
        # count with the fields of the head.
        srv, listeners = self.h2_server("--delay", "0")
        for label, port, tls in listeners:
            with h2.Conn(port, tls=tls).start() as conn:
                prefix_bytes = sum(len(name) + len(value) for name, value in conn.pseudo_fields("/"))
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
