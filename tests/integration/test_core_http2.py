"""HTTP/2 cleartext with real clients: prior knowledge (curl, nghttp), Upgrade: h2c (curl --http2,
nghttp -u), many concurrent streams on one connection, and a short h2load run with no errors."""
import re
import time

import clients as c
from mockserver import SLOWDOWN, run
from testcase import ServerTestCase


class Http2Test(ServerTestCase):
    def test_curl_prior_knowledge_and_upgrade(self):
        srv = self.server("--delay", "0")
        for flag in ("--http2-prior-knowledge", "--http2"):
            r = c.curl(flag, "-i", "-w", "\n%{http_version}", srv.url + "/h2/" + flag.strip("-"))
            self.assertEqual(r.returncode, 0, r.stderr)
            text = r.stdout
            self.assertTrue(text.endswith("Hello world!\n\n2"), (flag, text))
            self.assertIn("HTTP/2 200", text)
            lower = text.lower()
            self.assertIn("content-length: 13", lower)
            self.assertIn("content-type: text/plain", lower)
            self.assertIn("server: mockupstream", lower)
            if flag == "--http2":  # the Upgrade is visible as an interim 101 before the HTTP/2 response
                self.assertIn("HTTP/1.1 101", text)
        doc = c.stats(srv)
        self.assertEqual(doc["requests"]["by_protocol"]["http2"], 2)
        self.assertEqual(doc["requests"]["by_protocol"]["http1"], 0)

    def test_request_bodies_over_http2(self):
        srv = self.server("--delay", "0")
        # curl --http2 may upgrade a POST (h2o then reads the body over HTTP/1.1 first): either way 200
        r = c.curl("--http2", "--data-binary", "abc", "-o", "/dev/null", "-w", "%{http_code}", srv.url + "/p")
        self.assertEqual(r.stdout, "200")
        # a body larger than the initial flow-control window (64 KiB) needs WINDOW_UPDATEs
        r = c.curl("--http2-prior-knowledge", "--data-binary", "@-", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                   srv.url + "/big", input="abc" * 100000)
        self.assertEqual(r.stdout, "2 200", r.stderr)
        self.assertEqual(c.stats(srv)["bytes"]["request_body"], 3 + 300000)

    def test_nghttp_prior_knowledge_and_upgrade(self):
        srv = self.server("--delay", "1ms")
        r = c.nghttp("-v", srv.url + "/nghttp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(":status: 200", r.stdout)
        self.assertIn("Hello world!", r.stdout)
        self.assertNotIn("HTTP Upgrade", r.stdout)
        r = c.nghttp("-u", "-v", srv.url + "/upgrade")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("HTTP Upgrade response", r.stdout)
        self.assertIn("HTTP Upgrade success", r.stdout)
        self.assertIn("Hello world!", r.stdout)
        # several streams on one connection, each with its own delay, all complete
        r = c.nghttp("-n", "-s", srv.url + "/wait/30", srv.url + "/wait/1", srv.url + "/", srv.url + "/x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(re.findall(r"\s200\s", r.stdout)), 4, r.stdout)
        self.assertEqual(c.stats(srv)["requests"]["by_protocol"]["http2"], 6)

    def test_streams_are_delayed_concurrently(self):
        # 50 streams of /wait/300 on ONE connection take about 300 ms, not 50 x 300 ms.
        srv = self.server("--delay", "0")
        t0 = time.monotonic()
        r = run(["h2load", "-n", "50", "-c", "1", "-m", "50", srv.url + "/wait/300"], timeout_s=30)
        elapsed = time.monotonic() - t0
        self.assertIn("50 succeeded, 0 failed, 0 errored", r.stdout)
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 2.0 * SLOWDOWN, r.stdout)
        self.assertEqual(c.stats(srv)["held"]["peak"], 50)

    def test_h2load_short_run_without_errors(self):
        srv = self.server("--delay", "1ms")
        r = run(["h2load", "-n", "2000", "-c", "10", "-m", "10", srv.url + "/"], timeout_s=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2000 succeeded, 0 failed, 0 errored, 0 timeout", r.stdout)
        self.assertRegex(r.stdout, r"status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx")
        doc = c.stats(srv)
        self.assertEqual(doc["requests"]["by_protocol"]["http2"], 2000)
        self.assertEqual(doc["bytes"]["response_body"], 2000 * 13)
        # h2load over HTTP/1.1 on the same server, for comparison of both protocols' framing
        r = run(["h2load", "--h1", "-n", "500", "-c", "5", srv.url + "/"], timeout_s=60)
        self.assertIn("500 succeeded, 0 failed, 0 errored, 0 timeout", r.stdout)

    def test_http2_head_and_bad_wait(self):
        srv = self.server("--delay", "0", "--max-delay", "100ms")
        r = c.curl("--http2-prior-knowledge", "-I", srv.url + "/")
        self.assertIn("HTTP/2 200", r.stdout)
        self.assertIn("content-length: 13", r.stdout.lower())
        for path, code in (("/wait/101", "400"), ("/wait/abc", "400"), ("/wait/100", "200")):
            r = c.curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", srv.url + path)
            self.assertEqual(r.stdout, code, path)

    def test_http2_body_above_max_body_size_is_413(self):
        # The contract says 413 above --max-body-size on every protocol. (A RST_STREAM with
        # REFUSED_STREAM instead tells clients the request was not processed, and curl retries it.)
        srv = self.server("--delay", "0", "--max-body-size", "1000")
        for size, code in ((1000, "200"), (1001, "413"), (100000, "413")):
            r = c.curl("--http2-prior-knowledge", "--data-binary", "@-", "-o", "/dev/null", "-w", "%{http_code}",
                       srv.url + "/", input="x" * size)
            self.assertEqual(r.stdout, code, (size, r.stderr))
        self.assertEqual(c.one(srv).status, 200)
