#!/usr/bin/env python3
"""Prints the last lines of each failed test's output from a CTest LastTest.log,
so the end of a long run (all CI keeps) says why a test failed."""
import re
import sys

KEEP = 40

text = open(sys.argv[1], errors="replace").read()
for block in re.split(r"\n(?=\d+/\d+ Testing: )", text):
    name = re.match(r"\d+/\d+ Testing: (.*)", block)
    if not name or "Test Passed." in block or "Test Pass Reason:" in block or "<end of output>" not in block:
        continue
    output = block.split("Output:\n", 1)[-1].split("<end of output>", 1)[0]
    lines = output.strip("\n-").splitlines()
    print(f"== failed: {name.group(1)} (last {min(KEEP, len(lines))} lines of its output)")
    print("\n".join(lines[-KEEP:]))
