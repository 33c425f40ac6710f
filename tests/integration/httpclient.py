"""Small raw-socket HTTP/1.1 clients for cases curl cannot express (pipelining, partial writes,
Expect: 100-continue, malformed requests, clients that leave)."""
import json
import re
import socket
import time
import urllib.request

from mockserver import SLOWDOWN

HEAD_RE = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r]*\r\n(.*?)\r\n\r\n", re.S)


def connect(server, timeout_s=10):
    s = socket.create_connection((server.host, server.port), timeout=timeout_s * SLOWDOWN)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def parse_headers(block):
    headers = {}
    for line in block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    return headers


def read_responses(sock, count, head_only=False):
    """Reads `count` responses: [(status, headers, body)]. Stops early if the server closes."""
    data = b""
    out = []
    while len(out) < count:
        m = HEAD_RE.match(data)
        if m:
            headers = parse_headers(m.group(2))
            length = 0 if head_only else int(headers.get("content-length", "0"))
            end = m.end() + length
            if len(data) >= end:
                out.append((int(m.group(1)), headers, data[m.end():end]))
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return out


def request(server, raw, count=1):
    """Sends raw bytes on a fresh connection and reads `count` responses."""
    with connect(server) as s:
        s.sendall(raw)
        return read_responses(s, count)


def get(path="/", host="x"):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def stats(server, base=None):
    """The /stats document of a server (or of a URL base such as a --stats-listen address)."""
    url = (base or server.url) + "/stats"
    with urllib.request.urlopen(url, timeout=10 * SLOWDOWN) as r:
        return json.loads(r.read())


def metrics(server, base=None):
    url = (base or server.url) + "/metrics"
    with urllib.request.urlopen(url, timeout=10 * SLOWDOWN) as r:
        return r.read().decode()


def wait_until(predicate, timeout_s=5.0, interval_s=0.02):
    deadline = time.monotonic() + timeout_s * SLOWDOWN
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def children(pid):
    """Worker pids of a master."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []
