#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""linearize.py - check a history of lendfs operations, per device, as a
linearizable register with the lend semantics (docs/TESTING.md,
"Partitions and the history check").

The history is JSON lines (tests/tools/jepsen.py writes it):

  {"type": "device", "dev": ID, "lender": HOST}
  {"type": "op", "id": N, "mount": HOST, "dev": ID, "f": "write"|"read",
   "value": V, "invoke": NS, "complete": NS|null,
   "result": "ok"|"fail"|"info", "errno": NAME|null}
  {"type": "fault", "host": HOST, "kind": "cut"|"kill", "start": NS,
   "end": NS}

A write's "value" is what it wrote ("" returns the device); a read's is
what it read, "" for available; a read of a device that was in flight,
offline or failed is "result": "fail" and constrains nothing.  A write
with "phase": "open" failed to open borrower: it never reached the daemon
and changed nothing, whatever its errno.

The model: the state is the borrower ("" = available).  A write of v:
v == state: ok, a no-op; v == "": ok, state ""; state == "": ok, state v;
otherwise EBUSY and no change.  Results:

  ok              took effect once, between invocation and completion
  fail, EBUSY     constrains nothing (a request in flight also gives it)
  fail, other     a definite failure: changed nothing (EINVAL, EHOSTDOWN,
                  ETIMEDOUT: rolled back, docs/ABI/devices-ID-borrower)
  info, or an errno of --unknown (default ENOTCONN, EIO, ECONNABORTED,
                  ENOENT: the daemon died or lost ZooKeeper): may take
                  effect at any one moment after its invocation and
                  before its completion plus --settle ms (15 s: the
                  engine timeout twice and a session timeout, a killed
                  lender's restart rolling its intent back), or never

A read of v must be explained at one moment between its invocation and
completion, when the state was v.  Reads through the device's lender's
mount are checked so; reads through another mount (a mirror, updated by
ZooKeeper watches) are checked with their invocation moved --lag ms
earlier, or not at all without --lag.  A take-back (the lender returning
a device whose borrower's session expired) is a change no client made:
for each fault interval of host H, the device may go from H to "" once,
between the fault's start and its end plus --slack ms.

The search is Wing and Gong's, with Lowe's memoisation of (linearized
set, state) (as Knossos and Porcupine do), and two prunings: a read that
matches the state is taken at once (taking it later is never better: a
read changes nothing), and an optional operation (indeterminate, or a
take-back) is taken only where it changes the state (else it is better
left pending).  Exit 0: every device is
linearizable; 1: the first violation of each bad device is printed; 2:
usage or a malformed history.  --self-test runs the built-in histories.
"""

import argparse
import json
import sys

UNKNOWN = ("ENOTCONN", "EIO", "ECONNABORTED", "ENOENT")
INF = float("inf")


class Op:
    __slots__ = ("id", "kind", "value", "invoke", "complete", "certain",
                 "desc")

    def __init__(self, oid, kind, value, invoke, complete, certain, desc):
        self.id = oid
        self.kind = kind  # "w", "r", "take"
        self.value = value
        self.invoke = invoke
        self.complete = complete
        self.certain = certain  # must be linearized
        self.desc = desc


def step(state, op):
    """(allowed, new state) of applying @op to @state."""
    if op.kind == "r":
        return state == op.value, state
    if op.kind == "take":
        return True, "" if state == op.value else state
    v = op.value
    if v == state:
        return True, state
    if v == "" or state == "":
        return True, v
    # lent to another: EBUSY.  An acknowledged write cannot be that; an
    # indeterminate one failed so, changing nothing.
    return not op.certain, state


def linearizable(ops, init=""):
    """Wing-Gong-Lowe.  (True, None) or (False, report)."""
    # events: (time, 0 call | 1 return, op index); calls first at a tie, so
    # that ops whose intervals touch count as concurrent.  An op that is not
    # certain and has no end never returns: it need not be linearized.
    # One with an end (a take-back's window) that reaches its return
    # unlinearized is dropped there: it did not happen.
    ev = []
    for i, op in enumerate(ops):
        ev.append((op.invoke, 0, i))
        end = op.complete if (op.certain or op.complete is not None) else INF
        ev.append((end, 1, i))
    ev.sort(key=lambda e: (e[0], e[1]))
    n = len(ev)
    head = n
    nxt = [k + 1 for k in range(n)] + [0]
    prv = [head] + [k - 1 for k in range(1, n)] + [-1]
    if n:
        nxt[n - 1] = -1
    else:
        nxt[head] = -1
    call_of, ret_of = {}, {}
    for k, (_, kind, i) in enumerate(ev):
        (ret_of if kind else call_of)[i] = k

    def lift(i):
        for x in (call_of[i], ret_of[i]):
            p, q = prv[x], nxt[x]
            nxt[p] = q
            if q != -1:
                prv[q] = p

    def unlift(i):
        for x in (ret_of[i], call_of[i]):
            p, q = prv[x], nxt[x]
            nxt[p] = x
            if q != -1:
                prv[q] = x

    left = sum(1 for op in ops if op.certain)
    state, done, skipped = init, 0, 0
    cache = set()
    frames = []  # (op index, state before, linearized or skipped)
    best = (0, 0, init)
    k = nxt[head]
    while left > 0 and k != -1:
        _, kind, i = ev[k]
        op = ops[i]
        if kind == 0:
            ok, new = step(state, op)
            # an optional op that changes nothing now is better left
            # pending: it may still take effect later, or never
            ok = ok and (op.certain or new != state)
            key = (done | 1 << i, skipped, new)
            if ok and key not in cache:
                cache.add(key)
                frames.append((i, state, True))
                state = new
                done |= 1 << i
                left -= op.certain
                lift(i)
                if bin(done).count("1") > best[0]:
                    best = (bin(done).count("1"), done, state)
                k = nxt[head]
            else:
                k = nxt[k]
            continue
        if not op.certain:  # its window is over: it never happened
            frames.append((i, state, False))
            skipped |= 1 << i
            lift(i)
            k = nxt[head]
            continue
        # a certain op must have been linearized by its return: back up.
        # A read taken when the state matched it was no choice (taking it
        # at once is never worse: it changes nothing), so backing out of
        # it backs out of the step before it too.
        while frames:
            i, state, real = frames.pop()
            unlift(i)
            if not real:
                skipped &= ~(1 << i)
                continue
            done &= ~(1 << i)
            left += ops[i].certain
            if ops[i].kind == "r":
                continue
            k = nxt[call_of[i]]
            break
        else:
            return False, report(ops, best)
    return True, None


def report(ops, best):
    _, done, state = best
    pending = [op for i, op in enumerate(ops)
               if op.certain and not done >> i & 1]
    pending.sort(key=lambda o: (o.complete, o.invoke))
    lines = ["longest explained prefix: %d ops, state then %r" %
             (bin(done).count("1"), state)]
    for op in pending[:3]:
        lines.append("cannot explain: %s" % op.desc)
    return "\n".join(lines)


def load(lines):
    lenders, ops, faults = {}, [], []
    for no, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            r = json.loads(line)
            t = r["type"]
            if t == "device":
                lenders[r["dev"]] = r["lender"]
            elif t == "op":
                ops.append(r)
            elif t == "fault":
                faults.append(r)
            elif t != "note":
                raise ValueError("unknown type %r" % t)
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit("linearize: line %d: %s" % (no, exc)) from None
    return lenders, ops, faults


def device_ops(dev, lender, recs, faults, unknown, lag, slack, settle):
    """The Op list of @dev; counts of what was dropped."""
    out, stats = [], {"ops": 0, "reads": 0, "mirror": 0, "unsettled": 0,
                      "indeterminate": 0, "definite": 0}
    for r in recs:
        if r["dev"] != dev:
            continue
        stats["ops"] += 1
        inv = r["invoke"]
        comp = r.get("complete")
        res = r["result"]
        err = r.get("errno")
        desc = "op %s on %s: %s %r [%d, %s] -> %s%s" % (
            r["id"], r["mount"], r["f"], r["value"], inv,
            comp if comp is not None else "?", res,
            " " + err if err else "")
        if r["f"] == "read":
            if res != "ok":
                stats["unsettled"] += 1
                continue
            if r["mount"] != lender:
                if lag is None:
                    stats["mirror"] += 1
                    continue
                inv -= lag
            stats["reads"] += 1
            out.append(Op(r["id"], "r", r["value"], inv, comp, True, desc))
            continue
        if res == "ok":
            out.append(Op(r["id"], "w", r["value"], inv, comp, True, desc))
        elif r.get("phase") == "open":
            stats["definite"] += 1  # never reached the daemon: nothing
        elif res == "info" or comp is None or err in unknown:
            stats["indeterminate"] += 1
            end = (comp if comp is not None else inv) + settle
            out.append(Op(r["id"], "w", r["value"], inv, end, False, desc))
        else:
            stats["definite"] += 1  # EBUSY and definite failures: nothing
    for f in faults:
        out.append(Op("take-%s-%d" % (f["host"], f["start"]), "take",
                      f["host"], f["start"], None, False,
                      "take-back from %s" % f["host"]))
        # an indeterminate op: its window ends when the fault's does
        out[-1].complete = f["end"] + slack
    return out, stats


def check(lines, unknown=UNKNOWN, lag_ms=None, slack_ms=10000,
          settle_ms=15000, out=None):
    """0 linearizable, 1 not; a line per device on @out."""
    lenders, recs, faults = load(lines)
    lag = None if lag_ms is None else int(lag_ms * 1e6)
    slack = int(slack_ms * 1e6)
    settle = int(settle_ms * 1e6)
    bad = 0
    for dev in sorted(lenders):
        ops, st = device_ops(dev, lenders[dev], recs, faults, set(unknown),
                             lag, slack, settle)
        takes = [o for o in ops if o.kind == "take"]
        rest = [o for o in ops if o.kind != "take"]
        ok, why = linearizable(rest + takes)
        if out:
            writes = len(rest) - st["reads"] - st["indeterminate"]
            print("linearize: %s: %s: %d ops (%d acknowledged writes, %d "
                  "reads checked, %d mirror reads skipped, %d unsettled "
                  "reads, %d indeterminate writes, %d definite failures or "
                  "EBUSY), %d fault intervals" %
                  (dev, "ok" if ok else "NOT LINEARIZABLE", st["ops"],
                   writes, st["reads"], st["mirror"], st["unsettled"],
                   st["indeterminate"], st["definite"], len(takes)),
                  file=out)
            if not ok:
                print("  " + why.replace("\n", "\n  "), file=out)
        bad += not ok
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("history", nargs="?")
    ap.add_argument("--lag", type=float, default=None,
                    help="check mirror reads with this lag bound (ms)")
    ap.add_argument("--slack", type=float, default=10000,
                    help="take-backs up to this long after a fault (ms)")
    ap.add_argument("--settle", type=float, default=15000,
                    help="an indeterminate write takes effect, if ever, "
                    "before its completion plus this (ms)")
    ap.add_argument("--unknown", default=",".join(UNKNOWN),
                    help="errnos whose outcome is unknown")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test()
    if not a.history:
        ap.error("a history file, or --self-test")
    with open(a.history) as f:
        lines = f.readlines()
    return check(lines, a.unknown.split(","), a.lag, a.slack, a.settle,
                 sys.stdout)


def self_test():
    import test_linearize  # noqa: E402 (next to this file)
    return test_linearize.run()


if __name__ == "__main__":
    sys.exit(main())
