"""One validation table, run against every HTTP/1.1 listener (issue 10, faults 2 and 3).

Both HTTP/1.1 listeners, cleartext (--listen) and TLS (--tls-listen, a client offering ALPN
"http/1.1" only), must make the same refusals with the same status, and close the connection after
each. ROWS is the table: the raw bytes of one request (or more, for smuggling), the status that must
come back, and what else must hold. For every row and every listener, on a fresh connection:
  - exactly one response comes back, with the row's status (and body, where the row names one);
  - a refusal (4xx/5xx) carries `Connection: close`, and the server then closes: no other bytes
    follow, so a request hidden in a refused request's body is never answered;
  - a request that is served (2xx) leaves the connection open: a second request on it is answered;
  - a well-formed request on another connection is still served afterwards;
  - /stats counts a refusal once, in its class (4xx or 5xx).
Each row is one test method of ValidationCleartextTest and of ValidationTlsHttp11Test, so a failure
names the listener and the row (`-k two_hosts` runs that row on both). Raw sockets (clients.Conn and
TlsConn), so nothing between the test and the server repairs or rejects the bytes first. Every
wait is bounded (scaled by SLOWDOWN under ASan). RouterOverHttp2Test checks that HTTP/2 (h2c and h2)
gets the router's percent-decoding too.
"""
import shutil
import ssl
import tempfile
import time
import unittest

import clients as c
from mockserver import SLOWDOWN, MockServer, free_port, self_signed_cert, wait_for_port
from testcase import TlsServerTestCase, check_server_log, has_failed

WAIT_S = 0.3  # the /wait/300 rows: with --delay 0 only a routed /wait/300 takes this long


class Row:
    def __init__(self, name, raw, status, body=None, wait_s=0.0, keep_alive=None):
        self.name, self.raw, self.status, self.body, self.wait_s = name, raw, status, body, wait_s
        # served HTTP/1.1 requests stay open; refusals (and HTTP/1.0) close
        self.keep_alive = status < 400 if keep_alive is None else keep_alive


def get(target, host=b"x", version=b"HTTP/1.1", extra=b"", method=b"GET"):
    host_line = b"" if host is None else b"Host: " + host + b"\r\n"
    return method + b" " + target + b" " + version + b"\r\n" + host_line + extra + b"\r\n"


HIDDEN = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # must never be answered when smuggled
SMUGGLE_BODY = b"0\r\n\r\n" + HIDDEN
OK = b"ok\n"
BENCH = c.BODY
# a request line of exactly 8 KiB (http1_parse.h: HTTP1_MAX_REQUEST_LINE_BYTES), and one byte more
LINE_8K_TARGET = b"/healthz?" + b"q" * (8192 - len(b"GET /healthz? HTTP/1.1"))

