"""The process model: a master with N workers that all serve, a killed worker replaced on the same
port, workers that die with a killed master, and shutdown: SIGTERM drains held requests (Connection:
close, exit 0), --drain-timeout is reported in the exit status and the log, a second signal exits at once."""
import os
import signal
import socket
import time

import clients as c
from mockserver import SLOWDOWN
from testcase import ServerTestCase


def accepts_service(srv):
    """True if a new connection to the server gets a response; False if refused, reset or ignored."""
    try:
        with c.Conn(srv.host, srv.port, timeout_s=0.5) as conn:
            return conn.request().status == 200
    except (OSError, EOFError, ValueError):
        return False


class WorkersTest(ServerTestCase):
    def test_every_worker_serves_fresh_connections(self):
        srv = self.server("--delay", "0", workers=2)
        self.assertTrue(c.wait_until(lambda: len(c.children(srv.proc.pid)) == 2), c.children(srv.proc.pid))
        for i in range(200):  # fresh connection each: SO_REUSEPORT spreads them by 4-tuple hash
            self.assertEqual(c.one(srv, path=f"/{i}").status, 200)
        doc = c.stats(srv)
        workers = doc["workers"]
        self.assertEqual([w["index"] for w in workers], [0, 1])
        self.assertTrue(all(w["requests"] > 0 for w in workers), workers)
        self.assertEqual(sum(w["requests"] for w in workers), 200)
        self.assertEqual(doc["requests"]["total"], 200)
        self.assertEqual(sorted(w["pid"] for w in workers), c.children(srv.proc.pid))
        self.assertEqual(doc["config"]["workers"], 2)

    def test_killed_worker_is_replaced_and_the_port_keeps_serving(self):
        srv = self.server("--delay", "0", workers=2)
        self.assertTrue(c.wait_until(lambda: c.workers_in_stats(srv, 2)), c.stats(srv)["workers"])
        before = c.stats(srv)["workers"]
        victim = before[1]
        c.kill_worker(srv, victim["pid"])
        t0 = time.monotonic()

        def replaced():
            kids = c.children(srv.proc.pid)
            return len(kids) == 2 and victim["pid"] not in kids

        self.assertTrue(c.wait_until(replaced, timeout_s=1.0), c.children(srv.proc.pid))
        self.assertLess(time.monotonic() - t0, 1.0 * SLOWDOWN)
        # keeps serving on the same port, through both the survivor and the replacement
        for i in range(100):
            self.assertEqual(c.one(srv, path=f"/after/{i}").status, 200)
        after = c.stats(srv)["workers"]
        by_index = {w["index"]: w for w in after}
        self.assertEqual(by_index[victim["index"]]["restarts"], 1)
        self.assertNotEqual(by_index[victim["index"]]["pid"], victim["pid"])
        survivor = 1 - victim["index"]
        self.assertEqual(by_index[survivor]["restarts"], 0)
        self.assertEqual(by_index[survivor]["pid"], before[survivor]["pid"])
        self.assertGreater(by_index[victim["index"]]["requests"], 0, after)  # the new worker accepts
        self.assertIsNone(srv.proc.poll())
        self.assertIn("killed by signal 9", srv.output())  # the master logs why the worker ended

    def test_killing_a_worker_twice_counts_two_restarts(self):
        srv = self.server("--delay", "0", workers=1)
        for expected in (1, 2):
            self.assertTrue(c.wait_until(lambda: c.workers_in_stats(srv, 1)), c.stats(srv)["workers"])
            pid = c.stats(srv)["workers"][0]["pid"]
            c.kill_worker(srv, pid)
            self.assertTrue(c.wait_until(lambda: c.children(srv.proc.pid) not in ([], [pid]), timeout_s=2.0))
            self.assertTrue(c.wait_until(lambda: accepts_service(srv), timeout_s=3.0))
            self.assertEqual(c.stats(srv)["workers"][0]["restarts"], expected)

    def test_master_death_takes_the_workers_with_it(self):
        srv = self.server("--delay", "0", workers=2)
        self.assertTrue(c.wait_until(lambda: len(c.children(srv.proc.pid)) == 2), c.children(srv.proc.pid))
        workers = c.children(srv.proc.pid)
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

        self.assertTrue(c.wait_until(all_gone, timeout_s=2.0))
        again = self.server("--delay", "0", port=srv.port)  # the port is free again
        self.assertEqual(c.one(again).status, 200)


