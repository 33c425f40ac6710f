"""Faults (issue 12, step 1): fault= / X-Mock-Fault / --fault, refused unless --allow-faults.

What is tested, on every listener it applies to (cleartext HTTP/1.1, TLS HTTP/1.1, h2c with prior
knowledge, HTTP/2 over TLS):
  - without --allow-faults a request naming a fault gets 403 with a one-line reason (and an HTTP/1.1
    connection keeps serving); --fault without --allow-faults, or a bad --fault, exits 2 with one line;
  - unknown kinds and malformed weights get 400 naming the parameter and the rule;
  - each kind does what the README says, after the request's delay, on that connection (HTTP/1.1) or
    that stream (HTTP/2) only: reset (RST; HTTP/2 RST_STREAM), close (no response, FIN; HTTP/2
    GOAWAY while the connection's other streams still finish), hang (nothing until --request-timeout,
    then a close / RST_STREAM; the client leaving first is seen), partial (the head and half the
    body, then the end), garbage (bytes that are not HTTP; HTTP/2: a body shorter than its
    content-length);
  - another connection (HTTP/1.1) or stream (HTTP/2) is served while a fault happens;
  - the first source wins: fault= over X-Mock-Fault over --fault; --no-request-control ignores both;
  - weights hold within 1 percentage point over 10,000 requests (h2load over h2c: a reset or partial
    fails one stream only), and /stats and /metrics count exactly the faults carried out.

Connection behaviours (step 2): --max-requests-per-connection (Connection: close on the Nth
response, GOAWAY on HTTP/2; wrk against 100 reconnects every 100 requests with no error),
--max-connection-age (closes at the first response past [0.9 x age, age]), and every close counted
by its reason. Load (step 3): --delay-per-held (delay = base + D x held, read from Server-Timing and
never early) and --max-held (503 with Retry-After at once past N held per worker).

Clients: raw sockets (clients.Conn, clients.TlsConn and plain recv, which tells an RST from a FIN),
raw HTTP/2 frames (h2frames.Conn: every RST_STREAM, GOAWAY and DATA byte is visible), curl and h2load.
Every wait is bounded; upper bounds scale with SLOWDOWN under ASan, lower (never early) bounds do not.
"""
import re
import signal
import socket
import ssl
import time

import clients as c
import h2frames as hf
from mockserver import BIN, SLOWDOWN, clean_env, run
from testcase import TlsServerTestCase

BODY = c.BODY
HTTP1_LISTENERS = ("http1", "http1-tls")
H2_LISTENERS = ("h2c", "h2-tls")
KINDS = ("reset", "close", "hang", "partial", "garbage")
REQUEST_TIMEOUT_S = 1.0


def stats_faults(target):
    """Faults carried out, by kind, from /stats."""
    return c.stats(target).get("faults", {})


class FaultCase(TlsServerTestCase):
    start = TlsServerTestCase.start_listeners
    http1 = TlsServerTestCase.http1_conn

    def h2(self, srv, kind):
        conn = hf.Conn(srv.port if kind == "h2c" else self.tls_port, tls=kind == "h2-tls")
        return conn.start()


def read_outcome(conn, within_s):
    """What a raw HTTP/1.1 connection got before it ended: ("reset" | "eof" | "open", bytes).
    A plain recv, so an RST (ECONNRESET) is told apart from a FIN (b""). Over TLS OpenSSL reports
    the RST as an end without close_notify (SSLEOFError, seen once ragged EOFs are not suppressed),
    while a close sends close_notify first (b"")."""
    data = conn.buf
    if isinstance(conn.sock, ssl.SSLSocket):
        conn.sock.suppress_ragged_eofs = False
    deadline = time.monotonic() + within_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "open", data
        conn.sock.settimeout(left)
        try:
            chunk = conn.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            return "reset", data
        except ssl.SSLZeroReturnError:
            return "eof", data
        except (socket.timeout, ssl.SSLWantReadError):
            return "open", data
        if not chunk:
            return "eof", data
        data += chunk


# ---------------------------------------------------------------------------------------------------

