"""tools/bench cannot rot: its --quick mode runs against the built server and nginx and must produce
a whole table with zero errors; holdconns, its load client, is checked against a real server."""
import json
import os
import re

from mockserver import BIN, SANITIZED, run
from testcase import ServerTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


class BenchToolTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        if SANITIZED:
            self.skipTest("benchmarks measure the release build")

    def test_quick_table_is_whole_and_clean(self):
        r = run(["/usr/bin/python3", os.path.join(ROOT, "tools/bench"), "--quick", "--binary", BIN], timeout_s=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = [line.split("|")[1:-1] for line in r.stdout.splitlines() if re.match(r"\| (mockupstream|nginx) \| h1 \|", line)]
        servers = {row[0].strip() for row in rows}
        self.assertEqual(servers, {"mockupstream", "nginx"})
        for row in rows:
            rps, errors = float(row[3].replace(",", "")), int(row[9])
            self.assertGreater(rps, 0)
            self.assertEqual(errors, 0)
            self.assertGreater(float(row[6]), 10.0)  # p50 latency cannot beat the 10 ms delay
        self.assertIn("req/s ratio", r.stdout)
        with open(os.path.join(ROOT, "build/bench/quick/results.json")) as f:
            self.assertEqual(len(json.load(f)["rows"]), 2)

    def test_help_and_bad_options(self):
        bench = ["/usr/bin/python3", os.path.join(ROOT, "tools/bench")]
        r = run(bench + ["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--quick", r.stdout)
        for bad in (["--levels", "abc"], ["--levels", "0"], ["--bogus"]):
            r = run(bench + bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)  # one line, no traceback


class HoldconnsTest(ServerTestCase):
    def test_active_and_idle_connections(self):
        holder = os.path.join(ROOT, "build/tools/holdconns")
        self.assertTrue(os.access(holder, os.X_OK), f"{holder} is missing: run make")
        srv = self.server("--delay", "1ms")
        r = run([holder, "--port", str(srv.port), "--connections", "200", "--duration", "1"])
        result = json.loads(r.stdout)
        self.assertEqual((result["connected"], result["errors"]), (200, 0))
        self.assertGreater(result["responses"], 200)
        r = run([holder, "--port", str(srv.port), "--source", "127.0.0.2", "--connections", "100", "--duration", "1", "--idle"])
        result = json.loads(r.stdout)
        self.assertEqual((result["responses"], result["errors"]), (100, 0))
        self.assertEqual(run([holder, "--port", "0"]).returncode, 2)
