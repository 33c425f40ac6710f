"""tools/bench cannot rot: its --quick mode runs the built server and nginx under wrk, cleartext and over
TLS, keep-alive and with a connection per request, and must produce whole tables with zero errors and
full TLS handshakes only; holdconns, its many-connection client, is checked against the real server
and against a tiny chunked-encoding server (nginx's echo module answers chunked)."""
import json
import os
import re
import socket
import socketserver
import tempfile
import threading

from mockserver import BIN, SANITIZED, SLOWDOWN, free_port, port_is_free, run
from testcase import ServerTestCase, release_only

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BENCH = ["/usr/bin/python3", os.path.join(ROOT, "tools/bench")]
# holdconns of the same build as the binary (build/tools/ for build/mockupstream and build/asan/mockupstream)
HOLDCONNS = next((p for p in (os.path.join(d, "tools/holdconns") for d in (os.path.dirname(os.path.abspath(BIN)),
                                                                           os.path.dirname(os.path.dirname(os.path.abspath(BIN)))))
                  if os.access(p, os.X_OK)), os.path.join(ROOT, "build/tools/holdconns"))
# tools/bench writes its results beside the binary it measures
RESULTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "bench")
# the tables' columns, as tools/bench prints them
COLUMNS = ["server", "proto", "conns", "req/s", "ideal", "eff %", "p50 ms", "p99 ms", "max ms", "errors", "CPU us/req",
           "late p50 us", "late p99 us", "srv CPU busy %", "load CPU busy %"]
CHURN_COLUMNS = ["server", "case", "client", "conns", "conns/s", "ideal", "eff %", "p50 ms", "p99 ms", "max ms", "errors",
                 "full handshakes", "resumed handshakes", "CPU us/conn", "srv CPU busy %", "load CPU busy %"]
RATIO_COLUMNS = ["case", "conns", "req/s ratio", "p50 ratio", "p99 ratio", "CPU/req ratio"]


def number(cell):
    return float(cell.strip().replace(",", ""))


