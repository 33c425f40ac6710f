"""Hostile and broken clients: malformed HTTP/1 and HTTP/2, slow clients, clients that leave,
file-descriptor exhaustion, crashes and extremes. Every case checks that a normal client keeps being
served and (in the ASan pass) that no sanitizer report appears. BAD_INPUTS counts what is tried."""
import asyncio
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import time

import clients as c
import h2frames as h2
from mockserver import SLOWDOWN, run
from testcase import ServerTestCase

# what each request-level case sends, and what must come back (a 4xx, or the connection closed)
MALFORMED_HTTP1 = {
    "bad request line": b"GET\r\n\r\n",
    "bad version": b"GET / HTTP/9.9\r\n\r\n",
    "space in method": b"G ET / HTTP/1.1\r\n\r\n",
    "bad path": b"GET nopath HTTP/1.1\r\n\r\n",
    "bad header name": b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n",
    "100 KB header": b"GET / HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",
    "conflicting content-length": b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    "negative content-length": b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    "content-length junk": b"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\nhello",
    "te + cl smuggling": b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te gzip": b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "te twice": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad chunk size": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk without crlf": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "expect other": b"POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx",
    "http/0.9": b"GET /\r\n\r\n",
    "binary garbage": bytes(range(256)) * 4 + b"\r\n\r\n",
    "nul bytes": b"GET /\x00 HTTP/1.1\r\n\r\n",
    "two hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}
CANCEL = struct.pack(">I", 8)  # a RST_STREAM's error code


def background(srv):
    """A normal client doing /wait/10 requests in a loop while the abuse goes on."""
    return c.SteadyLoad(srv, "/wait/10").start()


def finish(normal, test):
    # the abuse can be over in milliseconds: let the normal client make enough requests to mean something
    c.wait_until(lambda: len(normal.latencies) >= 20 or normal.failures, timeout_s=5)
    normal.stop()
    test.assertEqual(normal.failures, [])
    test.assertGreaterEqual(len(normal.latencies), 20)
    test.assertLess(max(normal.latencies), 0.2 * SLOWDOWN, "a normal client waited on the abuse")


class MalformedHttp1Test(ServerTestCase):
    def test_every_malformed_request_gets_4xx_or_close(self):
        srv = self.server("--delay", "0", workers=1)
        normal = background(srv)
        for name, raw in list(MALFORMED_HTTP1.items()) * 3:
            with c.Conn.to(srv) as conn:
                conn.send(raw)
                data = conn.read_to_close(quiet_s=0.5)
            if data:
                status = int(data.split(b" ", 2)[1])
                self.assertTrue(400 <= status < 600 and status != 500, f"{name}: {data[:60]!r}")
        finish(normal, self)
        self.assertGreaterEqual(c.stats(srv)["requests"]["by_code"]["4xx"], len(MALFORMED_HTTP1) // 2)
        print(f"\n  malformed HTTP/1 cases tried: {len(MALFORMED_HTTP1)}")


class MalformedHttp2Test(ServerTestCase):
    def h2(self, srv, payload, settle=0.3):
        with c.Conn.to(srv) as conn:
            conn.send(h2.PREFACE + h2.settings_frame() + payload)
            return conn.read_to_close(quiet_s=settle)

    def test_protocol_errors_and_floods(self):
        srv = self.server("--delay", "1ms", workers=1)
        normal = background(srv)
        cases = {
            "garbage after preface": b"\xff" * 64,
            "unknown frame on stream 0 with bad length": h2.frame(h2.DATA, 0, 0, b"x" * 20),
            "headers on stream 0": h2.request_frame(0),
            "even stream id": h2.request_frame(2),
            "settings flood": h2.settings_frame() * 1000,
            "ping flood": h2.frame(h2.PING, 0, 0, b"12345678") * 1000,
            "window update zero": h2.window_update_frame(0, 0),
            "rapid reset": b"".join(h2.request_frame(i) + h2.frame(h2.RST_STREAM, 0, i, CANCEL) for i in range(1, 2001, 2)),
            "too many streams": b"".join(h2.request_frame(i, "/wait/300") for i in range(1, 401, 2)),
        }
        for name, payload in cases.items():
            self.h2(srv, payload)
        finish(normal, self)
        r = run(["h2load", "-n", "200", "-c", "2", "-m", "10", srv.url + "/"])
        self.assertIn("200 succeeded", r.stdout)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 0, timeout_s=3))
        print(f"\n  malformed HTTP/2 cases tried: {len(cases)}")


