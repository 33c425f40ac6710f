"""/stats, /metrics and /healthz: exact totals across workers and protocols, a strict check of the
Prometheus text format (and promtool's), held-request gauges, the stats-only listener, scraping under
load, worker death; exact status codes, lateness labelled by arrival, the applied-delay and
receive-time histograms; process_* figures per worker and for the master, checked against /proc
(tools/mockstat is tested in test_mockstat.py, a real Prometheus in test_prometheus.py)."""
import os
import resource
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import clients as c
from mockserver import SLOWDOWN, free_port, run, wait_for_port
from testcase import ServerTestCase

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE_RE = re.compile(rf"^({METRIC_NAME})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? (\S+)$")


def parse_exposition(text, test):
    """A strict parser for the Prometheus text format 0.0.4: returns {family: {"type":, "samples": [(name, labels, value)]}}
    and fails `test` on any violation."""
    families, current = {}, None
    test.assertTrue(text.endswith("\n"), "exposition must end with a newline")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            test.assertIn(kind, ("counter", "gauge", "histogram", "summary", "untyped"), line)
            test.assertNotIn(name, families, f"family {name} declared twice")
            families[name] = {"type": kind, "samples": []}
            current = name
            continue
        test.assertFalse(line.startswith("#") or not line, f"unexpected line {line!r}")
        m = SAMPLE_RE.match(line)
        test.assertIsNotNone(m, f"malformed sample line {line!r}")
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = name
        if current and families[current]["type"] == "histogram":
            family = re.sub(r"_(bucket|sum|count)$", "", name)
        test.assertEqual(family, current, f"sample {name} is not under its # TYPE line")
        float(value)  # raises on a malformed value
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"', labels))
        families[current]["samples"].append((name, labels, float(value)))
    for name, fam in families.items():
        if fam["type"] == "counter":
            test.assertTrue(name.endswith("_total"), f"counter {name} must end in _total")
        if fam["type"] == "histogram":
            for series, hist in histogram_series(fam, name).items():
                where = f"{name}{dict(series)}"
                bounds = [le for le, _ in hist["buckets"]]
                test.assertEqual(bounds[-1], "+Inf", where)
                test.assertEqual([float(b) for b in bounds], sorted(set(float(b) for b in bounds)), f"{where}: le must increase")
                counts = [v for _, v in hist["buckets"]]
                test.assertEqual(counts, sorted(counts), f"{where}: buckets must be cumulative")
                test.assertEqual(hist["count"], [counts[-1]], f"{where}: +Inf bucket must equal _count")
                test.assertEqual(len(hist["sum"]), 1, f"{where}: one _sum")
                test.assertGreaterEqual(hist["sum"][0], 0, where)
    return families


def histogram_series(fam, name):
    """{labels other than le (as a sorted tuple): {"buckets": [(le, cumulative)], "sum": [..], "count": [..]}}"""
    series = {}
    for sample, labels, value in fam["samples"]:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        hist = series.setdefault(key, {"buckets": [], "sum": [], "count": []})
        if sample == name + "_bucket":
            hist["buckets"].append((labels["le"], value))
        elif sample == name + "_sum":
            hist["sum"].append(value)
        elif sample == name + "_count":
            hist["count"].append(value)
    return series


def sample_sum(families, name, family=None, **labels):
    """Sum of the samples called `name` (in `family`, for histogram series) whose labels match."""
    samples = families[family or name]["samples"]
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == val for k, val in labels.items()))


