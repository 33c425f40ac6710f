"""Processes and configuration: workers, restarts, drain on SIGTERM, master death, bad flags and
environment values, addresses in use."""
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import httpclient as hc
from mockserver import BIN, SLOWDOWN, free_port, run
from testcase import ServerTestCase


def start_held_requests(srv, path, count):
    """Threads that each send one request and record (status, headers); returns (threads, results)."""
    results = []

    def one():
        try:
            with hc.connect(srv, timeout_s=30) as s:
                s.sendall(hc.get(path))
                r = hc.read_responses(s, 1)
                results.append(r[0][:2] if r else None)
        except OSError as e:
            results.append(e)

    threads = [threading.Thread(target=one) for _ in range(count)]
    [t.start() for t in threads]
    return threads, results


class WorkersTest(ServerTestCase):
    def test_both_workers_serve_and_totals_add_up(self):
        srv = self.server("--delay", "0", workers=2)
        for i in range(200):
            self.assertEqual(hc.request(srv, hc.get(f"/{i}"))[0][0], 200)
        doc = hc.stats(srv)
        per_worker = [w["requests"] for w in doc["workers"]]
        self.assertEqual(len(per_worker), 2)
        self.assertTrue(all(n > 0 for n in per_worker), per_worker)
        self.assertEqual(sum(per_worker), doc["requests"]["total"])
        self.assertEqual(doc["requests"]["total"], 200)
        self.assertEqual(sorted(w["pid"] for w in doc["workers"]), sorted(hc.children(srv.proc.pid)))

    def test_killed_worker_is_restarted_on_the_same_port(self):
        srv = self.server("--delay", "0", workers=2)
        before = hc.children(srv.proc.pid)
        self.assertEqual(len(before), 2)
        os.kill(before[0], signal.SIGKILL)
        self.assertTrue(hc.wait_until(lambda: len(hc.children(srv.proc.pid)) == 2 and before[0] not in hc.children(srv.proc.pid),
                                      timeout_s=1.0))
        for _ in range(20):
            self.assertEqual(hc.request(srv, hc.get())[0][0], 200)
        doc = hc.stats(srv)
        self.assertEqual(sorted(w["restarts"] for w in doc["workers"]), [0, 1])
        self.assertIn("killed by signal 9", srv.output())

    def test_master_death_takes_the_workers_with_it(self):
        srv = self.server("--delay", "0", workers=2)
        workers = hc.children(srv.proc.pid)
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()

        def all_gone():
            for pid in workers:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().split()[2] != "Z":
                            return False
                except FileNotFoundError:
                    pass
            return True

        self.assertTrue(hc.wait_until(all_gone, timeout_s=2.0))
        again = self.server("--delay", "0", port=srv.port)  # the port is free again
        self.assertEqual(hc.request(again, hc.get())[0][0], 200)


class DrainTest(ServerTestCase):
    def test_sigterm_answers_every_held_request(self):
        srv = self.server(workers=2)
        threads, results = start_held_requests(srv, "/wait/1000", 20)
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 20))
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        with self.assertRaises(OSError):  # no new connections during the drain
            socket.create_connection((srv.host, srv.port), timeout=1).recv(1)
        [t.join() for t in threads]
        self.assertEqual(srv.wait_exit(10), 0)
        self.assertEqual(len(results), 20)
        for r in results:
            self.assertEqual(r[0], 200, r)
            self.assertEqual(r[1]["connection"], "close")

    def test_drain_timeout_is_reported_in_the_exit_status(self):
        srv = self.server("--drain-timeout", "200ms")
        threads, results = start_held_requests(srv, "/wait/3000", 3)
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 3))
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(5), 3)
        self.assertIn("drain timeout: 3 held requests unanswered", srv.output())
        [t.join() for t in threads]

    def test_second_signal_exits_at_once(self):
        srv = self.server("--drain-timeout", "30s")
        threads, _ = start_held_requests(srv, "/wait/20000", 2)
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 2))
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(3), 1)
        self.assertLess(time.monotonic() - t0, 2 * SLOWDOWN)
        [t.join() for t in threads]


