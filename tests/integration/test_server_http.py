"""The core server over real sockets: HTTP/1.1 (curl and raw sockets), HTTP/2 cleartext (prior
knowledge and Upgrade), TLS with ALPN, bodies, HEAD and delays."""
import os
import subprocess
import tempfile
import threading
import time

import httpclient as hc
from mockserver import SLOWDOWN, run
from testcase import ServerTestCase

BODY = b"Hello world!\n"


def curl(*args):
    return run(["curl", "-sS", "--max-time", str(10 * SLOWDOWN)] + list(args))


class Http1Test(ServerTestCase):
    def test_any_method_and_path_gets_the_body(self):
        srv = self.server("--delay", "1ms")
        for method, path in [("GET", "/"), ("POST", "/x/y?z=1"), ("PUT", "/put"), ("DELETE", "/d"), ("PATCH", "/p")]:
            status, headers, body = hc.request(srv, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())[0]
            self.assertEqual(status, 200, method)
            self.assertEqual(body, BODY)
            self.assertEqual(headers["content-length"], "13")
            self.assertEqual(headers["content-type"], "text/plain")
            self.assertEqual(headers["server"], "mockupstream")
            self.assertNotIn("transfer-encoding", headers)

    def test_curl_and_head(self):
        srv = self.server("--delay", "1ms")
        r = curl("-i", srv.url + "/hello")
        self.assertIn("HTTP/1.1 200 OK", r.stdout)
        self.assertTrue(r.stdout.endswith("Hello world!\n"))
        r = curl("-I", srv.url + "/")
        self.assertIn("Content-Length: 13", r.stdout)
        with hc.connect(srv) as s:
            s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + hc.get("/after-head"))
            (st1, h1, b1), (st2, _, b2) = hc.read_responses(s, 1, head_only=True) + hc.read_responses(s, 1)
            self.assertEqual((st1, h1["content-length"], b1), (200, "13", b""))
            self.assertEqual((st2, b2), (200, BODY))

    def test_keep_alive_many_sequential_then_pipelined(self):
        srv = self.server("--delay", "0")
        accepted_before = hc.stats(srv)["connections"]["accepted"]  # the readiness probe and this scrape
        with hc.connect(srv) as s:
            for i in range(200):
                s.sendall(hc.get(f"/seq/{i}"))
                (status, headers, body), = hc.read_responses(s, 1)
                self.assertEqual((status, body), (200, BODY))
                self.assertEqual(headers["connection"], "keep-alive")
            s.sendall(b"".join(hc.get(f"/pipe/{i}") for i in range(50)))
            responses = hc.read_responses(s, 50)
            self.assertEqual(len(responses), 50)
            self.assertTrue(all(r[0] == 200 and r[2] == BODY for r in responses))
        # one connection for all 250 requests, plus this scrape's own
        self.assertEqual(hc.stats(srv)["connections"]["accepted"] - accepted_before, 2)

    def test_body_size_and_body_file(self):
        srv = self.server("--body-size", "1000", "--delay", "0")
        status, headers, body = hc.request(srv, hc.get())[0]
        self.assertEqual((status, headers["content-length"], len(body)), (200, "1000", 1000))
        self.assertTrue(body.startswith(b"Hello world!\nHello"))
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b'{"ok": true}\n' * 5000)
        self.addCleanup(os.unlink, f.name)
        srv2 = self.server("--body-file", f.name, "--delay", "0")
        status, headers, body = hc.request(srv2, hc.get())[0]
        self.assertEqual(body, b'{"ok": true}\n' * 5000)
        self.assertEqual(int(headers["content-length"]), 65000)

    def test_post_bodies(self):
        srv = self.server("--delay", "0", "--max-body-size", "1k")
        st, _, body = hc.request(srv, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")[0]
        self.assertEqual((st, body), (200, BODY))
        chunked = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        self.assertEqual([r[0] for r in hc.request(srv, chunked + hc.get(), count=2)], [200, 200])
        # Expect: 100-continue: the interim response comes before we send the body
        with hc.connect(srv) as s:
            s.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
            self.assertEqual(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(b"0123456789")
            self.assertEqual(hc.read_responses(s, 1)[0][0], 200)
        st, _, _ = hc.request(srv, b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)[0]
        self.assertEqual(st, 413)
        big_chunked = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"400\r\n" + b"y" * 1024 + b"\r\n") * 3 + b"0\r\n\r\n"
        self.assertEqual(hc.request(srv, big_chunked)[0][0], 413)
        r = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "@/etc/hostname", srv.url + "/wait/0")
        self.assertEqual(r.stdout, "200")
        self.assertEqual(hc.stats(srv)["bytes"]["request_body"], 11 + 11 + 10 + len(open("/etc/hostname", "rb").read()))

    def test_malformed_request_gets_400_and_others_are_served(self):
        srv = self.server("--delay", "1ms")
        st, headers, _ = hc.request(srv, b"GARBAGE\r\n\r\n")[0]
        self.assertEqual((st, headers["connection"]), (400, "close"))
        self.assertEqual(hc.request(srv, hc.get())[0][0], 200)
        self.assertEqual(hc.stats(srv)["requests"]["by_code"]["4xx"], 1)


