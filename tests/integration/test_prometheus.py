"""A real Prometheus (Debian's `prometheus`, started here in the foreground with its own configuration
and storage in a temporary directory) scrapes mockupstream's --stats-listen port every second while
wrk runs, then evaluates exactly the PromQL block of README.md's metrics section through its HTTP API,
and each answer is checked against what the load generator and /proc saw. The queries are read from
README.md, so the documentation and this test cannot drift apart: a query the test has no check for,
or a check whose query left the README, fails the test."""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import clients as c
from mockserver import SLOWDOWN, free_port, run, wait_for_port
from testcase import ServerTestCase, release_only

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
LOAD_SECONDS = 12
WINDOW_SECONDS = 10  # the README queries' [10s]
BAD_REQUEST_INTERVAL_S = 0.1


def readme_queries():
    """[(title, query)] from the ```promql block of README.md: each query follows its `# title` line;
    queries are separated by blank lines and may span several lines."""
    with open(README) as f:
        text = f.read()
    blocks = re.findall(r"^```promql\n(.*?)^```", text, re.S | re.M)
    if len(blocks) != 1:
        raise AssertionError(f"README.md must have exactly one ```promql block, found {len(blocks)}")
    queries = []
    for part in blocks[0].strip().split("\n\n"):
        lines = part.strip().splitlines()
        if not lines[0].startswith("# ") or len(lines) < 2:
            raise AssertionError(f"each README query needs a '# title' line and a query: {part!r}")
        queries.append((lines[0][2:].strip(), "\n".join(lines[1:])))
    return queries


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


