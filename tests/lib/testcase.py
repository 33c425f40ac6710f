"""Base class for integration tests: owns the servers a test starts and checks them at the end.
release_only(why) marks a test (or a class) that measures timing, CPU or a distribution's shape, or
never runs the binary under test, and so proves nothing more under a sanitizer build."""
import functools
import shutil
import tempfile
import threading
import time
import unittest

import clients
from mockserver import SANITIZED, SLOWDOWN, MockServer, free_port, self_signed_cert, wait_for_port


def release_only(why):
    """Decorator for a test method or a TestCase class: skip it on the sanitizer build
    (MOCKUPSTREAM_SANITIZED=1), giving `why` as the reason. Only for checks of timing, CPU or shape,
    whose figures a sanitizer build distorts and whose code paths other tests run under it, and for
    tests of tools that never start the binary under test; never for tests of memory safety,
    parsing, hostile input, faults or lifecycles, which are what the sanitizer build is for."""
    if not why:
        raise ValueError("release_only needs a reason")

    def mark(test):
        if isinstance(test, type):
            return unittest.skipIf(SANITIZED, f"release build only: {why}")(test)

        @functools.wraps(test)
        def run(self, *args, **kw):
            if SANITIZED:
                self.skipTest(f"release build only: {why}")
            return test(self, *args, **kw)
        return run
    return mark


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

    def at_once(self, check, cases, timeout_s=60):
        """check(*case) for every case, each in its own thread, all at once: for checks that mostly
        wait (a timeout per listener), whose waits would otherwise add up. Each case must use its own
        connections, and servers are started before (self.assert* is safe in a thread; self.subTest
        and self.server are not). Then, in order, each case's failure (an assertion or any exception
        raised in its thread, or not finishing within timeout_s) is reported in a subTest named by
        case[0]. Not for checks of tight timing: the cases share the machine and the GIL."""
        outcomes = [TimeoutError(f"not finished in {timeout_s * SLOWDOWN:.1f} s")] * len(cases)

        def run(i, case):
            try:
                check(*case)
                outcomes[i] = None
            except BaseException as e:  # reported below, in the test's own thread
                outcomes[i] = e

        threads = [threading.Thread(target=run, args=(i, case), daemon=True) for i, case in enumerate(cases)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout_s * SLOWDOWN
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for case, outcome in zip(cases, outcomes):
            with self.subTest(case[0]):
                if outcome is not None:
                    raise outcome

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

    def start_listeners(self, *args):
        """tls_server(), keeping the TLS port for http1_conn(): the set-up of tests that run one case
        on every listener (cleartext and TLS HTTP/1.1, h2c, h2 over TLS)."""
        srv, self.tls_port = self.tls_server(*args)
        return srv

    def http1_conn(self, srv, kind, timeout_s=10.0):
        """A raw HTTP/1.1 connection to srv's cleartext ("http1") or TLS ("http1-tls") listener."""
        if kind == "http1":
            return clients.Conn.to(srv, timeout_s=timeout_s)
        return clients.TlsConn("127.0.0.1", self.tls_port, timeout_s=timeout_s)

    def h2_server(self, *args, **kw):
        """tls_server() for the HTTP/2 cases that run on both listeners: returns (server,
        [(label, port, tls)]) for h2c on the cleartext port and h2 over TLS (ALPN) on the TLS port."""
        srv, tls_port = self.tls_server(*args, **kw)
        return srv, [("h2c", srv.port, False), ("h2-tls", tls_port, True)]
