"""Clients that see WHEN each byte of a response arrives, and the contract's bounds on it, for the
paced-body tests (issue 12: dribble=<chunks>/<duration> and rate=<bytes per second>).

- read_timed_http1(): one HTTP/1.1 response read from a clients.Conn / clients.TlsConn, every recv
  stamped; TimedH2Conn: an h2frames.Conn that stamps every frame it reads; timed_h2_stream() turns a
  stream's stamped frames into the same TimedResponse.
- fill_until(): read an HTTP/1.1 connection until what came satisfies a test (a head, N bytes).
- TimedResponse: head_s, arrivals [(seconds since the request was sent, body bytes so far)], done_s.
- dribble_bound(), rate_bound(): the most body bytes the contract allows a client to hold t seconds
  after the earliest moment the head may leave (the request's delay); early_arrivals() lists every
  arrival above such a bound; arrival_groups() counts bursts (a paced body comes in several).

Times are measured from just BEFORE the request was written, so a server that sends early can never
look on time; the only tolerance on "never early" bounds is EARLY_TOLERANCE_S (clock granularity),
never scaled by SLOWDOWN. Waits (timeout_s) are scaled by mockserver.SLOWDOWN as in clients.py.
"""
import math
import socket
import ssl
import time

import h2frames as hf
from mockserver import SLOWDOWN

EARLY_TOLERANCE_S = 0.001  # clock granularity only: the server and this client both read CLOCK_MONOTONIC

_CLOSED_ERRORS = (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class TimedResponse:
    """A response and when its pieces came, in seconds since the request was sent (sent_at, monotonic):
    head_s (the head complete), arrivals [(s, body bytes so far)] one per recv (HTTP/1.1) or per
    non-empty DATA frame (HTTP/2), done_s (the last body byte, or END_STREAM)."""

    def __init__(self, status, headers, body, sent_at, head_at, arrivals_at, done_at):
        self.status, self.headers, self.body = status, headers, body
        self.head_s = head_at - sent_at
        self.arrivals = [(t - sent_at, n) for t, n in arrivals_at]
        self.done_s = done_at - sent_at

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        steps = ", ".join(f"{t * 1000:.1f}ms:{n}" for t, n in self.arrivals[:40])
        return (f"<TimedResponse {self.status} head {self.head_s * 1000:.1f}ms done {self.done_s * 1000:.1f}ms "
                f"body {len(self.body)} bytes; arrivals [{steps}]>")


def _recv(sock, deadline):
    """Bytes from sock before the deadline (TimeoutError after it, EOFError once the server closed)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("response not complete in time")
    sock.settimeout(left)
    try:
        chunk = sock.recv(65536)
    except (socket.timeout, ssl.SSLWantReadError):
        raise TimeoutError("response not complete in time")
    except _CLOSED_ERRORS:
        chunk = b""
    if not chunk:
        raise EOFError("server closed the connection")
    return chunk


def fill_until(conn, predicate, timeout_s=5.0):
    """Reads from a clients.Conn / TlsConn into conn.buf until predicate(conn.buf) holds; returns the
    monotonic time of the recv that made it hold (TimeoutError, EOFError otherwise)."""
    deadline = time.monotonic() + timeout_s * SLOWDOWN
    now = time.monotonic()
    try:
        while not predicate(conn.buf):
            conn.buf += _recv(conn.sock, deadline)
            now = time.monotonic()
    finally:
        conn.sock.settimeout(conn.timeout)
    return now


def read_timed_http1(conn, sent_at, timeout_s=10.0, head_request=False):
    """The next response on `conn` (a clients.Conn or TlsConn), framed by Content-Length (a paced body
    must have one), each recv stamped. Bytes after the response stay in conn.buf."""
    deadline = time.monotonic() + timeout_s * SLOWDOWN
    buf, conn.buf = conn.buf, b""
    now = time.monotonic()
    while b"\r\n\r\n" not in buf:
        buf += _recv(conn.sock, deadline)
        now = time.monotonic()
    head_at = now
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_request or status in (204, 205, 304):
        length = 0
    elif "content-length" in headers:
        length = int(headers["content-length"])
    else:
        raise AssertionError(f"a response without Content-Length: {head!r}")
    body, arrivals = b"", []
    while True:
        if rest:
            take = rest[:length - len(body)]
            if take:
                body += take
                arrivals.append((now, len(body)))
            conn.buf, rest = rest[len(take):], b""
        if len(body) >= length:
            break
        rest = _recv(conn.sock, deadline)
        now = time.monotonic()
    conn.sock.settimeout(conn.timeout)
    done_at = arrivals[-1][0] if arrivals else head_at
    return TimedResponse(status, headers, body, sent_at, head_at, arrivals, done_at)


class TimedH2Conn(hf.Conn):
    """h2frames.Conn that keeps (monotonic time read, frame) for every frame it records: stamped."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.stamped = []

    def _record(self, f):
        self.stamped.append((time.monotonic(), f))
        super()._record(f)

    def data_frames(self, stream_id):
        """[(time, frame)] of the DATA frames of a stream, in order."""
        return [(t, f) for t, f in self.stamped if f.stream_id == stream_id and f.type == hf.DATA]


def timed_h2_stream(conn, stream_id, sent_at, timeout_s=10.0):
    """The stream's response (read until it ends) as a TimedResponse; raises AssertionError if it did
    not end in time, or was reset."""
    s = conn.response(stream_id, timeout_s=timeout_s)
    if not s.ended or s.reset is not None:
        raise AssertionError(f"stream {stream_id} did not end: {s} frames {conn.stamped[-10:]}")
    head_at = next(t for t, f in conn.stamped if f.stream_id == stream_id and f.type == hf.HEADERS)
    arrivals, total = [], 0
    for t, f in conn.data_frames(stream_id):
        if f.payload:
            total += len(f.payload)
            arrivals.append((t, total))
    headers = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
               for k, v in s.headers.items()}
    return TimedResponse(s.status, headers, s.body, sent_at, head_at, arrivals, s.ended_at)