class DrainTest(ServerTestCase):
    def test_sigterm_answers_every_held_request_then_exits_0(self):
        srv = self.server(workers=2)
        t_start = time.monotonic()
        held = c.HeldRequests(srv, "/wait/1000", 20)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 20), c.stats(srv)["held"])
        time.sleep(max(0.0, 0.2 - (time.monotonic() - t_start)))
        srv.signal(signal.SIGTERM)
        t_term = time.monotonic()
        time.sleep(0.1)
        # after TERM: no service for newcomers (refused, reset or silently dropped)
        self.assertFalse(accepts_service(srv))
        # nor is a new connection accepted and then closed: refused, reset or left without an answer
        with self.assertRaises(OSError):
            with socket.create_connection((srv.host, srv.port), timeout=1) as s:
                s.recv(1)
        results = held.join(timeout_s=10)
        code = srv.wait_exit(10)
        self.assertEqual(code, 0, srv.output())
        for r, sent, done in zip(results, held.sent, held.done):
            self.assertIsInstance(r, c.Response, r)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, c.BODY)
            self.assertEqual(r.header("connection"), "close")
            self.assertGreaterEqual(done - sent, 1.0)  # answered after the full delay, not cut short
        # the master waited for the held requests, and not much longer
        self.assertLess(time.monotonic() - t_term, (1.0 + 2.0) * SLOWDOWN)
        self.assertEqual(c.children(srv.proc.pid), [])

    def test_drain_waits_for_a_response_still_being_written(self):
        # A 4 MiB body to a client that reads late: the drain must let it finish, as it lets a held
        # request finish (before, the worker exited once nothing was held and cut the body short).
        size = 4 * 1024 * 1024
        srv = self.server("--delay", "0", "--drain-timeout", "20s", "--body-size", str(size), workers=1)
        conn = c.Conn(srv.host, srv.port, rcvbuf_bytes=65536)
        try:
            conn.send(c.raw_request())
            self.assertTrue(c.wait_until(lambda: c.stats(srv)["bytes"]["response_body"] >= size))  # counted when written
            srv.signal(signal.SIGTERM)
            time.sleep(0.5)  # longer than the drain's 100 ms linger
            self.assertIsNone(srv.proc.poll(), "exited with the body unsent")
            r = conn.read_response(timeout_s=10 * SLOWDOWN)
            self.assertEqual((r.status, len(r.body)), (200, size))
        finally:
            conn.close()
        self.assertEqual(srv.wait_exit(10), 0, srv.output())

    def test_sigint_drains_like_sigterm_and_idle_connections_do_not_delay_it(self):
        srv = self.server("--delay", "0", workers=2)
        idle = [c.Conn.to(srv) for _ in range(5)]  # keep-alive connections with nothing in flight
        for conn in idle:
            self.assertEqual(conn.request().status, 200)
        held = c.HeldRequests(srv, "/wait/400", 3)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 3))
        t0 = time.monotonic()
        srv.signal(signal.SIGINT)
        self.assertEqual(srv.wait_exit(5), 0, srv.output())
        self.assertLess(time.monotonic() - t0, 0.4 + 1.5 * SLOWDOWN)  # not the 5 s drain timeout
        for r in held.join():
            self.assertEqual((r.status, r.header("connection")), (200, "close"))
        for conn in idle:  # closed by the server, not left hanging
            self.assertTrue(conn.closed_by_peer(1.0))
            conn.close()

    def test_drain_timeout_expiry_is_an_error(self):
        srv = self.server("--drain-timeout", "200ms", workers=2)
        held = c.HeldRequests(srv, "/wait/3000", 4)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 4))
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        code = srv.wait_exit(5)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(code, "still running")
        self.assertEqual(code, 3, srv.output())  # 3 = the drain did not complete
        self.assertGreaterEqual(elapsed, 0.18)  # it did try to drain
        self.assertLess(elapsed, 0.2 + 1.5 * SLOWDOWN)  # and gave up at the timeout, not after 3 s
        self.assertIn("drain timeout", srv.output().lower())
        # the clients are let go (closed), not left waiting for 3 s
        for r in held.join(timeout_s=5):
            self.assertNotIsInstance(r, c.Response, "answered early")

    def test_drain_timeout_log_names_the_unanswered_count(self):
        # One worker, so one log line counts every held request (each worker logs its own count).
        srv = self.server("--drain-timeout", "200ms")
        held = c.HeldRequests(srv, "/wait/3000", 3)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 3))
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(5), 3, srv.output())
        self.assertIn("drain timeout: 3 held requests or paced bodies unanswered", srv.output())
        held.join(timeout_s=5)

    def test_second_sigterm_exits_at_once(self):
        srv = self.server("--drain-timeout", "30s", workers=2)
        held = c.HeldRequests(srv, "/wait/20000", 3)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 3))
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        self.assertIsNone(srv.proc.poll(), "exited before the held requests were answered")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        code = srv.wait_exit(3)
        self.assertIsNotNone(code, "second SIGTERM did not end the server")
        self.assertEqual(code, 1, srv.output())
        self.assertLess(time.monotonic() - t0, 1.0 * SLOWDOWN)
        self.assertTrue(c.wait_until(lambda: c.children(srv.proc.pid) == [], timeout_s=2.0))
        held.join(timeout_s=5)

    def test_sigterm_with_nothing_held_exits_promptly(self):
        srv = self.server("--delay", "0", workers=2)
        self.assertEqual(c.one(srv).status, 200)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(5), 0)
        self.assertLess(time.monotonic() - t0, 1.0 * SLOWDOWN)
        with self.assertRaises(OSError):
            socket.create_connection((srv.host, srv.port), timeout=1).close()