class FaultFlagsTest(FaultCase):
    def exit_line(self, *args):
        proc = run([BIN, "--listen", "127.0.0.1:0", "--workers", "1", *args], timeout_s=10, env=clean_env())
        lines = proc.stderr.strip().splitlines()
        return proc.returncode, lines

    def test_bad_flags_exit_2_with_one_line(self):
        for args, want in ((("--fault", "reset"), "--allow-faults"),
                           (("--allow-faults", "--fault", "explode"), "unknown fault 'explode'"),
                           (("--allow-faults", "--fault", "reset:60,hang:50"), "add up to 110"),
                           (("--allow-faults", "--fault", "reset:1,hang"), "has no weight"),
                           (("--allow-faults", "--fault", "reset:1.00001"), "not a percentage"),
                           (("--allow-faults", "--fault", "reset:1,reset:2"), "given twice")):
            with self.subTest(args=args):
                rc, lines = self.exit_line(*args)
                self.assertEqual(rc, 2, lines)
                self.assertEqual(len(lines), 1, lines)
                self.assertIn(want, lines[0])

    def test_env_allows_too(self):
        srv = self.server(env={"MOCKUPSTREAM_ALLOW_FAULTS": "1", "MOCKUPSTREAM_FAULT": "close"})
        with c.Conn.to(srv) as conn:
            conn.send(c.raw_request("GET", "/", {"Host": "x"}))
            outcome, data = read_outcome(conn, 5 * SLOWDOWN)
        self.assertEqual((outcome, data), ("eof", b""))


class FaultRefusalTest(FaultCase):
    def test_403_without_allow_faults_on_every_listener(self):
        srv = self.start()
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as conn:
                for how in ({"path": "/?fault=reset"}, {"path": "/", "headers": {"X-Mock-Fault": "hang"}}):
                    r = conn.request("GET", how["path"], dict({"Host": "x"}, **how.get("headers", {})))
                    self.assertEqual(r.status, 403, r)
                    self.assertIn(b"--allow-faults", r.body)
                    self.assertEqual(r.body.count(b"\n"), 1, r.body)
                # the connection keeps serving
                self.assertEqual(conn.request("GET", "/", {"Host": "x"}).body, BODY)
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                conn.request(1, "/?fault=reset")
                conn.request(3, "/", headers=[("x-mock-fault", "close")])
                conn.request(5, "/")
                for sid in (1, 3):
                    s = conn.response(sid)
                    self.assertEqual(s.status, 403, s)
                    self.assertIn(b"--allow-faults", s.body)
                self.assertEqual(conn.response(5).body, BODY)
        self.assertEqual(sum(stats_faults(srv).values()), 0)

    def test_400_for_bad_specs_on_every_listener(self):
        srv = self.start("--allow-faults")
        bad = (("/?fault=explode", None, b"unknown fault 'explode'"),
               ("/?fault=reset:101", None, b"not a percentage"),
               ("/?fault=reset:60,close:50", None, b"add up to 110"),
               ("/?fault=reset:1,hang", None, b"has no weight"),
               ("/?fault=", None, b"empty"),
               ("/", "reset:x", b"X-Mock-Fault header"))
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as conn:
                for path, header, want in bad:
                    headers = {"Host": "x"}
                    if header:
                        headers["X-Mock-Fault"] = header
                    r = conn.request("GET", path, headers)
                    self.assertEqual(r.status, 400, (path, header, r))
                    self.assertIn(want, r.body)
                    self.assertEqual(r.body.count(b"\n"), 1, r.body)
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                for i, (path, header, want) in enumerate(bad):
                    conn.request(1 + 2 * i, path, headers=[("x-mock-fault", header)] if header else [])
                    s = conn.response(1 + 2 * i)
                    self.assertEqual(s.status, 400, (path, header, s))
                    self.assertIn(want, s.body)
        self.assertEqual(sum(stats_faults(srv).values()), 0)


