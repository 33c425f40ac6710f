"""Paced response bodies (issue 12, step 4): dribble=<chunks>/<duration> and rate=<bytes per second>.

The contract (query, or X-Mock-Dribble / X-Mock-Rate; the query wins; --no-request-control ignores
both): the head, with the whole body's Content-Length, leaves when the request's delay ends; with
dribble the body follows in N = min(chunks, body bytes) parts, part k due k x duration/N after the
head; with rate in parts of max(1, rate/100) bytes, one every part/rate seconds, the first one
interval after the head (so at most rate x t bytes by time t, plus one part). HTTP/1.1 writes each
part on its own, HTTP/2 sends it as its own DATA frame(s), END_STREAM on the last.

What is tested, on every listener it applies to (cleartext HTTP/1.1, TLS HTTP/1.1, h2c with prior
knowledge, HTTP/2 over TLS):
  - timing, seen by raw clients that stamp each recv (HTTP/1.1) or DATA frame (HTTP/2): the head not
    before the delay, the body never ahead of the contract's schedule (bytes held at time t), spread
    over several bursts, finished within the duration plus a generous slack, intact; for dribble= with
    and without a delay (HTTP/2: DATA frames end on part boundaries, END_STREAM on the last part), for
    rate= (k and m suffixes, a rate below 100 B/s), and for a dribble asking more parts than the body
    has bytes; the header forms, and the query winning over the header;
  - 400 naming the parameter for every malformed form (query and header), for a duration or rate
    beyond --max-delay (default and lowered), and for dribble with rate (also from two sources);
    --no-request-control ignoring both;
  - not paced: HEAD, 204, 205 and 304, an empty body, /healthz, /stats and /metrics, a request with a
    fault (each next to a paced control request, so a server that paces nothing fails too);
  - keep-alive after a paced response; an HTTP/2 stream answered at its delay while another is paced;
  - a client leaving mid-body (connection closed, or RST_STREAM): the server stops, keeps serving,
    and /stats sees the connection closed before the pacing would have ended;
  - SIGTERM while paced responses are in flight: every body arrives whole and the server exits 0;
  - a paced response is counted once in /stats, with its body bytes;
  - h2load over h2c (100 streams) and HTTP/1.1 (10 pipelined per connection): every request
    succeeds, none faster than its dribble.
"Never early" bounds are measured from just before the request was written and have no slack but
clock granularity (pacing_clients.EARLY_TOLERANCE_S); upper bounds scale with SLOWDOWN.
"""
import re
import signal
import time

import clients as c
import h2frames as hf
import pacing_clients as pc
from mockserver import SLOWDOWN, run
from testcase import TlsServerTestCase

BODY = c.BODY
LISTENERS = ("http1", "http1-tls", "h2c", "h2-tls")
HTTP1_LISTENERS = ("http1", "http1-tls")
H2_LISTENERS = ("h2c", "h2-tls")
KIB = 1024
LATE_SLACK_S = 0.5  # how late a paced body may finish on a release build (scaled by SLOWDOWN)
PROMPT_S = 0.5      # "answered at once" on a release build (scaled by SLOWDOWN); always below a pacing's duration


