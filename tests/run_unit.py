#!/usr/bin/env python3
"""Runs the C unit-test binaries given as arguments. Each prints `ok`/`FAIL` lines and exits non-zero
on failure; this adds them up and ends with `N passed, N failed`."""
import re
import subprocess
import sys

passed = failed = 0
for binary in sys.argv[1:]:
    p = subprocess.run([binary], capture_output=True, text=True, timeout=120)
    sys.stdout.write(p.stdout + p.stderr)
    m = re.search(r"^unit: (\d+) passed, (\d+) failed$", p.stdout, re.M)
    if m is None or p.returncode != 0:
        print(f"{binary}: exit {p.returncode}")
        failed += 1 if m is None else int(m.group(2)) or 1
        passed += int(m.group(1)) if m else 0
    else:
        passed += int(m.group(1))
print(f"unit tests: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