class SlowClientTest(ServerTestCase):
    def test_slowloris_and_slow_body_are_closed_by_the_request_timeout(self):
        srv = self.server("--delay", "0", "--request-timeout", "1s", workers=1)
        normal = background(srv)
        socks = [c.connect(srv.host, srv.port) for _ in range(20)]
        t0 = time.monotonic()
        closed_at = {}
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        body_socks = [c.connect(srv.host, srv.port) for _ in range(5)]
        for s in body_socks:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        i = 0
        while time.monotonic() - t0 < 3 * SLOWDOWN and len(closed_at) < len(socks) + len(body_socks):
            for s in socks + body_socks:
                if s in closed_at:
                    continue
                try:
                    s.send(head[i:i + 1] if s in socks else b"x")
                except OSError:
                    closed_at[s] = time.monotonic() - t0
            i += 1
            time.sleep(0.1)
        finish(normal, self)
        self.assertEqual(len(closed_at), 25, "every slow client is closed")
        self.assertLess(max(closed_at.values()), 3 * SLOWDOWN)
        [s.close() for s in socks + body_socks]

    def test_client_that_never_reads_does_not_grow_memory_or_block(self):
        srv = self.server("--delay", "0", "--body-size", "1m", "--request-timeout", "1s", workers=1)
        normal = background(srv)
        self.assertTrue(c.wait_until(lambda: normal.latencies or normal.failures))  # its connection is in
        accepted_before = c.stats(srv)["connections"]["accepted"]
        hogs = []
        for _ in range(10):
            s = c.connect(srv.host, srv.port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(c.raw_request() * 50)
            hogs.append(s)
        polls = [0]  # each /stats request is a connection too

        def hogs_taken_and_gone():
            polls[0] += 1
            conns = c.stats(srv)["connections"]
            return conns["accepted"] - accepted_before >= 10 + polls[0] and conns["open"] <= 2

        # until the server has taken all 10 hogs and let them go at the request timeout (left open:
        # the normal client's connection and this /stats request's); at most the 2 s this once slept
        c.wait_until(hogs_taken_and_gone, timeout_s=2, interval_s=0.05)
        worker = c.children(srv.proc.pid)[0]
        self.assertLess(c.rss_bytes(worker), 200 << 20)
        finish(normal, self)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["connections"]["open"] <= 2, timeout_s=3))
        [s.close() for s in hogs]


class LeavingClientTest(ServerTestCase):
    def test_clients_that_close_or_reset_while_held(self):
        srv = self.server("--delay", "0", workers=2)
        count = 2000
        for i in range(count):
            s = c.connect(srv.host, srv.port)
            s.sendall(c.raw_request("GET", "/wait/2000"))
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 0, timeout_s=3))
        doc = c.stats(srv)
        self.assertGreaterEqual(doc["requests"]["cancelled"], count * 0.95)
        self.assertEqual(doc["requests"]["total"], 0)
        # HTTP/2: streams reset while held, and an h2load killed mid-run
        with c.Conn.to(srv) as conn:
            conn.send(h2.PREFACE + h2.settings_frame() + b"".join(h2.request_frame(i, "/wait/2000") for i in range(1, 100, 2)))
            time.sleep(0.2)
            conn.send(b"".join(h2.frame(h2.RST_STREAM, 0, i, CANCEL) for i in range(1, 100, 2)))
            conn.read_to_close(quiet_s=0.3)
        load = subprocess.Popen(["h2load", "-c", "10", "-m", "50", "-D", "10", srv.url + "/wait/1000"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        load.kill()
        load.wait()
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 0, timeout_s=3))
        self.assertEqual(c.one(srv).status, 200)
        self.assertGreaterEqual(c.stats(srv)["requests"]["cancelled"], count * 0.95 + 50)

    def test_long_wait_with_client_leaving_and_wait_zero(self):
        srv = self.server("--delay", "0")
        self.assertEqual(c.one(srv, path="/wait/0").status, 200)
        s = c.connect(srv.host, srv.port)
        s.sendall(c.raw_request("GET", "/wait/60000"))
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 1))
        s.close()
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 0, timeout_s=1))