class Http1FaultTest(FaultCase):
    DELAY_S = 0.2

    def test_each_kind_after_its_delay_and_only_on_its_connection(self):
        srv = self.start("--allow-faults", "--request-timeout", f"{REQUEST_TIMEOUT_S}s", "--body-size", "1000")

        def check(label, kind, fault):  # every (listener, fault) at once, each on its own two connections
            with self.http1(srv, kind) as conn, self.http1(srv, kind) as other:
                t0 = time.monotonic()
                conn.send(c.raw_request("GET", f"/?delay={int(self.DELAY_S * 1000)}ms", {"Host": "x", "X-Mock-Fault": fault}))
                # another connection is served meanwhile, at once
                self.assertEqual(len(other.request("GET", "/?delay=0", {"Host": "x"}).body), 1000)
                outcome, data = read_outcome(conn, (REQUEST_TIMEOUT_S + 5) * SLOWDOWN)
                elapsed = time.monotonic() - t0
                self.assertGreaterEqual(elapsed, self.DELAY_S, "a fault never comes before its delay")
                if fault == "reset":
                    self.assertEqual((outcome, data), ("reset", b""))
                elif fault == "close":
                    self.assertEqual((outcome, data), ("eof", b""))
                elif fault == "hang":
                    self.assertEqual((outcome, data), ("eof", b""))
                    self.assertGreaterEqual(elapsed, self.DELAY_S + REQUEST_TIMEOUT_S)
                elif fault == "partial":
                    self.assertEqual(outcome, "eof")
                    head, _, body = data.partition(b"\r\n\r\n")
                    self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
                    self.assertIn(b"Content-Length: 1000", head)
                    self.assertIn(b"Connection: close", head)
                    self.assertEqual(len(body), 500)
                elif fault == "garbage":
                    self.assertEqual(outcome, "eof")
                    self.assertNotEqual(data[:5], b"HTTP/")
                    self.assertIn(b"\x00", data)
                # the other connection is still open and served
                self.assertEqual(len(other.request("GET", "/", {"Host": "x"}).body), 1000)
        self.at_once(check, [(f"{kind} {fault}", kind, fault) for kind in HTTP1_LISTENERS for fault in KINDS])
        expected = {fault: len(HTTP1_LISTENERS) for fault in KINDS}  # one of each kind per listener
        self.assertEqual(stats_faults(srv), expected)
        m = c.metrics(srv)
        for fault in KINDS:
            self.assertIn(f'mockupstream_faults_total{{kind="{fault}"}} {expected[fault]}', m)
        # faulted requests are not responses: only the other connections' requests are counted
        self.assertEqual(c.stats(srv)["requests"]["total"], 2 * 2 * len(KINDS))

    def test_hang_ends_when_the_client_leaves(self):
        srv = self.start("--allow-faults", "--request-timeout", "30s")
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind):
                conn = self.http1(srv, kind)
                conn.send(c.raw_request("GET", "/?fault=hang", {"Host": "x"}))
                self.assertEqual(read_outcome(conn, 0.5), ("open", b""))
                self.assertEqual(c.stats(srv)["held"]["now"], 1)
                conn.close()
                self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 0, timeout_s=5))

    def test_first_source_wins_and_flag_applies_to_all(self):
        srv = self.start("--allow-faults", "--fault", "close")
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind):
                with self.http1(srv, kind) as conn:  # the query's "no fault" beats the header and the flag
                    r = conn.request("GET", "/?fault=reset:0", {"Host": "x", "X-Mock-Fault": "reset"})
                    self.assertEqual(r.status, 200)
                    r = conn.request("GET", "/", {"Host": "x", "X-Mock-Fault": "garbage:0"})
                    self.assertEqual(r.status, 200)
                    conn.send(c.raw_request("GET", "/", {"Host": "x"}))  # --fault close
                    self.assertEqual(read_outcome(conn, 5 * SLOWDOWN), ("eof", b""))
                with self.http1(srv, kind) as conn:  # the header beats the flag
                    conn.send(c.raw_request("GET", "/", {"Host": "x", "X-Mock-Fault": "reset"}))
                    self.assertEqual(read_outcome(conn, 5 * SLOWDOWN), ("reset", b""))
        # control paths never carry a fault
        self.assertEqual(c.stats(srv)["faults"], {"reset": 2, "close": 2, "hang": 0, "partial": 0, "garbage": 0})

    def test_no_request_control_ignores_fault_params(self):
        srv = self.server("--allow-faults", "--no-request-control")
        self.assertEqual(c.one(srv, "GET", "/?fault=reset", {"Host": "x", "X-Mock-Fault": "reset"}).status, 200)
        self.assertEqual(sum(stats_faults(srv).values()), 0)