class StatsTest(ServerTestCase):
    def test_exact_totals_over_http1_and_http2_and_workers(self):
        srv = self.server("--delay", "1ms", workers=2)
        for i in range(20):  # fresh connections
            self.assertEqual(c.one(srv, path=f"/fresh/{i}").status, 200)
        with c.Conn.to(srv) as conn:  # keep-alive, pipelined
            conn.send(b"".join(c.raw_request(path=f"/ka/{i}") for i in range(17)))
            self.assertEqual([conn.read_response().status for _ in range(17)], [200] * 17)
        r = run(["h2load", "-n", "23", "-c", "1", srv.url + "/h2"])
        self.assertIn("23 succeeded", r.stdout)
        doc = c.stats(srv)
        self.assertEqual(doc["requests"]["total"], 60)
        self.assertEqual(doc["requests"]["by_protocol"], {"http1": 37, "http1_tls": 0, "http2": 23, "http2_tls": 0})
        self.assertEqual(doc["requests"]["by_code"]["2xx"], 60)
        self.assertEqual(sum(w["requests"] for w in doc["workers"]), 60)
        self.assertEqual(doc["bytes"]["response_body"], 60 * 13)
        self.assertEqual(doc["lateness"]["count"], 60)
        self.assertEqual(doc["control_requests"], 0)  # this scrape is counted after it is answered
        families = parse_exposition(c.metrics(srv), self)
        self.assertEqual(sample_sum(families, "mockupstream_requests_total"), 60)
        self.assertEqual(sample_sum(families, "mockupstream_requests_total", protocol="http2", tls="false"), 23)
        self.assertEqual(sample_sum(families, "mockupstream_worker_requests_total"), 60)
        self.assertEqual(sample_sum(families, "mockupstream_control_requests_total"), 1)  # the /stats scrape above
        self.assertEqual(sample_sum(families, "mockupstream_delay_lateness_seconds_count", "mockupstream_delay_lateness_seconds"), 60)
        # only the codes seen, each with its exact code: 200 on http1 and on http2
        self.assertEqual(sorted((l["protocol"], l["tls"], l["code"]) for _, l, _ in families["mockupstream_requests_total"]["samples"]),
                         [("http1", "false", "200"), ("http2", "false", "200")])
        self.assertEqual(families["mockupstream_build_info"]["samples"][0][1]["h2o"], "2.2.5")
        self.assertEqual(c.stats(srv)["requests"]["total"], 60)  # scrapes never count as traffic

    def test_held_gauges(self):
        srv = self.server("--delay", "0", workers=2)
        threads = [threading.Thread(target=c.one, args=(srv,), kwargs={"path": "/wait/500"}) for _ in range(5)]
        [t.start() for t in threads]
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 5, timeout_s=0.4))
        families = parse_exposition(c.metrics(srv), self)
        self.assertEqual(sample_sum(families, "mockupstream_held_requests"), 5)
        self.assertEqual(sample_sum(families, "mockupstream_worker_held_requests"), 5)
        [t.join() for t in threads]
        doc = c.stats(srv)
        self.assertEqual(doc["held"]["now"], 0)
        self.assertGreaterEqual(doc["held"]["peak"], 5)
        self.assertEqual(doc["requests"]["total"], 5)
        self.assertGreaterEqual(doc["lateness"]["count"], 5)

    def test_control_path_errors_and_healthz(self):
        srv = self.server("--delay", "0")
        self.assertEqual(c.one(srv, method="POST", path="/stats").status, 405)
        self.assertEqual(c.one(srv, path="/stats?format=bogus").status, 400)
        r = c.one(srv, path="/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.assertIn(b"# TYPE mockupstream_requests_total counter", c.one(srv, path="/stats?format=prometheus").body)
        self.assertEqual(c.stats(srv)["requests"]["total"], 0)

    def test_stats_listener_serves_only_control_paths(self):
        stats_port = free_port()
        srv = self.server("--stats-listen", f"127.0.0.1:{stats_port}", "--delay", "0")
        self.assertTrue(wait_for_port("127.0.0.1", stats_port))
        base = f"http://127.0.0.1:{stats_port}"
        c.one(srv)
        self.assertEqual(c.stats(base)["requests"]["total"], 1)
        parse_exposition(c.metrics(base), self)
        with urllib.request.urlopen(base + "/healthz") as r:
            self.assertEqual(r.read(), b"ok\n")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/anything")
        self.assertEqual(e.exception.code, 404)
        self.assertEqual(c.stats(base)["connections"]["by_listener"]["stats"]["accepted"], 6)  # 5 requests + our readiness probe

    def test_scraping_100_times_a_second_under_load_does_not_disturb_delays(self):
        srv = self.server("--delay", "5ms", workers=2)
        stop = threading.Event()
        scrapes = []

        def scraper():
            while not stop.is_set():
                c.metrics(srv) if len(scrapes) % 2 else c.stats(srv)
                scrapes.append(1)
                time.sleep(0.01)

        t = threading.Thread(target=scraper)
        t.start()
        r = run(["h2load", "-c", "10", "-m", "10", "-D", "2", srv.url + "/"], timeout_s=30)
        stop.set()
        t.join()
        self.assertIn(" 0 failed, 0 errored", r.stdout)
        self.assertGreater(len(scrapes), 50)
        lateness = c.stats(srv)["lateness"]
        self.assertLess(lateness["p99_seconds"], 0.02 * SLOWDOWN)

    def test_totals_survive_a_killed_worker(self):
        srv = self.server("--delay", "1ms", workers=2)
        load = subprocess.Popen(["h2load", "-c", "8", "-m", "10", "-D", "2", srv.url + "/"], stdout=subprocess.DEVNULL)
        time.sleep(0.7)
        before = c.stats(srv)
        victim = before["workers"][0]["pid"]
        c.kill_worker(srv, victim)
        load.wait(timeout=30 * SLOWDOWN)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["workers"][0]["pid"] not in (0, victim)))
        after = c.stats(srv)
        self.assertGreaterEqual(after["requests"]["total"], before["requests"]["total"])
        self.assertGreaterEqual(after["workers"][0]["restarts"], 1)
        self.assertEqual(after["held"]["now"], 0)


