#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""jepsen.py - record a history of lendfs operations under faults, for
linearize.py (docs/TESTING.md, "Partitions and the history check").

Clients: --workers threads per mount, each doing one operation at a time
on a random device: a write of `borrower` (a host other than the
device's lender, or "" to return it) or a read (state, borrower, state
again: a read counts when both states agree and are `available` or
`lent`; otherwise it is recorded as unsettled).  Each operation is one
JSON line with its invocation and completion times (CLOCK_MONOTONIC, ns)
and its result: ok, fail with an errno, or info (the daemon was killed
under it, or it never completed).

The nemesis, one fault at a time with a quiet gap between them: cut a
host from ZooKeeper (its veth down, tests/cluster/netns.bash) and heal it,
kill -9 a host's daemon and start it again, and once kill -9 the
ZooKeeper leader and restart it (tests/zk/zk.sh).  Each cut or kill is a
"fault" line (host, start, end): the checker allows take-backs of devices
lent to that host within it.

The daemons are the ones tests/bats/cluster_helpers.bash started in
--ctmp (pid.H, mnt.H, run.H, log.H); the driver starts a killed one again
the same way (in its namespace), and at the end stops the ones it started
(a non-zero exit fails the run).  After the faults: every link healed,
every daemon up, every host online on every mount, then a final read of
every device on every mount, and each host's sim registers compared with
the stored lends (lendfs --check --run-dir --host).

