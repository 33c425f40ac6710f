"""Per-request behaviours (issue 11, part 2): delay, status and size chosen per request, the flags
that set their defaults, and the timing a client can check against.

What is tested, on every listener it applies to (cleartext HTTP/1.1, TLS HTTP/1.1, h2c with prior
knowledge, HTTP/2 over TLS):
  - each source of each parameter (path /wait/<ms>, /delay/<duration>, /status/<spec>; query delay=,
    status=, size=; headers X-Mock-Delay, X-Mock-Status, X-Mock-Size) does what it says, with first
    match winning per parameter in the order path, query, header;
  - delays are never early (every sample >= the written delay) and close (median within 2 ms,
    scaled under ASan); a delayed non-200 is held like a 200;
  - weighted status lists over 2,000 requests and a lognormal delay over 5,000 requests (h2load,
    per-request times from --log-file) land where the spec says;
  - bodies are exactly `size` bytes of the configured body repeated; 204 and 304 carry none;
  - every bad value gets 400 with a one-line reason naming the parameter and where it came from,
    and an HTTP/1.1 connection keeps serving after it; bad flags exit 2 with one line;
  - --no-request-control, --seed, --server-timing, --delay-from head|request, --status, --body-size,
    --max-response-size;
  - /stats counts exact status codes and histograms the applied delay and the request receive time
    (the key names are read in one place: stats_status_count and stats_histogram below).

Clients: the project's raw HTTP/1.1 connections (clients.Conn, clients.TlsConn), python3-h2 for
HTTP/2 (H2Client below: flow control, END_STREAM placement and per-stream timing are visible), and
h2load for the counted runs. Times are taken on the client just before the request's first byte is
written and after its last response byte is read, on a warm connection, so a server that answers
early can never look on time. Every wait is bounded; upper latency bounds scale with SLOWDOWN under
ASan, the never-early bounds do not.
"""
import contextlib
import math
import os
import re
import subprocess
import tempfile
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

import clients as c
from mockserver import BIN, SLOWDOWN, free_port, run
from testcase import TlsServerTestCase, release_only

BODY = c.BODY  # the default benchmark body, b"Hello world!\n"
LISTENERS = ("http1", "http1-tls", "h2c", "h2-tls")
MS = 1e-3
SERVER_TIMING_RE = re.compile(r"^delay;dur=(\d+\.\d{3})$")


