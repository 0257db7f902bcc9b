#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A strict checker for the Prometheus text exposition format (0.0.4).

    promcheck.py [--prefix P] [--print] [FILE...]      (FILEs or stdin)

Exit 0 when every input is valid, 1 with one "LINE: problem" per line on
stderr otherwise ("FILE:LINE: problem" when given several files).
--print writes every sample in a canonical form, `name{a="x",b="y"}
value` with labels sorted, for tests to compare.

Checked, beyond what the format's grammar says:
  * every family has exactly one HELP and one TYPE, both before its first
    sample; a family's lines are contiguous (no interleaving);
  * metric and label names match the grammar; no label name starts with
    "__"; label values use only the escapes \\\\ \\" \\n; no label twice;
  * with --prefix, every family name starts with it;
  * counters: the name ends in _total, values are >= 0 and not NaN;
  * histograms: only NAME_bucket (with le), NAME_sum, NAME_count; per label
    set, le values parse, are distinct and increasing, counts are cumulative
    (never decrease), there is le="+Inf" and it equals NAME_count;
  * no series (name and label set) appears twice.
"""
import argparse
import math
import re
import sys

METRIC_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|Inf|inf)\Z|NaN\Z")


class Bad(Exception):
    pass


def parse_float(s, what):
    if not FLOAT_RE.match(s):
        raise Bad("%s: not a number: %r" % (what, s))
    return float(s)


def parse_labels(s, i):
    """Parse `{a="x",b="y"}` starting at s[i] == '{'; return (labels, end)."""
    labels = []
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise Bad("malformed label name at column %d" % (i + 1))
        name = m.group(0)
        if name.startswith("__"):
            raise Bad("label name %r is reserved (starts with __)" % name)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad("expected =\" after label %r" % name)
        i += 2
        value = []
        while True:
            if i >= len(s):
                raise Bad("unterminated value of label %r" % name)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise Bad("bad escape \\%s in label %r" % (nxt, name))
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad("raw newline in label %r" % name)
            else:
                value.append(c)
                i += 1
        if any(n == name for n, _ in labels):
            raise Bad("label %r given twice" % name)
        labels.append((name, "".join(value)))
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        raise Bad("expected , or } after label %r" % name)


def parse_sample(line):
    m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
    if not m:
        raise Bad("malformed metric name")
    name = m.group(0)
    i = m.end()
    labels = []
    if i < len(line) and line[i] == "{":
        labels, i = parse_labels(line, i)
    rest = line[i:]
    if not rest.startswith(" "):
        raise Bad("expected a space before the value of %s" % name)
    parts = rest.split(" ")[1:]
    if len(parts) not in (1, 2) or "" in parts:
        raise Bad("expected 'value [timestamp]' after %s" % name)
    value = parse_float(parts[0], name)
    if len(parts) == 2 and not re.match(r"-?[0-9]+\Z", parts[1]):
        raise Bad("%s: malformed timestamp %r" % (name, parts[1]))
    return name, labels, value


def family_of(name, types):
    """The family a sample belongs to (histogram/summary suffixes)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                if suffix == "_bucket" and types[base] == "summary":
                    break
                return base
    return name


def fmt_series(name, labels):
    if not labels:
        return name
    inner = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace(
        "\n", "\\n").replace('"', '\\"')) for k, v in sorted(labels))
    return "%s{%s}" % (name, inner)


def fmt_value(v):
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return ("%d" % v) if v == int(v) and abs(v) < 1e15 else repr(v)