class Prometheus:
    """One Prometheus process scraping `target` (HOST:PORT) every second as job "mockupstream"."""

    def __init__(self, binary, directory, target):
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(directory, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: mockupstream\n    metrics_path: /metrics\n"
                    f"    static_configs:\n      - targets: [\"{target}\"]\n")
        self.log_path = os.path.join(directory, "prometheus.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.directory}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, promql, at=None):
        """The result of an instant query (at Unix time `at`, default now): [(labels, float value)]."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        with urllib.request.urlopen(self.url + "/api/v1/query?" + urllib.parse.urlencode(params), timeout=10) as r:
            doc = json.loads(r.read())
        if doc.get("status") != "success":
            raise AssertionError(f"query failed: {promql}: {doc}")
        if doc["data"]["resultType"] == "scalar":
            return [({}, float(doc["data"]["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in doc["data"]["result"]]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""


class PrometheusTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.prometheus = None

    def tearDown(self):
        if self.prometheus is not None:
            self.prometheus.stop()
            outcome = getattr(self, "_outcome", None)
            result = getattr(outcome, "result", None)
            if result is not None and any(t is self for t, _ in result.failures + result.errors):
                print(f"\n----- prometheus log -----\n{self.prometheus.log()}\n-----")
        super().tearDown()

    # Rates, CPU per request and per-worker shares against wrk and /proc: figures, not memory safety
    # (/metrics scraped under load runs under ASan in test_stats_endpoints).
    @release_only("rates and CPU figures of a 12 s load; /metrics under load runs under ASan elsewhere")
    def test_readme_promql_on_a_real_prometheus_under_load(self):
        binary = shutil.which("prometheus")
        if binary is None:
            self.skipTest("the prometheus binary is not installed (Debian package prometheus; `make deps` installs it)")
        started = time.monotonic()
        queries = readme_queries()
        stats_port = free_port()
        srv = self.server("--stats-listen", f"127.0.0.1:{stats_port}", "--delay", "10ms", workers=2)
        self.assertTrue(wait_for_port("127.0.0.1", stats_port))
        stats_base = f"http://127.0.0.1:{stats_port}"
        directory = tempfile.mkdtemp(prefix="mockupstream-prometheus-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.prometheus = prom = Prometheus(binary, directory, f"127.0.0.1:{stats_port}")
        prom.start()
        self.assertTrue(c.wait_until(prom.ready, timeout_s=20, interval_s=0.2), "prometheus never became ready")
        self.assertTrue(c.wait_until(lambda: [v for _, v in prom.query('up{job="mockupstream"}')] == [1.0],
                                      timeout_s=10, interval_s=0.2), "the first scrape never succeeded")

        # The load: wrk on the benchmark port, and beside it one bad request (400) every 0.1 s.
        doc = c.stats(stats_base)
        pids = [w["pid"] for w in doc["workers"]] + [doc["master"]["pid"]]
        cpu_before = sum(proc_cpu_seconds(p) for p in pids)
        requests_before = doc["requests"]["total"]
        stop = threading.Event()
        bad_sent, bad_statuses = [], []

        def bad_requests():
            while not stop.wait(BAD_REQUEST_INTERVAL_S):
                bad_statuses.append(c.one(srv, path="/wait/abc").status)
                bad_sent.append(time.time())

        bad = threading.Thread(target=bad_requests)
        load_start = time.time()
        bad.start()
        try:
            r = run(["wrk", "-t2", "-c32", f"-d{LOAD_SECONDS}s", srv.url + "/"], timeout_s=LOAD_SECONDS + 20)
        finally:
            stop.set()
            bad.join()
        load_end = time.time()
        self.assertEqual(set(bad_statuses), {400})
        doc = c.stats(stats_base)
        cpu_per_request_proc = (sum(proc_cpu_seconds(p) for p in pids) - cpu_before) / (doc["requests"]["total"] - requests_before)
        m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        wrk_rate = float(m.group(1))
        self.assertNotIn("Non-2xx", r.stdout)

        # Evaluate where the whole window lay inside the load, once Prometheus has scraped past it.
        at = load_end - 1.0
        self.assertGreater(at - WINDOW_SECONDS, load_start)
        self.assertTrue(c.wait_until(lambda: prom.query('timestamp(up{job="mockupstream"})')[0][1] > at + 1,
                                      timeout_s=10, interval_s=0.2))
        bad_rate = sum(1 for t in bad_sent if at - WINDOW_SECONDS < t <= at) / WINDOW_SECONDS
        self.assertGreater(bad_rate, 2)

        def single(result, title):
            self.assertEqual(len(result), 1, f"{title}: {result}")
            value = result[0][1]
            self.assertFalse(math.isnan(value) or math.isinf(value), f"{title}: {value}")
            return value

        def request_rate(title, result):
            rate = single(result, title)
            # wrk's own figure, plus the bad requests it did not send
            self.assertAlmostEqual(rate, wrk_rate + 1 / BAD_REQUEST_INTERVAL_S, delta=0.25 * wrk_rate, msg=title)

        def error_rate(title, result):
            self.assertAlmostEqual(single(result, title), bad_rate, delta=0.35 * bad_rate, msg=title)

        def lateness_p99(title, result):
            p99 = single(result, title)
            self.assertGreater(p99, 0, title)
            self.assertLessEqual(p99, 100, f"{title}: past the histogram's last bound")

        def worker_share(title, result):
            self.assertEqual(sorted(labels["worker"] for labels, _ in result), ["0", "1"], title)
            self.assertAlmostEqual(sum(v for _, v in result), 1.0, delta=1e-6, msg=title)
            for labels, share in result:
                self.assertGreater(share, 0.0, f"{title}: {labels}")

        def cpu_per_request(title, result):
            value = single(result, title)
            self.assertGreater(value, 0, title)
            ratio = value / cpu_per_request_proc
            self.assertTrue(0.5 < ratio < 2, f"{title}: {value * 1e6:.1f} us in Prometheus, "
                                             f"{cpu_per_request_proc * 1e6:.1f} us from /proc over the whole load")

        def cores_per_process(title, result):
            cores = {labels["worker"]: v for labels, v in result}
            self.assertEqual(sorted(cores), ["0", "1", "master"], title)
            for worker, v in cores.items():
                self.assertGreaterEqual(v, 0, f"{title}: {worker}")
                self.assertLessEqual(v, 1.05, f"{title}: {worker}: one thread cannot use more than a core")
            self.assertGreater(cores["0"] + cores["1"], 0, title)

        checks = {
            "Requests answered per second (all workers, all protocols)": request_rate,
            "Error answers (4xx and 5xx) per second; empty while there are none": error_rate,
            "Lateness p99 in seconds on HTTP/1.1 (arrival=\"handler\" for HTTP/2; never both at once)": lateness_p99,
            "Each worker's share of the requests (1/workers each when SO_REUSEPORT spread the connections evenly)": worker_share,
            "CPU seconds per request, every process of the server (the master included)": cpu_per_request,
            "CPU cores each process used: every worker well below 1 means the upstream was not the bottleneck": cores_per_process,
        }
        self.assertEqual([t for t, _ in queries], list(checks), "README.md's PromQL block and this test's checks differ")
        for title, promql in queries:
            checks[title](title, prom.query(promql, at=at))
        self.assertLess(time.monotonic() - started, 60 * SLOWDOWN)