def repeated_body(n_bytes, body=BODY):
    """The configured body repeated and cut to n_bytes: what ?size=n_bytes must send."""
    return (body * (n_bytes // len(body) + 1))[:n_bytes]


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (p in 0..1)."""
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def median(values):
    return percentile(sorted(values), 0.5)


def server_timing_ms(resp):
    """The dur of `Server-Timing: delay;dur=<ms>` in ms, or None if the header is absent. A header in
    another form fails the caller's assertion with the header's text."""
    value = resp.header("server-timing")
    if value is None:
        return None
    m = SERVER_TIMING_RE.match(value)
    if not m:
        raise AssertionError(f"Server-Timing not 'delay;dur=<ms with 3 decimals>': {value!r}")
    return float(m.group(1))


# ---- /stats: the only place that knows the key names helper "metrics" chose ----

def stats_status_count(doc, status):
    """Benchmark responses with exactly this status code (requests.by_status lists codes seen)."""
    return doc["requests"]["by_status"].get(str(status), 0)


def stats_histogram(doc, name):
    """A duration histogram of /stats: 'applied_delay' or 'request_receive' (count, sum_seconds,
    max_seconds, buckets)."""
    return doc[name]


# ---- clients ----

class Resp:
    """One response as any client here saw it. `elapsed_s`: first request byte written to last
    response byte read. HTTP/2 only: `end_stream_on_headers`, `data_frames` (payload sizes)."""

    def __init__(self, status, headers, body, elapsed_s, end_stream_on_headers=None, data_frames=()):
        self.status, self.headers, self.body, self.elapsed_s = status, headers, body, elapsed_s
        self.end_stream_on_headers, self.data_frames = end_stream_on_headers, list(data_frames)

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return f"<Resp {self.status} {self.headers} {self.body[:60]!r} {self.elapsed_s * 1000:.3f} ms>"


class H1Client:
    """One keep-alive HTTP/1.1 connection (cleartext or TLS with ALPN http/1.1)."""

    def __init__(self, port, tls):
        self.conn = c.TlsConn("127.0.0.1", port) if tls else c.Conn("127.0.0.1", port)
        self.tls = tls

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def request(self, path="/", headers=None, method="GET", body=b"", body_after_s=None):
        """body_after_s: send the head (with Content-Length) first and the body that many seconds
        later, in a second write."""
        raw = c.raw_request(method, path, headers, body)
        head, payload = (raw[:len(raw) - len(body)], body) if body_after_s is not None else (raw, b"")
        t0 = time.monotonic()
        self.conn.send(head)
        if body_after_s is not None:
            time.sleep(body_after_s)
            self.conn.send(payload)
        r = self.conn.read_response(head_request=(method == "HEAD"))
        elapsed = time.monotonic() - t0
        return Resp(r.status, r.headers, r.body, elapsed)

    def keeps_serving(self):
        """True if a plain GET / on this same connection is answered with the benchmark body."""
        r = self.request("/")
        return r.status == 200 and r.body == BODY


class H2Client(c.SocketClient):
    """One HTTP/2 connection through python3-h2 (h2c with prior knowledge, or TLS with ALPN h2).
    Windows are opened wide at the start and every DATA byte is acknowledged, so large bodies flow."""

    WINDOW_BYTES = 1 << 30

    def __init__(self, port, tls):
        raw = c.connect("127.0.0.1", port, timeout_s=10)
        if tls:
            self.sock = c.tls_context(("h2",)).wrap_socket(raw, server_hostname="localhost")
            if self.sock.selected_alpn_protocol() != "h2":
                raise AssertionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
        else:
            self.sock = raw
        self.tls = tls
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.WINDOW_BYTES})
        self.h2.increment_flow_control_window(self.WINDOW_BYTES)
        self._flush()
        self.streams = {}

    def _flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path="/", headers=None, method="GET", body=b"", body_after_s=None):
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https" if self.tls else "http"), (":authority", "127.0.0.1"),
                (":path", path)]
        hdrs += [(k.lower(), v) for k, v in (headers or {}).items()]
        if body:
            hdrs.append(("content-length", str(len(body))))
        # body: a bytearray, as appending to bytes copies all of it per DATA frame (slow at 16 MiB)
        st = self.streams[sid] = {"headers": None, "body": bytearray(), "frames": [], "on_headers": None, "ended": False}
        self.h2.send_headers(sid, hdrs, end_stream=not body)
        if body and body_after_s is None:
            self.h2.send_data(sid, body, end_stream=True)
        head = self.h2.data_to_send()
        t0 = time.monotonic()  # just before the write: HPACK encoding is not timed
        self.sock.sendall(head)
        if body and body_after_s is not None:
            time.sleep(body_after_s)
            self.h2.send_data(sid, body, end_stream=True)
            self._flush()
        deadline = time.monotonic() + 30 * SLOWDOWN
        while not st["ended"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream {sid} ({path}) not answered")
            data = self.sock.recv(1 << 20)
            received_at = time.monotonic()  # before python3-h2 parses: its cost is not timed
            if not data:
                raise EOFError(f"connection closed before stream {sid} ({path}) ended")
            for ev in self.h2.receive_data(data):
                self._event(ev)
            self._flush()
        del self.streams[sid]
        headers = {k: v for k, v in st["headers"] if not k.startswith(":")}
        status = int(dict(st["headers"])[":status"])
        return Resp(status, headers, bytes(st["body"]), received_at - t0, st["on_headers"], st["frames"])

    def _event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st is not None:
            st["headers"] = ev.headers
            st["on_headers"] = ev.stream_ended is not None
        elif isinstance(ev, h2.events.DataReceived):
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if st is not None:
                st["body"] += ev.data
                st["frames"].append(len(ev.data))
        elif isinstance(ev, h2.events.StreamEnded) and st is not None:
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset) and st is not None:
            raise ConnectionError(f"stream {ev.stream_id} reset: {ev.error_code!r}")
        elif isinstance(ev, h2.events.ConnectionTerminated):
            raise ConnectionError(f"GOAWAY {ev.error_code!r} {ev.additional_data!r}")

    def keeps_serving(self):
        r = self.request("/")
        return r.status == 200 and r.body == BODY


class Target:
    """A running server with a cleartext and a TLS listener; client(kind) opens a warm connection."""

    def __init__(self, srv, tls_port):
        self.srv, self.tls_port = srv, tls_port

    def port(self, kind):
        return self.tls_port if kind.endswith("tls") else self.srv.port

    def client(self, kind, warm=True):
        cl = H1Client(self.port(kind), tls=kind == "http1-tls") if kind.startswith("http1") \
            else H2Client(self.port(kind), tls=kind == "h2-tls")
        if warm:  # handshakes, SETTINGS, first-use allocations out of the way
            cl.request("/healthz")
        return cl

    def url(self, kind, path):
        scheme = "https" if kind.endswith("tls") else "http"
        return f"{scheme}://127.0.0.1:{self.port(kind)}{path}"


class H2loadRun:
    """What h2load reported: request counts, status classes, the protocol it spoke and, with a log
    file, each request's duration."""

    def __init__(self, proc, log_path):
        self.stdout = proc.stdout
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                      r"(\d+) errored, (\d+) timeout", proc.stdout)
        if not m:
            raise AssertionError(f"h2load did not report: {proc.stdout} {proc.stderr}")
        _, _, self.done, _, _, self.errored, self.timeout = map(int, m.groups())
        m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", proc.stdout)
        self.classes = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups())))
        m = re.search(r"Application protocol: (\S+)", proc.stdout)
        self.protocol = m.group(1) if m else None
        self.durations_s = []
        if log_path:
            with open(log_path) as f:
                for line in f:  # start (us since the epoch) TAB status TAB duration (us)
                    self.durations_s.append(int(line.split()[2]) / 1e6)