def check(text, prefix=""):
    errors = []
    helps, types = {}, {}
    seen = set()
    samples = []
    closed = set()  # families whose block has ended
    current = None
    hist = {}  # (family, labels without le) -> {"buckets": [...], ...}

    if text and not text.endswith("\n"):
        errors.append("%d: the last line does not end with a newline"
                      % (text.count("\n") + 1))
    for no, line in enumerate(text.split("\n")[:-1] if text.endswith("\n")
                              else text.split("\n"), 1):
        try:
            if line == "":
                continue
            if line.startswith("#"):
                tok = line.split(" ", 3)
                if len(tok) >= 3 and tok[0] == "#" and tok[1] in ("HELP", "TYPE"):
                    kind, name = tok[1], tok[2]
                    if not METRIC_RE.match(name):
                        raise Bad("malformed metric name %r in %s" % (name, kind))
                    if prefix and not name.startswith(prefix):
                        raise Bad("%s does not start with %s" % (name, prefix))
                    if name in closed or (current and current != name and
                                          name in helps.keys() | types.keys()):
                        raise Bad("%s for %s after its samples ended" % (kind, name))
                    table = helps if kind == "HELP" else types
                    if name in table:
                        raise Bad("second %s line for %s" % (kind, name))
                    if any(name == n for n, _, _ in samples):
                        raise Bad("%s for %s after its first sample" % (kind, name))
                    if kind == "HELP":
                        if len(tok) < 4 or not tok[3].strip():
                            raise Bad("empty HELP for %s" % name)
                        if re.search(r"\\[^\\n]", tok[3]):
                            raise Bad("bad escape in HELP of %s" % name)
                        helps[name] = tok[3]
                    else:
                        t = tok[3] if len(tok) == 4 else ""
                        if t not in TYPES:
                            raise Bad("unknown TYPE %r for %s" % (t, name))
                        if t == "counter" and not name.endswith("_total"):
                            raise Bad("counter %s does not end in _total" % name)
                        types[name] = t
                    if current and current != name:
                        closed.add(current)
                    current = name
                continue  # any other comment is allowed
            if line[0] in " \t" or line[-1] in " \t":
                raise Bad("leading or trailing white space")
            name, labels, value = parse_sample(line)
            fam = family_of(name, types)
            if prefix and not fam.startswith(prefix):
                raise Bad("%s does not start with %s" % (name, prefix))
            if fam in closed:
                raise Bad("sample of %s after its family's block ended" % fam)
            if current and current != fam:
                closed.add(current)
            current = fam
            if fam not in types:
                raise Bad("sample of %s before (or without) its TYPE line" % fam)
            if fam not in helps:
                raise Bad("sample of %s before (or without) its HELP line" % fam)
            key = (name, tuple(sorted(labels)))
            if key in seen:
                raise Bad("duplicate series %s" % fmt_series(name, labels))
            seen.add(key)
            samples.append((name, labels, value))
            t = types[fam]
            if t == "counter":
                if math.isnan(value) or value < 0:
                    raise Bad("counter %s has value %s" % (name, value))
            if t == "histogram":
                rest = tuple(sorted((k, v) for k, v in labels if k != "le"))
                h = hist.setdefault((fam, rest), {"buckets": [], "count": None,
                                                  "sum": None, "line": no})
                if name == fam + "_bucket":
                    le = [v for k, v in labels if k == "le"]
                    if not le:
                        raise Bad("%s without an le label" % name)
                    bound = parse_float(le[0], name + " le")
                    if math.isnan(bound):
                        raise Bad("%s: le is NaN" % name)
                    if value < 0 or math.isnan(value):
                        raise Bad("%s: bucket count %s" % (name, value))
                    h["buckets"].append((bound, value, no))
                elif any(k == "le" for k, _ in labels):
                    raise Bad("le label on %s" % name)
                elif name == fam + "_count":
                    h["count"] = value
                elif name == fam + "_sum":
                    h["sum"] = value
                else:
                    raise Bad("%s is not a sample name of histogram %s" % (name, fam))
            elif t == "summary" and name == fam + "_bucket":
                raise Bad("_bucket sample in summary %s" % fam)
        except Bad as e:
            errors.append("%d: %s" % (no, e))

    for name in helps.keys() - types.keys():
        errors.append("0: %s has HELP but no TYPE" % name)
    for (fam, rest), h in sorted(hist.items(), key=lambda x: x[1]["line"]):
        where = fmt_series(fam, list(rest))
        b = h["buckets"]
        bounds = [x[0] for x in b]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            errors.append("%d: %s: le values not distinct and increasing"
                          % (h["line"], where))
        for (b1, c1, _), (b2, c2, n2) in zip(b, b[1:]):
            if c2 < c1:
                errors.append("%d: %s: bucket le=%s (%s) below le=%s (%s): not cumulative"
                              % (n2, where, fmt_value(b2), fmt_value(c2),
                                 fmt_value(b1), fmt_value(c1)))
        if not b or not math.isinf(b[-1][0]):
            errors.append("%d: %s: no le=\"+Inf\" bucket" % (h["line"], where))
        if h["count"] is None:
            errors.append("%d: %s: no _count" % (h["line"], where))
        if h["sum"] is None:
            errors.append("%d: %s: no _sum" % (h["line"], where))
        if b and math.isinf(b[-1][0]) and h["count"] is not None and \
                b[-1][1] != h["count"]:
            errors.append("%d: %s: le=\"+Inf\" bucket %s != _count %s"
                          % (b[-1][2], where, fmt_value(b[-1][1]),
                             fmt_value(h["count"])))
    return errors, samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", default="")
    ap.add_argument("--print", action="store_true", dest="dump")
    ap.add_argument("files", nargs="*", metavar="FILE")
    a = ap.parse_args()
    status = 0
    for path in a.files or ["-"]:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
        errors, samples = check(text, a.prefix)
        for e in errors:
            print(("%s:%s" % (path, e)) if len(a.files) > 1 else e,
                  file=sys.stderr)
        if a.dump and not errors:
            for name, labels, value in samples:
                print(fmt_series(name, labels), fmt_value(value))
        status = status or (1 if errors else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