class PacingCase(TlsServerTestCase):
    def start(self, *args):
        return self.start_listeners("--delay", "0", *args)

    http1 = TlsServerTestCase.http1_conn

    def h2(self, srv, kind):
        conn = pc.TimedH2Conn(srv.port if kind == "h2c" else self.tls_port, tls=kind == "h2-tls")
        return conn.start()

    def timed_get(self, srv, kind, path, headers=None, method="GET", timeout_s=10.0):
        """One request on a fresh connection of `kind`, as a TimedResponse."""
        if kind in HTTP1_LISTENERS:
            with self.http1(srv, kind) as conn:
                return self.timed_http1(conn, path, headers, method, timeout_s)
        with self.h2(srv, kind) as conn:
            return self.timed_h2(conn, 1, path, headers, method, timeout_s)

    @staticmethod
    def timed_http1(conn, path, headers=None, method="GET", timeout_s=10.0):
        request = c.raw_request(method, path, dict({"Host": "x"}, **(headers or {})))
        sent_at = time.monotonic()
        conn.send(request)
        return pc.read_timed_http1(conn, sent_at, timeout_s=timeout_s, head_request=method == "HEAD")

    @staticmethod
    def timed_h2(conn, sid, path, headers=None, method="GET", timeout_s=10.0):
        sent_at = time.monotonic()
        conn.request(sid, path, method=method, headers=[(k.lower(), v) for k, v in (headers or {}).items()])
        return pc.timed_h2_stream(conn, sid, sent_at, timeout_s=timeout_s)

    def reference_body(self, srv, size_bytes):
        """The unpaced body of that size, to compare a paced one with."""
        r = c.one(srv, "GET", f"/?size={size_bytes}", {"Host": "x"})
        self.assertEqual((r.status, len(r.body)), (200, size_bytes))
        return r.body

    def assert_paced(self, r, size_bytes, allowed, delay_s, duration_s, min_groups, gap_s, body=None):
        """The contract's timing of one paced response: head at (not before) the delay, the whole body's
        Content-Length, bytes never ahead of `allowed`, at least min_groups bursts, the last byte not
        before delay + duration nor much after, the body intact."""
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-length"), str(size_bytes), r.headers)
        self.assertIsNone(r.header("transfer-encoding"), r.headers)
        self.assertGreaterEqual(r.head_s + pc.EARLY_TOLERANCE_S, delay_s, f"head before the delay: {r}")
        self.assertLessEqual(r.head_s, delay_s + 0.2 * SLOWDOWN, f"head held back: {r}")
        self.assertEqual(pc.early_arrivals(r, allowed, delay_s), [], f"body ahead of the schedule: {r}")
        self.assertGreaterEqual(r.done_s + pc.EARLY_TOLERANCE_S, delay_s + duration_s, f"finished early: {r}")
        self.assertLessEqual(r.done_s, delay_s + duration_s + LATE_SLACK_S * SLOWDOWN, f"finished late: {r}")
        self.assertGreaterEqual(pc.arrival_groups(r, gap_s), min_groups, f"body not spread: {r}")
        self.assertEqual(len(r.body), size_bytes)
        if body is not None:
            self.assertEqual(r.body, body, "paced body differs from the unpaced one")


def h2_end_stream_on_last_data(conn, sid):
    """True if the stream's last DATA frame carries bytes and END_STREAM (the contract: END_STREAM on
    the last part, not on an empty frame sent after it)."""
    frames = [f for _, f in conn.data_frames(sid)]
    return bool(frames) and frames[-1].payload != b"" and bool(frames[-1].flags & hf.END_STREAM)


def frames_off_part_boundaries(conn, sid, size_bytes, parts):
    """The body byte counts at which the stream's DATA frames end that are not the end of any part
    (k parts hold between k x q and k x q + min(k, r) bytes, q, r = divmod(size, parts))."""
    q, r = divmod(size_bytes, parts)
    ends, total = [], 0
    for _, f in conn.data_frames(sid):
        total += len(f.payload)
        if f.payload:
            ends.append(total)
    return [e for e in ends if not any(k * q <= e <= k * q + min(k, r) for k in range(1, parts + 1))]


# ---------------------------------------------------------------------------------------------------