class Http2FaultTest(FaultCase):
    def test_each_kind_on_its_stream_only(self):
        srv = self.start("--allow-faults", "--request-timeout", f"{REQUEST_TIMEOUT_S}s", "--body-size", "1000")

        def check(label, kind, fault):  # every (listener, fault) at once, each on its own connection
            with self.h2(srv, kind) as conn:
                t0 = time.monotonic()
                conn.request(1, f"/?delay=200ms&fault={fault}")
                conn.request(3, "/?delay=100ms")
                conn.request(5, "/?delay=400ms")
                faulted = conn.response(1, timeout_s=REQUEST_TIMEOUT_S + 5)
                elapsed = time.monotonic() - t0
                self.assertGreaterEqual(elapsed, 0.2, "a fault never comes before its delay")
                for sid in (3, 5):
                    s = conn.response(sid)
                    self.assertEqual((s.status, len(s.body), s.reset), (200, 1000, None), s)
                if fault == "reset":
                    self.assertEqual((faulted.reset, faulted.headers), ("CANCEL", {}), faulted)
                elif fault == "partial":
                    self.assertEqual(faulted.status, 200)
                    self.assertEqual(faulted.headers.get("content-length"), "1000")
                    self.assertEqual(len(faulted.body), 500)
                    self.assertIsNotNone(faulted.reset, faulted)
                    self.assertFalse(faulted.ended)
                elif fault == "garbage":
                    self.assertTrue(faulted.ended, faulted)
                    self.assertNotEqual(int(faulted.headers["content-length"]), len(faulted.body))
                    self.assertIn(b"\x00", faulted.body)
                elif fault == "hang":
                    self.assertEqual((faulted.reset, faulted.headers), ("CANCEL", {}), faulted)
                    self.assertGreaterEqual(elapsed, 0.2 + REQUEST_TIMEOUT_S)
                # the connection goes on serving new streams
                conn.request(7, "/")
                self.assertEqual(conn.response(7).status, 200)
                self.assertEqual(conn.goaways, [])
        self.at_once(check, [(f"{kind} {fault}", kind, fault) for kind in H2_LISTENERS
                             for fault in ("reset", "partial", "garbage", "hang")])

    def test_close_is_a_goaway_that_lets_other_streams_finish(self):
        srv = self.start("--allow-faults")
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                conn.request(1, "/?delay=500ms")
                conn.request(3, "/?delay=100ms&fault=close")
                self.assertTrue(conn.read_until(lambda: conn.goaways, timeout_s=5), conn.frames)
                last, error, debug = conn.goaways[0]
                self.assertEqual((last, error), (3, "NO_ERROR"))
                self.assertIn("fault", debug)
                s1 = conn.response(1)
                self.assertEqual((s1.status, s1.body), (200, BODY))
                waited, _ = conn.wait_closed(within_s=5 * SLOWDOWN)
                s3 = conn.stream(3)
                self.assertEqual((s3.headers, s3.reset, s3.ended), ({}, None, False))

    def test_weights_within_one_point_over_10000_requests(self):
        srv = self.start("--allow-faults", "--seed", "12", "--delay", "0")
        n = 10000
        proc = run(["h2load", "-n", str(n), "-c", "4", "-m", "10", "-t", "1",
                    "-H", "X-Mock-Fault: reset:5,partial:3", f"http://127.0.0.1:{srv.port}/"], timeout_s=60)
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", proc.stdout)
        self.assertIsNotNone(m, proc.stdout + proc.stderr)
        total, _, done, succeeded, failed = map(int, m.groups())
        self.assertEqual((total, done), (n, n), proc.stdout)
        faults = stats_faults(srv)
        self.assertLessEqual(abs(faults["reset"] - 0.05 * n), 0.01 * n, faults)
        self.assertLessEqual(abs(faults["partial"] - 0.03 * n), 0.01 * n, faults)
        # every faulted stream failed on the client, and only those
        self.assertEqual(failed, faults["reset"] + faults["partial"], proc.stdout)
        self.assertEqual(succeeded, n - failed)
        self.assertEqual(c.stats(srv)["requests"]["total"], succeeded)