class DelayTest(ServerTestCase):
    def timed(self, srv, path, n=1):
        times = []
        with hc.connect(srv) as s:
            for _ in range(n):
                t0 = time.monotonic()
                s.sendall(hc.get(path))
                (status, _, _), = hc.read_responses(s, 1)
                times.append(time.monotonic() - t0)
                self.assertEqual(status, 200)
        return times

    def test_wait_path_and_default_delay(self):
        srv = self.server("--delay", "0")
        t, = self.timed(srv, "/wait/25")
        self.assertGreaterEqual(t, 0.025)
        self.assertLess(t, 0.025 + 0.1 * SLOWDOWN)
        self.assertLess(max(self.timed(srv, "/", 20)), 0.01)  # --delay 0 answers at once
        srv2 = self.server()
        self.assertGreaterEqual(min(self.timed(srv2, "/", 10)), 0.010)
        self.assertEqual(curl("-s", srv2.url + "/wait/60001").stdout[:15], "bad /wait/<ms>:")
        for bad in ("/wait/60001", "/wait/abc", "/wait/"):
            self.assertEqual(hc.request(srv2, hc.get(bad))[0][0], 400, bad)

    def test_sub_millisecond_delays_are_never_early(self):
        for flag, seconds in (("250us", 0.00025), ("1.5ms", 0.0015)):
            srv = self.server("--delay", flag)
            self.assertGreaterEqual(min(self.timed(srv, "/", 50)), seconds, flag)
            lateness = hc.stats(srv)["lateness"]
            self.assertEqual(lateness["count"], 50)

    def test_server_side_lateness_is_small(self):
        # Exactness is what the server can promise for itself; the bound is loose for a busy machine.
        srv = self.server("--delay", "5ms")
        threads = [threading.Thread(target=self.timed, args=(srv, "/", 40)) for _ in range(5)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        lateness = hc.stats(srv)["lateness"]
        self.assertEqual(lateness["count"], 200)
        self.assertLess(lateness["p50_seconds"], 0.002 * SLOWDOWN)


class Http2Test(ServerTestCase):
    def test_prior_knowledge_and_upgrade(self):
        srv = self.server("--delay", "1ms")
        for flag in ("--http2-prior-knowledge", "--http2"):
            r = curl(flag, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", srv.url + "/h2")
            self.assertEqual(r.stdout, "2 200", flag)
        r = run(["nghttp", "-v", srv.url + "/nghttp"])
        self.assertIn("Hello world!", r.stdout)
        self.assertIn(":status: 200", r.stdout)
        r = run(["nghttp", "-u", "-v", srv.url + "/upgrade"])
        self.assertIn("HTTP Upgrade response", r.stdout)
        self.assertIn("Hello world!", r.stdout)
        r = run(["h2load", "-n", "2000", "-c", "10", "-m", "10", srv.url + "/"], timeout_s=60)
        self.assertIn("2000 succeeded, 0 failed, 0 errored", r.stdout)
        by_protocol = hc.stats(srv)["requests"]["by_protocol"]
        self.assertEqual(by_protocol["http2"], 2004)

    def test_head_over_http2(self):
        srv = self.server("--delay", "0")
        r = curl("--http2-prior-knowledge", "-I", srv.url + "/")
        self.assertIn("content-length: 13", r.stdout.lower())


class TlsTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.cert, cls.key = os.path.join(cls.dir, "cert.pem"), os.path.join(cls.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", cls.key, "-out", cls.cert], check=True, capture_output=True)

    def test_alpn_h2_and_http11(self):
        port = __import__("mockserver").free_port()
        srv = self.server("--tls-listen", f"127.0.0.1:{port}", "--tls-cert", self.cert, "--tls-key", self.key, "--delay", "1ms")
        self.assertTrue(__import__("mockserver").wait_for_port("127.0.0.1", port))  # counts as one accepted
        url = f"https://127.0.0.1:{port}/tls"
        self.assertEqual(curl("-k", "--http2", "-o", "/dev/null", "-w", "%{http_version}", url).stdout, "2")
        self.assertEqual(curl("-k", "--http1.1", "-o", "/dev/null", "-w", "%{http_version}", url).stdout, "1.1")
        self.assertIn("Hello world!", run(["nghttp", url]).stdout)
        by_protocol = hc.stats(srv)["requests"]["by_protocol"]
        self.assertEqual((by_protocol["http2_tls"], by_protocol["http1_tls"]), (2, 1))
        self.assertEqual(hc.stats(srv)["connections"]["by_listener"]["tls"]["accepted"], 1 + 3)