class DribbleTimingTest(PacingCase):
    SIZE = 5003  # parts of 1000 and 1001 bytes
    CHUNKS = 5
    DURATION_S = 0.5

    def check_listener(self, srv, kind, delay_ms, body):
        path = f"/?dribble={self.CHUNKS}/{int(self.DURATION_S * 1000)}ms&size={self.SIZE}"
        if delay_ms:
            path += f"&delay={delay_ms}ms"
        allowed = pc.dribble_bound(self.SIZE, self.CHUNKS, self.DURATION_S)
        interval_s = self.DURATION_S / self.CHUNKS
        if kind in HTTP1_LISTENERS:
            r = self.timed_get(srv, kind, path)
        else:
            with self.h2(srv, kind) as conn:
                r = self.timed_h2(conn, 1, path)
                # each part in its own DATA frame(s), END_STREAM on the last
                self.assertGreaterEqual(len([f for _, f in conn.data_frames(1) if f.payload]), 3, conn.stamped)
                self.assertEqual(frames_off_part_boundaries(conn, 1, self.SIZE, self.CHUNKS), [], conn.data_frames(1))
                self.assertTrue(h2_end_stream_on_last_data(conn, 1), [f for _, f in conn.data_frames(1)])
        self.assert_paced(r, self.SIZE, allowed, delay_ms / 1000, self.DURATION_S, min_groups=3,
                          gap_s=interval_s / 2, body=body)

    def test_dribble_parts_on_schedule_on_every_listener(self):
        srv = self.start()
        body = self.reference_body(srv, self.SIZE)
        for delay_ms in (0, 100):
            for kind in LISTENERS:
                with self.subTest(listener=kind, delay_ms=delay_ms):
                    self.check_listener(srv, kind, delay_ms, body)

    def test_more_chunks_than_bytes_sends_one_byte_parts(self):
        """13-byte default body, dribble=100/300ms: 13 one-byte parts, the last still due at 300 ms."""
        srv = self.start()
        allowed = pc.dribble_bound(len(BODY), 100, 0.3)
        for kind in LISTENERS:
            with self.subTest(listener=kind):
                r = self.timed_get(srv, kind, "/?dribble=100/300ms")
                self.assert_paced(r, len(BODY), allowed, 0.0, 0.3, min_groups=3, gap_s=0.3 / 13 / 2, body=BODY)

    def test_header_form_and_query_wins(self):
        srv = self.start()
        for kind in ("http1", "h2c"):
            with self.subTest(listener=kind, form="header"):
                r = self.timed_get(srv, kind, "/?size=4000", {"X-Mock-Dribble": "4/400"})  # bare: ms
                self.assert_paced(r, 4000, pc.dribble_bound(4000, 4, 0.4), 0.0, 0.4, min_groups=3, gap_s=0.05)
            with self.subTest(listener=kind, form="rate header"):
                r = self.timed_get(srv, kind, "/?size=4k", {"X-Mock-Rate": "10k"})
                self.assert_paced(r, 4096, pc.rate_bound(4096, 10240), 0.0, pc.rate_min_s(4096, 10240),
                                  min_groups=3, gap_s=0.005)
            with self.subTest(listener=kind, form="query wins"):
                # the header alone would take 3 s; PROMPT_S x SLOWDOWN stays below that
                for header in ("2/3s", "garbage"):  # as for delay=: the header is not even read
                    r = self.timed_get(srv, kind, "/?dribble=2/200ms&size=2000", {"X-Mock-Dribble": header})
                    self.assert_paced(r, 2000, pc.dribble_bound(2000, 2, 0.2), 0.0, 0.2, min_groups=2, gap_s=0.05)
                r = self.timed_get(srv, kind, "/?rate=100k&size=10k", {"X-Mock-Rate": "1k"})
                self.assertEqual(pc.early_arrivals(r, pc.rate_bound(10240, 102400), 0.0), [], r)
                self.assertLess(r.done_s, 0.1 + PROMPT_S * SLOWDOWN, r)


class RateTest(PacingCase):
    RATE = 20 * KIB
    SIZE = 10 * KIB

    def test_rate_caps_bytes_by_time_on_every_listener(self):
        srv = self.start()
        body = self.reference_body(srv, self.SIZE)
        allowed = pc.rate_bound(self.SIZE, self.RATE)
        for kind in LISTENERS:
            with self.subTest(listener=kind):
                r = self.timed_get(srv, kind, "/?rate=20k&size=10k")
                # the body takes size/rate = 0.5 s: never less than (size - one part) / rate
                self.assertGreaterEqual(r.done_s, 0.45, r)
                self.assert_paced(r, self.SIZE, allowed, 0.0, pc.rate_min_s(self.SIZE, self.RATE),
                                  min_groups=10, gap_s=0.004, body=body)

    def test_rate_size_suffixes_and_slow_rates(self):
        """rate=1m is 1 MiB/s: 128 KiB take 125 ms, in parts of 10 KiB; rate=50 (below 100 B/s) sends
        one-byte parts every 20 ms: the 13-byte default body takes 260 ms."""
        srv = self.start()
        for kind in ("http1", "h2c"):
            for query, size, rate, gap_s in (("rate=1m&size=128k", 128 * KIB, 1024 * KIB, 0.004), ("rate=50", 13, 50, 0.01)):
                with self.subTest(listener=kind, query=query):
                    r = self.timed_get(srv, kind, "/?" + query)
                    self.assert_paced(r, size, pc.rate_bound(size, rate), 0.0, pc.rate_min_s(size, rate),
                                      min_groups=3, gap_s=gap_s)