# ---- connection behaviours (issue 12, step 2) -----------------------------------------------------

def closes_by_reason(target):
    return c.stats(target)["connections"]["closed_by_reason"]


class ConnectionLimitTest(FaultCase):
    def test_max_requests_per_connection_http1(self):
        srv = self.start("--max-requests-per-connection", "3", "--delay", "0")
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as conn:
                for i in range(1, 4):
                    r = conn.request("GET", "/", {"Host": "x"})
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.header("connection"), "close" if i == 3 else "keep-alive", i)
                self.assertIsNotNone(conn.wait_closed(within_s=5 * SLOWDOWN))
        self.assertEqual(closes_by_reason(srv)["max_requests"], 2)

    def test_max_requests_per_connection_http2(self):
        srv = self.start("--max-requests-per-connection", "3", "--delay", "0")
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                for sid in (1, 3):
                    conn.request(sid, "/")
                    self.assertEqual(conn.response(sid).status, 200)
                self.assertEqual(conn.goaways, [])
                conn.request(5, "/?delay=100ms")
                s = conn.response(5)
                self.assertEqual((s.status, s.body), (200, BODY))
                self.assertTrue(conn.read_until(lambda: conn.goaways), conn.frames)
                self.assertEqual(conn.goaways[0], (5, "NO_ERROR", "max requests per connection"))
                conn.wait_closed(within_s=5 * SLOWDOWN)
        self.assertEqual(closes_by_reason(srv)["max_requests"], 2)

    def test_wrk_reconnects_every_100_requests_without_errors(self):
        srv = self.start("--max-requests-per-connection", "100", "--delay", "1ms")
        proc = run(["wrk", "-t", "1", "-c", "10", "-d", "2s", f"http://127.0.0.1:{srv.port}/"], timeout_s=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("Socket errors", proc.stdout)
        self.assertNotIn("Non-2xx", proc.stdout)
        requests = int(re.search(r"(\d+) requests in", proc.stdout).group(1))
        self.assertGreater(requests, 1000, proc.stdout)
        doc = c.stats(srv)
        served = doc["requests"]["total"]
        self.assertGreaterEqual(served, requests)
        reconnects = doc["connections"]["closed_by_reason"]["max_requests"]
        # every connection closed for the limit served exactly 100; the 10 open when wrk stopped, fewer
        self.assertGreaterEqual(served - 100 * reconnects, 0, proc.stdout)
        self.assertLessEqual(served - 100 * reconnects, 10 * 99, proc.stdout)
        # and wrk opened no other: accepted = closed for the limit + those left (the start-up probe and
        # this /stats fetch aside)
        accepted = doc["connections"]["by_listener"]["http"]["accepted"]
        self.assertLessEqual(accepted - reconnects, 10 + 4, proc.stdout)

    def test_max_connection_age_http1_with_jitter_below_it(self):
        age_s = 0.6
        srv = self.start("--max-connection-age", f"{int(age_s * 1000)}ms", "--delay", "0")
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind), self.http1(srv, kind) as conn:
                t0 = time.monotonic()
                deadline = t0 + (age_s + 3) * SLOWDOWN
                while time.monotonic() < deadline:
                    sent = time.monotonic() - t0
                    r = conn.request("GET", "/", {"Host": "x"})
                    if r.header("connection") == "close":
                        break
                    self.assertLess(sent, age_s, "kept alive past --max-connection-age")
                    time.sleep(0.05)
                else:
                    self.fail("never closed")
                answered = time.monotonic() - t0
                self.assertGreaterEqual(answered, 0.9 * age_s, "closed before 90 % of the age")
                self.assertIsNotNone(conn.wait_closed(within_s=5 * SLOWDOWN))
        self.assertEqual(closes_by_reason(srv)["max_age"], 2)

    def test_max_connection_age_http2(self):
        age_s = 0.6
        srv = self.start("--max-connection-age", f"{int(age_s * 1000)}ms", "--delay", "0")
        for kind in H2_LISTENERS:
            with self.subTest(listener=kind), self.h2(srv, kind) as conn:
                t0 = time.monotonic()
                sid = 1
                while not conn.goaways and time.monotonic() - t0 < (age_s + 3) * SLOWDOWN:
                    conn.request(sid, "/")
                    self.assertEqual(conn.response(sid).status, 200)
                    sid += 2
                    conn.read_until(lambda: conn.goaways, timeout_s=0.05)
                self.assertEqual(conn.goaways[-1][1:], ("NO_ERROR", "max connection age"))
                self.assertGreaterEqual(time.monotonic() - t0, 0.9 * age_s)
                conn.wait_closed(within_s=5 * SLOWDOWN)
        self.assertEqual(closes_by_reason(srv)["max_age"], 2)

    def test_close_reasons_are_counted(self):
        srv = self.start("--allow-faults", "--idle-timeout", "300ms", "--request-timeout", "300ms")
        with c.Conn.to(srv) as conn:  # the client asks for the close
            self.assertEqual(conn.request("GET", "/", {"Host": "x", "Connection": "close"}).status, 200)
            conn.wait_closed(within_s=5 * SLOWDOWN)
        with c.Conn.to(srv) as conn:  # idle after a response
            self.assertEqual(conn.request("GET", "/", {"Host": "x"}).status, 200)
            conn.wait_closed(within_s=5 * SLOWDOWN)
        with c.Conn.to(srv) as conn:  # a head that never ends
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
            conn.wait_closed(within_s=5 * SLOWDOWN)
        with c.Conn.to(srv) as conn:  # HTTP/1.1 without Host: 400 and close
            conn.send(b"GET / HTTP/1.1\r\n\r\n")
            conn.wait_closed(within_s=5 * SLOWDOWN)
        with c.Conn.to(srv) as conn:
            conn.send(c.raw_request("GET", "/?fault=close", {"Host": "x"}))
            conn.wait_closed(within_s=5 * SLOWDOWN)
        with self.h2(srv, "h2c") as conn:  # HTTP/2 close fault: GOAWAY
            conn.request(1, "/?fault=close")
            conn.wait_closed(within_s=5 * SLOWDOWN)
        reasons = closes_by_reason(srv)
        self.assertGreaterEqual(reasons["client"], 1)
        self.assertEqual({k: reasons[k] for k in ("idle", "request_timeout", "protocol_error", "fault", "max_requests", "max_age")},
                         {"idle": 1, "request_timeout": 1, "protocol_error": 1, "fault": 2, "max_requests": 0, "max_age": 0})
        self.assertIn('mockupstream_connection_closes_total{reason="fault"} 2', c.metrics(srv))


