"""tools/tune-host: reports every limit of its mode (server settings by default, client settings only
with --client, both with --server --client) with the kernel's real current value and a status that
follows from it; changes nothing without --apply; refuses --apply on the real /proc for a non-root
user; rejects unknown options. --check prints the same table and exits 1 exactly when a row says
CHANGE: proven both ways on fake /proc trees (--proc-root) made in a temporary directory, one
shortfall at a time, so the host's own settings never decide the outcome. --apply is run only on
such a fake tree (as root on the real /proc it would retune the shared test machine)."""
import os
import shutil
import tempfile
import unittest

from mockserver import run
from testcase import release_only

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
TOOL = os.path.join(ROOT, "tools/tune-host")
RECOMMENDED = {"fs.file-max": "2097152", "fs.nr_open": "1048576", "net.core.somaxconn": "65535",
               "net.ipv4.tcp_max_syn_backlog": "65535", "net.core.netdev_max_backlog": "65535",
               "net.ipv4.ip_local_port_range": "1024 65535", "net.ipv4.tcp_tw_reuse": "1"}
BOTH = ["fs.file-max", "fs.nr_open", "net.core.netdev_max_backlog"]
SERVER_ONLY = ["net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog"]
CLIENT_ONLY = ["net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse"]
SYSCTLS = BOTH + SERVER_ONLY + CLIENT_ONLY
MODES = {(): BOTH + SERVER_ONLY, ("--client",): BOTH + CLIENT_ONLY, ("--server", "--client"): SYSCTLS}
NOFILE = ["nofile soft", "nofile hard"]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def sysctl(name, proc="/proc"):
    with open(os.path.join(proc, "sys", *name.split("."))) as f:
        return " ".join(f.read().split())


def table(stdout):
    """{name: (current, recommended, status)} from the tool's rows (names may hold one space)."""
    rows = {}
    for line in stdout.splitlines():
        for name in SYSCTLS + NOFILE:
            if line.startswith(name + " "):
                cols = line[30:].split()
                # the port range has two numbers in both value columns (one when the file is missing)
                if name == "net.ipv4.ip_local_port_range" and cols[0] != "n/a":
                    rows[name] = (" ".join(cols[0:2]), " ".join(cols[2:4]), cols[4])
                elif name == "net.ipv4.ip_local_port_range":
                    rows[name] = (cols[0], " ".join(cols[1:3]), cols[3])
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


def limits_line(soft, hard):
    return f"{'Max open files':<26}{soft:<21}{hard:<21}files     \n"


def make_proc(directory, values, nofile=("1048576", "1048576")):
    """A fake /proc under `directory`: sys/... files as the kernel writes them (tab-separated port
    range, trailing newline) and a self/limits file; a value of None leaves that file out."""
    for name, value in values.items():
        path = os.path.join(directory, "sys", *name.split("."))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if value is None:
            continue
        with open(path, "w") as f:
            f.write(value.replace(" ", "\t") + "\n")
    os.makedirs(os.path.join(directory, "self"), exist_ok=True)
    with open(os.path.join(directory, "self", "limits"), "w") as f:
        f.write(f"{'Limit':<26}{'Soft Limit':<21}{'Hard Limit':<21}Units     \n")
        f.write(f"{'Max processes':<26}{'7823':<21}{'7823':<21}processes \n")
        f.write(limits_line(*nofile))
    return directory