class RefusalTest(PacingCase):
    BAD_QUERIES = (
        ("/?dribble=0/1s", b"dribble"),
        ("/?dribble=10", b"dribble"),
        ("/?dribble=x/1s", b"dribble"),
        ("/?dribble=10/abc", b"dribble"),
        ("/?dribble=1000001/1s", b"dribble"),
        ("/?dribble=2.5/1s", b"dribble"),
        ("/?dribble=4/61s", b"dribble"),            # above --max-delay (60 s)
        ("/?rate=0", b"rate"),
        ("/?rate=abc", b"rate"),
        ("/?rate=10&size=1000", b"rate"),           # 100 s at that rate: above --max-delay
        ("/?dribble=4/1s&rate=1k", b"cannot be combined"),
    )
    BAD_HEADERS = (  # (path, headers, what the reason names)
        ("/", {"X-Mock-Dribble": "0/1s"}, b"dribble"),
        ("/", {"X-Mock-Dribble": "10/abc"}, b"dribble"),
        ("/", {"X-Mock-Rate": "abc"}, b"rate"),
        ("/", {"X-Mock-Rate": "0"}, b"rate"),
        ("/", {"X-Mock-Dribble": "4/1s", "X-Mock-Rate": "1k"}, b"cannot be combined"),
        ("/?dribble=4/1s", {"X-Mock-Rate": "1k"}, b"cannot be combined"),  # one request, two sources
    )

    def check_400(self, status, body, want, what):
        self.assertEqual(status, 400, (what, body))
        self.assertIn(want, body.lower(), what)
        self.assertEqual(body.rstrip(b"\n").count(b"\n"), 0, (what, body))

    def test_400_naming_the_parameter(self):
        srv = self.start()
        with c.Conn.to(srv) as conn:
            for path, want in self.BAD_QUERIES:
                with self.subTest(listener="http1", path=path):
                    r = conn.request("GET", path, {"Host": "x"})
                    self.check_400(r.status, r.body, want, path)
            for path, headers, want in self.BAD_HEADERS:
                with self.subTest(listener="http1", path=path, headers=headers):
                    r = conn.request("GET", path, dict({"Host": "x"}, **headers))
                    self.check_400(r.status, r.body, want, (path, headers))
            # the connection keeps serving
            self.assertEqual(conn.request("GET", "/", {"Host": "x"}).body, BODY)
        with self.h2(srv, "h2c") as conn:
            sid = 1
            for path, headers, want in ([(p, {}, w) for p, w in self.BAD_QUERIES]
                                        + list(self.BAD_HEADERS)):
                with self.subTest(listener="h2c", path=path, headers=headers):
                    conn.request(sid, path, headers=[(k.lower(), v) for k, v in headers.items()])
                    s = conn.response(sid)
                    self.check_400(s.status, s.body, want, (path, headers))
                sid += 2
            conn.request(sid, "/")
            self.assertEqual(conn.response(sid).body, BODY)
        self.assertEqual(c.stats(srv)["requests"]["by_status"].get("400"),
                         2 * (len(self.BAD_QUERIES) + len(self.BAD_HEADERS)))

    def test_limits_follow_max_delay(self):
        srv = self.server("--delay", "0", "--max-delay", "500ms")
        for path, want in (("/?dribble=2/600ms", b"dribble"), ("/?rate=1k&size=1k", b"rate"),
                           ("/?dribble=2/1s&delay=100ms", b"dribble")):
            with self.subTest(path=path):
                r = c.one(srv, "GET", path, {"Host": "x"})
                self.check_400(r.status, r.body, want, path)
        with c.Conn.to(srv) as conn:  # just within the limit: paced
            r = self.timed_http1(conn, "/?dribble=2/400ms&size=2000")
            self.assert_paced(r, 2000, pc.dribble_bound(2000, 2, 0.4), 0.0, 0.4, min_groups=2, gap_s=0.1)

    def test_no_request_control_ignores_both(self):
        control = self.server("--delay", "0")  # the same server without the flag refuses a malformed one
        self.assertEqual(c.one(control, "GET", "/?dribble=0/1s", {"Host": "x"}).status, 400)
        srv = self.server("--delay", "0", "--no-request-control")
        for path, headers in (("/?dribble=4/3s", {}), ("/?rate=1", {}), ("/?dribble=0/1s", {}),
                              ("/", {"X-Mock-Dribble": "4/3s"}), ("/", {"X-Mock-Rate": "abc"}),
                              ("/?dribble=4/3s&rate=1k", {"X-Mock-Rate": "1"})):
            with self.subTest(path=path, headers=headers), c.Conn.to(srv) as conn:
                r = self.timed_http1(conn, path, headers)
                self.assertEqual((r.status, r.body), (200, BODY), r)
                self.assertLess(r.done_s, PROMPT_S * SLOWDOWN, r)