# ---- load that slows the upstream down (issue 12, step 3) -----------------------------------------

SERVER_TIMING_RE = re.compile(r"^delay;dur=(\d+)\.(\d{3})$")


def server_timing_ms(value):
    m = SERVER_TIMING_RE.match(value or "")
    if not m:
        raise AssertionError(f"no Server-Timing: delay;dur=<ms>: {value!r}")
    return int(m.group(1)) + int(m.group(2)) / 1000


class HangDrainTest(FaultCase):
    def test_hangs_do_not_hold_the_drain_up(self):
        """A hang is never answered, so a drain has nothing to wait for: before, the worker waited
        for each hang's --request-timeout (here 30 s) or the --drain-timeout."""
        srv = self.start("--allow-faults", "--request-timeout", "30s", "--drain-timeout", "20s")
        conns = [self.http1(srv, kind) for kind in HTTP1_LISTENERS]
        for conn in conns:
            conn.send(c.raw_request("GET", "/?fault=hang&delay=0", {"Host": "x"}))
        h2 = [hf.Conn(srv.port).start(), hf.Conn(self.tls_port, tls=True).start()]
        for conn in h2:
            conn.request(1, "/?fault=hang&delay=0")
            conn.request(3, "/?delay=300ms")  # answered first: the drain still answers what is not a fault
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["faults"]["hang"] == 4), c.stats(srv)["faults"])
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        for conn in h2:
            r = conn.response(3, timeout_s=5)
            self.assertEqual((r.status, r.body), (200, BODY))
        self.assertEqual(srv.wait_exit(10), 0, srv.output()[-2000:])
        self.assertLess(time.monotonic() - t0, 3.0 * SLOWDOWN)
        for conn in conns + h2:
            conn.close()