class ConfigTest(ServerTestCase):
    def refused(self, args, env=None, code=2):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKUPSTREAM_") or k in ("MOCKUPSTREAM_BIN", "MOCKUPSTREAM_SANITIZED")}
        full_env.update(env or {})
        p = run([BIN] + args, env=full_env)
        self.assertEqual(p.returncode, code, (args, env, p.stderr))
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        return lines[0]

    def test_bad_flags_and_values_stop_start_up(self):
        port, tls_port = free_port(), free_port()
        with tempfile.NamedTemporaryFile(suffix=".pem") as not_pem:
            not_pem.write(b"this is not a certificate\n")
            not_pem.flush()
            cases = [
                (["--no-such-flag"], "--no-such-flag"),
                (["--delay", "10xs"], "10xs"),
                (["--delay", "-5ms"], "-5ms"),
                (["--delay", ""], "''"),
                (["--listen", "127.0.0.1:70000"], "70000"),
                (["--listen", "nonsense"], "nonsense"),
                (["--workers", "0"], "'0'"),
                (["--tls-listen", f"127.0.0.1:{tls_port}"], "--tls-cert"),
                (["--tls-listen", f"127.0.0.1:{tls_port}", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"],
                 "/nonexistent.pem"),
                (["--tls-listen", f"127.0.0.1:{tls_port}", "--tls-cert", not_pem.name, "--tls-key", not_pem.name], not_pem.name),
                (["--body-file", "/nonexistent/body"], "/nonexistent/body"),
                (["--max-body-size", "lots"], "lots"),
                (["--delay"], "--delay"),
            ]
            for args, needle in cases:
                line = self.refused(["--listen", f"127.0.0.1:{port}"] + args if "--listen" not in args else args)
                self.assertIn(needle, line, args)
        self.assertIn("MOCKUPSTREAM_DELAY", self.refused([], env={"MOCKUPSTREAM_DELAY": "10xs"}))
        self.assertIn("MOCKUPSTREAM_WORKERS", self.refused([], env={"MOCKUPSTREAM_WORKERS": "many"}))

    def test_flag_beats_environment(self):
        srv = self.server("--delay", "0", env={"MOCKUPSTREAM_DELAY": "500ms"})
        t0 = time.monotonic()
        self.assertEqual(hc.request(srv, hc.get())[0][0], 200)
        self.assertLess(time.monotonic() - t0, 0.4)
        env_only = self.server(env={"MOCKUPSTREAM_DELAY": "30ms"})
        t0 = time.monotonic()
        hc.request(env_only, hc.get())
        self.assertGreaterEqual(time.monotonic() - t0, 0.03)

    def test_help_and_version(self):
        p = run([BIN, "--help"])
        self.assertEqual(p.returncode, 0)
        for flag in ("--listen", "--tls-listen", "--tls-cert", "--tls-key", "--stats-listen", "--workers", "--delay",
                     "--max-delay", "--body-file", "--body-size", "--max-body-size", "--idle-timeout", "--request-timeout",
                     "--drain-timeout", "--backlog", "MOCKUPSTREAM_DELAY"):
            self.assertIn(flag, p.stdout)
        p = run([BIN, "--version"])
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"mockupstream \d+\.\d+\.\d+\nh2o 2\.2\.5\nlibev 4\.\d+\nallocator (jemalloc 5|system malloc)")

    def test_address_in_use(self):
        first = self.server("--delay", "0")
        line = self.refused(["--listen", f"127.0.0.1:{first.port}", "--workers", "1"], code=1)
        self.assertIn("Address already in use", line)
        self.assertEqual(hc.request(first, hc.get())[0][0], 200)

    def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(self):
        srv = self.server("--idle-timeout", "300ms", "--delay", "0")
        with hc.connect(srv) as s:
            s.sendall(hc.get())
            hc.read_responses(s, 1)
            s.settimeout(5 * SLOWDOWN)
            t0 = time.monotonic()
            self.assertEqual(s.recv(1), b"")  # closed by the server
            self.assertGreaterEqual(time.monotonic() - t0, 0.25)
