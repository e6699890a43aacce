#!/usr/bin/env python3
"""valgrind_reports.py LOG...: memcheck's reports in the logs of make test
VALGRIND=1.  Prints every report with a frame in llm_gateway.so (or in one
of its source files) to stderr, a one-line count of the others (PostgreSQL's
own), and on stdout the number of the extension's reports."""

import os
import re
import sys

FRAME = re.compile(r"^==\d+==\s+(?:at|by) 0x[0-9A-F]+: (.*)$")
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
SOURCES = sorted(f[:-2] for f in os.listdir(SRC) if f.endswith(".c"))
# a frame in the library, or in one of its source files (built with -g)
OURS = re.compile(r"llm_gateway\.so|\((?:%s)\.c:\d+\)" % "|".join(map(re.escape, SOURCES)))


def reports(path):
    """The error reports of one log: lists of lines, blank-line separated."""
    block = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if re.fullmatch(r"==\d+==\s*", line):
                if block:
                    yield block
                block = []
            elif line.startswith("=="):
                block.append(line)
    if block:
        yield block


def main(paths):
    ours, theirs = [], 0
    for path in paths:
        for block in reports(path):
            frames = [m.group(1) for m in map(FRAME.match, block) if m]
            if not frames:
                continue        # a summary or a notice, not an error
            if any(OURS.search(f) for f in frames):
                ours.append((path, block))
            else:
                theirs += 1
    for path, block in ours:
        print(f"== valgrind report ({path})", file=sys.stderr)
        print("\n".join(block), file=sys.stderr)
    print(f"valgrind: {len(ours)} reports in llm_gateway, {theirs} in PostgreSQL itself "
          f"(not counted)", file=sys.stderr)
    print(len(ours))


if __name__ == "__main__":
    main(sys.argv[1:])
