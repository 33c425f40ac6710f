"""tools/tune-host: reports every limit it manages with the kernel's real current value and a status
that follows from it, in server and --client mode; changes nothing without --apply; refuses --apply
for a non-root user; rejects unknown options. (--apply as root is never run here: it would retune the
shared test machine. Its refusal path and its dry run are what the tests can prove.)"""
import os
import unittest

from mockserver import run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
TOOL = os.path.join(ROOT, "tools/tune-host")
SYSCTLS = ["fs.file-max", "fs.nr_open", "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
           "net.core.netdev_max_backlog", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse"]
NOFILE = ["nofile soft", "nofile hard"]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def sysctl(name):
    with open("/proc/sys/" + name.replace(".", "/")) as f:
        return " ".join(f.read().split())


def table(stdout):
    """{name: (current, recommended, status)} from the tool's rows (names may hold one space)."""
    rows = {}
    for line in stdout.splitlines():
        for name in SYSCTLS + NOFILE:
            if line.startswith(name + " "):
                cols = line[30:].split()
                # the port range has two numbers in both value columns
                if name == "net.ipv4.ip_local_port_range":
                    rows[name] = (" ".join(cols[0:2]), " ".join(cols[2:4]), cols[4])
                else:
                    rows[name] = (cols[0], cols[1], cols[2])
    return rows


def expected_status(name, current, recommended):
    if name == "net.ipv4.tcp_tw_reuse":
        return "OK" if current == recommended else "CHANGE"
    if name == "net.ipv4.ip_local_port_range":
        lo, hi = map(int, current.split())
        want_lo, want_hi = map(int, recommended.split())
        return "OK" if lo <= want_lo and hi >= want_hi else "CHANGE"
    if current == "unlimited":
        return "OK"
    return "OK" if int(current) >= int(recommended) else "CHANGE"


class TuneHostTest(unittest.TestCase):
    def check_report(self, args, prefix=()):
        before = {n: sysctl(n) for n in SYSCTLS}
        r = run(list(prefix) + [TOOL] + args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        rows = table(r.stdout)
        self.assertEqual(sorted(rows), sorted(SYSCTLS + NOFILE), r.stdout)
        for name in SYSCTLS:
            current, recommended, status = rows[name]
            self.assertEqual(current, before[name], name)  # the kernel's value, not a canned one
            self.assertEqual(status, expected_status(name, current, recommended), name)
        # reading is all it does
        self.assertEqual({n: sysctl(n) for n in SYSCTLS}, before)
        changes = [n for n, row in rows.items() if row[2] == "CHANGE" and n in SYSCTLS]
        if changes:
            self.assertIn("Nothing was changed", r.stdout)
        return rows, r.stdout

    def test_server_mode_reports_every_limit(self):
        rows, _ = self.check_report([])
        self.assertEqual(rows["net.core.somaxconn"][1], "65535")  # mockupstream's default --backlog

    def test_client_mode_wants_the_widest_port_range_and_tw_reuse(self):
        rows, out = self.check_report(["--client"])
        self.assertIn("client host", out)
        self.assertEqual(rows["net.ipv4.ip_local_port_range"][1], "1024 65535")
        self.assertEqual(rows["net.ipv4.tcp_tw_reuse"][1], "1")

    def test_nofile_rows_show_the_callers_limits(self):
        # prlimit sets the limits the tool inherits: both rows must show exactly those
        rows, out = self.check_report([], prefix=["prlimit", "--nofile=1000:2000"])
        self.assertEqual(rows["nofile soft"][:1] + rows["nofile hard"][:1], ("1000", "2000"))
        self.assertEqual((rows["nofile soft"][2], rows["nofile hard"][2]), ("CHANGE", "CHANGE"))
        self.assertIn("--ulimit nofile=", out)
        self.assertIn("LimitNOFILE", out)
        # (raising them to 1048576 for an OK row needs CAP_SYS_RESOURCE, which test machines may lack)
        rows, _ = self.check_report(["--client"], prefix=["prlimit", "--nofile=1500:3000"])
        self.assertEqual(rows["nofile soft"][:1] + rows["nofile hard"][:1], ("1500", "3000"))

    def test_runs_unprivileged_and_refuses_apply_without_root(self):
        self.check_report(["--client"], prefix=AS_NOBODY)
        before = {n: sysctl(n) for n in SYSCTLS}
        for args in (["--apply"], ["--client", "--apply"]):
            r = run(AS_NOBODY + [TOOL] + args)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("needs root", r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1)
        self.assertEqual({n: sysctl(n) for n in SYSCTLS}, before)

    def test_help_and_bad_options(self):
        r = run([TOOL, "--help"])
        self.assertEqual(r.returncode, 0)
        for word in ("--client", "--apply", "LimitNOFILE", "--ulimit"):
            self.assertIn(word, r.stdout)
        self.assertNotIn("set -u", r.stdout)
        for bad in ("--bogus", "-x", "apply"):
            r = run([TOOL, bad])
            self.assertEqual(r.returncode, 2, bad)
            self.assertEqual(r.stdout, "")
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(bad, r.stderr)
        # options are all checked before --apply does anything (as nobody: never --apply as root here)
        r = run(AS_NOBODY + [TOOL, "--apply", "--bogus"])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
