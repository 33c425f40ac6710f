"""valgrind memcheck over a short mixed workload (tests/valgrind.sh) on the plain build."""
import os

from mockserver import SANITIZED, run
from testcase import ServerTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


class ValgrindTest(ServerTestCase):
    def test_no_errors_or_definite_leaks(self):
        if SANITIZED:
            self.skipTest("valgrind runs once, on the plain build")
        plain = os.path.join(ROOT, "build/plain/mockupstream")
        if not os.path.exists(plain):
            self.fail("build/plain/mockupstream is missing: run `make plain` (make test does)")
        r = run([os.path.join(ROOT, "tests/valgrind.sh"), plain], timeout_s=180, cwd=ROOT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("valgrind: clean", r.stdout)