def le_bounds(hist):
    return [b for b, _ in hist["buckets"]]


class MetricsConventionsTest(ServerTestCase):
    """Exact status codes, lateness kept apart by arrival, the applied-delay and receive-time
    histograms, and promtool's own check of the exposition."""

    def test_exact_status_codes_on_stats_and_metrics(self):
        srv = self.server("--delay", "0", workers=2)
        refusals = [
            (b"GET /wait/abc HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
            (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n", 413),
            (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 1\r\n\r\n", 417),
            (b"CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        ]
        for raw, status in refusals:
            with c.Conn.to(srv) as conn:
                conn.send(raw)
                self.assertEqual(conn.read_response().status, status, raw[:40])
        for _ in range(3):
            self.assertEqual(c.one(srv, path="/").status, 200)
        r = run(["h2load", "-n", "4", "-c", "1", srv.url + "/wait/abc"])  # 400 over HTTP/2
        self.assertIn("4 4xx", r.stdout)
        doc = c.stats(srv)
        self.assertEqual(doc["requests"]["by_status"], {"200": 3, "400": 6, "413": 1, "414": 1, "417": 1, "431": 1, "501": 1})
        self.assertEqual(doc["requests"]["by_code"], {"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 10, "5xx": 1})  # classes kept
        families = parse_exposition(c.metrics(srv), self)
        codes = {(l["protocol"], l["code"]): v for _, l, v in families["mockupstream_requests_total"]["samples"]}
        self.assertEqual(codes, {("http1", "200"): 3, ("http1", "400"): 2, ("http1", "413"): 1, ("http1", "414"): 1,
                                 ("http1", "417"): 1, ("http1", "431"): 1, ("http1", "501"): 1, ("http2", "400"): 4})
        self.assertNotIn("class", families["mockupstream_requests_total"]["samples"][0][1])

    def test_lateness_is_labelled_by_arrival(self):
        srv = self.server("--delay", "2ms", workers=2)
        for i in range(10):
            self.assertEqual(c.one(srv, path=f"/h1/{i}").status, 200)
        r = run(["h2load", "-n", "7", "-c", "1", srv.url + "/h2"])
        self.assertIn("7 succeeded", r.stdout)
        families = parse_exposition(c.metrics(srv), self)
        series = histogram_series(families["mockupstream_delay_lateness_seconds"], "mockupstream_delay_lateness_seconds")
        self.assertEqual(sorted(series), [(("arrival", "handler"),), (("arrival", "kernel"),)])
        self.assertEqual(series[(("arrival", "kernel"),)]["count"], [10], "HTTP/1.1 lateness runs from the kernel's arrival")
        # Fails until request_core_release() records with stats_lateness_record_arrival(): see stats.h.
        self.assertEqual(series[(("arrival", "handler"),)]["count"], [7], "HTTP/2 lateness runs from h2o's hand-over")
        lateness = c.stats(srv)["lateness"]
        self.assertEqual(lateness["by_arrival"]["kernel"]["count"], 10)
        self.assertEqual(lateness["by_arrival"]["handler"]["count"], 7)
        self.assertEqual(lateness["count"], 17)  # the merged figure older readers use
        self.assertEqual(lateness["buckets"][-1], {"le": "+Inf", "count": 17})

    def test_applied_delay_and_receive_histograms_are_there_with_their_shape(self):
        srv = self.server("--delay", "1ms")
        c.one(srv)
        families = parse_exposition(c.metrics(srv), self)  # cumulative, le increasing, +Inf == count
        doc = c.stats(srv)
        for name, key in (("mockupstream_applied_delay_seconds", "applied_delay"),
                          ("mockupstream_request_receive_seconds", "request_receive"),
                          ("mockupstream_delay_lateness_seconds", "lateness")):
            self.assertEqual(families[name]["type"], "histogram", name)
            for hist in histogram_series(families[name], name).values():
                bounds = le_bounds(hist)
                self.assertEqual(len(bounds), 82, name)  # 1 us .. 100 s, ten per decade, and +Inf
                self.assertEqual((float(bounds[0]), float(bounds[-2]), bounds[-1]), (1e-06, 100.0, "+Inf"), name)
            # the JSON histogram has the same bounds, cumulative, with +Inf equal to count
            j = doc[key]
            self.assertEqual([str(b["le"]) if b["le"] == "+Inf" else float(b["le"]) for b in j["buckets"]],
                             [b if b == "+Inf" else float(b) for b in bounds], key)
            counts = [b["count"] for b in j["buckets"]]
            self.assertEqual(counts, sorted(counts), key)
            self.assertEqual(counts[-1], j["count"], key)
            self.assertEqual(set(j) - {"by_arrival"}, {"count", "sum_seconds", "max_seconds", "p50_seconds", "p90_seconds",
                                                      "p99_seconds", "p999_seconds", "buckets"}, key)

    def test_promtool_accepts_the_exposition(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is not installed (Debian package prometheus; make deps installs it)")
        srv = self.server("--delay", "1ms", workers=2)
        for path in ("/", "/wait/abc", "/wait/2"):
            c.one(srv, path=path)
        run(["h2load", "-n", "5", "-c", "1", srv.url + "/"])
        text = c.metrics(srv)
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))


def proc_stat_fields(pid):
    """Fields 3.. of /proc/<pid>/stat (after the command name), as proc(5) numbers them: fields[14] is utime."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return [None, None, None] + text[text.rindex(")") + 2:].split()


def proc_cpu_seconds(pid):
    fields = proc_stat_fields(pid)
    return (int(fields[14]) + int(fields[15])) / os.sysconf("SC_CLK_TCK")


def process_samples(families, name):
    """{worker label: value} of a process_* family."""
    return {labels["worker"]: value for _, labels, value in families[name]["samples"]}


class ProcessMetricsTest(ServerTestCase):
    """process_* per worker and for the master, checked against /proc read by the test itself."""

    FAMILIES = ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                "process_open_fds", "process_max_fds", "process_start_time_seconds")

    def test_each_process_has_plausible_figures(self):
        before = time.time()
        srv = self.server("--delay", "0", workers=2)
        after = time.time()
        self.assertTrue(c.wait_until(lambda: all(w["pid"] for w in c.stats(srv)["workers"])))
        doc = c.stats(srv)
        pids = {str(w["index"]): w["pid"] for w in doc["workers"]}
        pids["master"] = srv.proc.pid
        self.assertEqual(doc["master"]["pid"], srv.proc.pid)
        families = parse_exposition(c.metrics(srv), self)
        hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        for name in self.FAMILIES:
            self.assertEqual(sorted(process_samples(families, name)), ["0", "1", "master"], name)
        for worker, pid in pids.items():
            rss = process_samples(families, "process_resident_memory_bytes")[worker]
            self.assertGreater(rss, 1 << 20, worker)
            self.assertLess(rss, 1 << 30, worker)
            self.assertGreaterEqual(process_samples(families, "process_virtual_memory_bytes")[worker], rss)
            # the server raises its soft limit to the hard one it inherited from this test
            self.assertEqual(process_samples(families, "process_max_fds")[worker], hard_limit, worker)
            start = process_samples(families, "process_start_time_seconds")[worker]
            self.assertGreater(start, before - 1, worker)
            self.assertLess(start, after + 1, worker)
            self.assertGreater(process_samples(families, "process_open_fds")[worker], 2, worker)
            # the same figures in /stats
            process = doc["master"]["process"] if worker == "master" else doc["workers"][int(worker)]["process"]
            self.assertEqual(process["max_fds"], hard_limit)
            self.assertAlmostEqual(process["start_time_seconds"], start, delta=0.05)
            self.assertGreater(process["resident_memory_bytes"], 1 << 20)
        self.assertEqual(sample_sum(families, "mockupstream_open_file_limit"), hard_limit)

    def test_max_fds_is_the_limit_the_server_runs_with(self):
        def lower_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (700, 700))
        srv = self.server("--delay", "0", workers=2, preexec_fn=lower_limit)
        self.assertTrue(c.wait_until(lambda: all(w["pid"] for w in c.stats(srv)["workers"])))
        families = parse_exposition(c.metrics(srv), self)
        self.assertEqual(process_samples(families, "process_max_fds"), {"0": 700, "1": 700, "master": 700})

    def test_open_fds_follows_connections_held_open(self):
        srv = self.server("--delay", "0", workers=1)
        c.one(srv)  # whatever a worker opens for its first request is open from here on
        baseline = process_samples(parse_exposition(c.metrics(srv), self), "process_open_fds")["0"]
        held = []
        try:
            for _ in range(60):
                conn = c.Conn.to(srv)
                held.append(conn)
                self.assertEqual(conn.request().status, 200)  # answered: the worker has accepted it
            families = parse_exposition(c.metrics(srv), self)
            worker_fds = process_samples(families, "process_open_fds")["0"]
            self.assertEqual(worker_fds - baseline, 60)  # each scrape holds one connection of its own
            pid = c.stats(srv)["workers"][0]["pid"]
            self.assertAlmostEqual(len(os.listdir(f"/proc/{pid}/fd")), worker_fds, delta=1)
        finally:
            for s in held:
                s.close()
        self.assertTrue(c.wait_until(
            lambda: process_samples(parse_exposition(c.metrics(srv), self), "process_open_fds")["0"] == baseline))

    def test_cpu_seconds_grow_under_load_as_proc_shows(self):
        srv = self.server("--delay", "0", workers=1)
        pid = c.stats(srv)["workers"][0]["pid"]
        first = process_samples(parse_exposition(c.metrics(srv), self), "process_cpu_seconds_total")["0"]
        r = run(["h2load", "-n", "30000", "-c", "4", "-m", "10", srv.url + "/"], timeout_s=60)
        self.assertIn("30000 succeeded", r.stdout)
        low = proc_cpu_seconds(pid)
        second = process_samples(parse_exposition(c.metrics(srv), self), "process_cpu_seconds_total")["0"]
        high = proc_cpu_seconds(pid)
        self.assertGreater(second - first, 0.02)  # 30,000 requests cost more than two clock ticks
        self.assertGreaterEqual(second, low)  # what /proc said just before and after the scrape
        self.assertLessEqual(second, high)