ROWS = [
    # framing (fault 2): smuggling shapes and ambiguous lengths
    Row("te+cl smuggling, hidden request in the body",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLE_BODY)
        + SMUGGLE_BODY, 400),
    Row("cl+te smuggling, hidden request in the body",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + SMUGGLE_BODY, 400),
    Row("te line with a leading space", b"POST / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n" + SMUGGLE_BODY, 400),
    Row("te line with a leading tab", b"POST / HTTP/1.1\r\nHost: x\r\n\tTransfer-Encoding: chunked\r\n\r\n" + SMUGGLE_BODY, 400),
    Row("te with a space before the colon", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    Row("te twice", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    Row("te not chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    Row("te gzip then chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    Row("te on http/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    Row("two different content-lengths", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello", 400),
    Row("non-numeric content-length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello", 400),
    Row("negative content-length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    Row("obs-fold line", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", 400),
    Row("obs-fold line after host", b"GET / HTTP/1.1\r\nHost: x\r\n\tb\r\n\r\n", 400),
    Row("header name with a space", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n", 400),
    Row("expect other than 100-continue", b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417),
    # sizes: 431 for header fields, 414 for the request line
    Row("70 KB header", get(b"/", extra=b"X-Big: " + b"a" * 70_000 + b"\r\n"), 431),
    Row("101 header lines", get(b"/", extra=b"".join(b"X-%d: y\r\n" % i for i in range(100))), 431),
    Row("100 header lines", get(b"/healthz", extra=b"".join(b"X-%d: y\r\n" % i for i in range(99))), 200, OK),
    Row("9 KB request line", get(b"/" + b"a" * 9 * 1024), 414),
    Row("request line one byte over 8 KiB", get(LINE_8K_TARGET + b"q"), 414),
    Row("request line of exactly 8 KiB", get(LINE_8K_TARGET), 200, OK),
    # request line: method, version, target forms (fault 3)
    Row("connect, authority-form", b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", 501),
    Row("connect, origin-form", get(b"/", method=b"CONNECT"), 501),
    Row("bad method token", get(b"/", method=b"G(T"), 400),
    Row("bad version 3.0", get(b"/", version=b"HTTP/3.0"), 400),
    Row("bad version name", get(b"/", version=b"HTTPS/1.1"), 400),
    Row("target not a path", get(b"healthz"), 400),
    Row("asterisk-form with get", get(b"*"), 400),
    Row("asterisk-form with options", get(b"*", method=b"OPTIONS"), 200, BENCH),
    Row("absolute-form routes /healthz", get(b"http://x/healthz"), 200, OK),
    Row("absolute-form with port and query", get(b"https://127.0.0.1:8443/healthz?x=1"), 200, OK),
    Row("absolute-form routes /wait/300", get(b"http://127.0.0.1/wait/300"), 200, BENCH, wait_s=WAIT_S),
    Row("absolute-form with an empty path", get(b"http://127.0.0.1"), 200, BENCH),
    Row("absolute-form authority replaces host", get(b"http://127.0.0.1/healthz", host=b"elsewhere:1"), 200, OK),
    Row("absolute-form with userinfo", get(b"http://user@x/healthz"), 400),
    Row("absolute-form with an empty host", get(b"http:///healthz"), 400),
    Row("absolute-form still needs host", get(b"http://x/healthz", host=None), 400),
    Row("percent-decoded /wait/300", get(b"/wai%74/300"), 200, BENCH, wait_s=WAIT_S),
    Row("percent-decoded /healthz", get(b"/%68ealthz"), 200, OK),
    Row("percent-encoded slash", get(b"/wait%2F300"), 200, BENCH, wait_s=WAIT_S),
    Row("bad percent escape", get(b"/%zz"), 400),
    Row("percent escape cut at the end", get(b"/healthz%4"), 400),
    Row("percent-encoded nul", get(b"/healthz%00"), 400),
    # Host (RFC 9112 3.2)
    Row("no host on http/1.1", get(b"/healthz", host=None), 400),
    Row("two hosts", get(b"/healthz", extra=b"Host: y\r\n"), 400),
    Row("two identical hosts", get(b"/healthz", extra=b"Host: x\r\n"), 400),
    Row("host with a space", get(b"/healthz", host=b"a b"), 400),
    Row("host with userinfo", get(b"/healthz", host=b"user@x"), 400),
    Row("host with a bad port", get(b"/healthz", host=b"x:80x"), 400),
    Row("host with a control byte", get(b"/healthz", host=b"a\x01b"), 400),
    Row("host ipv6 with port", get(b"/healthz", host=b"[::1]:8080"), 200, OK),
    Row("empty host", get(b"/healthz", host=b""), 200, OK),
    Row("no host on http/1.0", get(b"/healthz", host=None, version=b"HTTP/1.0"), 200, OK, keep_alive=False),
    Row("te with tab whitespace is valid",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, BENCH),
]


class ValidationTable:
    """The table's rows as test methods (made below) of one listener's test class; one server per
    class, started once, its log printed with any failing row and checked for sanitizer reports."""
    LISTENER = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mockupstream-validation-")
        cls.cert, cls.key = self_signed_cert(cls.dir)
        cls.tls_port = free_port()
        cls.srv = MockServer("--delay", "0", "--tls-listen", f"127.0.0.1:{cls.tls_port}", "--tls-cert", cls.cert,
                             "--tls-key", cls.key, workers=1).start()
        if not wait_for_port("127.0.0.1", cls.tls_port):
            cls.srv.stop()
            raise RuntimeError("TLS listener did not accept\n" + cls.srv.output())

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        errors = cls.srv.sanitizer_errors()
        if errors:
            raise AssertionError("sanitizer reported: " + "; ".join(errors[:5]))

    def tearDown(self):
        check_server_log(self, self.srv, has_failed(self))

    def connect(self):
        if self.LISTENER != "tls":
            return c.Conn.to(self.srv)
        conn = c.TlsConn("127.0.0.1", self.tls_port, alpn=["http/1.1"], cafile=self.cert)
        self.assertIn(conn.selected_alpn(), ("http/1.1", None))
        return conn

    def response(self, conn, timeout_s, what):
        """The next response on conn, or the test fails saying `what` if none comes whole."""
        try:
            return conn.read_response(timeout_s=timeout_s)
        except (EOFError, TimeoutError) as e:
            self.fail(f"{what} ({e}; received {conn.buf[:80]!r})")

    def check_row(self, row):
        before = c.stats(self.srv)["requests"]["by_code"]
        with self.connect() as conn:
            started = time.monotonic()
            try:
                conn.send(row.raw)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # a refusal may close before all of a large request is written: the answer is what counts
            r = self.response(conn, 5 + row.wait_s, "no response")
            elapsed = time.monotonic() - started
            self.assertEqual(r.status, row.status, r.body)
            if row.body is not None:
                self.assertEqual(r.body, row.body)
            if row.wait_s:
                self.assertGreaterEqual(elapsed, row.wait_s, "answered before its /wait/ delay: not routed")
                self.assertLess(elapsed, row.wait_s + 3 * SLOWDOWN)
            if row.keep_alive:
                self.assertNotEqual(r.header("connection", "").lower(), "close")
                conn.send(c.raw_request("GET", "/healthz"))
                again = self.response(conn, 5, "connection closed after a served request")
                self.assertEqual((again.status, again.body), (200, OK))
            else:
                self.assertEqual(r.header("connection", "").lower(), "close")
                try:
                    rest = conn.read_to_close(timeout_s=5)
                except TimeoutError:
                    self.fail("connection left open")
                self.assertEqual(rest, b"", "bytes after the answer (a hidden request answered?)")
        # the server still serves a well-formed request on another connection
        with self.connect() as conn:
            conn.send(c.raw_request("GET", "/healthz"))
            after = self.response(conn, 5, "no answer to a well-formed request")
            self.assertEqual((after.status, after.body), (200, OK))
        # a refusal is counted once, in its class, so a benchmarker sees what their client did wrong
        after_stats = c.stats(self.srv)["requests"]["by_code"]
        for cls in ("4xx", "5xx"):
            expected = 1 if f"{row.status // 100}xx" == cls else 0
            self.assertEqual(after_stats[cls] - before[cls], expected, cls)


def slug(name):
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def row_test(row):
    def test(self):
        self.check_row(row)
    test.__doc__ = f"{row.name}: {row.status}"
    return test


for _row in ROWS:
    setattr(ValidationTable, "test_" + slug(_row.name), row_test(_row))
assert len({slug(r.name) for r in ROWS}) == len(ROWS), "row names must be unique"


class ValidationCleartextTest(ValidationTable, unittest.TestCase):
    LISTENER = "cleartext"


class ValidationTlsHttp11Test(ValidationTable, unittest.TestCase):
    LISTENER = "tls"


class RouterOverHttp2Test(TlsServerTestCase):
    """The router percent-decodes for every protocol: HTTP/2 (h2c and h2 over TLS, through h2o, which
    hands the handler :path raw) routes and refuses exactly as the HTTP/1.1 rows above."""

    CASES = [  # path, status, body (None: the benchmark body), minimum time (the /wait/300 routes)
        ("/wai%74/300", 200, BENCH, WAIT_S),
        ("/wait%2F300", 200, BENCH, WAIT_S),
        ("/%68ealthz", 200, OK, 0.0),
        ("/%zz", 400, None, 0.0),
        ("/healthz%4", 400, None, 0.0),
        ("/healthz%00", 400, None, 0.0),
    ]

    def test_percent_decoding_over_http2(self):
        srv, tls_port = self.tls_server("--delay", "0", workers=1)
        body_file = tempfile.NamedTemporaryFile(dir=self.cert_dir, delete=False).name
        for name, flags, base in (("h2c", ["--http2-prior-knowledge"], srv.url),
                                  ("h2", ["--http2", "--cacert", self.cert, "--resolve", f"localhost:{tls_port}:127.0.0.1"],
                                   f"https://localhost:{tls_port}")):
            for path, status, body, wait_s in self.CASES:
                with self.subTest(protocol=name, path=path):
                    r = c.curl(*flags, "--path-as-is", "-o", body_file, "-w", "%{http_code} %{http_version} %{time_total}",
                               base + path)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    code, version, total_s = r.stdout.split()
                    self.assertEqual((int(code), version), (status, "2"))
                    with open(body_file, "rb") as f:
                        got = f.read()
                    if body is not None:
                        self.assertEqual(got, body)
                    else:
                        self.assertIn(b"percent-encoding", got)
                    if wait_s:
                        self.assertGreaterEqual(float(total_s), wait_s, "answered before its /wait/ delay: not routed")