class FaultTest(ServerTestCase):
    def test_fd_exhaustion_pauses_accept_without_spinning(self):
        limit = 64

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        srv = self.server("--delay", "0", workers=1, preexec_fn=low_limit)
        keeper = c.Conn.to(srv)  # an established connection that must keep being served
        flood = []
        for _ in range(limit + 40):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((srv.host, srv.port))
            except BlockingIOError:
                pass
            flood.append(s)
        time.sleep(0.5)
        worker = c.children(srv.proc.pid)[0]
        a = c.cpu_seconds(worker)
        time.sleep(1.0)
        used = c.cpu_seconds(worker) - a
        self.assertLess(used, 0.5, "the accept loop must not spin while out of descriptors")
        r = keeper.request("GET", "/stats")
        self.assertEqual(r.status, 200)
        self.assertGreater(json.loads(r.body)["connections"]["fd_exhausted"], 0)
        for s in flood:
            s.close()
        self.assertTrue(c.wait_until(lambda: c.one(srv).status == 200, timeout_s=3))
        keeper.close()
        self.assertEqual(srv.output().count("cannot accept"), 1)

    def test_worker_crash_under_load(self):
        srv = self.server("--delay", "1ms", workers=2)
        load = subprocess.Popen(["h2load", "-c", "8", "-m", "10", "-D", "3", srv.url + "/"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        victim = c.children(srv.proc.pid)[0]
        t0 = time.monotonic()
        c.kill_worker(srv, victim)
        self.assertTrue(c.wait_until(lambda: len([p for p in c.children(srv.proc.pid) if p != victim]) == 2, timeout_s=1))
        self.assertLess(time.monotonic() - t0, 1.0 * SLOWDOWN)
        out = load.communicate(timeout=30)[0]
        succeeded = int(out.split(" succeeded")[0].rsplit(" ", 1)[1])
        self.assertGreater(succeeded, 1000)  # the other worker kept serving
        self.assertEqual(c.one(srv).status, 200)

    def test_sigterm_under_load_answers_every_held_request(self):
        srv = self.server("--delay", "0", workers=2)
        held = c.HeldRequests(srv, "/wait/1000", 200)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] == 200, timeout_s=3))
        srv.signal(signal.SIGTERM)
        held.join()
        self.assertEqual(srv.wait_exit(10), 0)
        self.assertEqual(held.statuses(), [200] * 200)