class NotPacedTest(PacingCase):
    """Each case sends a paced control request first on the same connection: a server that paced
    nothing (or ignored dribble=) fails here too, not only one that paced too much."""
    CONTROL = "/?dribble=2/300ms&size=2000"

    def control_http1(self, conn):
        r = self.timed_http1(conn, self.CONTROL)
        self.assert_paced(r, 2000, pc.dribble_bound(2000, 2, 0.3), 0.0, 0.3, min_groups=2, gap_s=0.07)

    def control_h2(self, conn, sid):
        r = self.timed_h2(conn, sid, self.CONTROL)
        self.assert_paced(r, 2000, pc.dribble_bound(2000, 2, 0.3), 0.0, 0.3, min_groups=2, gap_s=0.07)

    def test_head_no_body_and_empty_body_are_not_paced(self):
        """Pacing 3 s would show: each answer, and the next one on the connection, come at once."""
        srv = self.start()
        cases = (("HEAD", "/?dribble=4/3s&size=4000", 200, "4000"),
                 ("GET", "/status/204?dribble=4/3s", 204, None),
                 ("GET", "/?status=304&dribble=4/3s", 304, None),
                 ("GET", "/?status=205&rate=1", 205, None),
                 ("GET", "/?size=0&dribble=4/3s", 200, "0"),
                 ("HEAD", "/?rate=1k&size=4k", 200, "4096"))
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as conn:
                self.control_http1(conn)
                for method, path, status, length in cases:
                    r = self.timed_http1(conn, path, method=method)
                    self.assertEqual((r.status, r.body), (status, b""), (method, path, r))
                    if length is not None:
                        self.assertEqual(r.header("content-length"), length, (method, path, r.headers))
                    self.assertLess(r.done_s, PROMPT_S * SLOWDOWN, (method, path, r))
                    nxt = self.timed_http1(conn, "/")
                    self.assertEqual((nxt.status, nxt.body), (200, BODY))
                    self.assertLess(nxt.done_s, PROMPT_S * SLOWDOWN, (method, path, "next request", nxt))
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                self.control_h2(conn, 1)
                sid = 3
                for method, path, status, length in cases:
                    r = self.timed_h2(conn, sid, path, method=method)
                    self.assertEqual((r.status, r.body), (status, b""), (method, path, r))
                    self.assertLess(r.done_s, PROMPT_S * SLOWDOWN, (method, path, r))
                    sid += 2

    def test_control_paths_are_not_paced(self):
        srv = self.start()
        for kind in ("http1", "h2c"):
            with self.subTest(listener=kind):
                for path, headers in (("/healthz?dribble=4/3s", {}), ("/stats?rate=1", {}),
                                      ("/metrics", {"X-Mock-Rate": "1"}), ("/healthz", {"X-Mock-Dribble": "4/3s"})):
                    r = self.timed_get(srv, kind, path, headers)
                    self.assertEqual(r.status, 200, (path, r))
                    self.assertLess(r.done_s, PROMPT_S * SLOWDOWN, (path, headers, r))
                # and a benchmark path with the same parameter is paced
                r = self.timed_get(srv, kind, "/?dribble=2/300ms&size=2000")
                self.assert_paced(r, 2000, pc.dribble_bound(2000, 2, 0.3), 0.0, 0.3, min_groups=2, gap_s=0.07)

    def test_a_fault_wins_over_pacing(self):
        """partial with dribble=4/3s: the head and half the body at once, then the end."""
        srv = self.start("--allow-faults")
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as conn:
                self.control_http1(conn)
                t0 = time.monotonic()
                conn.send(c.raw_request("GET", "/?fault=partial&size=1000&dribble=4/3s", {"Host": "x"}))
                data = conn.read_to_close(timeout_s=5)
                self.assertLess(time.monotonic() - t0, PROMPT_S * SLOWDOWN)
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertIn(b"Content-Length: 1000", head)
                self.assertEqual(len(body), 500)
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                self.control_h2(conn, 1)
                t0 = time.monotonic()
                conn.request(3, "/?fault=partial&size=1000&dribble=4/3s")
                s = conn.response(3, timeout_s=5)
                self.assertLess(time.monotonic() - t0, PROMPT_S * SLOWDOWN)
                self.assertEqual((len(s.body), s.reset is not None), (500, True), s)
        self.assertEqual(c.stats(srv)["faults"]["partial"], 4)


