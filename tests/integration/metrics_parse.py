# metrics_parse.py: a small parser of the Prometheus text format (0.0.4) for the metrics stories:
# every line a "# HELP"/"# TYPE" comment or "name{labels} value"; fails the story otherwise.
import re

from harness import fail

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse(text):
    """{(name, frozenset(labels.items())): value}, with the families' types checked."""
    out, types = {}, {}
    for ln in text.split("\n"):
        if ln == "":
            continue
        if ln.startswith("#"):
            parts = ln.split(" ", 3)
            if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
                fail("metrics: a comment that is neither # HELP nor # TYPE: %r" % ln)
            if parts[1] == "TYPE":
                if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    fail("metrics: a bad # TYPE line: %r" % ln)
                types[parts[2]] = parts[3]
            continue
        m = LINE.match(ln)
        if not m:
            fail("metrics: a line that is not 'name{labels} value': %r" % ln)
        name, labels = m.group(1), {}
        if m.group(3):
            rest = m.group(3)
            while rest:
                lm = LABEL.match(rest)
                if not lm:
                    fail("metrics: bad labels in %r" % ln)
                labels[lm.group(1)] = lm.group(2)
                rest = rest[lm.end():]
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        if family not in types:
            fail("metrics: %s has no # TYPE before it" % name)
        if family != name and name.endswith("_bucket") and "le" not in labels:
            fail("metrics: a histogram bucket without le: %r" % ln)
        key = (name, frozenset(labels.items()))
        if key in out:
            fail("metrics: %r appears twice" % ln)
        out[key] = float(m.group(4))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


def series(metrics):
    return set(metrics.keys())