def dribble_bound(size_bytes, chunks, duration_s):
    """allowed(t): the most body bytes sent t seconds after the head. N = min(chunks, size) parts of
    size/N bytes (sizes differ by at most one byte, so k parts hold at most k x q + min(k, r)), part k
    due k x duration/N after the head."""
    n = min(chunks, size_bytes)
    q, r = divmod(size_bytes, n)
    interval_s = duration_s / n

    def allowed(t_s):
        k = max(0, min(n, math.floor((t_s + EARLY_TOLERANCE_S) / interval_s + 1e-9)))
        return k * q + min(k, r)
    return allowed


def rate_bound(size_bytes, rate_bytes_per_s):
    """allowed(t): the most body bytes sent t seconds after the head at `rate`: rate x t, plus one part
    of max(1, rate/100) bytes."""
    part_bytes = max(1, rate_bytes_per_s // 100)

    def allowed(t_s):
        if t_s + EARLY_TOLERANCE_S < 0:
            return 0
        return min(size_bytes, int(rate_bytes_per_s * (t_s + EARLY_TOLERANCE_S)) + part_bytes)
    return allowed


def rate_min_s(size_bytes, rate_bytes_per_s):
    """The least time a body of size_bytes may take at rate (its last part may come one part early
    under rate_bound)."""
    return (size_bytes - max(1, rate_bytes_per_s // 100)) / rate_bytes_per_s


def early_arrivals(response, allowed, delay_s):
    """Arrivals above the bound: [(seconds since sent, bytes held, bytes allowed)]. The head may leave
    delay_s after the request was sent at the earliest, so the bound runs from there."""
    return [(round(t, 4), n, allowed(t - delay_s)) for t, n in response.arrivals if n > allowed(t - delay_s)]


def arrival_groups(response, gap_s):
    """How many bursts the body came in: arrivals more than gap_s apart start a new one."""
    groups, last = 0, None
    for t, _ in response.arrivals:
        if last is None or t - last > gap_s:
            groups += 1
        last = t
    return groups
