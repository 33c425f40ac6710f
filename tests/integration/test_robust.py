"""Hostile and broken clients: malformed HTTP/1 and HTTP/2, slow clients, clients that leave,
file-descriptor exhaustion, crashes and extremes. Every case checks that a normal client keeps being
served and (in the ASan pass) that no sanitizer report appears. BAD_INPUTS counts what is tried."""
import asyncio
import os
import resource
import signal
import socket
import struct
import subprocess
import threading
import time

import httpclient as hc
from mockserver import SLOWDOWN, run
from testcase import ServerTestCase

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

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


def h2_frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def h2_headers(stream, path="/", end_stream=True):
    # HPACK: indexed :method GET (2), :scheme http (6), literal :path, :authority x
    block = b"\x82\x86" + b"\x04" + bytes([len(path)]) + path.encode() + b"\x01\x01x"
    return h2_frame(1, 0x4 | (0x1 if end_stream else 0), stream, block)


def drain(sock, seconds=0.5):
    sock.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


class Background:
    """A normal client doing /wait/10 requests in a loop; records each latency."""

    def __init__(self, srv):
        self.srv, self.stop, self.latencies, self.failures = srv, threading.Event(), [], []
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        with hc.connect(self.srv) as s:
            while not self.stop.is_set():
                t0 = time.monotonic()
                s.sendall(hc.get("/wait/10"))
                r = hc.read_responses(s, 1)
                if not r or r[0][0] != 200:
                    self.failures.append(r)
                    return
                self.latencies.append(time.monotonic() - t0)

    def finish(self, test):
        # the abuse can be over in milliseconds: let the normal client make enough requests to mean something
        hc.wait_until(lambda: len(self.latencies) >= 20 or self.failures, timeout_s=5)
        self.stop.set()
        self.thread.join()
        test.assertEqual(self.failures, [])
        test.assertGreaterEqual(len(self.latencies), 20)
        test.assertLess(max(self.latencies), 0.2 * SLOWDOWN, "a normal client waited on the abuse")


class MalformedHttp1Test(ServerTestCase):
    def test_every_malformed_request_gets_4xx_or_close(self):
        srv = self.server("--delay", "0", workers=1)
        normal = Background(srv)
        for name, raw in list(MALFORMED_HTTP1.items()) * 3:
            with hc.connect(srv) as s:
                s.sendall(raw)
                data = drain(s)
            if data:
                status = int(data.split(b" ", 2)[1])
                self.assertTrue(400 <= status < 600 and status != 500, f"{name}: {data[:60]!r}")
        normal.finish(self)
        self.assertGreaterEqual(hc.stats(srv)["requests"]["by_code"]["4xx"], len(MALFORMED_HTTP1) // 2)
        print(f"\n  malformed HTTP/1 cases tried: {len(MALFORMED_HTTP1)}")


class MalformedHttp2Test(ServerTestCase):
    def h2(self, srv, payload, settle=0.3):
        with hc.connect(srv) as s:
            s.sendall(H2_PREFACE + h2_frame(4, 0, 0) + payload)
            return drain(s, settle)

    def test_protocol_errors_and_floods(self):
        srv = self.server("--delay", "1ms", workers=1)
        normal = Background(srv)
        cases = {
            "garbage after preface": b"\xff" * 64,
            "unknown frame on stream 0 with bad length": h2_frame(0, 0, 0, b"x" * 20),
            "headers on stream 0": h2_headers(0),
            "even stream id": h2_headers(2),
            "settings flood": h2_frame(4, 0, 0) * 1000,
            "ping flood": h2_frame(6, 0, 0, b"12345678") * 1000,
            "window update zero": h2_frame(8, 0, 0, b"\x00\x00\x00\x00"),
            "rapid reset": b"".join(h2_headers(i) + h2_frame(3, 0, i, b"\x00\x00\x00\x08") for i in range(1, 2001, 2)),
            "too many streams": b"".join(h2_headers(i, "/wait/300") for i in range(1, 401, 2)),
        }
        for name, payload in cases.items():
            self.h2(srv, payload)
        normal.finish(self)
        r = run(["h2load", "-n", "200", "-c", "2", "-m", "10", srv.url + "/"])
        self.assertIn("200 succeeded", r.stdout)
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 0, timeout_s=3))
        print(f"\n  malformed HTTP/2 cases tried: {len(cases)}")


