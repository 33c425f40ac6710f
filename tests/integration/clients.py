"""Small clients for the core-server tests (test_core_*.py): a raw-socket HTTP/1.1 connection that
can pipeline, send partial requests and read interim responses, plus /stats, curl and process
helpers. Raw sockets are used where curl or http.client would hide what the server did (pipelining
order, connection reuse, 100-continue, malformed input)."""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

from mockserver import SLOWDOWN, run, self_signed_cert  # noqa: F401 (re-exported for the tests)

BODY = b"Hello world!\n"


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:40]!r}>"


class Conn:
    """One TCP connection speaking HTTP/1.1. Responses are read by framing (Content-Length or
    chunked), never by waiting for the close, so keep-alive and pipelining are observable."""

    def __init__(self, host, port, timeout_s=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout_s * SLOWDOWN)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.local_port = self.sock.getsockname()[1]

    @classmethod
    def to(cls, server, **kw):
        return cls(server.host, server.port, **kw)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _until(self, marker):
        while marker not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        """Status line and headers of the next response (interim ones included)."""
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1 status line: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status), reason, headers

    def read_response(self, head_request=False):
        """The next final response; interim 1xx responses are skipped."""
        while True:
            status, reason, headers = self.read_head()
            if not 100 <= status < 200:
                break
        if head_request or status in (204, 304):
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                body += self._take(size)
                self._take(2)
                if size == 0:
                    break
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        else:  # no framing: the body runs to the close
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body, self.buf = self.buf, b""
        return Response(status, reason, headers, body)

    def request(self, method="GET", path="/", headers=None, body=b""):
        self.send(raw_request(method, path, headers, body))
        return self.read_response(head_request=(method == "HEAD"))

    def closed_by_peer(self, wait_s=0.0):
        """True if the server has closed its side (within wait_s seconds)."""
        self.sock.settimeout(max(wait_s, 0.001))
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except (socket.timeout, BlockingIOError):
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(10 * SLOWDOWN)


class TlsConn(Conn):
    """Conn over TLS (certificate not verified; ALPN offers `alpn`, None for no ALPN extension).
    Everything Conn does (pipelining, partial requests, framing) works the same over it."""

    def __init__(self, host, port, timeout_s=10.0, alpn=("http/1.1",)):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn is not None:
            ctx.set_alpn_protocols(list(alpn))
        raw = socket.create_connection((host, port), timeout=timeout_s * SLOWDOWN)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.local_port = self.sock.getsockname()[1]

    def selected_alpn(self):
        return self.sock.selected_alpn_protocol()

    def closed_by_peer(self, wait_s=0.0):
        """True if the server has ended the TLS session or closed (within wait_s seconds). Unlike
        the cleartext version this consumes what it reads (TLS has no peek), into self.buf."""
        import ssl
        self.sock.settimeout(max(wait_s, 0.001))
        try:
            data = self.sock.recv(65536)
            if not data:
                return True
            self.buf += data
            return False
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return False
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        finally:
            self.sock.settimeout(10 * SLOWDOWN)


def raw_request(method="GET", path="/", headers=None, body=b""):
    h = {"Host": "test"}
    if body:
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def one(server, method="GET", path="/", headers=None, body=b""):
    """One request on a fresh connection."""
    with Conn.to(server) as c:
        return c.request(method, path, headers, body)


def timed(server, path="/", n=1):
    """Wall time of n sequential GETs on one keep-alive connection (the connect is not timed)."""
    times = []
    with Conn.to(server) as c:
        for _ in range(n):
            t0 = time.monotonic()
            r = c.request("GET", path)
            times.append(time.monotonic() - t0)
            if r.status != 200:
                raise AssertionError(f"{path}: {r}")
    return times


def stats(server):
    with urllib.request.urlopen(server.url + "/stats", timeout=10 * SLOWDOWN) as r:
        return json.loads(r.read())


def curl(*args, timeout_s=10, input=None):
    """curl with a time limit; input= feeds `--data-binary @-`."""
    return run(["curl", "-sS", "--max-time", str(timeout_s * SLOWDOWN)] + list(args), timeout_s=timeout_s + 5, input=input)


def children(pid):
    """Direct child pids of a process (the master's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return sorted(int(x) for x in f.read().split())
    except FileNotFoundError:
        return []


def wait_until(predicate, timeout_s=5.0, interval_s=0.02):
    deadline = time.monotonic() + timeout_s * SLOWDOWN
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(interval_s)
    return predicate()


class HeldRequests:
    """count concurrent GETs of `path`, each on its own connection in its own thread. results holds a
    Response or the exception each one ended with."""

    def __init__(self, server, path, count, timeout_s=30):
        self.results = [None] * count
        # taken just BEFORE the write: a server answering early can then never look on time
        self.sent = [None] * count
        self.done = [None] * count  # monotonic time each finished
        self.threads = [threading.Thread(target=self._one, args=(server, path, i, timeout_s), daemon=True)
                        for i in range(count)]
        for t in self.threads:
            t.start()

    def _one(self, server, path, i, timeout_s):
        try:
            with Conn.to(server, timeout_s=timeout_s) as c:
                self.sent[i] = time.monotonic()
                c.send(raw_request("GET", path))
                self.results[i] = c.read_response()
        except Exception as e:  # recorded, judged by the test
            self.results[i] = e
        self.done[i] = time.monotonic()

    def join(self, timeout_s=30):
        deadline = time.monotonic() + timeout_s * SLOWDOWN
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return self.results
