#!/usr/bin/env python3
"""corpus_seeds.py: turns the request smuggling table tests/corpus/smuggling.txt into one
seed file per case for fuzz_head.

usage: python3 fuzz/corpus_seeds.py DIR

The table has one case a line: name TAB request TAB expected TAB rule; '#' comments and
blank lines are ignored; request is the raw bytes with the escapes \\r \\n \\t \\\\ \\xHH
only. Each case becomes DIR/NAME: fuzz_head's input format, one control byte (0x80:
split the bytes in the middle, default limits, IPv4, port 80) then the request bytes.
Without the table it does nothing and exits 0. A malformed line is an error naming it.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.normpath(os.path.join(HERE, "..", "tests", "corpus", "smuggling.txt"))
CONTROL = b"\x80"

sys.path.insert(0, os.path.dirname(TABLE))
from corpus_format import unescape  # noqa: E402  (the one reader of the request column)


def file_name(name, taken):
    """A safe, unique file name for a case name."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "case"
    candidate, n = base, 2
    while candidate in taken:
        candidate = "%s-%d" % (base, n)
        n += 1
    taken.add(candidate)
    return candidate


def main():
    if len(sys.argv) != 2:
        print("usage: python3 fuzz/corpus_seeds.py DIR", file=sys.stderr)
        return 2
    if not os.path.exists(TABLE):
        return 0
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    taken = set()
    with open(TABLE, encoding="utf-8") as table:
        for lineno, line in enumerate(table, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 2:  # only the name and the request are used here
                print("%s:%d: want name<TAB>request<TAB>expected<TAB>rule" % (TABLE, lineno), file=sys.stderr)
                return 1
            try:
                request = unescape(cols[1])
            except ValueError as e:
                print("%s:%d: %s" % (TABLE, lineno, e), file=sys.stderr)
                return 1
            with open(os.path.join(out_dir, file_name(cols[0], taken)), "wb") as seed:
                seed.write(CONTROL + request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