class ExtremesTest(ServerTestCase):
    def test_a_thousand_http2_cleartext_connections(self):
        # Regression: handing h2o connections whose bytes we had already read crashed h2o 2.2.5
        # (evloop write_pending assertion) from ~700 such connections in one worker.
        srv = self.server("--delay", "1ms", workers=1)
        for flags in (["-m", "1"], ["-m", "4"]):
            r = run(["h2load", "-n", "2000", "-c", "1000"] + flags + [srv.url + "/"], timeout_s=60)
            self.assertIn("2000 succeeded, 0 failed, 0 errored", r.stdout)
        self.assertNotIn("Assertion", srv.output())
        self.assertEqual(c.stats(srv)["workers"][0]["restarts"], 0)

    def test_upgrades_to_h2c_after_http1_requests_on_many_connections(self):
        # An Upgrade: h2c after HTTP/1.1 requests on the connection is the one hand-over to h2o that
        # passes bytes already read; the same kind of hand-over (for prior knowledge) crashed h2o
        # 2.2.5 above ~700 connections. 1,000 connections at once in one worker: a request, an
        # upgrade, then 5 more HTTP/2 requests each, all held concurrently.
        srv = self.server("--delay", "5ms", workers=1)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        port = srv.port

        async def client():
            r, w = await asyncio.open_connection("127.0.0.1", port)
            try:
                w.write(c.raw_request("GET", "/first"))
                head = await r.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await r.readexactly(length)
                w.write(b"GET /upgraded HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                        b"Upgrade: h2c\r\nHTTP2-Settings: \r\n\r\n" + h2.PREFACE + h2.settings_frame())
                head = await r.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 101"):
                    return f"no 101: {head[:30]!r}"
                for stream in range(1, 13, 2):  # 1 is the upgraded request
                    if stream > 1:
                        w.write(h2.request_frame(stream))
                    while True:
                        frame = await r.readexactly(9)
                        length, kind, flags = int.from_bytes(frame[:3], "big"), frame[3], frame[4]
                        payload = await r.readexactly(length)
                        if kind in (3, 7):
                            return f"frame type {kind}: {payload!r}"
                        if kind == 4 and not flags & 1:
                            w.write(h2.frame(h2.SETTINGS, h2.ACK, 0))
                        if kind == 0 and flags & 1 and int.from_bytes(frame[5:9], "big") == stream:
                            break
                return "ok"
            finally:
                w.close()

        async def all_clients():
            return await asyncio.wait_for(asyncio.gather(*(client() for _ in range(1000)), return_exceptions=True),
                                          60 * SLOWDOWN)

        results = asyncio.run(all_clients())
        failures = [repr(r) for r in results if r != "ok"]
        self.assertEqual(failures[:5], [], f"{len(failures)} of 1000 failed")
        self.assertNotIn("Assertion", srv.output())
        doc = c.stats(srv)
        self.assertEqual(doc["workers"][0]["restarts"], 0)
        self.assertEqual(doc["requests"]["by_protocol"]["http2"], 6000)
        self.assertEqual(doc["requests"]["by_protocol"]["http1"], 1000)

    def test_ten_thousand_held_requests_with_different_delays(self):
        srv = self.server("--delay", "0", workers=1)
        paths = os.path.join(srv.log.name + ".paths")
        with open(paths, "w") as f:
            # The shortest delay must outlast sending all 10,000 requests, or the first ones are answered
            # before the last are held: 0.5 s was not always enough on a loaded machine or under ASan.
            f.write("".join(f"{srv.url}/wait/{int(1000 * SLOWDOWN) + i % 1000}\n" for i in range(10000)))
        worker = c.children(srv.proc.pid)[0]

        def pss_kb():
            return int(open(f"/proc/{worker}/smaps_rollup").read().split("Pss:")[1].split()[0])

        before = pss_kb()
        load = subprocess.Popen(["h2load", "-i", paths, "-n", "10000", "-c", "100", "-m", "100", srv.url],
                                stdout=subprocess.PIPE, text=True)
        self.assertTrue(c.wait_until(lambda: c.stats(srv)["held"]["now"] >= 9000, timeout_s=5))
        held, at_peak = c.stats(srv)["held"]["now"], pss_kb()
        out = load.communicate(timeout=60)[0]
        os.unlink(paths)
        self.assertIn("10000 succeeded, 0 failed, 0 errored", out)
        doc = c.stats(srv)
        self.assertEqual(doc["requests"]["total"], 10000)
        self.assertGreaterEqual(doc["held"]["peak"], 9000)
        print(f"\n  {held} held requests (HTTP/2): Pss {before} kB -> {at_peak} kB, "
              f"{(at_peak - before) * 1024 / held:.0f} bytes per held request")