class SlowClientTest(ServerTestCase):
    def test_slowloris_and_slow_body_are_closed_by_the_request_timeout(self):
        srv = self.server("--delay", "0", "--request-timeout", "1s", workers=1)
        normal = Background(srv)
        socks = [hc.connect(srv) for _ in range(20)]
        t0 = time.monotonic()
        closed_at = {}
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        body_socks = [hc.connect(srv) for _ in range(5)]
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
        normal.finish(self)
        self.assertEqual(len(closed_at), 25, "every slow client is closed")
        self.assertLess(max(closed_at.values()), 3 * SLOWDOWN)
        [s.close() for s in socks + body_socks]

    def test_client_that_never_reads_does_not_grow_memory_or_block(self):
        srv = self.server("--delay", "0", "--body-size", "1m", "--request-timeout", "1s", workers=1)
        normal = Background(srv)
        hogs = []
        for _ in range(10):
            s = hc.connect(srv)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(hc.get() * 50)
            hogs.append(s)
        time.sleep(2 * SLOWDOWN)
        worker = hc.children(srv.proc.pid)[0]
        rss_kb = int(open(f"/proc/{worker}/status").read().split("VmRSS:")[1].split()[0])
        self.assertLess(rss_kb, 200 * 1024)
        normal.finish(self)
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["connections"]["open"] <= 2, timeout_s=3))
        [s.close() for s in hogs]


class LeavingClientTest(ServerTestCase):
    def test_clients_that_close_or_reset_while_held(self):
        srv = self.server("--delay", "0", workers=2)
        count = 2000
        for i in range(count):
            s = hc.connect(srv)
            s.sendall(hc.get("/wait/2000"))
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 0, timeout_s=3))
        doc = hc.stats(srv)
        self.assertGreaterEqual(doc["requests"]["cancelled"], count * 0.95)
        self.assertEqual(doc["requests"]["total"], 0)
        # HTTP/2: streams reset while held, and an h2load killed mid-run
        with hc.connect(srv) as s:
            s.sendall(H2_PREFACE + h2_frame(4, 0, 0) + b"".join(h2_headers(i, "/wait/2000") for i in range(1, 100, 2)))
            time.sleep(0.2)
            s.sendall(b"".join(h2_frame(3, 0, i, b"\x00\x00\x00\x08") for i in range(1, 100, 2)))
            drain(s, 0.3)
        load = subprocess.Popen(["h2load", "-c", "10", "-m", "50", "-D", "10", srv.url + "/wait/1000"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        load.kill()
        load.wait()
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 0, timeout_s=3))
        self.assertEqual(hc.request(srv, hc.get())[0][0], 200)
        self.assertGreaterEqual(hc.stats(srv)["requests"]["cancelled"], count * 0.95 + 50)

    def test_long_wait_with_client_leaving_and_wait_zero(self):
        srv = self.server("--delay", "0")
        self.assertEqual(hc.request(srv, hc.get("/wait/0"))[0][0], 200)
        s = hc.connect(srv)
        s.sendall(hc.get("/wait/60000"))
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 1))
        s.close()
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 0, timeout_s=1))


class FaultTest(ServerTestCase):
    def test_fd_exhaustion_pauses_accept_without_spinning(self):
        limit = 64

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        srv = self.server("--delay", "0", workers=1, preexec_fn=low_limit)
        keeper = hc.connect(srv)  # an established connection that must keep being served
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
        worker = hc.children(srv.proc.pid)[0]

        def cpu_ticks():
            f = open(f"/proc/{worker}/stat").read().rsplit(")", 1)[1].split()
            return int(f[11]) + int(f[12])

        a = cpu_ticks()
        time.sleep(1.0)
        used = (cpu_ticks() - a) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, 0.5, "the accept loop must not spin while out of descriptors")
        keeper.sendall(hc.get("/stats"))
        (status, _, body), = hc.read_responses(keeper, 1)
        self.assertEqual(status, 200)
        self.assertGreater(__import__("json").loads(body)["connections"]["fd_exhausted"], 0)
        for s in flood:
            s.close()
        self.assertTrue(hc.wait_until(lambda: hc.request(srv, hc.get())[0][0] == 200, timeout_s=3))
        keeper.close()
        self.assertEqual(srv.output().count("cannot accept"), 1)

    def test_worker_crash_under_load(self):
        srv = self.server("--delay", "1ms", workers=2)
        load = subprocess.Popen(["h2load", "-c", "8", "-m", "10", "-D", "3", srv.url + "/"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        victim = hc.children(srv.proc.pid)[0]
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(hc.wait_until(lambda: len([p for p in hc.children(srv.proc.pid) if p != victim]) == 2, timeout_s=1))
        self.assertLess(time.monotonic() - t0, 1.0 * SLOWDOWN)
        out = load.communicate(timeout=30)[0]
        succeeded = int(out.split(" succeeded")[0].rsplit(" ", 1)[1])
        self.assertGreater(succeeded, 1000)  # the other worker kept serving
        self.assertEqual(hc.request(srv, hc.get())[0][0], 200)

    def test_sigterm_under_load_answers_every_held_request(self):
        srv = self.server("--delay", "0", workers=2)
        results = []

        def client(n):
            with hc.connect(srv, timeout_s=30) as s:
                s.sendall(b"".join(hc.get("/wait/1000") for _ in range(n)))
                results.extend(r[0] for r in hc.read_responses(s, n))

        threads = [threading.Thread(target=client, args=(1,)) for _ in range(200)]
        [t.start() for t in threads]
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] == 200, timeout_s=3))
        srv.signal(signal.SIGTERM)
        [t.join() for t in threads]
        self.assertEqual(srv.wait_exit(10), 0)
        self.assertEqual(results, [200] * 200)


