"""tools/mockstat against real servers: one line (or JSON document) summed over several servers
under load, checked against the servers' own /stats deltas; lateness quantiles merged from the
summed bucket deltas, checked against an independent computation; a dead or wrong URL reported on
stderr once per failure episode, its figures left out, never a crash; the table's column names;
usage errors."""
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

import clients as c
from mockserver import SLOWDOWN, free_port, run
from testcase import ServerTestCase, release_only

MOCKSTAT = os.path.join(os.path.dirname(__file__), "../../tools/mockstat")
COLUMNS = ["time", "req/s", "errors/s", "held", "conns", "late_p50_us", "late_p99_us",
           "worker_min_req/s", "worker_max_req/s", "hosts"]


class Stream:
    """A running `mockstat --json`: documents are parsed line by line as they arrive."""

    def __init__(self, args):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, MOCKSTAT, "--json"] + args, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next(self, timeout_s=10):
        """The next document; fails (raises) if the line is not one JSON document or none comes."""
        line = self.lines.get(timeout=timeout_s * SLOWDOWN)
        if line is None:
            raise AssertionError(f"mockstat exited {self.proc.wait()}: {self.errors()}")
        doc = json.loads(line)  # one document per line, nothing else on it
        assert isinstance(doc, dict), line
        return doc

    def stop(self):
        """Ctrl-C, as a user ends it; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=10 * SLOWDOWN)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def errors(self):
        self.stderr.seek(0)
        return self.stderr.read()


def h2load(server, n, h1=False):
    cmd = ["h2load", "-n", str(n), "-c", "4"] + (["--h1"] if h1 else []) + [server.url + "/"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(load):
    out, _ = load.communicate(timeout=60 * SLOWDOWN)
    assert " 0 failed, 0 errored" in out, out


def bucket_deltas(before, after):
    """{upper bound: cumulative count} recorded between two /stats documents of one server."""
    b = {str(x["le"]): x["count"] for x in before["lateness"]["buckets"]}
    return {(math.inf if x["le"] == "+Inf" else float(x["le"])): x["count"] - b[str(x["le"])]
            for x in after["lateness"]["buckets"]}


def quantile(cumulative, q):
    """Linear interpolation inside the bucket holding rank q*total (Prometheus's histogram_quantile)."""
    bounds = sorted(cumulative)
    total = cumulative[math.inf]
    lower, below = 0.0, 0
    for upper in bounds:
        if cumulative[upper] >= q * total and cumulative[upper] > below:
            assert upper != math.inf, "sample past the last bucket"
            return lower + (upper - lower) * (q * total - below) / (cumulative[upper] - below)
        lower, below = upper, cumulative[upper]


def scraped_by_someone_else(server, own_scrapes):
    """True once a /stats scrape other than this test's own has been answered (control_requests
    counts answered scrapes: ours so far are own_scrapes[0])."""
    doc = c.stats(server)
    seen = doc["control_requests"] > own_scrapes[0]
    own_scrapes[0] += 1
    return seen


class MockstatFleetTest(ServerTestCase):
    def test_json_stream_sums_two_servers_under_load(self):
        a = self.server("--delay", "1ms", workers=2)
        b = self.server("--delay", "1ms", workers=1)
        a0, b0 = c.stats(a)["requests"]["total"], c.stats(b)["requests"]["total"]
        stream = Stream([a.url, b.url + "/stats", "--interval", "0.5"])  # both URL forms
        try:
            stream.next()  # both baselines are taken before the first document
            loads = [h2load(a, 600), h2load(b, 300, h1=True)]
            for load in loads:
                finish(load)
            load_end = time.time()
            docs = []
            # until an interval that began after the load ended: it has no requests, and every
            # request was counted in the lines before it
            while not (docs and docs[-1]["time_seconds"] > load_end and docs[-1]["requests_per_second"] == 0):
                docs.append(stream.next())
                self.assertLess(len(docs), 60, "mockstat never showed the load ending")
        finally:
            self.assertEqual(stream.stop(), 0)
        a_delta, b_delta = c.stats(a)["requests"]["total"] - a0, c.stats(b)["requests"]["total"] - b0
        self.assertEqual((a_delta, b_delta), (600, 300))  # the servers' own /stats deltas
        counted = {a.url: 0.0, b.url: 0.0}
        for doc in docs:
            self.assertEqual((doc["hosts_counted"], doc["hosts_total"]), (2, 2), doc)
            self.assertEqual([h["url"] for h in doc["hosts"]], [a.url, b.url])
            self.assertEqual(len(doc["worker_requests_per_second"]), 3)  # every worker of every host
            host_rates = [h["requests_per_second"] for h in doc["hosts"]]
            self.assertAlmostEqual(doc["requests_per_second"], sum(host_rates), delta=0.2)
            self.assertAlmostEqual(sum(doc["worker_requests_per_second"]), doc["requests_per_second"], delta=0.5)
            self.assertEqual(doc["errors_per_second"], 0)
            for h in doc["hosts"]:
                counted[h["url"]] += h["requests_per_second"] * h["interval_seconds"]
        # rates are rounded to 0.1 req/s and intervals to 1 ms: a request or two per line at most
        slack = 2 + 2 * len(docs)
        self.assertAlmostEqual(counted[a.url], a_delta, delta=slack)
        self.assertAlmostEqual(counted[b.url], b_delta, delta=slack)
        fleet = sum(d["requests_per_second"] * d["interval_seconds"] for d in docs)
        self.assertAlmostEqual(fleet, a_delta + b_delta, delta=slack + 0.02 * (a_delta + b_delta))
        self.assertTrue(any(d["requests_per_second"] > 0 and d["lateness_p99_seconds"] is not None for d in docs))
        self.assertEqual(stream.errors(), "")

    def test_once_merges_lateness_from_the_summed_bucket_deltas(self):
        a = self.server("--delay", "1ms", workers=2)
        b = self.server("--delay", "2ms", workers=1)
        before = [c.stats(a), c.stats(b)]
        interval_s = 2 * SLOWDOWN  # the load below takes well under a second (checked below)
        proc = subprocess.Popen([sys.executable, MOCKSTAT, a.url, b.url, "--once", "--interval", str(interval_s)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # the load starts only once mockstat's first scrape of both servers was answered
            for srv in (a, b):
                own = [1]  # the scrape of `before`
                self.assertTrue(c.wait_until(lambda: scraped_by_someone_else(srv, own), timeout_s=10))
            started = time.monotonic()
            for load in [h2load(a, 400), h2load(b, 200, h1=True)]:
                finish(load)
            self.assertLess(time.monotonic() - started, interval_s / 2, "load too slow for the interval")
            after = [c.stats(a), c.stats(b)]
            out, err = proc.communicate(timeout=30 * SLOWDOWN)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        doc = json.loads(out)
        self.assertEqual((doc["hosts_counted"], doc["hosts_total"]), (2, 2))
        counts = [h["requests_per_second"] * h["interval_seconds"] for h in doc["hosts"]]
        self.assertAlmostEqual(counts[0], 400, delta=1)
        self.assertAlmostEqual(counts[1], 200, delta=1)
        deltas = [bucket_deltas(x, y) for x, y in zip(before, after)]
        merged = {le: deltas[0][le] + deltas[1][le] for le in deltas[0]}
        self.assertEqual(merged[math.inf], 600)
        self.assertAlmostEqual(doc["lateness_p50_seconds"], quantile(merged, 0.5), delta=1e-9)  # rounded to ns
        self.assertAlmostEqual(doc["lateness_p99_seconds"], quantile(merged, 0.99), delta=1e-9)

    def test_dead_and_wrong_urls_are_reported_once_and_left_out(self):
        a = self.server("--delay", "1ms")
        dead = f"http://127.0.0.1:{free_port()}"
        wrong = a.url + "/wait/1"  # answers, but /wait/1/stats is a benchmark body, not /stats
        with c.SteadyLoad(a, conns=2) as load:
            r = run([MOCKSTAT, dead, a.url, wrong, "--count", "4", "--interval", "0.3"])
        self.assertEqual(load.failures, [])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), COLUMNS)
        self.assertEqual(len(lines), 5)
        for line in lines[1:]:
            fields = line.split()
            self.assertEqual(len(fields), len(COLUMNS), line)
            self.assertEqual(fields[-1], "1/3")
            self.assertGreater(float(fields[1]), 0)  # a's req/s under load
        errors = r.stderr.splitlines()
        self.assertEqual(len(errors), 2, r.stderr)  # one per bad URL, not one per interval
        self.assertTrue(errors[0].startswith(f"mockstat: {dead}: no answer"), errors)
        self.assertTrue(errors[1].startswith(f"mockstat: {wrong}: no answer"), errors)
        # nothing answers at all: the document says so, and the exit status too
        r = run([MOCKSTAT, dead, "--once", "--interval", "0.2"])
        self.assertEqual(r.returncode, 1)
        doc = json.loads(r.stdout)
        self.assertEqual((doc["hosts_counted"], doc["requests_per_second"]), (0, None))
        self.assertEqual(doc["hosts"][0]["state"], "no answer")
        self.assertEqual(len(r.stderr.splitlines()), 1)

    def test_a_host_that_stops_and_comes_back_is_one_failure_episode(self):
        a = self.server("--delay", "1ms")
        b = self.server("--delay", "1ms")
        stream = Stream([a.url, b.url, "--interval", "0.3"])
        try:
            self.assertEqual(stream.next()["hosts_counted"], 2)
            b.stop()
            docs = [stream.next()]
            while docs[-1]["hosts_counted"] == 2:
                docs.append(stream.next())
                self.assertLess(len(docs), 30)
            doc = docs[-1]
            for _ in range(3):  # several intervals down: still one report
                self.assertEqual(doc["hosts_counted"], 1)
                self.assertEqual([h["state"] for h in doc["hosts"]], ["counted", "no answer"])
                self.assertIn("error", doc["hosts"][1])
                doc = stream.next()
            b2 = self.server("--delay", "1ms", port=b.port)  # the same URL answers again
            seen = []
            while not seen or seen[-1] != "counted":
                doc = stream.next()
                seen.append(doc["hosts"][1]["state"])
                self.assertLess(len(seen), 30)
            self.assertEqual(doc["hosts_counted"], 2)
            self.assertEqual(seen[-2], "baseline")  # its first answer only starts its counters
            c.one(b2)  # and its traffic is counted again
            rates = [stream.next()["hosts"][1]["requests_per_second"]]
            while rates[-1] == 0:
                rates.append(stream.next()["hosts"][1]["requests_per_second"])
                self.assertLess(len(rates), 10)
            self.assertGreater(rates[-1], 0)
        finally:
            self.assertEqual(stream.stop(), 0)
        errors = stream.errors().splitlines()
        self.assertEqual(len(errors), 2, errors)
        self.assertTrue(errors[0].startswith(f"mockstat: {b.url}: no answer ("), errors)
        self.assertEqual(errors[1], f"mockstat: {b.url}: answering again; counted from the next interval")


class MockstatSingleTest(ServerTestCase):
    def test_table_and_once_on_one_server(self):
        srv = self.server("--delay", "1ms", workers=2)
        with c.SteadyLoad(srv, conns=4) as load:
            r = run([MOCKSTAT, srv.url, "--count", "2", "--interval", "0.5"])
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.strip().splitlines()
            self.assertEqual(len(lines), 3)
            self.assertEqual(lines[0].split(), COLUMNS)
            for line in lines[1:]:
                fields = dict(zip(COLUMNS, line.split()))
                self.assertGreater(float(fields["req/s"]), 0)
                self.assertEqual(fields["hosts"], "1/1")
                self.assertLessEqual(float(fields["worker_min_req/s"]), float(fields["worker_max_req/s"]))
                self.assertLessEqual(float(fields["late_p50_us"]), float(fields["late_p99_us"]))
            r = run([MOCKSTAT, srv.url.replace("http://", ""), "--once", "--interval", "0.5"])  # HOST:PORT
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = json.loads(r.stdout)
            for key in ("time_seconds", "interval_seconds", "requests_per_second", "errors_per_second", "held",
                        "connections_open", "lateness_p50_seconds", "lateness_p99_seconds", "worker_requests_per_second"):
                self.assertIn(key, doc)
            self.assertGreater(doc["requests_per_second"], 0)
            self.assertEqual(len(doc["worker_requests_per_second"]), 2)
        self.assertEqual(load.failures, [])

    @release_only("tools/mockstat's option parsing: no server is started")
    def test_usage_errors(self):
        for args in (["--bogus"], ["--interval", "0"], ["--count", "-1"], ["--timeout", "0"],
                     ["http://127.0.0.1:1", "127.0.0.1:1/"]):  # the same host twice would count it twice
            r = run([MOCKSTAT] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, "")
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
