"""tools/bench cannot rot: its --quick mode runs the built server and nginx under wrk and must produce
a whole table with zero errors; holdconns, its many-connection client, is checked against the real
server and against a tiny chunked-encoding server (nginx's echo module answers chunked)."""
import json
import os
import re
import socket
import socketserver
import threading

from mockserver import BIN, SANITIZED, SLOWDOWN, run
from testcase import ServerTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BENCH = ["/usr/bin/python3", os.path.join(ROOT, "tools/bench")]
HOLDCONNS = os.path.join(ROOT, "build/tools/holdconns")
# the table's columns, as tools/bench prints them
COLUMNS = ["server", "proto", "conns", "req/s", "ideal", "eff %", "p50 ms", "p99 ms", "max ms", "errors", "CPU us/req",
           "late p50 us", "late p99 us", "srv CPU busy %", "load CPU busy %"]


def number(cell):
    return float(cell.strip().replace(",", ""))


class BenchToolTest(ServerTestCase):
    def test_quick_table_is_whole_and_clean(self):
        if SANITIZED:
            self.skipTest("benchmarks measure the release build; one pass is enough")
        r = run(BENCH + ["--quick", "--binary", BIN], timeout_s=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        header = next(line for line in r.stdout.splitlines() if line.startswith("| server | proto |"))
        self.assertEqual([c.strip() for c in header.split("|")[1:-1]], COLUMNS)
        rows = {}
        for line in r.stdout.splitlines():
            if re.match(r"\| (mockupstream|nginx) \| h1 \|", line):
                cells = dict(zip(COLUMNS, line.split("|")[1:-1]))
                rows[cells["server"].strip()] = cells  # the final table wins over the progress lines
        self.assertEqual(set(rows), {"mockupstream", "nginx"}, r.stdout)
        for name, row in rows.items():
            self.assertEqual(int(row["errors"]), 0, row)
            self.assertGreater(number(row["req/s"]), 0, row)
            self.assertEqual(number(row["ideal"]), 50 / 0.010, row)  # Little's law: 50 connections / 10 ms
            self.assertLessEqual(number(row["req/s"]), number(row["ideal"]) * 1.02, row)  # cannot beat the delay
            p50, p99, top = number(row["p50 ms"]), number(row["p99 ms"]), number(row["max ms"])
            self.assertGreaterEqual(p50, 10.0, row)  # the 10 ms delay is a floor for every response
            self.assertTrue(p50 <= p99 <= top, row)
            self.assertGreater(number(row["CPU us/req"]), 0, row)
        # lateness is mockupstream's own /stats figure over the level; nginx has none
        self.assertGreaterEqual(number(rows["mockupstream"]["late p99 us"]), 0)
        self.assertEqual(rows["nginx"]["late p50 us"].strip(), "n/a")
        self.assertIn("req/s ratio", r.stdout)
        self.assertIn("Machine: nproc", r.stdout)
        with open(os.path.join(ROOT, "build/bench/quick/results.json")) as f:
            doc = json.load(f)
        self.assertEqual(sorted(row["server"] for row in doc["rows"]), ["mockupstream", "nginx"])
        self.assertEqual(sum(row["errors"] for row in doc["rows"]), 0)

    def test_help_and_bad_options(self):
        r = run(BENCH + ["--help"])
        self.assertEqual(r.returncode, 0)
        for flag in ("--quick", "--levels", "--connections", "--server-only", "--binary"):
            self.assertIn(flag, r.stdout)
        for bad in (["--levels", "abc"], ["--levels", "0"], ["--bogus"], ["--h1-only", "--h2-only"],
                    ["--server-only", "apache"], ["--binary", "/nonexistent/mockupstream"], ["--duration", "0"]):
            r = run(BENCH + bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)  # one line, no traceback
            self.assertTrue(r.stderr.startswith("bench: "), r.stderr)


class ChunkedHandler(socketserver.BaseRequestHandler):
    """Answers every request on a keep-alive connection like nginx's echo module: chunked, in two
    chunks written separately, so holdconns must put a response together across reads."""

    def handle(self):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = self.request.recv(4096)
                if not data:
                    return
                buf += data
            _, buf = buf.split(b"\r\n\r\n", 1)
            status = b"404 Not Found" if self.server.fail else b"200 OK"
            self.request.sendall(b"HTTP/1.1 " + status + b"\r\ntransfer-encoding: chunked\r\n\r\n6\r\nHello \r\n")
            self.request.sendall(b"7\r\nworld!\n\r\n0\r\n\r\n")


class ChunkedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fail=False):
        self.fail = fail
        super().__init__(("127.0.0.1", 0), ChunkedHandler)


class HoldconnsTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.assertTrue(os.access(HOLDCONNS, os.X_OK), f"{HOLDCONNS} is missing: run make")

    def holdconns(self, port, *args):
        r = run([HOLDCONNS, "--port", str(port)] + list(args), timeout_s=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.stderr = r.stderr
        return json.loads(r.stdout)

    def test_active_and_idle_against_the_server(self):
        srv = self.server("--delay", "10ms")
        result = self.holdconns(srv.port, "--connections", "200", "--duration", "1")
        self.assertEqual((result["connected"], result["errors"]), (200, 0), result)
        # 200 connections x 10 ms could do 20,000; on a busy shared machine demand only a fraction
        self.assertGreater(result["responses"], 2000 / SLOWDOWN, result)
        self.assertLessEqual(result["responses"], 200 * 100 * 1.05, result)  # nobody answers before the delay
        self.assertGreaterEqual(result["p50_ms"], 10.0, result)
        # --idle: one request each from another source address, then nothing until the end
        result = self.holdconns(srv.port, "--source", "127.0.0.2", "--connections", "100", "--duration", "1", "--idle")
        self.assertEqual((result["connected"], result["responses"], result["errors"], result["unanswered"]), (100, 100, 0, 0), result)
        self.assertEqual(self.stderr, "ready\n")  # tools/bench reads the server's memory once it sees this

    def test_chunked_responses_and_errors(self):
        for fail in (False, True):
            with ChunkedServer(fail=fail) as srv:
                threading.Thread(target=srv.serve_forever, daemon=True).start()
                try:
                    result = self.holdconns(srv.server_address[1], "--connections", "5", "--duration", "0.5")
                finally:
                    srv.shutdown()
            if fail:  # a 404 is an error, and the connection keeps going
                self.assertEqual(result["responses"], 0, result)
                self.assertGreater(result["errors"], 5, result)
            else:
                self.assertEqual(result["errors"], 0, result)
                self.assertGreater(result["responses"], 5, result)

    def test_refused_and_bad_options(self):
        with socket.socket() as s:  # a port that was free a moment ago: connections are refused
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        result = self.holdconns(port, "--connections", "10", "--duration", "0.3")
        self.assertEqual((result["connected"], result["responses"], result["errors"]), (0, 0, 10), result)
        for bad in (["--port", "0"], ["--port", "80", "--connections", "x", "--duration", "1"],
                    ["--port", "80", "--connections", "1", "--duration", "1", "--source", "nowhere"], ["--bogus", "1"]):
            r = run([HOLDCONNS] + bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
