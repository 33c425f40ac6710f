"""Base class for integration tests: owns the servers a test starts and checks them at the end."""
import unittest

from mockserver import MockServer


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
        failed = False
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and getattr(outcome, "result", None) is not None:
            result = outcome.result
            failed = any(t is self for t, _ in result.failures + result.errors)
        for s in self._servers:
            s.stop()
            errors = s.sanitizer_errors()
            if failed or errors:
                print(f"\n----- server log ({' '.join(s.command())}) -----\n{s.output()[-6000:]}\n-----")
            if errors:
                self.fail("sanitizer reported: " + "; ".join(errors[:5]))
