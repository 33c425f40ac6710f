"""/stats, /metrics and /healthz: exact totals across workers and protocols, a strict check of the
Prometheus text format, held-request gauges, the stats-only listener, scraping under load, worker
death (tools/mockstat is tested in test_mockstat.py)."""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import httpclient as hc
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
            buckets = [(s[1]["le"], s[2]) for s in fam["samples"] if s[0].endswith("_bucket")]
            counts = [v for _, v in buckets]
            test.assertEqual(counts, sorted(counts), f"{name} buckets must be cumulative")
            test.assertEqual(buckets[-1][0], "+Inf")
            count = [s[2] for s in fam["samples"] if s[0] == name + "_count"]
            test.assertEqual(count, [buckets[-1][1]], f"{name}: +Inf bucket must equal _count")
            test.assertEqual(len([s for s in fam["samples"] if s[0] == name + "_sum"]), 1)
    return families


def sample_sum(families, name, family=None, **labels):
    """Sum of the samples called `name` (in `family`, for histogram series) whose labels match."""
    samples = families[family or name]["samples"]
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == val for k, val in labels.items()))


class StatsTest(ServerTestCase):
    def test_exact_totals_over_http1_and_http2_and_workers(self):
        srv = self.server("--delay", "1ms", workers=2)
        for i in range(20):  # fresh connections
            self.assertEqual(hc.request(srv, hc.get(f"/fresh/{i}"))[0][0], 200)
        with hc.connect(srv) as s:  # keep-alive
            s.sendall(b"".join(hc.get(f"/ka/{i}") for i in range(17)))
            self.assertEqual(len(hc.read_responses(s, 17)), 17)
        r = run(["h2load", "-n", "23", "-c", "1", srv.url + "/h2"])
        self.assertIn("23 succeeded", r.stdout)
        doc = hc.stats(srv)
        self.assertEqual(doc["requests"]["total"], 60)
        self.assertEqual(doc["requests"]["by_protocol"], {"http1": 37, "http1_tls": 0, "http2": 23, "http2_tls": 0})
        self.assertEqual(doc["requests"]["by_code"]["2xx"], 60)
        self.assertEqual(sum(w["requests"] for w in doc["workers"]), 60)
        self.assertEqual(doc["bytes"]["response_body"], 60 * 13)
        self.assertEqual(doc["lateness"]["count"], 60)
        self.assertEqual(doc["control_requests"], 0)  # this scrape is counted after it is answered
        families = parse_exposition(hc.metrics(srv), self)
        self.assertEqual(sample_sum(families, "mockupstream_requests_total"), 60)
        self.assertEqual(sample_sum(families, "mockupstream_requests_total", protocol="http2", tls="false"), 23)
        self.assertEqual(sample_sum(families, "mockupstream_worker_requests_total"), 60)
        self.assertEqual(sample_sum(families, "mockupstream_control_requests_total"), 1)  # the /stats scrape above
        self.assertEqual(sample_sum(families, "mockupstream_delay_lateness_seconds_count", "mockupstream_delay_lateness_seconds"), 60)
        self.assertEqual(len([s for s in families["mockupstream_requests_total"]["samples"]]), 20)  # every combination
        self.assertEqual(families["mockupstream_build_info"]["samples"][0][1]["h2o"], "2.2.5")
        self.assertEqual(hc.stats(srv)["requests"]["total"], 60)  # scrapes never count as traffic

    def test_held_gauges(self):
        srv = self.server("--delay", "0", workers=2)
        threads = [threading.Thread(target=hc.request, args=(srv, hc.get("/wait/500"))) for _ in range(5)]
        [t.start() for t in threads]
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 5, timeout_s=0.4))
        families = parse_exposition(hc.metrics(srv), self)
        self.assertEqual(sample_sum(families, "mockupstream_held_requests"), 5)
        self.assertEqual(sample_sum(families, "mockupstream_worker_held_requests"), 5)
        [t.join() for t in threads]
        doc = hc.stats(srv)
        self.assertEqual(doc["held"]["now"], 0)
        self.assertGreaterEqual(doc["held"]["peak"], 5)
        self.assertEqual(doc["requests"]["total"], 5)
        self.assertGreaterEqual(doc["lateness"]["count"], 5)

    def test_control_path_errors_and_healthz(self):
        srv = self.server("--delay", "0")
        self.assertEqual(hc.request(srv, b"POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")[0][0], 405)
        self.assertEqual(hc.request(srv, hc.get("/stats?format=bogus"))[0][0], 400)
        status, headers, body = hc.request(srv, hc.get("/healthz"))[0]
        self.assertEqual((status, body), (200, b"ok\n"))
        status, headers, body = hc.request(srv, hc.get("/stats?format=prometheus"))[0]
        self.assertIn(b"# TYPE mockupstream_requests_total counter", body)
        self.assertEqual(hc.stats(srv)["requests"]["total"], 0)

    def test_stats_listener_serves_only_control_paths(self):
        stats_port = free_port()
        srv = self.server("--stats-listen", f"127.0.0.1:{stats_port}", "--delay", "0")
        self.assertTrue(wait_for_port("127.0.0.1", stats_port))
        base = f"http://127.0.0.1:{stats_port}"
        hc.request(srv, hc.get())
        self.assertEqual(hc.stats(srv, base)["requests"]["total"], 1)
        parse_exposition(hc.metrics(srv, base), self)
        with urllib.request.urlopen(base + "/healthz") as r:
            self.assertEqual(r.read(), b"ok\n")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/anything")
        self.assertEqual(e.exception.code, 404)
        self.assertEqual(hc.stats(srv, base)["connections"]["by_listener"]["stats"]["accepted"], 6)  # 5 requests + our readiness probe

    def test_scraping_100_times_a_second_under_load_does_not_disturb_delays(self):
        srv = self.server("--delay", "5ms", workers=2)
        stop = threading.Event()
        scrapes = []

        def scraper():
            while not stop.is_set():
                hc.metrics(srv) if len(scrapes) % 2 else hc.stats(srv)
                scrapes.append(1)
                time.sleep(0.01)

        t = threading.Thread(target=scraper)
        t.start()
        r = run(["h2load", "-c", "10", "-m", "10", "-D", "2", srv.url + "/"], timeout_s=30)
        stop.set()
        t.join()
        self.assertIn(" 0 failed, 0 errored", r.stdout)
        self.assertGreater(len(scrapes), 50)
        lateness = hc.stats(srv)["lateness"]
        self.assertLess(lateness["p99_seconds"], 0.02 * SLOWDOWN)

    def test_totals_survive_a_killed_worker(self):
        srv = self.server("--delay", "1ms", workers=2)
        load = subprocess.Popen(["h2load", "-c", "8", "-m", "10", "-D", "2", srv.url + "/"], stdout=subprocess.DEVNULL)
        time.sleep(0.7)
        before = hc.stats(srv)
        victim = before["workers"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        load.wait(timeout=30 * SLOWDOWN)
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["workers"][0]["pid"] not in (0, victim)))
        after = hc.stats(srv)
        self.assertGreaterEqual(after["requests"]["total"], before["requests"]["total"])
        self.assertGreaterEqual(after["workers"][0]["restarts"], 1)
        self.assertEqual(after["held"]["now"], 0)
