"""TLS listener with a throwaway self-signed certificate: ALPN picks h2 or http/1.1, nghttp over
https, plain and TLS listeners side by side, and the certificate served is the one configured."""
import clients as c
from mockserver import free_port, run, wait_for_port
from testcase import TlsServerTestCase


class TlsTest(TlsServerTestCase):
    def test_alpn_negotiates_h2_and_http11(self):
        srv, port = self.tls_server("--delay", "0")
        url = f"https://127.0.0.1:{port}/tls"
        r = c.curl("-k", "--http2", "-i", "-w", "\n%{http_version}", url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith("Hello world!\n\n2"), r.stdout)
        self.assertIn("server: mockupstream", r.stdout.lower())
        r = c.curl("-k", "--http1.1", "-i", "-w", "\n%{http_version}", url)
        self.assertTrue(r.stdout.endswith("Hello world!\n\n1.1"), r.stdout)
        self.assertIn("Content-Length: 13", r.stdout)
        # --cacert instead of -k: the server presents exactly the configured certificate
        r = c.curl("--cacert", self.cert, "-o", "/dev/null", "-w", "%{http_code}", f"https://localhost:{port}/",
                   "--resolve", f"localhost:{port}:127.0.0.1")
        self.assertEqual(r.stdout, "200", r.stderr)
        by_protocol = c.stats(srv)["requests"]["by_protocol"]
        self.assertEqual((by_protocol["http2_tls"], by_protocol["http1_tls"]), (2, 1))  # curl prefers h2 over https
        # each connection counted once: the readiness probe of tls_server and the three curls
        self.assertEqual(c.stats(srv)["connections"]["by_listener"]["tls"]["accepted"], 1 + 3)

    def test_alpn_with_python_ssl(self):
        # Independent of curl: offer each protocol alone and see what the server selects.
        srv, port = self.tls_server("--delay", "0")
        # h2o acknowledges only the h2 family; a client offering just http/1.1 gets no ALPN answer,
        # which clients treat as HTTP/1.1 (RFC 7301 allows it), so both are accepted here.
        for offered, expected in ((["h2", "http/1.1"], ("h2",)), (["http/1.1"], ("http/1.1", None))):
            with c.TlsConn("127.0.0.1", port, alpn=offered, cafile=self.cert) as conn:
                self.assertIn(conn.selected_alpn(), expected, offered)
                if "h2" not in expected:
                    r = conn.request("GET", "/")
                    self.assertEqual((r.version, r.status, r.reason, r.body), ("HTTP/1.1", 200, "OK", c.BODY))

    def test_request_bodies_over_tls_http11(self):
        # HTTP/1.1 over TLS is h2o's parser, not the lean plain-text one: its limits must match.
        srv, port = self.tls_server("--delay", "0", "--max-body-size", "1000")
        url = f"https://127.0.0.1:{port}/post"
        for size, code in ((1000, "200"), (1001, "413")):
            r = c.curl("-k", "--http1.1", "--data-binary", "@-", "-o", "/dev/null", "-w", "%{http_code}", url, input="x" * size)
            self.assertEqual(r.stdout, code, (size, r.stderr))
        r = c.curl("-k", "--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", "-o", "/dev/null",
                   "-w", "%{http_code}", url, input="y" * 500)
        self.assertEqual(r.stdout, "200")
        self.assertEqual(c.stats(srv)["bytes"]["request_body"], 1000 + 500)

    def test_nghttp_and_h2load_over_https(self):
        srv, port = self.tls_server("--delay", "1ms")
        r = c.nghttp("-v", f"https://127.0.0.1:{port}/nghttp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Hello world!", r.stdout)
        self.assertIn(":status: 200", r.stdout)
        self.assertIn("The negotiated protocol: h2", r.stdout)
        r = run(["h2load", "-n", "500", "-c", "5", "-m", "10", f"https://127.0.0.1:{port}/"], timeout_s=60)
        self.assertIn("500 succeeded, 0 failed, 0 errored, 0 timeout", r.stdout)
        self.assertIn("Application protocol: h2", r.stdout)
        self.assertEqual(c.stats(srv)["requests"]["by_protocol"]["http2_tls"], 501)

    def test_plain_and_tls_listeners_side_by_side(self):
        srv, port = self.tls_server("--delay", "0", workers=2)
        self.assertEqual(c.one(srv).status, 200)
        r = c.curl("-k", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", f"https://127.0.0.1:{port}/")
        self.assertEqual(r.stdout, "200")
        # plain HTTP on the TLS port is not served as if it were TLS
        with c.Conn("127.0.0.1", port, timeout_s=5) as conn:
            conn.send(c.raw_request("GET", "/"))
            try:
                data = conn.read_to_close(timeout_s=5)
            except TimeoutError:
                data = conn.buf
            self.assertNotIn(b"Hello world!", data)
        # and TLS on the plain port fails the handshake instead of hanging
        r = c.curl("-k", "-o", "/dev/null", f"https://127.0.0.1:{srv.port}/", timeout_s=5)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(c.one(srv).status, 200)
        listeners = c.stats(srv)["connections"]["by_listener"]
        self.assertGreaterEqual(listeners["tls"]["accepted"], 3)

    def test_tls_configured_from_the_environment(self):
        # The Docker image is configured by env: the TLS trio must work there too.
        port = free_port()
        srv = self.server("--delay", "0", env={"MOCKUPSTREAM_TLS_LISTEN": f"127.0.0.1:{port}",
                                               "MOCKUPSTREAM_TLS_CERT": self.cert, "MOCKUPSTREAM_TLS_KEY": self.key})
        self.assertTrue(wait_for_port("127.0.0.1", port), srv.output())
        r = c.curl("-k", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", f"https://127.0.0.1:{port}/env")
        self.assertEqual(r.stdout, "2 200")
        self.assertEqual(c.one(srv).status, 200)
