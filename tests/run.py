#!/usr/bin/env python3
"""Integration suite: runs every tests/integration/test_*.py against the release build and, with
--asan-binary, again against the ASan/UBSan build. Ends with the line `N passed, N failed`.

  tests/run.py --binary build/mockupstream [--asan-binary build/asan/mockupstream] [-k PATTERN] [-v]
               [--durations N]

--asan-binary alone runs only the ASan build (MOCKUPSTREAM_SANITIZED=1). --durations N prints each
build's N slowest tests and its time per file, as pytest does: where the suite's time goes.
"""
import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LIB, INTEGRATION = os.path.join(HERE, "lib"), os.path.join(HERE, "integration")
sys.path.insert(0, LIB)


class TimedResult(unittest.TextTestResult):
    """A TextTestResult that records each test's wall seconds (setUp and tearDown included; a class's
    setUpClass is counted in none of them, see the per-file totals)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.durations = []  # (seconds, test id)
        self._started = None

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        if self._started is not None:
            self.durations.append((time.monotonic() - self._started, test.id()))
            self._started = None


class FileTimedSuite(unittest.TestSuite):
    """Runs the per-file suites discover() made one after another, each as a top-level suite (so its
    last class is torn down before the next file starts), and records wall seconds per file,
    setUpClass and tearDownClass included."""

    def __init__(self, files):
        super().__init__(files)
        self.seconds = {}  # file (module) name -> wall seconds

    def run(self, result, debug=False):
        for suite in self:
            if result.shouldStop:
                break
            first = next(iter(_leaves(suite)), None)
            started = time.monotonic()
            suite.run(result)
            if first is not None:
                name = type(first).__module__
                self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started
        return result


def _leaves(suite):
    """The test cases of a suite, nested suites flattened."""
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _leaves(item)
        else:
            yield item


def print_durations(label, result, files, count):
    print(f"=== {label}: {min(count, len(result.durations))} slowest tests", flush=True)
    for seconds, test_id in sorted(result.durations, reverse=True)[:count]:
        print(f"{seconds:8.2f}s  {test_id}")
    print(f"=== {label}: seconds per file", flush=True)
    for name, seconds in sorted(files.seconds.items(), key=lambda kv: -kv[1]):
        print(f"{seconds:8.2f}s  {name}")


def run_suite(binary, sanitized, pattern, verbosity, durations):
    os.environ["MOCKUPSTREAM_BIN"] = os.path.abspath(binary)
    os.environ["MOCKUPSTREAM_SANITIZED"] = "1" if sanitized else "0"
    # mockserver reads these at import time and every helper takes SLOWDOWN from it: import all of
    # tests/lib and tests/integration afresh for each build.
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and os.path.dirname(os.path.abspath(path)) in (LIB, INTEGRATION):
            del sys.modules[name]
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = [f"*{pattern}*"]
    suite = loader.discover(INTEGRATION, pattern="test_*.py", top_level_dir=INTEGRATION)
    label = "asan" if sanitized else "release"
    print(f"=== integration tests against {label} build: {binary}", flush=True)
    files = FileTimedSuite(list(suite))
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stdout, resultclass=TimedResult).run(files)
    # a test counts once however many of its subTests failed (a failed subTest is listed by itself)
    failed = len({getattr(t, "test_case", t).id() for t, _ in result.failures + result.errors}
                 | {t.id() for t in result.unexpectedSuccesses})
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    if durations:
        print_durations(label, result, files, durations)
    print(f"=== {label}: {passed} passed, {failed} failed, {skipped} skipped in {time.monotonic() - started:.0f}s", flush=True)
    return passed, failed, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", help="the release build")
    ap.add_argument("--asan-binary", help="the ASan/UBSan build (alone: only this build runs)")
    ap.add_argument("-k", dest="pattern")
    ap.add_argument("-v", dest="verbosity", action="store_const", const=2, default=1)
    ap.add_argument("--durations", type=int, default=0, metavar="N",
                    help="print the N slowest tests of each build and the seconds per file")
    args = ap.parse_args()
    if not args.binary and not args.asan_binary:
        ap.error("give --binary, --asan-binary or both")
    runs = []
    if args.binary:
        runs.append((args.binary, False))
    if args.asan_binary:
        runs.append((args.asan_binary, True))
    totals = [0, 0, 0]
    for binary, sanitized in runs:
        for i, n in enumerate(run_suite(binary, sanitized, args.pattern, args.verbosity, args.durations)):
            totals[i] += n
    if totals[0] + totals[1] == 0:
        print("no tests ran")
        return 1
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
