"""Configuration at start-up: every bad flag or environment value stops the server with exit status 2
and exactly one stderr line naming the value; a flag beats the environment; --help and --version;
an address in use is exit status 1."""
import os
import socket
import subprocess
import tempfile
import time

import clients as c
from mockserver import BIN, SANITIZED, SLOWDOWN, clean_env, free_port, port_is_free, run, self_signed_cert
from testcase import ServerTestCase


class BadInputTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mockupstream-config-")
        cls.cert, cls.key = self_signed_cert(cls.dir)
        cls.garbage = os.path.join(cls.dir, "garbage.pem")
        with open(cls.garbage, "w") as f:
            f.write("not a pem file\n")

    def refused(self, args, env=None, code=2):
        """Runs the binary expecting it to refuse to start; returns its single stderr line."""
        # A --listen on a free loopback port, so a value that is wrongly accepted cannot grab 8080.
        port = free_port()
        for _ in range(100):  # free_port() can hand out the port a case already holds (a flake seen once)
            if not any(f":{port}" in a for a in args):
                break
            port = free_port()
        if not any(a.startswith("--listen") for a in args) and "MOCKUPSTREAM_LISTEN" not in (env or {}):
            args = ["--listen", f"127.0.0.1:{port}"] + args
        try:
            workers = [] if "--workers" in args or "MOCKUPSTREAM_WORKERS" in (env or {}) else ["--workers", "1"]
            p = run([BIN] + workers + args, env=clean_env(env), timeout_s=5)
        except subprocess.TimeoutExpired:
            self.fail(f"started instead of refusing: {args} {env}")
        self.assertEqual(p.returncode, code, (args, env, p.stderr))
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, (args, env, p.stderr))
        self.assertEqual(p.stdout, "", args)
        self.assertTrue(port_is_free(port), f"{args}: port still bound after refusing")
        return lines[0]

    def test_bad_flags(self):
        missing = os.path.join(self.dir, "missing.pem")
        cases = [
            (["--no-such-flag"], ["--no-such-flag"]),
            (["--delay", "10xs"], ["--delay", "10xs"]),
            (["--delay", "-5ms"], ["--delay", "-5ms"]),
            (["--delay", ""], ["--delay", "''"]),
            (["--delay", "1e3"], ["1e3"]),
            (["--delay"], ["--delay"]),  # value missing at the end
            (["--max-delay", "forever"], ["forever"]),
            (["--listen", "127.0.0.1:70000"], ["70000"]),
            (["--listen", "nonsense"], ["nonsense"]),
            (["--listen", "127.0.0.1:"], ["127.0.0.1:"]),
            (["--workers", "0"], ["--workers", "'0'"]),
            (["--workers", "-1"], ["-1"]),
            (["--workers", "two"], ["two"]),
            (["--body-size", "-3"], ["-3"]),
            (["--max-body-size", "lots"], ["lots"]),
            (["--body-file", "/nonexistent/body"], ["/nonexistent/body"]),
            (["--body-file", self.dir], [self.dir]),  # a directory cannot be read as a body
            (["--tls-listen", f"127.0.0.1:{free_port()}", "--tls-cert", "/nonexistent", "--tls-key", self.key],
             ["/nonexistent"]),
            (["--tls-listen", f"127.0.0.1:{free_port()}", "--tls-cert", self.cert], ["--tls-key"]),
            (["--tls-listen", f"127.0.0.1:{free_port()}"], ["--tls-cert"]),  # no certificate at all
            (["--tls-cert", self.cert, "--tls-key", self.key], ["--tls-listen"]),  # files without a listener
            (["--tls-listen", f"127.0.0.1:{free_port()}", "--tls-cert", self.cert, "--tls-key", missing], [missing]),
            (["--tls-listen", f"127.0.0.1:{free_port()}", "--tls-cert", self.garbage, "--tls-key", self.key], [self.garbage]),
            (["--tls-listen", f"127.0.0.1:{free_port()}", "--tls-cert", self.key, "--tls-key", self.cert], []),
        ]
        for args, needles in cases:
            line = self.refused(args)
            for needle in needles:
                self.assertIn(needle, line, args)

    def test_bad_environment_values(self):
        cases = [
            ({"MOCKUPSTREAM_DELAY": "10xs"}, ["MOCKUPSTREAM_DELAY", "10xs"]),
            ({"MOCKUPSTREAM_DELAY": "-5ms"}, ["MOCKUPSTREAM_DELAY", "-5ms"]),
            ({"MOCKUPSTREAM_WORKERS": "0"}, ["MOCKUPSTREAM_WORKERS"]),
            ({"MOCKUPSTREAM_WORKERS": "many"}, ["MOCKUPSTREAM_WORKERS"]),
            ({"MOCKUPSTREAM_LISTEN": "nonsense"}, ["MOCKUPSTREAM_LISTEN", "nonsense"]),
            ({"MOCKUPSTREAM_BODY_FILE": "/nonexistent/body"}, ["/nonexistent/body"]),
        ]
        for env, needles in cases:
            line = self.refused([], env=env)
            for needle in needles:
                self.assertIn(needle, line, env)

    def test_unknown_environment_variable_is_refused_like_an_unknown_flag(self):
        # a typo would otherwise be silently ignored: one line, the closest known name, exit 2
        line = self.refused([], env={"MOCKUPSTREAM_DELAYY": "5ms"})
        self.assertIn("MOCKUPSTREAM_DELAYY", line)
        self.assertIn("did you mean MOCKUPSTREAM_DELAY?", line)
        line = self.refused([], env={"MOCKUPSTREAM_IDLE_TIMOUT": "5s"})
        self.assertIn("did you mean MOCKUPSTREAM_IDLE_TIMEOUT?", line)

    def test_short_help_flag(self):
        r = run([BIN, "-h"], env=clean_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--request-timeout", r.stdout)

    def test_default_workers_follow_cpu_affinity(self):
        # `docker run --cpuset-cpus` on a big host: online CPUs would start one worker per host CPU
        port = free_port()
        p = subprocess.Popen(["taskset", "-c", "0", BIN, "--listen", f"127.0.0.1:{port}", "--delay", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(),
                             start_new_session=True)
        try:
            banner = p.stdout.readline()
        finally:
            p.terminate()
            p.wait(10 * SLOWDOWN)
        self.assertIn(f"workers 1 (CPU affinity: 1 of {os.cpu_count()} online)", banner)


class PrecedenceTest(ServerTestCase):
    def test_flag_beats_environment(self):
        srv = self.server("--delay", "0", env={"MOCKUPSTREAM_DELAY": "500ms"})
        times = c.timed(srv, "/", 3)
        self.assertLess(max(times), 0.3, times)
        self.assertEqual(c.stats(srv)["config"]["delay_seconds"], 0)

    def test_environment_applies_without_a_flag(self):
        srv = self.server(env={"MOCKUPSTREAM_DELAY": "40ms", "MOCKUPSTREAM_BODY_SIZE": "100"})
        t, = c.timed(srv, "/")
        self.assertGreaterEqual(t, 0.040)
        r = c.one(srv)
        self.assertEqual(len(r.body), 100)
        self.assertAlmostEqual(c.stats(srv)["config"]["delay_seconds"], 0.04)


class HelpVersionTest(ServerTestCase):
    FLAGS = ("--listen", "--tls-listen", "--tls-cert", "--tls-key", "--stats-listen", "--workers", "--delay",
             "--max-delay", "--body-file", "--body-size", "--max-body-size", "--idle-timeout",
             "--request-timeout", "--drain-timeout", "--backlog", "--help", "--version")

    def test_help(self):
        p = run([BIN, "--help"], env=clean_env(), timeout_s=5)
        self.assertEqual(p.returncode, 0, p.stderr)
        for flag in self.FLAGS:
            self.assertRegex(p.stdout, rf"(?m)^\s*{flag}\b", flag)
        for flag in self.FLAGS[:-2]:
            env = "MOCKUPSTREAM_" + flag[2:].upper().replace("-", "_")
            self.assertIn(env, p.stdout, flag)
        self.assertIn("10ms", p.stdout)  # the default delay is documented

    def test_version(self):
        p = run([BIN, "--version"], env=clean_env(), timeout_s=5)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^mockupstream \d+\.\d+\.\d+")
        self.assertRegex(p.stdout, r"h2o 2\.\d+\.\d+")
        self.assertRegex(p.stdout, r"libev 4\.\d+")
        # the lines in order, h2o exactly the bundled 2.2.5, and the allocator line
        self.assertRegex(p.stdout, r"mockupstream \d+\.\d+\.\d+\nh2o 2\.2\.5\nlibev 4\.\d+\nallocator (jemalloc 5|system malloc)")
        if SANITIZED:  # the ASan build uses the system allocator (ASan replaces malloc)
            self.assertIn("system malloc", p.stdout)
            self.assertNotIn("jemalloc", p.stdout)
        else:
            self.assertRegex(p.stdout, r"jemalloc \d+\.\d+\.\d+")

    def test_banner_is_the_first_log_line(self):
        srv = self.server("--delay", "0")
        first = srv.output().splitlines()[0]
        self.assertRegex(first, r"mockupstream \d+\.\d+\.\d+")
        self.assertIn(f"127.0.0.1:{srv.port}", first)


class AddressInUseTest(ServerTestCase):
    def test_second_server_on_the_same_port(self):
        first = self.server("--delay", "0", workers=2)
        for workers in ("1", "2"):
            t0 = time.monotonic()
            p = run([BIN, "--listen", f"127.0.0.1:{first.port}", "--workers", workers], env=clean_env(), timeout_s=5)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertLess(time.monotonic() - t0, 3 * SLOWDOWN)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)  # one line, checked before forking
            self.assertIn("Address already in use", p.stderr)
            lines = [l for l in p.stderr.splitlines() if "in use" in l.lower()]
            self.assertTrue(lines, p.stderr)
            self.assertIn(str(first.port), lines[0])
        # the first server is unharmed (SO_REUSEPORT must not let the second one share the port)
        self.assertEqual(c.one(first).status, 200)
        self.assertEqual(len(c.stats(first)["workers"]), 2)

    def test_foreign_listener_on_the_port(self):
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen(1)
            port = blocker.getsockname()[1]
            p = run([BIN, "--listen", f"127.0.0.1:{port}", "--workers", "1"], env=clean_env(), timeout_s=5)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("in use", p.stderr.lower())


class ListenTest(ServerTestCase):
    def test_repeated_listen_and_ipv6(self):
        second, v6 = free_port(), free_port("::1")
        srv = self.server("--delay", "0", "--listen", f"127.0.0.1:{second}", "--listen", f"[::1]:{v6}")
        for url in (srv.url, f"http://127.0.0.1:{second}", f"http://[::1]:{v6}"):
            r = c.curl("-g", "-o", "/dev/null", "-w", "%{http_code}", url + "/")
            self.assertEqual(r.stdout, "200", (url, r.stderr))
        self.assertEqual(c.stats(srv)["requests"]["total"], 3)  # one set of totals over all listeners

    def test_listen_list_from_the_environment(self):
        a, b = free_port(), free_port()
        srv = self.server("--delay", "0", listen=False, port=a,
                          env={"MOCKUPSTREAM_LISTEN": f"127.0.0.1:{a},127.0.0.1:{b}"})
        self.assertTrue(c.wait_until(lambda: c.one(srv).status == 200), srv.output())
        r = c.curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{b}/")
        self.assertEqual(r.stdout, "200")