class KeepAliveTest(PacingCase):
    def test_http1_connection_serves_the_next_request(self):
        srv = self.start()
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as conn:
                for path in ("/?dribble=4/200ms&size=400", "/?rate=10k&size=2k"):
                    r = self.timed_http1(conn, path)
                    self.assertEqual((r.status, r.header("connection")), (200, "keep-alive"), r)
                    self.assertGreaterEqual(r.done_s + pc.EARLY_TOLERANCE_S, 0.19, r)
                    nxt = self.timed_http1(conn, "/?delay=50ms")
                    self.assertEqual((nxt.status, nxt.body), (200, BODY))
                    self.assertGreaterEqual(nxt.head_s, 0.05)
                    self.assertLess(nxt.done_s, 0.05 + PROMPT_S * SLOWDOWN, nxt)

    def test_h2_other_streams_served_while_one_is_paced(self):
        srv = self.start()
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                t0 = time.monotonic()
                conn.request(1, "/?dribble=4/1s&size=4000")
                conn.request(3, "/?delay=100ms")
                plain = pc.timed_h2_stream(conn, 3, t0)
                self.assertEqual((plain.status, plain.body), (200, BODY))
                self.assertGreaterEqual(plain.done_s, 0.1)
                self.assertLess(plain.done_s, 0.1 + PROMPT_S * SLOWDOWN, plain)
                paced = pc.timed_h2_stream(conn, 1, t0)
                self.assertGreater(paced.done_s, plain.done_s, "the plain stream came only once the paced one ended")
                self.assert_paced(paced, 4000, pc.dribble_bound(4000, 4, 1.0), 0.0, 1.0, min_groups=3, gap_s=0.1)
                # and a stream opened mid-pacing is answered at once too
                conn.request(5, "/?dribble=4/1s&size=4000")
                self.assertTrue(conn.read_until(lambda: conn.data_frames(5), timeout_s=2), conn.stamped)
                mid = self.timed_h2(conn, 7, "/")
                self.assertEqual(mid.body, BODY)
                self.assertLess(mid.done_s, PROMPT_S * SLOWDOWN, mid)
                self.assertFalse(conn.stream(5).ended, "stream 5 ended before its pacing could have")
                self.assertTrue(conn.response(5).ended)


class ClientLeavesTest(PacingCase):
    DURATION_S = 3.0
    PATH = "/?dribble=15/3s&size=15000"  # a part every 200 ms

    def open_count(self, srv):
        return c.stats(srv)["connections"]["open"]

    def test_server_stops_when_the_client_closes(self):
        srv = self.start()
        # the start-up probes' connections closed: only the /stats connection asking is open
        base = 1
        self.assertTrue(c.wait_until(lambda: self.open_count(srv) == base), c.stats(srv)["connections"])
        for kind in LISTENERS:
            with self.subTest(listener=kind):
                if kind in HTTP1_LISTENERS:
                    conn = self.http1(srv, kind)
                    t0 = time.monotonic()
                    conn.send(c.raw_request("GET", self.PATH, {"Host": "x"}))
                    conn.read_head(timeout_s=5)
                    first_at = pc.fill_until(conn, lambda buf: len(buf) > 0)
                else:
                    conn = self.h2(srv, kind)
                    t0 = time.monotonic()
                    conn.request(1, self.PATH)
                    self.assertTrue(conn.read_until(lambda: conn.data_frames(1), timeout_s=2), conn.stamped)
                    first_at = conn.data_frames(1)[0][0]
                # it is paced: the first part comes at 200 ms, not with the head
                self.assertGreaterEqual(first_at - t0 + pc.EARLY_TOLERANCE_S, 0.2, "first part early")
                # polled: the previous /stats connection's close may not have been seen yet
                self.assertTrue(c.wait_until(lambda: self.open_count(srv) == base + 1, timeout_s=1))
                conn.close()
                # the server notices at its next write at the latest: long before the pacing would end
                deadline, closed = t0 + self.DURATION_S - 0.3, False
                while not closed and time.monotonic() < deadline:
                    closed = self.open_count(srv) == base
                    time.sleep(0.02)
                self.assertTrue(closed, "the server kept the connection of a client that left")
                # a new connection is answered at once
                r = self.timed_get(srv, kind, "/")
                self.assertEqual((r.status, r.body), (200, BODY))
                self.assertLess(r.done_s, PROMPT_S * SLOWDOWN, r)

    def test_h2_stream_reset_stops_its_data_only(self):
        srv = self.start()
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                t0 = time.monotonic()
                conn.request(1, "/?dribble=10/3s&size=10000")  # a part every 300 ms
                self.assertTrue(conn.read_until(lambda: conn.data_frames(1), timeout_s=2), conn.stamped)
                self.assertGreaterEqual(conn.data_frames(1)[0][0] - t0 + pc.EARLY_TOLERANCE_S, 0.3, "first part early")
                self.assertFalse(conn.stream(1).ended)
                conn.send(hf.frame(hf.RST_STREAM, 0, 1, (8).to_bytes(4, "big")))  # CANCEL
                reset_at = time.monotonic()
                t0 = time.monotonic()
                conn.request(3, "/?delay=1s")  # parts 2-4 of stream 1 would be due meanwhile
                plain = pc.timed_h2_stream(conn, 3, t0)
                self.assertEqual((plain.status, plain.body), (200, BODY))
                late = [(round(t - reset_at, 3), len(f.payload)) for t, f in conn.data_frames(1) if t > reset_at + 0.15]
                self.assertEqual(late, [], "DATA on a stream the client reset")
                self.assertEqual(conn.goaways, [])


class WorkerFairnessTest(PacingCase):
    """Found by attack: a paced body of many parts held an HTTP/1.1 worker for seconds (each part
    queued the next already due and one pass of the delay queue fired the whole chain), and over
    HTTP/2 a part further away than --request-timeout was taken for a client that stopped reading."""

    def probe_latencies(self, srv, kind, seconds):
        """Back-to-back /?delay=1ms requests on one connection of `kind` for `seconds`: their times."""
        latencies = []
        with self.http1(srv, kind) as conn:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                r = self.timed_http1(conn, "/?delay=1ms")
                self.assertEqual((r.status, r.body), (200, BODY))
                latencies.append(r.done_s)
                time.sleep(0.01)
        return latencies

    def test_a_body_of_many_parts_does_not_hold_the_worker(self):
        srv = self.start("--workers", "1")
        self.reference_body(srv, 4 * 1024 * KIB)  # the worker's fill grows once, before the clock runs
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as paced:
                t0 = time.monotonic()
                # a million parts asked for in 2 s: merged to parts 1 ms apart (2,000 of ~2 KiB)
                paced.send(c.raw_request("GET", "/?dribble=1000000/2s&size=4m", {"Host": "x"}))
                latencies = self.probe_latencies(srv, kind, 1.5)
                r = paced.read_response(timeout_s=10)
                done_s = time.monotonic() - t0
                self.assertEqual((r.status, len(r.body)), (200, 4 * 1024 * KIB))
                self.assertGreaterEqual(done_s + pc.EARLY_TOLERANCE_S, 2.0, "paced body finished early")
                self.assertLess(done_s, 2.0 + LATE_SLACK_S * SLOWDOWN, "paced body late")
                # before the fix the probes waited for the whole body (5 s); now for a part at most
                self.assertGreater(len(latencies), 20)
                self.assertLess(max(latencies), 0.25 * SLOWDOWN, sorted(latencies)[-5:])

    def test_h2_parts_further_apart_than_the_request_timeout(self):
        srv = self.start("--request-timeout", "1s")
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                t0 = time.monotonic()
                # parts at 2 s and 4 s; the stall check sweeps every 0.5 s, so a server that takes the
                # wait for a stalled client closes the connection by 1.5 s
                conn.request(1, "/?dribble=2/4s&size=4000")
                time.sleep(2.5)
                conn.request(3, "/?delay=100ms")  # the connection still serves other streams meanwhile
                paced = conn.response(1, timeout_s=10)
                plain = conn.response(3, timeout_s=10)
                self.assertEqual((paced.status, paced.ended, len(paced.body)), (200, True, 4000), paced)
                self.assertGreaterEqual(time.monotonic() - t0 + pc.EARLY_TOLERANCE_S, 4.0)
                self.assertEqual((plain.status, plain.body), (200, BODY))
                self.assertEqual(conn.goaways, [])


class DrainTest(PacingCase):
    def test_sigterm_lets_paced_responses_finish(self):
        srv = self.start("--drain-timeout", "5s")
        path = "/?dribble=4/800ms&size=4000"
        body = self.reference_body(srv, 4000)
        h1 = {kind: self.http1(srv, kind) for kind in HTTP1_LISTENERS}
        h2 = {kind: self.h2(srv, kind) for kind in H2_LISTENERS}
        t0 = time.monotonic()
        for conn in h1.values():
            conn.send(c.raw_request("GET", path, {"Host": "x"}))
        for conn in h2.values():
            conn.request(1, path)
        # every response is in flight: its head has come, not yet its whole body
        for kind, conn in h1.items():
            pc.fill_until(conn, lambda buf: b"\r\n\r\n" in buf)
        for kind, conn in h2.items():
            self.assertTrue(conn.read_until(lambda: conn.stream(1).status is not None, timeout_s=5))
        self.assertLess(time.monotonic() - t0, 0.6, "the heads came too late to test a drain mid-body")
        # what else is there to read at once (an unpaced body would be)
        for conn in h1.values():
            conn.buf = conn.read_to_close(timeout_s=1, quiet_s=0.05)
        for conn in h2.values():
            conn.read_until(lambda: False, timeout_s=0.05)
        for kind, conn in h1.items():
            self.assertLess(len(conn.buf.partition(b"\r\n\r\n")[2]), 4000, (kind, "not paced"))
        for kind, conn in h2.items():
            self.assertLess(len(conn.stream(1).body), 4000, (kind, "not paced"))
        srv.signal(signal.SIGTERM)
        for kind, conn in h1.items():
            with self.subTest(listener=kind), conn:
                r = conn.read_response(timeout_s=5)
                self.assertEqual((r.status, r.body), (200, body))
        for kind, conn in h2.items():
            with self.subTest(listener=kind), conn:
                s = conn.response(1, timeout_s=5)
                self.assertEqual((s.status, s.ended, s.body), (200, True, body), s)
        self.assertEqual(srv.wait_exit(10), 0, srv.output()[-2000:])

    def test_drain_that_cuts_an_http2_body_says_so(self):
        """Found by attack: a client that keeps its HTTP/2 window shut holds a body past the drain
        deadline; the worker cut it and still exited 0 ("drained")."""
        srv = self.start("--drain-timeout", "1s")
        with self.h2(srv, "h2c") as conn:
            conn.request(1, "/?size=1m")  # the client never opens its window past the first 64 KiB
            self.assertTrue(conn.read_until(lambda: len(conn.stream(1).body) >= 65535, timeout_s=5))
            srv.signal(signal.SIGTERM)
            self.assertEqual(srv.wait_exit(10), 3, srv.output()[-2000:])
        self.assertIn("1 HTTP/2 connections still sending", srv.output())
        self.assertIn("the drain did not complete", srv.output())