class ExtremesTest(ServerTestCase):
    def test_a_thousand_http2_cleartext_connections(self):
        # Regression: handing h2o connections whose bytes we had already read crashed h2o 2.2.5
        # (evloop write_pending assertion) from ~700 such connections in one worker.
        srv = self.server("--delay", "1ms", workers=1)
        for flags in (["-m", "1"], ["-m", "4"]):
            r = run(["h2load", "-n", "2000", "-c", "1000"] + flags + [srv.url + "/"], timeout_s=60)
            self.assertIn("2000 succeeded, 0 failed, 0 errored", r.stdout)
        self.assertNotIn("Assertion", srv.output())
        self.assertEqual(hc.stats(srv)["workers"][0]["restarts"], 0)

    def test_upgrades_to_h2c_after_http1_requests_on_many_connections(self):
        # An Upgrade: h2c after HTTP/1.1 requests on the connection is the one hand-over to h2o that
        # passes bytes already read; the same kind of hand-over (for prior knowledge) crashed h2o
        # 2.2.5 above ~700 connections. 1,000 connections at once in one worker: a request, an
        # upgrade, then 5 more HTTP/2 requests each, all held concurrently.
        srv = self.server("--delay", "5ms", workers=1)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        port = int(srv.url.rsplit(":", 1)[1])

        async def client():
            r, w = await asyncio.open_connection("127.0.0.1", port)
            try:
                w.write(hc.get("/first"))
                head = await r.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await r.readexactly(length)
                w.write(b"GET /upgraded HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                        b"Upgrade: h2c\r\nHTTP2-Settings: \r\n\r\n" + H2_PREFACE + h2_frame(4, 0, 0))
                head = await r.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 101"):
                    return f"no 101: {head[:30]!r}"
                for stream in range(1, 13, 2):  # 1 is the upgraded request
                    if stream > 1:
                        w.write(h2_headers(stream))
                    while True:
                        frame = await r.readexactly(9)
                        length, kind, flags = int.from_bytes(frame[:3], "big"), frame[3], frame[4]
                        payload = await r.readexactly(length)
                        if kind in (3, 7):
                            return f"frame type {kind}: {payload!r}"
                        if kind == 4 and not flags & 1:
                            w.write(h2_frame(4, 1, 0))
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
        doc = hc.stats(srv)
        self.assertEqual(doc["workers"][0]["restarts"], 0)
        self.assertEqual(doc["requests"]["by_protocol"]["http2"], 6000)
        self.assertEqual(doc["requests"]["by_protocol"]["http1"], 1000)

    def test_ten_thousand_held_requests_with_different_delays(self):
        srv = self.server("--delay", "0", workers=1)
        paths = os.path.join(srv.log.name + ".paths")
        with open(paths, "w") as f:
            f.write("".join(f"{srv.url}/wait/{500 + i % 1000}\n" for i in range(10000)))
        worker = hc.children(srv.proc.pid)[0]

        def pss_kb():
            return int(open(f"/proc/{worker}/smaps_rollup").read().split("Pss:")[1].split()[0])

        before = pss_kb()
        load = subprocess.Popen(["h2load", "-i", paths, "-n", "10000", "-c", "100", "-m", "100", srv.url],
                                stdout=subprocess.PIPE, text=True)
        self.assertTrue(hc.wait_until(lambda: hc.stats(srv)["held"]["now"] >= 9000, timeout_s=5))
        held, at_peak = hc.stats(srv)["held"]["now"], pss_kb()
        out = load.communicate(timeout=60)[0]
        os.unlink(paths)
        self.assertIn("10000 succeeded, 0 failed, 0 errored", out)
        doc = hc.stats(srv)
        self.assertEqual(doc["requests"]["total"], 10000)
        self.assertGreaterEqual(doc["held"]["peak"], 9000)
        print(f"\n  {held} held requests (HTTP/2): Pss {before} kB -> {at_peak} kB, "
              f"{(at_peak - before) * 1024 / held:.0f} bytes per held request")