def table_rows(stdout, columns, first_cell_pattern):
    """The rows of the last table with these columns in the output, as dicts (the final report's
    table comes after the rows printed as they were measured)."""
    header = "| " + " | ".join(columns) + " |"
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line == header]
    if not starts:
        return None
    rows = []
    for line in lines[starts[-1] + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if re.fullmatch(first_cell_pattern, cells[0]):
            rows.append(dict(zip(columns, cells)))
    return rows


class BenchToolTest(ServerTestCase):
    def test_quick_tables_are_whole_and_clean(self):
        if SANITIZED:
            self.skipTest("benchmarks measure the release build; one pass is enough")
        r = run(BENCH + ["--quick", "--binary", BIN], timeout_s=150)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        # each table's header comes before its first row as the rows are printed, not only at the end
        first_row = next(i for i, line in enumerate(out.splitlines()) if re.match(r"\| (mockupstream|nginx) \|", line))
        self.assertEqual(out.splitlines()[first_row - 2], "| " + " | ".join(COLUMNS) + " |", out)
        # a progress line per level on stderr: 3 cases x 2 servers
        progress = re.findall(r"(?m)^bench: \[(\d+)/(\d+)\] (mockupstream|nginx) (\S+), (\d+) connections", r.stderr)
        self.assertEqual([(int(i), int(n)) for i, n, *_ in progress], [(i, 6) for i in range(1, 7)], r.stderr)

        rows = {(c["server"], c["proto"]): c for c in table_rows(out, COLUMNS, "mockupstream|nginx")}
        self.assertEqual(set(rows), {(s, p) for s in ("mockupstream", "nginx") for p in ("h1", "h1-tls")}, out)
        for (name, proto), row in rows.items():
            self.assertEqual(int(row["errors"]), 0, row)
            self.assertGreater(number(row["req/s"]), 0, row)
            self.assertEqual(number(row["ideal"]), 50 / 0.010, row)  # Little's law: 50 connections / 10 ms
            self.assertLessEqual(number(row["req/s"]), number(row["ideal"]) * 1.02, row)  # cannot beat the delay
            p50, p99, top = number(row["p50 ms"]), number(row["p99 ms"]), number(row["max ms"])
            self.assertGreaterEqual(p50, 10.0, row)  # the 10 ms delay is a floor for every response
            self.assertTrue(p50 <= p99 <= top, row)
            self.assertGreater(number(row["CPU us/req"]), 0, row)
        # lateness is mockupstream's own /stats figure over the level; nginx has none
        self.assertGreaterEqual(number(rows["mockupstream", "h1"]["late p99 us"]), 0)
        self.assertEqual(rows["nginx", "h1"]["late p50 us"], "n/a")

        churn = {c["server"]: c for c in table_rows(out, CHURN_COLUMNS, "mockupstream|nginx")}
        self.assertEqual(set(churn), {"mockupstream", "nginx"}, out)
        for name, row in churn.items():
            self.assertEqual((row["case"], row["client"], row["conns"], row["errors"]), ("tls-churn", "wrk", "20", "0"), row)
            conns_per_s = number(row["conns/s"])
            self.assertGreater(conns_per_s, 0, row)
            self.assertLessEqual(conns_per_s, 20 / 0.010 * 1.02, row)
            self.assertGreaterEqual(number(row["p50 ms"]), 10.0, row)
            # every connection of the interval was a full handshake, counted in the client
            self.assertEqual(number(row["resumed handshakes"]), 0, row)
            self.assertGreaterEqual(number(row["full handshakes"]), conns_per_s * 1.0, row)  # 2 s of them, at least 1 s
            self.assertGreater(number(row["CPU us/conn"]), number(rows[name, "h1-tls"]["CPU us/req"]), row)  # a handshake costs

        ratios = {(c["case"], c["conns"]) for c in table_rows(out, RATIO_COLUMNS, r"[a-z0-9-]+")}
        self.assertEqual(ratios, {("http1", "50"), ("tls-http1", "50"), ("tls-churn", "20")}, out)
        self.assertIn("Machine: nproc", out)
        self.assertRegex(out, r"negotiated \(openssl s_client, ALPN http/1.1\): mockupstream TLSv1\.[23] \S+, \S+, 1 session ticket; nginx TLSv1\.[23] \S+, \S+, \d+ session tickets?\.")
        with open(os.path.join(RESULTS, "quick", "results.json")) as f:
            doc = json.load(f)
        self.assertEqual(sorted((row["server"], row["case"]) for row in doc["rows"]),
                         [(s, c) for s in ("mockupstream", "nginx") for c in ("http1", "tls-http1")])
        self.assertEqual(sum(row["errors"] for row in doc["rows"] + doc["churn"]), 0)
        # TLS keep-alive: the server's figures were taken with every client connection open
        for row in doc["rows"]:
            self.assertGreaterEqual(row["server_connections_at_start"], 50, row)

    def test_port_base(self):
        """--port-base N: the servers listen on N (HTTP/1.1), N+1 (nginx h2c), N+2 (TLS), and a port in use is refused."""
        if SANITIZED:
            self.skipTest("benchmarks measure the release build; one pass is enough")
        base = None
        for _ in range(20):  # three consecutive free ports
            candidate = free_port()
            if candidate <= 65533 and all(port_is_free(candidate + i) for i in range(3)):
                base = candidate
                break
        self.assertIsNotNone(base, "no three consecutive free ports")
        with socket.socket() as busy:  # someone else's server on N+2
            busy.bind(("127.0.0.1", base + 2))
            busy.listen()
            r = run(BENCH + ["--binary", BIN, "--server-only", "mockupstream", "--cases", "tls-http1", "--port-base", str(base),
                             "--duration", "1", "--tls-levels", "5"], timeout_s=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip().splitlines()[-1], f"bench: port {base + 2} is in use: choose another --port-base")
        with tempfile.TemporaryDirectory() as out:  # --out: leave the results of a real run alone
            r = run(BENCH + ["--binary", BIN, "--server-only", "mockupstream", "--cases", "http1,tls-http1", "--port", str(base),
                             "--duration", "1", "--levels", "5", "--tls-levels", "5", "--no-memory", "--out", out], timeout_s=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(os.path.join(out, "results.json")) as f:
                doc = json.load(f)
        self.assertEqual([(row["case"], row["port"]) for row in doc["rows"]], [("http1", base), ("tls-http1", base + 2)])

    @release_only("tools/bench's option parsing: the server never starts")
    def test_help_and_bad_options(self):
        r = run(BENCH + ["--help"])
        self.assertEqual(r.returncode, 0)
        for flag in ("--quick", "--levels", "--connections", "--server-only", "--binary", "--cases", "--tls-levels",
                     "--port-base", "tls-churn-resumed", "--repeat"):
            self.assertIn(flag, r.stdout)
        for bad in (["--levels", "abc"], ["--levels", "0"], ["--bogus"], ["--h1-only", "--h2-only"],
                    ["--server-only", "apache"], ["--binary", "/nonexistent/mockupstream"], ["--duration", "0"],
                    ["--cases", "http1,quic"], ["--cases", "http1", "--h1-only"], ["--tls-levels", "x"],
                    ["--port-base", "80"], ["--churn-connections", "0"], ["--repeat", "0"], ["--repeat", "2", "--quick"]):
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
