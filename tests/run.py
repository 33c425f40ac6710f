#!/usr/bin/env python3
"""Integration suite: runs every tests/integration/test_*.py against the release build and, with
--asan-binary, again against the ASan/UBSan build. Ends with the line `N passed, N failed`.

  tests/run.py --binary build/mockupstream [--asan-binary build/asan/mockupstream] [-k PATTERN] [-v]
"""
import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LIB, INTEGRATION = os.path.join(HERE, "lib"), os.path.join(HERE, "integration")
sys.path.insert(0, LIB)


def run_suite(binary, sanitized, pattern, verbosity):
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
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"=== {label}: {passed} passed, {failed} failed, {skipped} skipped in {time.monotonic() - started:.0f}s", flush=True)
    return passed, failed, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--asan-binary")
    ap.add_argument("-k", dest="pattern")
    ap.add_argument("-v", dest="verbosity", action="store_const", const=2, default=1)
    args = ap.parse_args()
    runs = [(args.binary, False)]
    if args.asan_binary:
        runs.append((args.asan_binary, True))
    totals = [0, 0, 0]
    for binary, sanitized in runs:
        for i, n in enumerate(run_suite(binary, sanitized, args.pattern, args.verbosity)):
            totals[i] += n
    if totals[0] + totals[1] == 0:
        print("no tests ran")
        return 1
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
