"""Base class for integration tests: owns the servers a test starts and checks them at the end."""
import shutil
import tempfile
import unittest

from mockserver import MockServer, free_port, self_signed_cert, wait_for_port


def has_failed(test):
    """True if `test` (in its tearDown) has failed or raised so far."""
    result = getattr(getattr(test, "_outcome", None), "result", None)
    return result is not None and any(t is test for t, _ in result.failures + result.errors)


def check_server_log(test, server, failed):
    """Prints the server's log if the test failed or the log has a sanitizer report; fails the test
    on such a report."""
    errors = server.sanitizer_errors()
    if failed or errors:
        print(f"\n----- server log ({' '.join(server.command())}) -----\n{server.output()[-6000:]}\n-----")
    if errors:
        test.fail("sanitizer reported: " + "; ".join(errors[:5]))


class ServerTestCase(unittest.TestCase):
    """Servers made with self.server(...) are stopped after the test; their log is printed if the test
    failed, and any sanitizer report in it fails the test."""

    def setUp(self):
        self._servers = []

    def server(self, *args, start=True, **kw):
        s = MockServer(*args, **kw)
        self._servers.append(s)
        if start:
            s.start()
        return s

    def tearDown(self):
        failed = has_failed(self)
        for s in self._servers:
            s.stop()
        for s in self._servers:
            check_server_log(self, s, failed)


class TlsServerTestCase(ServerTestCase):
    """A ServerTestCase whose servers may have a TLS listener: one throwaway certificate per class
    (self.cert, self.key), and tls_server() to start a server with its cleartext and a TLS listener."""

    @classmethod
    def setUpClass(cls):
        cls.cert_dir = tempfile.mkdtemp(prefix="mockupstream-tls-")
        cls.cert, cls.key = self_signed_cert(cls.cert_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.cert_dir, ignore_errors=True)

    def tls_server(self, *args, **kw):
        """Starts a server with a TLS listener on a free port besides its cleartext one (server.port)
        and waits until the TLS port accepts; returns (server, tls_port)."""
        port = free_port()
        srv = self.server("--tls-listen", f"127.0.0.1:{port}", "--tls-cert", self.cert, "--tls-key", self.key, *args, **kw)
        self.assertTrue(wait_for_port("127.0.0.1", port), srv.output())
        return srv, port

    def h2_server(self, *args, **kw):
        """tls_server() for the HTTP/2 cases that run on both listeners: returns (server,
        [(label, port, tls)]) for h2c on the cleartext port and h2 over TLS (ALPN) on the TLS port."""
        srv, tls_port = self.tls_server(*args, **kw)
        return srv, [("h2c", srv.port, False), ("h2-tls", tls_port, True)]