@release_only("tools/tune-host reads sysctls and rlimits; the server never starts")
class TuneHostTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tune-host-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def fake(self, name="proc", changed=None, nofile=("1048576", "1048576")):
        """A fake /proc with every setting at its recommendation but those in `changed`."""
        return make_proc(os.path.join(self.tmp, name), dict(RECOMMENDED, **(changed or {})), nofile)

    def check_report(self, args, prefix=()):
        before = {n: sysctl(n) for n in SYSCTLS}
        r = run(list(prefix) + [TOOL] + args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        rows = table(r.stdout)
        mode = tuple(a for a in args if a in ("--server", "--client"))
        self.assertEqual(sorted(rows), sorted(MODES[mode] + NOFILE), r.stdout)
        for name in MODES[mode]:
            current, recommended, status = rows[name]
            self.assertEqual(current, before[name], name)  # the kernel's value, not a canned one
            self.assertEqual(recommended, RECOMMENDED[name], name)
            self.assertEqual(status, expected_status(name, current, recommended), name)
        # reading is all it does
        self.assertEqual({n: sysctl(n) for n in SYSCTLS}, before)
        changes = [n for n, row in rows.items() if row[2] == "CHANGE" and n in SYSCTLS]
        self.assertEqual("Nothing was changed" in r.stdout, bool(changes))
        return rows, r.stdout

    def test_server_mode_reports_only_server_settings(self):
        rows, out = self.check_report([])
        self.assertIn("server host", out)
        self.assertEqual(rows["net.core.somaxconn"][1], "65535")  # mockupstream's default --backlog
        for name in CLIENT_ONLY:
            self.assertNotIn(name, out)

    def test_client_mode_wants_the_widest_port_range_and_tw_reuse(self):
        rows, out = self.check_report(["--client"])
        self.assertIn("client host", out)
        self.assertEqual(rows["net.ipv4.ip_local_port_range"][1], "1024 65535")
        self.assertEqual(rows["net.ipv4.tcp_tw_reuse"][1], "1")
        for name in SERVER_ONLY:
            self.assertNotIn(name, out)
        _, out = self.check_report(["--server", "--client"])
        self.assertIn("server+client host", out)

    def test_nofile_rows_show_the_callers_limits(self):
        # prlimit sets the limits the tool inherits: both rows must show exactly those
        rows, out = self.check_report([], prefix=["prlimit", "--nofile=1000:2000"])
        self.assertEqual(rows["nofile soft"][:1] + rows["nofile hard"][:1], ("1000", "2000"))
        self.assertEqual((rows["nofile soft"][2], rows["nofile hard"][2]), ("CHANGE", "CHANGE"))
        self.assertIn("--ulimit nofile=", out)
        self.assertIn("LimitNOFILE", out)
        # (raising them to 1048576 for an OK row needs CAP_SYS_RESOURCE, which test machines may lack:
        # the fake trees below cover the OK case)
        rows, _ = self.check_report(["--client"], prefix=["prlimit", "--nofile=1500:3000"])
        self.assertEqual(rows["nofile soft"][:1] + rows["nofile hard"][:1], ("1500", "3000"))

    def test_check_exits_0_when_everything_is_ok_and_prints_the_same_table(self):
        proc = self.fake(changed={"fs.file-max": "9000000", "net.ipv4.ip_local_port_range": "1000 65535"})
        for mode in MODES:
            args = list(mode) + ["--proc-root", proc]
            plain, check = run([TOOL] + args), run([TOOL, "--check"] + args)
            self.assertEqual((plain.returncode, check.returncode), (0, 0), check.stdout + check.stderr)
            self.assertEqual(check.stdout, plain.stdout)
            self.assertEqual(check.stderr, "")
            rows = table(check.stdout)
            self.assertEqual(sorted(rows), sorted(MODES[mode] + NOFILE))
            self.assertEqual({row[2] for row in rows.values()}, {"OK"}, check.stdout)
            self.assertEqual(rows["fs.file-max"][0], "9000000")  # read from the fake tree
            self.assertNotIn("Nothing was changed", check.stdout)

    def test_check_exits_1_for_each_shortfall_in_the_modes_it_matters(self):
        shortfalls = [  # (fake tree change, the row it should flag)
            ({"net.core.somaxconn": "4096"}, "net.core.somaxconn"),
            ({"net.ipv4.tcp_max_syn_backlog": "2048"}, "net.ipv4.tcp_max_syn_backlog"),
            ({"fs.file-max": "100000"}, "fs.file-max"),
            ({"fs.nr_open": "1048575"}, "fs.nr_open"),
            ({"net.core.netdev_max_backlog": None}, "net.core.netdev_max_backlog"),  # unreadable
            ({"net.ipv4.ip_local_port_range": "32768 60999"}, "net.ipv4.ip_local_port_range"),
            ({"net.ipv4.ip_local_port_range": "1024 60999"}, "net.ipv4.ip_local_port_range"),
            ({"net.ipv4.tcp_tw_reuse": "2"}, "net.ipv4.tcp_tw_reuse"),  # loopback only
        ]
        for i, (change, flagged) in enumerate(shortfalls):
            proc = self.fake(f"proc{i}", change)
            for mode, names in MODES.items():
                r = run([TOOL, "--check"] + list(mode) + ["--proc-root", proc])
                rows = table(r.stdout)
                changed = sorted(n for n, row in rows.items() if row[2] == "CHANGE")
                if flagged in names:
                    self.assertEqual((r.returncode, changed), (1, [flagged]), (change, mode, r.stdout))
                    self.assertIn("Nothing was changed", r.stdout)
                    value = change[flagged]
                    self.assertEqual(rows[flagged][0], "n/a" if value is None else value)
                else:
                    self.assertEqual((r.returncode, changed), (0, []), (change, mode, r.stdout))
                self.assertEqual(r.stderr, "")
        # the open-file limits count too, in every mode
        for i, nofile in enumerate([("1024", "1048576"), ("1048576", "524288")]):
            proc = self.fake(f"nofile{i}", nofile=nofile)
            for mode in MODES:
                r = run([TOOL, "--check"] + list(mode) + ["--proc-root", proc])
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn("LimitNOFILE", r.stdout)
        proc = self.fake("unlimited", nofile=("unlimited", "unlimited"))
        self.assertEqual(run([TOOL, "--check", "--proc-root", proc]).returncode, 0)

    def test_check_on_this_host_agrees_with_its_table(self):
        for mode in MODES:
            r = run([TOOL, "--check"] + list(mode))
            statuses = {row[2] for row in table(r.stdout).values()}
            self.assertEqual(r.returncode, 1 if "CHANGE" in statuses else 0, r.stdout)

    def test_apply_on_a_fake_tree_writes_the_changes_then_check_passes(self):
        proc = self.fake(changed={"net.core.somaxconn": "4096", "net.ipv4.ip_local_port_range": "32768 60999",
                            "net.ipv4.tcp_tw_reuse": "2", "fs.file-max": "9000000"})
        r = run([TOOL, "--apply", "--proc-root", proc])  # server mode: the client rows are not its job
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("net.core.somaxconn = 65535", r.stdout.splitlines())
        self.assertEqual(sysctl("net.core.somaxconn", proc), "65535")
        self.assertEqual(sysctl("net.ipv4.tcp_tw_reuse", proc), "2")
        self.assertEqual(sysctl("fs.file-max", proc), "9000000")  # above the recommendation: left alone
        self.assertEqual(run([TOOL, "--check", "--proc-root", proc]).returncode, 0)
        self.assertEqual(run([TOOL, "--check", "--client", "--proc-root", proc]).returncode, 1)
        r = run([TOOL, "--client", "--apply", "--proc-root", proc])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([line for line in r.stdout.splitlines() if " = " in line],
                         ["net.ipv4.ip_local_port_range = 1024 65535", "net.ipv4.tcp_tw_reuse = 1"])
        self.assertEqual(run([TOOL, "--check", "--server", "--client", "--proc-root", proc]).returncode, 0)

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
        for word in ("--client", "--server", "--check", "--apply", "--proc-root", "Exit status", "LimitNOFILE", "--ulimit"):
            self.assertIn(word, r.stdout)
        self.assertNotIn("set -u", r.stdout)
        missing = os.path.join(self.tmp, "missing")
        for bad in (["--bogus"], ["-x"], ["apply"], ["--proc-root"], ["--proc-root", missing], ["--check", "--apply"]):
            r = run([TOOL] + bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertEqual(r.stdout, "")
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(bad[-1], r.stderr)
        # options are all checked before --apply does anything (as nobody: never --apply as root here)
        r = run(AS_NOBODY + [TOOL, "--apply", "--bogus"])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
