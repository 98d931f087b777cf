# corpus_format.py: the request column of tests/corpus/smuggling.txt, read the one way both
# story 90 and fuzz/corpus_seeds.py read it.
"""The request column is printable ASCII with the escapes \\r \\n \\t \\\\ and \\xHH; any
other byte is written as \\xHH."""
import re

ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}


def unescape(text):
    """The request column as bytes; ValueError naming what the format does not allow."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            if not " " <= c <= "~":
                raise ValueError("request holds %r; write bytes outside printable ASCII as \\xHH" % c)
            out += c.encode("ascii")
            i += 1
            continue
        e = text[i + 1:i + 2]
        if e in ESCAPES:
            out += ESCAPES[e]
            i += 2
        elif e == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError("unknown escape %r in the request" % text[i:i + 4])
    return bytes(out)