class CountTest(PacingCase):
    def test_paced_response_counted_once_with_its_bytes(self):
        srv = self.start()
        sizes = {"http1": 1000, "http1-tls": 2000, "h2c": 3000, "h2-tls": 4000}
        for kind, size in sizes.items():
            r = self.timed_get(srv, kind, f"/?dribble=4/200ms&size={size}")
            self.assertGreaterEqual(r.done_s + pc.EARLY_TOLERANCE_S, 0.2, r)
            self.assertEqual(len(r.body), size)
        doc = c.stats(srv)
        self.assertEqual(doc["requests"]["total"], 4, doc["requests"])
        self.assertEqual(doc["requests"]["by_status"], {"200": 4})
        self.assertEqual(doc["requests"]["by_protocol"], {"http1": 1, "http1_tls": 1, "http2": 1, "http2_tls": 1})
        self.assertEqual(doc["bytes"]["response_body"], sum(sizes.values()))


H2LOAD_RE = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored")
H2LOAD_MIN_RE = re.compile(r"time for request:\s+([\d.]+)(us|ms|s)\s")
H2LOAD_TOTAL_RE = re.compile(r"finished in ([\d.]+)(us|ms|s),")
UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


class LoadTest(PacingCase):
    def h2load(self, srv, *args):
        """(h2load's own total time, its fastest request, its output), once every request succeeded."""
        proc = run(["h2load", "-n", "200", "-t", "1", *args, f"http://127.0.0.1:{srv.port}/?dribble=4/100ms&size=4k"],
                   timeout_s=60)
        m = H2LOAD_RE.search(proc.stdout)
        self.assertIsNotNone(m, proc.stdout + proc.stderr)
        total, _, done, succeeded, failed, errored = map(int, m.groups())
        self.assertEqual((total, done, succeeded, failed, errored), (200, 200, 200, 0, 0), proc.stdout)
        fastest = H2LOAD_MIN_RE.search(proc.stdout)
        self.assertIsNotNone(fastest, proc.stdout)
        fastest_s = float(fastest.group(1)) * UNIT_S[fastest.group(2)]
        total = H2LOAD_TOTAL_RE.search(proc.stdout)
        self.assertIsNotNone(total, proc.stdout)
        return float(total.group(1)) * UNIT_S[total.group(2)], fastest_s, proc.stdout

    def test_h2load_h2c_and_http1(self):
        srv = self.start()
        # h2c: 100 streams at once (10 x 10), so 200 requests take two rounds of >= 100 ms
        elapsed, fastest_s, out = self.h2load(srv, "-c", "10", "-m", "10")
        self.assertGreaterEqual(fastest_s, 0.1, out)
        self.assertGreaterEqual(elapsed, 0.2, out)
        # HTTP/1.1: 10 connections with 10 pipelined requests each; a connection's answers go one after
        # the other, each paced over 100 ms: 20 per connection take 2 s at least
        elapsed, fastest_s, out = self.h2load(srv, "--h1", "-c", "10", "-m", "10")
        self.assertGreaterEqual(fastest_s, 0.1, out)
        self.assertGreaterEqual(elapsed, 2.0, out)
        doc = c.stats(srv)
        self.assertEqual(doc["requests"]["total"], 400)
        self.assertEqual(doc["bytes"]["response_body"], 400 * 4096)
