"""Spawn the real mockupstream binary for integration tests.

Every integration test goes through `MockServer`: it picks free ports, starts the binary named by
$MOCKUPSTREAM_BIN, waits until it accepts, and stops it with TERM then KILL. The server's log is kept
in a file and printed when a test fails. Under a sanitizer build, any sanitizer report in the log
fails the test that owned the server (see `sanitizer_errors`).
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("MOCKUPSTREAM_BIN", os.path.join(os.path.dirname(__file__), "../../build/mockupstream"))
SANITIZED = os.environ.get("MOCKUPSTREAM_SANITIZED") == "1"
# Sanitizer builds are several times slower; tests scale their time bounds by this.
SLOWDOWN = 3.0 if SANITIZED else 1.0

# A worker that died of a sanitizer report exits 99 (the exitcode set below): the master logs that
# even when the report itself went astray.
SANITIZER_PATTERN = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer"
                               r"|exited with status 99")


# Ports free_port() handed out lately. The kernel may hand the same free port to two binds in a row
# (the first socket is closed before the second asks), so a server given a TLS port and then its own
# cleartext port could get one port twice ("--tls-listen ... is given twice", seen once in CI-like
# runs). Remembering the last few makes one test's ports distinct.
_recent_ports = []
_RECENT_PORTS_KEPT = 64


def free_port(host="127.0.0.1"):
    """A TCP port that nothing listens on right now on host (IPv4 or IPv6; the kernel picks it), and
    none of the last 64 this process was given."""
    for _ in range(100):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _recent_ports:
            break
    _recent_ports.append(port)
    del _recent_ports[:-_RECENT_PORTS_KEPT]
    return port


def port_is_free(port, host="127.0.0.1"):
    """True if a listener could bind the port now (a port left in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def clean_env(extra=None):
    """This process's environment without MOCKUPSTREAM_* variables (the harness's own
    MOCKUPSTREAM_BIN/_SANITIZED are not options, and the server refuses unknown ones), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKUPSTREAM_")}
    env.update(extra or {})
    return env


def wait_for_port(host, port, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s * SLOWDOWN
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class MockServer:
    """One running mockupstream. Use as a context manager, or call start()/stop()."""

    def __init__(self, *args, workers=1, env=None, listen=True, wait=True, host="127.0.0.1", port=None, preexec_fn=None):
        self.host = host
        self.port = port or free_port(host)
        self.args = list(args)
        self.workers = workers
        self.env = env
        self.listen = listen
        self.wait = wait
        self.preexec_fn = preexec_fn  # e.g. to lower the open-file limit of the server
        self.proc = None
        self.returncode = None
        self.log = tempfile.NamedTemporaryFile(prefix="mockupstream-", suffix=".log", delete=False)

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def command(self):
        cmd = [BIN]
        if self.listen:
            cmd += ["--listen", f"{self.host}:{self.port}"]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        return cmd + self.args

    def start(self):
        # The environment must not leak configuration into a test that did not ask for it.
        env = clean_env()
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=99")
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, preexec_fn=self.preexec_fn)
        if self.wait and self.listen and not wait_for_port(self.host, self.port):
            self.stop()
            raise RuntimeError(f"server did not accept on {self.host}:{self.port}\n{self.output()}")
        return self

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout_s):
        try:
            self.returncode = self.proc.wait(timeout=timeout_s * SLOWDOWN)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout_s=10.0):
        """TERM, then KILL (the whole process group) if it has not exited in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s * SLOWDOWN)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        else:
            # Reap leftover workers if the master died first.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.returncode = self.proc.returncode
        return self.returncode

    def output(self):
        self.log.flush()
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def sanitizer_errors(self):
        return [line for line in self.output().splitlines() if SANITIZER_PATTERN.search(line)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def self_signed_cert(directory):
    """A throwaway RSA certificate and key for 127.0.0.1/localhost; returns (cert, key) paths."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def run(cmd, timeout_s=30, **kw):
    """Run a client command; returns CompletedProcess with text output."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s * SLOWDOWN, **kw)

