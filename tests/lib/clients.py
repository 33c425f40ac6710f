"""The integration tests' clients, written once: every test talks to the real binary through these.

- connect(), Conn, TlsConn: one HTTP/1.1 connection (cleartext, or TLS with a chosen ALPN offer) read
  by its framing, never by waiting for the close, so keep-alive, pipelining, interim responses,
  partial writes and malformed input stay observable. Raw sockets on purpose: curl or http.client
  would repair or hide what the server did.
- tls_context(), client_hello_bytes(): TLS pieces for clients built by hand.
- one(), timed(), HeldRequests, SteadyLoad: a request on a fresh connection, sequential requests on
  one, concurrent held requests, steady background traffic.
- fetch(), stats(), metrics(): the control paths; curl(), nghttp(): real clients, bounded in time.
- wait_until(), children(), cpu_seconds(), rss_bytes(): polling, and the server's processes.
Raw HTTP/2 frames are in h2frames.py.

Time bounds named timeout_s are seconds on a release build: they are multiplied by
mockserver.SLOWDOWN (sanitizer builds are several times slower). Bounds named wait_s or quiet_s are
wall seconds, used as given (the caller's own figure, often already scaled or a server timeout).
"""
import json
import os
import signal
import socket
import ssl
import threading
import time
import urllib.request

from mockserver import SLOWDOWN, run

BODY = b"Hello world!\n"  # the server's default benchmark body

# What a read sees when the server has gone: the end of the stream, a reset, or the end of a TLS session.
_CLOSED_ERRORS = (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


def connect(host, port, timeout_s=10.0, rcvbuf_bytes=None):
    """A TCP connection with Nagle off, so each write leaves as the test wrote it. rcvbuf_bytes is set
    before connecting, so the window the client announces stays that small."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        sock.settimeout(timeout_s * SLOWDOWN)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_context(alpn=("http/1.1",), cafile=None):
    """A client context offering `alpn` (None: no ALPN extension). With cafile the server's
    certificate is verified for localhost against it; without, it is not checked."""
    if cafile is not None:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_hello_bytes(alpn):
    """The first flight of a TLS client offering `alpn`, produced by Python's ssl over memory BIOs."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = tls_context(alpn).wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def raw_request(method="GET", path="/", headers=None, body=b""):
    """The bytes of one well-formed HTTP/1.1 request (Host, and Content-Length for a body, unless
    `headers` names them)."""
    h = {"Host": "test"}
    if body:
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason, self.headers, self.body = version, status, reason, headers, body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:40]!r}>"


class SocketClient:
    """What every client connection here shares: self.sock, send(), close(), a context manager."""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)


class Conn(SocketClient):
    """One TCP connection speaking HTTP/1.1. Reads fail with EOFError once the server has closed (or
    reset) the connection, and with TimeoutError when a bound runs out. Bytes read but not yet
    consumed wait in self.buf."""

    def __init__(self, host, port, timeout_s=10.0, rcvbuf_bytes=None):
        self._adopt(connect(host, port, timeout_s, rcvbuf_bytes))

    def _adopt(self, sock):
        self.sock = sock
        self.timeout = sock.gettimeout()  # what each recv waits at most, unless a call bounds it
        self.buf = b""
        self.local_port = sock.getsockname()[1]

    @classmethod
    def to(cls, server, **kw):
        return cls(server.host, server.port, **kw)

    @classmethod
    def over(cls, sock):
        """A Conn reading and writing a socket that is already connected."""
        conn = cls.__new__(cls)
        conn._adopt(sock)
        return conn

    def _fill(self, deadline=None):
        """One recv into self.buf, bounded by the deadline (monotonic) if there is one."""
        self.buf += self._recv(deadline)

    def _recv(self, deadline=None):
        """One recv (never empty), bounded by the deadline (monotonic) if there is one."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except _CLOSED_ERRORS:
            chunk = b""
        finally:
            if deadline is not None:
                self.sock.settimeout(self.timeout)
        if not chunk:
            raise EOFError("server closed the connection")
        return chunk

    def _until(self, marker, deadline=None):
        while marker not in self.buf:
            self._fill(deadline)
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _take(self, n, deadline=None):
        # The chunks are joined once: appending each to self.buf copies the whole buffer per recv,
        # which made a 16 MiB body take ~10 s to read.
        if len(self.buf) < n:
            parts, have = [self.buf], len(self.buf)
            try:
                while have < n:
                    chunk = self._recv(deadline)
                    parts.append(chunk)
                    have += len(chunk)
            finally:  # on EOF or a timeout, what came is left in self.buf as before
                self.buf = b"".join(parts)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    @staticmethod
    def _deadline(timeout_s):
        return None if timeout_s is None else time.monotonic() + timeout_s * SLOWDOWN

    def read_head(self, timeout_s=None):
        """(status, reason, headers) of the next response, interim ones included. Header names are
        lower-cased; a repeated name keeps its last value."""
        version, status, reason, headers = self._read_head(self._deadline(timeout_s))
        return status, reason, headers

    def _read_head(self, deadline):
        head = self._until(b"\r\n\r\n", deadline).decode("latin-1")
        lines = head.split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1 status line: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return version, int(status), reason, headers

    def read_response(self, head_request=False, timeout_s=None):
        """The next final response; interim 1xx responses are skipped. Without timeout_s only each
        recv is bounded (by the connection's timeout); with it, the whole response."""
        deadline = self._deadline(timeout_s)
        while True:
            version, status, reason, headers = self._read_head(deadline)
            if not 100 <= status < 200:
                break
        if head_request or status in (204, 304):
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n", deadline).split(b";")[0], 16)
                body += self._take(size, deadline)
                self._take(2, deadline)
                if size == 0:
                    break
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]), deadline)
        else:  # no framing: the body runs to the close
            self._read_until_closed(deadline)
            body, self.buf = self.buf, b""
        return Response(version, status, reason, headers, body)

    def request(self, method="GET", path="/", headers=None, body=b""):
        self.send(raw_request(method, path, headers, body))
        return self.read_response(head_request=(method == "HEAD"))

    def _read_until_closed(self, deadline, quiet_s=None):
        """Reads into self.buf until the server closes (True) or, with quiet_s, until nothing has come
        for quiet_s wall seconds (False); TimeoutError past the deadline."""
        try:
            while True:
                if quiet_s is None:
                    self._fill(deadline)
                    continue
                quiet_until = time.monotonic() + quiet_s
                try:
                    self._fill(quiet_until if deadline is None else min(deadline, quiet_until))
                except TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
                    return False
        except EOFError:
            return True

    def wait_closed(self, within_s=None, quiet_s=None):
        """Reads into self.buf until the server closes; returns the wall seconds waited. Raises
        TimeoutError if it is still open after within_s wall seconds; with quiet_s, returns None
        instead once nothing has come for quiet_s wall seconds."""
        t0 = time.monotonic()
        closed = self._read_until_closed(None if within_s is None else t0 + within_s, quiet_s)
        return time.monotonic() - t0 if closed else None

    def read_to_close(self, timeout_s=None, quiet_s=None):
        """Everything the server sends until it closes (self.buf included), consumed. Past timeout_s
        it raises TimeoutError (what came is left in self.buf); with quiet_s it returns instead once
        nothing has come for quiet_s wall seconds."""
        self._read_until_closed(self._deadline(timeout_s), quiet_s)
        out, self.buf = self.buf, b""
        return out

    def closed_by_peer(self, wait_s=0.0):
        """True if the server has closed its side (within wait_s wall seconds). Bytes that come
        meanwhile are kept in self.buf (TLS cannot peek)."""
        self.sock.settimeout(max(wait_s, 0.001))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return False
        except _CLOSED_ERRORS:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            return True
        self.buf += data
        return False


class TlsConn(Conn):
    """Conn over TLS: ALPN offers `alpn` (None: no ALPN extension); the certificate is verified
    against cafile if one is given. Everything Conn does works the same over it."""

    def __init__(self, host, port, timeout_s=10.0, alpn=("http/1.1",), cafile=None, rcvbuf_bytes=None):
        raw = connect(host, port, timeout_s, rcvbuf_bytes)
        try:
            sock = tls_context(alpn, cafile).wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self._adopt(sock)

    def selected_alpn(self):
        return self.sock.selected_alpn_protocol()


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

    def statuses(self):
        """The status of each result, or the exception it ended with."""
        return [r.status if isinstance(r, Response) else r for r in self.results]


class SteadyLoad:
    """Steady traffic until stopped: `conns` threads, each sending GET `path` one after another on its
    own keep-alive connection. latencies: seconds per answered request; failures: a non-200 Response
    or the exception that ended a thread (a thread stops at its first failure). A context manager, or
    start() and stop()."""

    def __init__(self, server, path="/", conns=1, timeout_s=10.0):
        self.server, self.path, self.timeout_s = server, path, timeout_s
        self.latencies, self.failures = [], []
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(conns)]

    def _run(self):
        try:
            with Conn.to(self.server, timeout_s=self.timeout_s) as conn:
                while not self._stop.is_set():
                    t0 = time.monotonic()
                    r = conn.request("GET", self.path)
                    if r.status != 200:
                        self.failures.append(r)
                        return
                    self.latencies.append(time.monotonic() - t0)
        except Exception as e:  # recorded, judged by the test
            self.failures.append(e)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout_s=20.0):
        self._stop.set()
        deadline = time.monotonic() + timeout_s * SLOWDOWN
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def fetch(url, timeout_s=10):
    """(status, headers, body) of a GET with urllib; a 4xx or 5xx raises urllib.error.HTTPError."""
    with urllib.request.urlopen(url, timeout=timeout_s * SLOWDOWN) as r:
        return r.status, r.headers, r.read()


def _base_url(target):
    """A server's URL, or the URL given (such as a --stats-listen address)."""
    return target if isinstance(target, str) else target.url


def stats(target):
    """The /stats document of a MockServer or of a base URL."""
    return json.loads(fetch(_base_url(target) + "/stats")[2])


def metrics(target):
    """The /metrics text of a MockServer or of a base URL."""
    return fetch(_base_url(target) + "/metrics")[2].decode()


def curl(*args, timeout_s=10, input=None):
    """curl with a time limit; input= feeds `--data-binary @-`."""
    return run(["curl", "-sS", "--max-time", str(timeout_s * SLOWDOWN)] + list(args), timeout_s=timeout_s + 5, input=input)


def nghttp(*args, timeout_s=10):
    """nghttp with a time limit: its own --timeout, and the process's."""
    return run(["nghttp", "--timeout", str(int(timeout_s * SLOWDOWN))] + list(args), timeout_s=timeout_s + 10)


def wait_until(predicate, timeout_s=5.0, interval_s=0.02):
    """Polls predicate until it holds (True) or the time is up (its last value). An OSError in it
    (a server not answering yet) counts as not yet."""
    deadline = time.monotonic() + timeout_s * SLOWDOWN
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(interval_s)
    return predicate()


def children(pid):
    """Direct child pids of a process (the master's workers), sorted."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return sorted(int(x) for x in f.read().split())
    except FileNotFoundError:
        return []


def workers_in_stats(srv, count):
    """True once the master has exactly `count` children and /stats names each of them. The master
    writes a worker's pid into /stats just after fork, so a child can show in /proc a moment before
    /stats has its pid (0 until then): wait for this before taking a pid from /stats."""
    kids = children(srv.proc.pid)
    return len(kids) == count and sorted(w["pid"] for w in stats(srv)["workers"]) == kids


def kill_worker(srv, pid, sig=signal.SIGKILL):
    """Signal one worker of srv. Refuses anything that is not a live child of srv's master: a pid of
    0 or -1 (a worker slot /stats shows empty) would signal the test runner's own process group."""
    if not isinstance(pid, int) or pid <= 1 or pid == os.getpid():
        raise AssertionError(f"not a worker pid: {pid!r}")
    try:
        with open(f"/proc/{pid}/stat") as f:
            parent = int(f.read().rsplit(")", 1)[1].split()[1])
    except FileNotFoundError:
        raise AssertionError(f"worker {pid} is not running")
    if parent != srv.proc.pid:
        raise AssertionError(f"pid {pid} is not a worker of master {srv.proc.pid} (parent {parent})")
    os.kill(pid, sig)


def cpu_seconds(pid):
    """User plus system CPU time a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    """Resident memory of a process (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