class LoadTest(FaultCase):
    def hold_in_order(self, srv, kind, count, path):
        """`count` requests on their own connections, each sent once the worker holds all the ones
        before it (polled on /stats), so request i sees i held."""
        conns = []
        for i in range(count):
            conn = self.http1(srv, kind)
            conns.append((conn, time.monotonic()))
            conn.send(c.raw_request("GET", path, {"Host": "x"}))
            self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == i + 1, timeout_s=5), i)
        return conns

    def test_delay_per_held_grows_with_the_held_count(self):
        base_ms, per_ms, n = 300, 100, 4
        srv = self.start("--delay", f"{base_ms}ms", "--delay-per-held", f"{per_ms}ms", "--server-timing")
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind):
                conns = self.hold_in_order(srv, kind, n, "/")
                for i, (conn, sent) in enumerate(conns):
                    with conn:
                        r = conn.read_response(timeout_s=10)
                        latency_s = time.monotonic() - sent
                        want_ms = base_ms + per_ms * i
                        self.assertEqual((r.status, server_timing_ms(r.header("server-timing"))), (200, want_ms), i)
                        self.assertGreaterEqual(latency_s, want_ms / 1000, "never early")
        # HTTP/2: streams held on one connection count the same
        with self.h2(srv, "h2c") as conn:
            for i in range(n):
                conn.request(1 + 2 * i, "/")
                self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == i + 1, timeout_s=5), i)
            for i in range(n):
                s = conn.response(1 + 2 * i)
                self.assertEqual(server_timing_ms(s.headers.get("server-timing")), base_ms + per_ms * i)
        # capped by --max-delay
        srv2 = self.server("--delay", "0", "--delay-per-held", "60s", "--max-delay", "400ms", "--server-timing")
        with c.Conn.to(srv2) as first, c.Conn.to(srv2) as second:
            first.send(c.raw_request("GET", "/wait/300", {"Host": "x"}))
            self.assertTrue(c.wait_until(lambda: c.stats(srv2)["held"]["now"] == 1, timeout_s=5))
            r = second.request("GET", "/wait/100", {"Host": "x"})
            self.assertEqual(server_timing_ms(r.header("server-timing")), 400)
            self.assertEqual(first.read_response(timeout_s=5).status, 200)

    def test_max_held_answers_503_with_retry_after(self):
        srv = self.start("--delay", "400ms", "--max-held", "2")
        for kind in HTTP1_LISTENERS:
            with self.subTest(listener=kind):
                conns = self.hold_in_order(srv, kind, 2, "/")
                with self.http1(srv, kind) as third:
                    t0 = time.monotonic()
                    r = third.request("GET", "/", {"Host": "x"})
                    self.assertEqual((r.status, r.header("retry-after"), r.header("connection")), (503, "1", "keep-alive"))
                    self.assertLess(time.monotonic() - t0, 0.3 * SLOWDOWN, "answered at once")
                    # a request that would not wait is served as usual; control paths too
                    self.assertEqual(third.request("GET", "/?delay=0", {"Host": "x"}).status, 200)
                    for conn, _ in conns:
                        with conn:
                            self.assertEqual(conn.read_response(timeout_s=5).status, 200)
                    # with room again, held as usual
                    self.assertEqual(third.request("GET", "/", {"Host": "x"}).status, 200)
        with self.h2(srv, "h2c") as conn:
            for sid in (1, 3, 5):
                conn.request(sid, "/?delay=300ms")
            s5 = conn.response(5)
            self.assertEqual((s5.status, s5.headers.get("retry-after")), (503, "1"))
            for sid in (1, 3):
                self.assertEqual(conn.response(sid).status, 200)
        self.assertEqual(c.stats(srv)["requests"]["by_status"].get("503"), 3)