def h2load(target, kind, path, n, headers=None, log=False, in_flight=20):
    """n requests of `path` on listener `kind`. HTTP/1.1: `in_flight` connections, one request at a
    time each (pipelining would make a short delay wait behind a long one); HTTP/2: 2 connections
    with in_flight/2 streams each."""
    args = ["h2load", "-n", str(n), "-t", "1"]
    if kind.startswith("http1"):
        args += ["--h1", "-c", str(in_flight), "-m", "1"]
    else:
        args += ["-c", "2", "-m", str(max(1, in_flight // 2))]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    log_path = None
    if log:
        fd, log_path = tempfile.mkstemp(prefix="mockupstream-h2load-", suffix=".log")
        os.close(fd)
        args += ["--log-file", log_path]
    try:
        res = H2loadRun(run(args + [target.url(kind, path)], timeout_s=60), log_path)
        want = {"http1": "http/1.1", "http1-tls": "http/1.1", "h2c": "h2c", "h2-tls": "h2"}[kind]
        if res.protocol != want:
            raise AssertionError(f"h2load spoke {res.protocol!r}, not {want!r}: {res.stdout}")
        return res
    finally:
        if log_path:
            os.unlink(log_path)


class BehaviourCase(TlsServerTestCase):
    def start(self, *args, **kw):
        """A server with `args` on a cleartext and a TLS listener (each case loops over LISTENERS,
        one subTest per listener, so a failure names the listener and the others still run)."""
        srv, tls_port = self.tls_server(*args, **kw)
        return Target(srv, tls_port)


# ---------------------------------------------------------------------------------------------------

class DelayTest(BehaviourCase):
    # A source that is ignored or misread fails the never-early bound on every sample, and a late
    # server moves the median of 10 as surely as that of 20.
    SAMPLES = 10

    def assert_delay(self, cl, kind, path, headers, written_s):
        """SAMPLES requests: none earlier than the written delay, the median within 2 ms of it."""
        times = []
        for _ in range(self.SAMPLES):
            r = cl.request(path, headers)
            self.assertEqual(r.status, 200, (kind, path, headers, r))
            self.assertEqual(r.body, BODY, (kind, path, headers))
            times.append(r.elapsed_s)
        label = (kind, path, headers, [round(t * 1000, 3) for t in sorted(times)])
        self.assertGreaterEqual(min(times), written_s, ("answered early", label))
        self.assertLess(median(times), written_s + 2 * MS * SLOWDOWN, ("late", label))

    def test_each_source_of_a_delay_is_exact(self):
        # --delay 0: a source that is ignored answers at once and fails the never-early bound.
        target = self.start("--delay", "0")
        cases = [
            ("/?delay=25ms", None, 25 * MS),  # the issue's own case: >= 25 ms, < 27 ms
            ("/", {"X-Mock-Delay": "25ms"}, 25 * MS),
            ("/delay/10ms", None, 10 * MS),
            ("/delay/0.010", None, 10 * MS),  # httpbin's habit: a bare number is seconds
            ("/wait/10", None, 10 * MS),
            ("/wait/0.5", None, 0.5 * MS),  # decimals: 500 us
            ("/?delay=1500us", None, 1.5 * MS),
        ]
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                for path, headers, written_s in cases:
                    self.assert_delay(cl, kind, path, headers, written_s)

    def test_delayed_non_200_is_held_the_same_on_every_path(self):
        target = self.start("--delay", "20ms")
        cases = [
            ("/?status=503&delay=25ms", None, 503, 25 * MS),
            ("/status/503?delay=25ms", None, 503, 25 * MS),
            ("/delay/25ms?status=503", None, 503, 25 * MS),
            ("/wait/25?status=500", None, 500, 25 * MS),
            ("/", {"X-Mock-Status": "503", "X-Mock-Delay": "25ms"}, 503, 25 * MS),
            ("/status/404", None, 404, 20 * MS),  # the default --delay holds a non-200 too
            ("/status/204?delay=25ms", None, 204, 25 * MS),
        ]
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                for path, headers, status, written_s in cases:
                    times = []
                    for _ in range(3):  # one early answer fails; two of three late move the median
                        r = cl.request(path, headers)
                        self.assertEqual(r.status, status, (kind, path, headers, r))
                        self.assertGreaterEqual(r.elapsed_s, written_s, ("answered early", kind, path, headers, r))
                        times.append(r.elapsed_s)
                    self.assertLess(median(times), written_s + 5 * MS * SLOWDOWN, ("late", kind, path, headers, times))

    def test_precedence_is_path_then_query_then_header_per_parameter(self):
        target = self.start("--delay", "0")
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                # status: path beats query beats header
                self.assertEqual(cl.request("/status/404?status=503").status, 404, kind)
                self.assertEqual(cl.request("/status/404", {"X-Mock-Status": "503"}).status, 404, kind)
                self.assertEqual(cl.request("/?status=503", {"X-Mock-Status": "500"}).status, 503, kind)
                self.assertEqual(cl.request("/", {"X-Mock-Status": "500"}).status, 500, kind)
                # delay: the lower-precedence 300 ms would be obvious
                for path, headers in (("/?delay=1ms", {"X-Mock-Delay": "300ms"}), ("/wait/1?delay=300ms", None),
                                      ("/delay/1ms?delay=300ms", None), ("/wait/1", {"X-Mock-Delay": "300ms"})):
                    r = cl.request(path, headers)
                    self.assertEqual(r.status, 200, (kind, path, headers, r))
                    self.assertGreaterEqual(r.elapsed_s, 1 * MS, (kind, path, headers, r))
                    self.assertLess(r.elapsed_s, 100 * MS * SLOWDOWN, (kind, path, headers, r))
                # size: query beats header
                self.assertEqual(cl.request("/?size=10", {"X-Mock-Size": "20"}).body, repeated_body(10), kind)
                # per parameter: each is taken from the first source that has it, the others still apply
                r = cl.request("/status/404?delay=30ms&size=7")
                self.assertEqual((r.status, r.body), (404, repeated_body(7)), kind)
                self.assertGreaterEqual(r.elapsed_s, 30 * MS, (kind, r))
                r = cl.request("/?status=503", {"X-Mock-Delay": "30ms", "X-Mock-Size": "5"})
                self.assertEqual((r.status, r.body), (503, repeated_body(5)), kind)
                self.assertGreaterEqual(r.elapsed_s, 30 * MS, (kind, r))
                r = cl.request("/wait/30", {"X-Mock-Size": "20", "X-Mock-Status": "404"})
                self.assertEqual((r.status, r.body), (404, repeated_body(20)), kind)
                self.assertGreaterEqual(r.elapsed_s, 30 * MS, (kind, r))

    def test_distribution_draws_are_capped_at_max_delay(self):
        # normal with mean = --max-delay: about half the draws land above it and must be served at it.
        target = self.start("--delay", "0", "--max-delay", "20ms", "--server-timing")
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                durs, capped_times = [], []
                for _ in range(30):
                    r = cl.request("/?delay=normal:mean=20ms,sd=10ms")
                    self.assertEqual(r.status, 200, (kind, r))
                    dur_ms = server_timing_ms(r)
                    self.assertIsNotNone(dur_ms, (kind, r))
                    self.assertLessEqual(dur_ms, 20.0, (kind, r))
                    self.assertGreaterEqual(r.elapsed_s, dur_ms * MS, ("answered early", kind, r))
                    durs.append(dur_ms)
                    if dur_ms == 20.0:
                        capped_times.append(r.elapsed_s)
                # P(no draw above the mean in 30) = 2^-30
                self.assertTrue(capped_times, (kind, durs))
                self.assertGreater(len(set(durs)), 5, (kind, durs))
                # served at the cap, not at the draw (draws above the cap average ~28 ms)
                self.assertLess(median(capped_times), 20 * MS + 2 * MS * SLOWDOWN, (kind, capped_times))


class DistributionTest(BehaviourCase):
    """Counted runs with h2load: the shape of what was served matches the spec."""

    def test_weighted_status_over_2000_requests(self):
        target = self.start("--delay", "0")
        sources = [("/status/503:50", None), ("/?status=503:50", None), ("/", {"X-Mock-Status": "503:50"})]
        served_5xx = 0
        for kind in LISTENERS:
            for path, headers in sources:
                with self.subTest(listener=kind, path=path, headers=headers):
                    res = h2load(target, kind, path, 2000, headers)
                    self.assertEqual((res.done, res.errored, res.timeout), (2000, 0, 0), res.stdout)
                    self.assertEqual(res.classes["2xx"] + res.classes["5xx"], 2000, res.stdout)
                    # binomial(2000, 0.5): 45-55 % is +-4.5 standard deviations
                    self.assertGreaterEqual(res.classes["5xx"], 900, res.stdout)
                    self.assertLessEqual(res.classes["5xx"], 1100, res.stdout)
                    served_5xx += res.classes["5xx"]
        doc = c.stats(target.srv)
        self.assertEqual(stats_status_count(doc, 503), served_5xx, "every 5xx served was exactly 503")
        self.assertEqual(stats_status_count(doc, 500), 0)

    def test_status_flag_sets_the_default(self):
        target = self.start("--delay", "0", "--status", "503:50")
        res = h2load(target, "h2c", "/", 2000)
        self.assertEqual(res.done, 2000, res.stdout)
        self.assertTrue(900 <= res.classes["5xx"] <= 1100 and res.classes["2xx"] + res.classes["5xx"] == 2000, res.stdout)
        # a request's own status beats the flag; X-Mock-Status: 200 forces a 200
        res = h2load(target, "http1", "/", 200, {"X-Mock-Status": "200"})
        self.assertEqual(res.classes["2xx"], 200, res.stdout)
        srv = self.server("--delay", "0", env={"MOCKUPSTREAM_STATUS": "404"})
        self.assertEqual(c.one(srv).status, 404)

    def assert_lognormal(self, target, res, label):
        self.assertEqual((res.done, res.errored, res.timeout), (5000, 0, 0), (label, res.stdout))
        self.assertEqual(len(res.durations_s), 5000, label)
        d = sorted(res.durations_s)
        p50, p99 = percentile(d, 0.50), percentile(d, 0.99)
        # Sampling error of 5,000 draws: ~1 % at p50, ~3 % at p99. The client's own time and the
        # server's lateness only add, so the upper tolerance scales under ASan, the lower does not.
        # The server's own view goes into the message, to tell its lateness from the client's time.
        lateness = c.stats(target.srv)["lateness"]
        info = (label, f"served p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, min {d[0] * 1000:.3f} ms",
                "server lateness " + ", ".join(f"{k[:-8]} {(lateness[k] or 0) * 1000:.3f} ms"
                                               for k in ("p50_seconds", "p90_seconds", "p99_seconds")))
        self.assertGreaterEqual(p50, 0.90 * 5 * MS, info)
        self.assertLessEqual(p50, (1 + 0.10 * SLOWDOWN) * 5 * MS, info)
        self.assertGreaterEqual(p99, 0.85 * 20 * MS, info)
        self.assertLessEqual(p99, (1 + 0.15 * SLOWDOWN) * 20 * MS, info)

    def lognormal_run(self, kind, path="/", source="--delay"):
        # 8 requests in flight: 5,000 take ~4 s, and neither h2load's queueing nor the server's
        # (one worker, ~1,300 requests/s) adds much to what is measured.
        args = ("--delay", "lognormal:p50=5ms,p99=20ms") if source == "--delay" else ("--delay", "0")
        target = self.start(*args)
        self.assert_lognormal(target, h2load(target, kind, path, 5000, log=True, in_flight=8), (kind, source))

    # The lognormal draw itself runs under ASan in tests/unit/test_distribution.c and the fuzzer;
    # what these add is the served shape, which a sanitizer build's slowness only blurs.
    LOGNORMAL_SHAPE = "the served distribution's shape; the draws run under ASan in the unit tests"

    @release_only(LOGNORMAL_SHAPE)
    def test_lognormal_delay_served_over_5000_requests_http1(self):
        self.lognormal_run("http1")

    @release_only(LOGNORMAL_SHAPE)
    def test_lognormal_delay_served_over_5000_requests_http1_tls(self):
        self.lognormal_run("http1-tls")

    @release_only(LOGNORMAL_SHAPE)
    def test_lognormal_delay_served_over_5000_requests_h2c(self):
        self.lognormal_run("h2c")

    @release_only(LOGNORMAL_SHAPE)
    def test_lognormal_delay_served_over_5000_requests_h2_tls(self):
        self.lognormal_run("h2-tls")

    @release_only(LOGNORMAL_SHAPE)
    def test_lognormal_delay_from_the_query_over_5000_requests(self):
        self.lognormal_run("http1", "/?delay=lognormal:p50=5ms,p99=20ms", "?delay=")


class SizeTest(BehaviourCase):
    def test_size_from_query_and_header(self):
        target = self.start("--delay", "0")
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                for path, headers, n in (("/?size=100000", None, 100000), ("/", {"X-Mock-Size": "100000"}, 100000),
                                         ("/?size=0", None, 0), ("/", {"X-Mock-Size": "0"}, 0),
                                         ("/?size=64k", None, 65536), ("/?size=1", None, 1),
                                         ("/?size=16m", None, 16 << 20)):  # the default --max-response-size
                    r = cl.request(path, headers)
                    self.assertEqual(r.status, 200, (kind, path, headers, r))
                    self.assertEqual(r.header("content-length"), str(n), (kind, path, headers))
                    self.assertEqual(len(r.body), n, (kind, path, headers))
                    self.assertTrue(r.body == repeated_body(n), (kind, path, headers, "not the body repeated"))
                r = cl.request("/?size=16777217")
                self.assertEqual(r.status, 400, (kind, r))
                # HEAD: the Content-Length of the body it would get, no body; the connection goes on
                r = cl.request("/?size=1000", method="HEAD")
                self.assertEqual((r.status, r.header("content-length"), r.body), (200, "1000", b""), (kind, r))
                self.assertTrue(cl.keeps_serving(), kind)
                # a distribution of sizes
                sizes = {len(cl.request("/?size=uniform:10..20").body) for _ in range(30)}
                self.assertTrue(sizes <= set(range(10, 21)) and len(sizes) > 3, (kind, sizes))

    def test_body_size_and_max_response_size_flags(self):
        target = self.start("--delay", "0", "--body-size", "1000", "--max-response-size", "2000")
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                self.assertEqual(len(cl.request("/").body), 1000, kind)
                self.assertEqual(len(cl.request("/?size=2000").body), 2000, kind)
                self.assertEqual(cl.request("/?size=2001").status, 400, kind)
                self.assertEqual(cl.request("/", {"X-Mock-Size": "2001"}).status, 400, kind)
        target = self.start("--delay", "0", "--body-size", "100:50,200:50")
        for kind in ("http1", "h2c"):
            with self.subTest(listener=kind), target.client(kind) as cl:
                sizes = [len(cl.request("/").body) for _ in range(40)]
                self.assertEqual(set(sizes), {100, 200}, (kind, sizes))  # P(one size missing) = 2^-39


class SlowReaderMemoryTest(BehaviourCase):
    def test_large_bodies_to_slow_readers_are_not_copied_per_request(self):
        # 12 clients ask for 8 MiB each and do not read: every response points into the worker's one
        # fill, so memory grows by that fill once (8 MiB), not by 12 copies (96 MiB: what HTTP/1.1
        # cost before, a copy of the unwritten body per request).
        target = self.start("--delay", "0", workers=1)
        size = 8 * 1024 * 1024
        pid = c.stats(target.srv)["workers"][0]["pid"]
        for kind in ("http1", "http1-tls"):
            with self.subTest(listener=kind):
                before = c.rss_bytes(pid)
                conns = []
                try:
                    for _ in range(12):
                        conn = (c.TlsConn if kind == "http1-tls" else c.Conn)("127.0.0.1", target.port(kind),
                                                                             rcvbuf_bytes=65536)
                        conns.append(conn)
                        conn.send(c.raw_request(path=f"/?size={size}"))
                    self.assertTrue(c.wait_until(lambda: c.stats(target.srv)["bytes"]["response_body"] >= 12 * size))
                    grown = c.rss_bytes(pid) - before
                    self.assertLess(grown, size + 16 * 1024 * 1024, (kind, grown))
                    r = conns[0].read_response(timeout_s=20 * SLOWDOWN)
                    self.assertEqual((r.status, len(r.body), r.body[:13]), (200, size, BODY))
                finally:
                    for conn in conns:
                        conn.close()


class NoBodyTest(BehaviourCase):
    def test_204_and_304_have_no_body(self):
        target = self.start("--delay", "0")
        cases = [("/status/204", None, 204), ("/status/304", None, 304), ("/?status=204", None, 204),
                 ("/", {"X-Mock-Status": "304"}, 304), ("/status/204?size=100", None, 204)]
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                for path, headers, status in cases:
                    r = cl.request(path, headers)
                    self.assertEqual(r.status, status, (kind, path, headers, r))
                    self.assertEqual(r.body, b"", (kind, path, headers))
                    self.assertIsNone(r.header("content-length"), (kind, path, headers, r))
                    self.assertIsNone(r.header("transfer-encoding"), (kind, path, headers, r))
                    if kind.startswith("h2"):  # END_STREAM on HEADERS, or only empty DATA frames
                        self.assertTrue(r.end_stream_on_headers or not any(r.data_frames), (kind, path, r.data_frames))
                    # HTTP/1.1: a stray body byte would be read as the next response's status line
                    self.assertTrue(cl.keeps_serving(), (kind, path, headers))
                r = cl.request("/", method="HEAD")
                self.assertEqual((r.status, r.header("content-length"), r.body), (200, str(len(BODY)), b""), (kind, r))
                self.assertTrue(cl.keeps_serving(), kind)


# A path source is named by the path, with or without its placeholder and the word "path"
# ("bad /status/ path: ...", "bad /delay/<duration>: ...").
PATH_DELAY, PATH_WAIT, PATH_STATUS = (r"bad /%s/(<[a-z]+>)?( path)?: " % name for name in ("delay", "wait", "status"))


class BadValueTest(BehaviourCase):
    # (request path, headers, regex the one-line body must match)
    CASES = [
        ("/?delay=abc", None, r"bad delay= in query: "),
        ("/?delay=25xs", None, r"bad delay= in query: "),
        ("/?delay=-5ms", None, r"bad delay= in query: "),
        ("/?delay=2s", None, r"bad delay= in query: "),  # above --max-delay 1s
        ("/?delay=lognorm:p50=1ms,p99=2ms", None, r"bad delay= in query: "),
        ("/?delay=1ms:60,2ms:50", None, r"bad delay= in query: "),
        ("/?delay=uniform:5ms..1ms", None, r"bad delay= in query: "),
        ("/", {"X-Mock-Delay": "abc"}, r"bad X-Mock-Delay header: "),
        ("/", {"X-Mock-Delay": "2s"}, r"bad X-Mock-Delay header: "),
        ("/", {"X-Mock-Delay": "normal:mean=5ms"}, r"bad X-Mock-Delay header: "),
        ("/delay/abc", None, PATH_DELAY),
        ("/delay/2", None, PATH_DELAY),  # 2 s
        ("/delay/-1ms", None, PATH_DELAY),
        ("/wait/abc", None, PATH_WAIT),
        ("/wait/2000", None, PATH_WAIT),
        ("/?status=abc", None, r"bad status= in query: "),
        ("/?status=99", None, r"bad status= in query: "),
        ("/?status=600", None, r"bad status= in query: "),
        ("/?status=100", None, r"bad status= in query: "),  # an interim response cannot be the answer
        ("/?status=200:50,101:50", None, r"bad status= in query: "),
        ("/?status=503:120", None, r"bad status= in query: "),
        ("/?status=uniform:200..300", None, r"bad status= in query: "),
        ("/", {"X-Mock-Status": "abc"}, r"bad X-Mock-Status header: "),
        ("/", {"X-Mock-Status": "600"}, r"bad X-Mock-Status header: "),
        ("/", {"X-Mock-Status": "101"}, r"bad X-Mock-Status header: "),
        ("/status/abc", None, PATH_STATUS),
        ("/status/600", None, PATH_STATUS),
        ("/status/100", None, PATH_STATUS),
        ("/status/503:50,404:60", None, PATH_STATUS),
        ("/?size=abc", None, r"bad size= in query: "),
        ("/?size=-1", None, r"bad size= in query: "),
        ("/?size=1q", None, r"bad size= in query: "),
        ("/?size=2001", None, r"bad size= in query: "),  # above --max-response-size 2000
        ("/", {"X-Mock-Size": "abc"}, r"bad X-Mock-Size header: "),
        ("/", {"X-Mock-Size": "2001"}, r"bad X-Mock-Size header: "),
    ]

    def test_bad_values_get_400_with_a_one_line_reason(self):
        target = self.start("--delay", "0", "--max-delay", "1s", "--max-response-size", "2000")
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                for path, headers, pattern in self.CASES:
                    r = cl.request(path, headers)
                    label = (kind, path, headers, r)
                    self.assertEqual(r.status, 400, label)
                    text = r.body.decode("utf-8", "replace")
                    self.assertRegex(text, "^" + pattern + r".+\n$", label)
                    self.assertEqual(text.count("\n"), 1, ("one line", label))
                    if kind.startswith("http1"):
                        self.assertNotEqual(r.header("connection", "").lower(), "close", label)
                    self.assertTrue(cl.keeps_serving(), ("connection keeps serving", label))

    def refused(self, args, env=None):
        """Runs the binary expecting exit 2; returns its one stderr line."""
        port = free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKUPSTREAM_")}
        full_env.update(env or {})
        try:
            p = run([BIN, "--listen", f"127.0.0.1:{port}", "--workers", "1"] + args, env=full_env, timeout_s=5)
        except subprocess.TimeoutExpired:
            self.fail(f"started instead of refusing: {args} {env}")
        self.assertEqual(p.returncode, 2, (args, env, p.stderr))
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, (args, env, p.stderr))
        return lines[0]

    def test_bad_flags_exit_2_with_one_line(self):
        cases = [
            (["--delay", "lognorm:p50=5ms,p99=20ms"], None, "lognorm"),
            (["--delay", "uniform:15ms..5ms"], None, "uniform:15ms..5ms"),
            (["--delay", "1ms:60,2ms:50"], None, "1ms:60,2ms:50"),
            (["--status", "abc"], None, "abc"),
            (["--status", "600"], None, "600"),
            (["--status", "100"], None, "100"),
            (["--status", "503:120"], None, "503:120"),
            (["--body-size", "uniform:20..10"], None, "uniform:20..10"),
            (["--body-size", "-1"], None, "-1"),
            (["--max-response-size", "lots"], None, "lots"),
            (["--seed", "abc"], None, "abc"),
            (["--seed", "-1"], None, "-1"),
            (["--delay-from", "body"], None, "body"),
            ([], {"MOCKUPSTREAM_STATUS": "600"}, "MOCKUPSTREAM_STATUS"),
            ([], {"MOCKUPSTREAM_DELAY": "lognormal:p50=5ms"}, "MOCKUPSTREAM_DELAY"),
            ([], {"MOCKUPSTREAM_DELAY_FROM": "never"}, "MOCKUPSTREAM_DELAY_FROM"),
            ([], {"MOCKUPSTREAM_SEED": "x"}, "MOCKUPSTREAM_SEED"),
            ([], {"MOCKUPSTREAM_MAX_RESPONSE_SIZE": "lots"}, "MOCKUPSTREAM_MAX_RESPONSE_SIZE"),
        ]
        for args, env, needle in cases:
            with self.subTest(args=args, env=env):
                self.assertIn(needle, self.refused(args, env))


class NoRequestControlTest(BehaviourCase):
    def test_every_control_is_ignored(self):
        target = self.start("--delay", "20ms", "--no-request-control")
        cases = [("/wait/1", None), ("/wait/5", None), ("/wait/abc", None), ("/delay/0.3", None), ("/delay/1ms", None),
                 ("/status/503", None), ("/status/204", None), ("/status/abc", None),
                 ("/?delay=1ms", None), ("/?delay=300ms", None), ("/?delay=abc", None), ("/?status=503", None),
                 ("/?size=5", None), ("/?size=-1", None),
                 ("/", {"X-Mock-Delay": "1ms"}), ("/", {"X-Mock-Status": "503"}), ("/", {"X-Mock-Size": "5"}),
                 ("/", {"X-Mock-Delay": "garbage"})]
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                for path, headers in cases:
                    r = cl.request(path, headers)
                    label = (kind, path, headers, r)
                    self.assertEqual((r.status, r.body), (200, BODY), label)
                    self.assertGreaterEqual(r.elapsed_s, 20 * MS, label)
                    self.assertLess(r.elapsed_s, 20 * MS + 100 * MS * SLOWDOWN, label)
                self.assertEqual(cl.request("/healthz").body, b"ok\n", kind)


class TimingHeaderTest(BehaviourCase):
    def test_server_timing_is_the_applied_delay_and_only_with_the_flag(self):
        # without the flag: no header, whatever the request asks for (the preformatted head stays)
        target = self.start("--delay", "1ms")
        for kind in LISTENERS:
            with self.subTest(listener=kind, server_timing=False), target.client(kind) as cl:
                for path in ("/", "/?delay=12.5ms", "/status/503?delay=2ms"):
                    r = cl.request(path)
                    self.assertEqual(r.status, 503 if "503" in path else 200, (kind, path, r))
                    self.assertIsNone(r.header("server-timing"), (kind, path, r))
        target = self.start("--delay", "7ms", "--server-timing")
        fixed = [("/", None, 7.0), ("/?delay=12.5ms", None, 12.5), ("/", {"X-Mock-Delay": "2500us"}, 2.5),
                 ("/wait/3", None, 3.0), ("/wait/0.25", None, 0.25), ("/delay/0.004", None, 4.0),
                 ("/status/503?delay=2ms", None, 2.0), ("/?delay=0", None, 0.0)]
        for kind in LISTENERS:
            with self.subTest(listener=kind), target.client(kind) as cl:
                for path, headers, want_ms in fixed:
                    r = cl.request(path, headers)
                    label = (kind, path, headers, r)
                    self.assertEqual(server_timing_ms(r), want_ms, label)
                    self.assertGreaterEqual(r.elapsed_s, want_ms * MS, ("answered early", label))
                overshoots = []
                for _ in range(15):
                    r = cl.request("/?delay=uniform:5ms..15ms")
                    dur_ms = server_timing_ms(r)
                    self.assertTrue(dur_ms is not None and 5.0 <= dur_ms <= 15.0, (kind, r))
                    self.assertGreaterEqual(r.elapsed_s, dur_ms * MS, ("answered early", kind, r))
                    overshoots.append(r.elapsed_s - dur_ms * MS)
                # dur is what was applied: the response came when it says, not at another draw
                self.assertLess(median(overshoots), 2 * MS * SLOWDOWN, (kind, overshoots))

    def test_same_seed_same_sequence(self):
        def sequence(seed):
            srv = self.server("--seed", str(seed), "--server-timing", "--delay", "uniform:1ms..20ms")  # --workers 1
            cl = H1Client(srv.port, tls=False)
            try:
                out = []
                for i in range(40):
                    r = cl.request("/" if i % 2 else "/?delay=uniform:1ms..20ms&status=503:50")
                    dur_ms = server_timing_ms(r)
                    self.assertTrue(dur_ms is not None and 1.0 <= dur_ms <= 20.0, r)
                    self.assertGreaterEqual(r.elapsed_s, dur_ms * MS, ("answered early", r))
                    out.append((r.status, dur_ms))
                return out
            finally:
                cl.close()
                srv.stop()

        a, b, other = sequence(7), sequence(7), sequence(8)
        self.assertEqual(a, b, "--seed 7 twice")
        self.assertGreater(len({d for _, d in a}), 30, a)
        self.assertEqual({s for s, _ in a[0::2]}, {200, 503}, a)
        self.assertNotEqual(a, other, "--seed 8 drew what --seed 7 did")


class DelayFromTest(BehaviourCase):
    """A request whose head arrives and whose 5-byte body follows `gap` later: with --delay-from head
    the delay runs from the head (answered at max(head + delay, body)), with request (the default)
    from the body."""
    DELAY_S = 0.1
    GAPS_S = (0.2, 0.04)

    def expect(self, mode, gap_s):
        return max(gap_s, self.DELAY_S) if mode == "head" else gap_s + self.DELAY_S

    def check(self, target, mode, in_thread=False):
        """in_thread: run from at_once, where subTest cannot be used (each label names the listener)."""
        for kind in LISTENERS:
            with contextlib.nullcontext() if in_thread else self.subTest(listener=kind), target.client(kind) as cl:
                for gap_s in self.GAPS_S:
                    want_s = self.expect(mode, gap_s)
                    times = []
                    for _ in range(2):
                        r = cl.request("/", method="POST", body=b"hello", body_after_s=gap_s)
                        self.assertEqual(r.status, 200, (kind, mode, gap_s, r))
                        times.append(r.elapsed_s)
                    label = (kind, mode, f"gap {gap_s * 1000:.0f} ms", f"want {want_s * 1000:.0f} ms",
                             [f"{t * 1000:.1f} ms" for t in times])
                    self.assertGreaterEqual(min(times), want_s, label)
                    # the other mode is >= 40 ms away; both samples must be late to fail this
                    self.assertLess(min(times), want_s + 30 * MS * SLOWDOWN, label)
                r = cl.request("/")  # no body: the same either way
                self.assertGreaterEqual(r.elapsed_s, self.DELAY_S, (kind, r))

    def test_delay_from_head(self):
        self.check(self.start("--delay", "100ms", "--delay-from", "head"), "head")

    def test_delay_from_request_is_the_default(self):
        # the default and the explicit flag, each on its own server, both at once
        targets = [("default", self.start("--delay", "100ms")),
                   ("--delay-from request", self.start("--delay", "100ms", "--delay-from", "request"))]
        self.at_once(lambda label, target: self.check(target, "request", in_thread=True), targets)


class StatsTest(BehaviourCase):
    def test_stats_count_statuses_and_histogram_delay_and_receive_time(self):
        target = self.start("--delay", "1ms", "--server-timing")
        applied_ms = []
        cl = target.client("http1", warm=False)
        try:
            for path, status in (("/status/503", 503), ("/status/503", 503), ("/?status=503", 503),
                                 ("/?status=404", 404), ("/status/404?delay=5ms", 404), ("/status/204", 204),
                                 ("/?delay=20ms", 200), ("/", 200)):
                r = cl.request(path)
                self.assertEqual(r.status, status, (path, r))
                applied_ms.append(server_timing_ms(r))
            # a straggling body: the request took 150 ms to arrive
            r = cl.request("/", method="POST", body=b"hello", body_after_s=0.15)
            applied_ms.append(server_timing_ms(r))
        finally:
            cl.close()
        doc = c.stats(target.srv)
        self.assertEqual(stats_status_count(doc, 503), 3)
        self.assertEqual(stats_status_count(doc, 404), 2)
        self.assertEqual(stats_status_count(doc, 204), 1)
        self.assertEqual(stats_status_count(doc, 200), 3)
        applied = stats_histogram(doc, "applied_delay")
        self.assertEqual(applied["count"], len(applied_ms), applied)
        self.assertAlmostEqual(applied["sum_seconds"], sum(applied_ms) * MS, delta=len(applied_ms) * 1e-6)
        receive = stats_histogram(doc, "request_receive")
        self.assertGreaterEqual(receive["max_seconds"], 0.15, receive)
        self.assertLess(receive["max_seconds"], 0.15 + 0.1 * SLOWDOWN, receive)