Exit 0: the history is written (--out); 1: the cluster did not come
back, a host's registers do not match the stored lends, or a daemon the
driver started exited badly; 2: usage.
"""

import argparse
import errno
import json
import os
import random
import subprocess
import sys
import threading
import time

now = time.monotonic_ns


def log(msg):
    print("jepsen: %s" % msg, file=sys.stderr, flush=True)


class Cluster:
    def __init__(self, a):
        self.a = a
        self.hosts = a.hosts.split(",")
        self.ns = dict(x.split("=") for x in a.netns.split(","))
        self.lock = threading.Lock()
        self.mine = {}  # host -> Popen of daemons this driver started
        self.down = set()  # hosts whose daemon is dead
        self.inflight = {}  # thread -> the write it is in

    def mnt(self, h):
        return os.path.join(self.a.ctmp, "mnt." + h)

    def dev(self, h, d, f):
        return os.path.join(self.mnt(h), "devices", d, f)

    def pid(self, h):
        try:
            with open(os.path.join(self.a.ctmp, "pid." + h)) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    # ---- faults ----------------------------------------------------------

    def link(self, h, up):
        name, n = self.ns[h].split(":")
        subprocess.run(["ip", "link", "set", "lf%sh" % n,
                        "up" if up else "down"], check=True)

    def kill(self, h):
        pid = self.pid(h)
        with self.lock:
            self.down.add(h)
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            gone(pid)
        p = self.mine.pop(h, None)
        if p:
            p.wait()
        subprocess.run(["fusermount3", "-uz", self.mnt(h)],
                       stderr=subprocess.DEVNULL)

    def start(self, h):
        name, n = self.ns[h].split(":")
        zk = self.a.zk.replace("127.0.0.1", "10.77.%s.1" % n)
        ct = self.a.ctmp
        with open(os.path.join(ct, "out." + h), "ab") as out, \
                open(os.path.join(ct, "log." + h), "ab") as err:
            p = subprocess.Popen(
                ["nsenter", "--net=/run/netns/" + name, self.a.lendfs, "-f",
                 "-c", self.a.conf, "--host", h, "--store",
                 "zk://%s%s" % (zk, self.a.chroot), "--run-dir",
                 os.path.join(ct, "run." + h), self.mnt(h)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.mine[h] = p
        with open(os.path.join(ct, "pid." + h), "w") as f:
            f.write("%d\n" % p.pid)
        for _ in range(200):
            if os.path.exists(os.path.join(self.mnt(h), "version")):
                with self.lock:
                    self.down.discard(h)
                return
            if p.poll() is not None:
                raise SystemExit("jepsen: lendfs --host %s exited (%d) at "
                                 "start" % (h, p.returncode))
            time.sleep(0.05)
        raise SystemExit("jepsen: lendfs --host %s: no mount in 10 s" % h)

    def zk(self, *args):
        return subprocess.run([self.a.zksh, args[0], self.a.zkdir] +
                              list(args[1:]), check=True, text=True,
                              stdout=subprocess.PIPE).stdout.strip()

    def online_everywhere(self):
        for h in self.hosts:
            for x in self.hosts:
                try:
                    with open(os.path.join(self.mnt(h), "hosts", x,
                                           "state")) as f:
                        if f.read().strip() != "online":
                            return False
                except OSError:
                    return False
        return True

    def registers_ok(self):
        """Each host's run directory (its hardware) holds exactly the
        windows of the stored lends: lendfs --check --run-dir --host, with
        the daemons running (their device tables place the BARs); 0 ok."""
        bad = 0
        for h in self.hosts:
            for _ in range(25):  # a take-back or reconnect may be finishing
                p = subprocess.run(
                    [self.a.lendfs, "--check", "-c", self.a.conf, "--store",
                     "zk://%s%s" % (self.a.zk, self.a.chroot), "--run-dir",
                     os.path.join(self.a.ctmp, "run." + h), "--host", h],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True)
                if p.returncode == 0:
                    break
                time.sleep(0.2)
            if p.returncode != 0:
                log("registers of %s do not match the stored lends:\n%s" %
                    (h, p.stdout))
                bad = 1
        if not bad:
            log("registers of every host match the stored lends")
        return bad

    def keep(self, out):
        """The daemons' logs and registers, for a failure's post-mortem."""
        os.makedirs(out, exist_ok=True)
        for h in self.hosts:
            for f in ("log." + h, "out." + h):
                try:
                    with open(os.path.join(self.a.ctmp, f), "rb") as src, \
                            open(os.path.join(out, f), "wb") as dst:
                        dst.write(src.read())
                except OSError:
                    pass
        log("logs kept in %s" % out)

    def stop_mine(self):
        bad = 0
        for h, p in list(self.mine.items()):
            subprocess.run(["fusermount3", "-u", self.mnt(h)],
                           stderr=subprocess.DEVNULL)
            try:
                rc = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            if rc != 0:
                log("lendfs --host %s (started by the driver) exited with "
                    "status %d" % (h, rc))
                bad = 1
            os.unlink(os.path.join(self.a.ctmp, "pid." + h))
        return bad


def gone(pid):
    """Wait until @pid is dead (a zombie of another parent counts)."""
    for _ in range(400):
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.025)


class Recorder:
    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.n = 0

    def next_id(self):
        with self.lock:
            self.n += 1
            return self.n

    def put(self, rec):
        with self.lock:
            self.f.write(json.dumps(rec, sort_keys=True) + "\n")

    def close(self):
        self.f.close()


def ename(e):
    return errno.errorcode.get(e, "E%d" % e)


def do_write(c, h, d, value):
    """(result, errno name, phase)."""
    try:
        fd = os.open(c.dev(h, d, "borrower"), os.O_WRONLY)
    except OSError as e:
        return "fail", ename(e.errno), "open"
    try:
        os.write(fd, (value + "\n").encode())
        return "ok", None, "write"
    except OSError as e:
        return "fail", ename(e.errno), "write"
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def cat(path):
    with open(path) as f:
        return f.read().rstrip("\n")


def do_read(c, h, d):
    """(result, value, errno name): ok only for a settled device."""
    try:
        s1 = cat(c.dev(h, d, "state"))
        b = cat(c.dev(h, d, "borrower"))
        s2 = cat(c.dev(h, d, "state"))
    except OSError as e:
        return "fail", None, ename(e.errno)
    if s1 != s2 or s1 not in ("available", "lent"):
        return "fail", "%s/%s/%s" % (s1, b, s2), None
    if (s1 == "lent") != (b != ""):
        return "fail", "%s/%s/%s" % (s1, b, s2), None
    return "ok", b, None


def one_op(c, rec, rng, h, devs):
    d, lender = rng.choice(devs)
    oid = rec.next_id()
    if rng.random() < 0.4:
        t0 = now()
        res, value, err = do_read(c, h, d)
        rec.put({"type": "op", "id": oid, "mount": h, "dev": d,
                 "f": "read", "value": value if value is not None else "",
                 "invoke": t0, "complete": now(), "result": res,
                 "errno": err})
        return
    value = rng.choice([x for x in c.hosts if x != lender] + [""])
    t0 = now()
    with c.lock:  # written as info if it never completes
        c.inflight[threading.get_ident()] = {
            "type": "op", "id": oid, "mount": h, "dev": d, "f": "write",
            "value": value, "invoke": t0, "complete": None,
            "result": "info", "errno": None, "phase": "write"}
    res, err, phase = do_write(c, h, d, value)
    t1 = now()
    with c.lock:
        killed = h in c.down
    if res == "fail" and killed and phase != "open":
        res = "info"  # its daemon was killed under it
    rec.put({"type": "op", "id": oid, "mount": h, "dev": d, "f": "write",
             "value": value, "invoke": t0, "complete": t1, "result": res,
             "errno": err, "phase": phase})


def worker(c, rec, seed, h, devs, stop, pause_ms):
    rng = random.Random(seed)
    while not stop.is_set():
        one_op(c, rec, rng, h, devs)
        with c.lock:
            c.inflight.pop(threading.get_ident(), None)
        time.sleep(rng.uniform(0, pause_ms) / 1000.0)


def nemesis(c, rec, rng, stop, a, counts):
    """Faults one at a time until @stop; one ZooKeeper leader kill."""
    zk_at = now() + int(a.duration * 1e9 / 3)
    zk_done = False
    while not stop.wait(rng.uniform(1.0, 2.5)):
        if not zk_done and now() >= zk_at:
            leader = c.zk("leader")
            t0 = now()
            c.zk("kill", leader)
            log("ZooKeeper node %s (the leader) killed" % leader)
            stop.wait(rng.uniform(2, 4))
            c.zk("restart", leader)
            rec.put({"type": "note", "what": "zk-leader-kill",
                     "node": leader, "start": t0, "end": now()})
            counts["zk-leader-kill"] += 1
            zk_done = True
            continue
        h = rng.choice(c.hosts)
        kind = ("cut", "kill")[(counts["cut"] + counts["kill"]) % 2]
        t0 = now()
        if kind == "cut":
            c.link(h, False)
            stop.wait(rng.uniform(1.0, 4.5))
            c.link(h, True)
        else:
            c.kill(h)
            stop.wait(rng.uniform(0.2, 2.0))
            c.start(h)
        t1 = now()
        log("%s %s for %d ms" % (kind, h, (t1 - t0) // 1000000))
        rec.put({"type": "fault", "host": h, "kind": kind, "start": t0,
                 "end": t1})
        counts[kind] += 1
    return zk_done


def settle(c, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.online_everywhere():
            return True
        time.sleep(0.2)
    return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctmp", required=True)
    ap.add_argument("--hosts", required=True, help="nodeA,nodeB,nodeC")
    ap.add_argument("--netns", required=True,
                    help="HOST=NAME:N,... (netns.bash: lendfs-N-HOST, lfNh)")
    ap.add_argument("--devices", required=True, help="ID=LENDER,...")
    ap.add_argument("--lendfs", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--zk", required=True, help="the connect string")
    ap.add_argument("--chroot", required=True)
    ap.add_argument("--zksh", required=True)
    ap.add_argument("--zkdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ops", type=int, default=1000,
                    help="at least this many operations")
    ap.add_argument("--duration", type=float, default=60,
                    help="seconds of faults (at least)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pause-ms", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    log("seed %d" % seed)
    rng = random.Random(seed)
    c = Cluster(a)
    devs = [tuple(x.split("=")) for x in a.devices.split(",")]
    rec = Recorder(a.out)
    rec.put({"type": "note", "what": "seed", "seed": seed})
    for d, lender in devs:
        rec.put({"type": "device", "dev": d, "lender": lender})
    stop, nstop = threading.Event(), threading.Event()
    threads = []
    for h in c.hosts:
        for w in range(a.workers):
            t = threading.Thread(target=worker, daemon=True,
                                 args=(c, rec, rng.random(), h, devs, stop,
                                       a.pause_ms))
            t.start()
            threads.append(t)
    counts = {"cut": 0, "kill": 0, "zk-leader-kill": 0}
    t_start = time.monotonic()
    nt = threading.Thread(target=nemesis, daemon=True,
                          args=(c, rec, random.Random(rng.random()), nstop,
                                a, counts))
    nt.start()
    while (time.monotonic() - t_start < a.duration or rec.n < a.ops or
           counts["zk-leader-kill"] == 0):
        time.sleep(0.2)
        if time.monotonic() - t_start > 4 * a.duration:
            break
    nstop.set()
    nt.join(60)
    rc = 0
    if not settle(c, 60):
        log("the cluster did not come back: not every host online on "
            "every mount within 60 s")
        rc = 1
    stop.set()
    for t in threads:
        t.join(60)
    stuck = sum(t.is_alive() for t in threads)
    with c.lock:
        for r in c.inflight.values():
            rec.put(r)
    time.sleep(1)  # the last mirrors
    for h in c.hosts:
        for d, _ in devs:
            oid = rec.next_id()
            t0 = now()
            res, value, err = do_read(c, h, d)
            rec.put({"type": "op", "id": oid, "mount": h, "dev": d,
                     "f": "read", "value": value or "", "invoke": t0,
                     "complete": now(), "result": res, "errno": err,
                     "final": True})
    rc |= c.registers_ok()
    if os.environ.get("HISTORY_FAIL_DIR"):  # the linearize check is next
        c.keep(os.environ["HISTORY_FAIL_DIR"])
    rc |= c.stop_mine()
    rec.close()
    log("%d operations in %.0f s; %d cuts, %d kills, %d ZooKeeper leader "
        "kills; %d clients stuck" % (rec.n, time.monotonic() - t_start,
                                     counts["cut"], counts["kill"],
                                     counts["zk-leader-kill"], stuck))
    return rc


if __name__ == "__main__":
    sys.exit(main())
