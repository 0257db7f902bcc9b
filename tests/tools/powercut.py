#!/usr/bin/env python3
"""powercut.py - cut the power under lendfs at random moments (issue 17).

    powercut.py [--build DIR] [--cuts N] [--seed S] [--keep] [--no-cut]
    powercut.py --steps [--stride K] [--build DIR] [--seed S]

The state directory (--state PM/state/state.db) is on powerfs
(tests/tools/powerfs.c), mounted at PM over a backing directory; the sim
fabric's run directory and every log are on the normal filesystem.  Each
round:

1. WRITERS threads, each owning a disjoint set of devices (so that a
   device's history is sequential), lend and return through the lendfs
   mount: open, one write of "HOST\\n" (a lend) or "\\n" (a return), close.
   Each request is logged before it starts and when it ends (ops.log).
2. After a random 50-400 ms, "cut" is written to PM/.powerfs (it returns
   once the cut is done: nothing after it becomes durable), then the
   daemon gets SIGKILL.  Both mounts are unmounted (-z), powerfs exits.
3. A fresh powerfs is mounted on the backing directory (the reboot); a
   copy of the database as the cut left it must pass PRAGMA
   integrity_check.  lendfs is started again on the same run directory.
4. Every device shows the borrower of its last acknowledged request, or,
   if a request was in flight at the cut, of that one: an acknowledged
   lend is there, an acknowledged return has not come back.  A copy of
   the recovered database passes integrity_check and `lendfs --check -c
   CONF --state COPY --run-dir RUN` prints nothing: the store keeps its
   invariants, and the sim's registers hold exactly the windows of the
   stored lends.

Every fourth cut (the first included: the database is being created) comes
instead 0-60 ms after lendfs was started, while it opens or recovers the
store.

--steps runs a fixed scenario on a new disk (a start on a new database,
two lends, a return, kill -9 and a restart, a lend, an unmount (the store
closed: SQLite checkpoints and deletes its WAL), a start, a return),
counts the operations that change something it makes on powerfs (a first
run, without a cut), then runs it again
for each N with "cut-after N" (powerfs cuts right after the Nth), and
checks the same after each reboot: a crash of the disk at every step.
--stride K: only every Kth N (from a random one of the first K).

--no-cut only kills the daemon (what tests/stress/crash-loop.sh does):
the page cache keeps every write, so it cannot tell a synced commit from
an unsynced one (docs/TESTING.md shows both against a broken wal_sync()).

The next round starts from what the last one found.  A failure prints
what differs, the tails of the logs, and exits 1 (the directory is kept);
at the end one line sums up:

    powercut: N cuts (S while lendfs started), A acknowledged (L lends,
    R returns), I in flight at a cut, lost 0, T s (seed X)
    powercut: steps: a cut after each of the N operations of ... (R runs),
    A acknowledged, lost 0, T s
"""
import argparse
import errno
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTS = 4
DEVICES = 16
WRITERS = 4
# what a request may fail with once the power is cut or the daemon killed
CUT_ERRNOS = {errno.EIO, errno.ENOTCONN, errno.ECONNABORTED}


class Failure(Exception):
    pass


def config_text():
    """Four hosts on one switch, DEVICES devices, room for every lend."""
    out = ["[cluster]", "name = powercut", "inventory = config", "fabric = sim",
           "", "[switch sw0]", "latency_ns = 100", ""]
    for h in range(HOSTS):
        out += ["[host node%d]" % h, "adapter = ntb0",
                "iommu = %s" % ("on" if h % 2 == 0 else "off"),
                "lut_entries = 64", "dma_windows = 64", "",
                "[link]", "a = node%d" % h, "b = sw0", "latency_ns = 10", ""]
    for i in range(DEVICES):
        out += ["[device %s]" % device_id(i), "vendor = 0x8086",
                "device = 0x%04x" % (0x2700 + i), "class = 0x010802",
                "bar0 = 16K", "bar2 = 1M", ""]
    return "\n".join(out)


def device_id(i):
    return "node%d:0000:00:%02x.0" % (i % HOSTS, i // HOSTS)


def lender(dev):
    return dev.split(":")[0]


class Run:
    def __init__(self, args):
        self.build = os.path.abspath(os.path.join(ROOT, args.build))
        self.tmp = tempfile.mkdtemp(prefix="powercut.")
        self.back = os.path.join(self.tmp, "back")
        self.pm = os.path.join(self.tmp, "pm")
        self.lm = os.path.join(self.tmp, "lm")
        self.rundir = os.path.join(self.tmp, "run")
        self.conf = os.path.join(self.tmp, "powercut.ini")
        self.db = os.path.join(self.pm, "state", "state.db")
        for d in (self.back, self.pm, self.lm):
            os.mkdir(d)
        with open(self.conf, "w") as f:
            f.write(config_text())
        self.ops = open(os.path.join(self.tmp, "ops.log"), "a", buffering=1)
        self.oplock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.cut = not args.no_cut
        self.devices = [device_id(i) for i in range(DEVICES)]
        self.value = {d: "" for d in self.devices}	# as last found
        self.pfs = self.lendfs = None
        self.acked = {"lend": 0, "return": 0}
        self.inflight = 0
        self.start_cuts = 0
        self.mounted = False	# a start has completed: the database exists

    # ---- processes ---------------------------------------------------------

    def log_file(self, name):
        return open(os.path.join(self.tmp, name), "a")

    def wait_for(self, what, cond, proc, seconds=10.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if cond():
                return
            if proc.poll() is not None:
                raise Failure("%s exited with %d before it was up" % (what, proc.returncode))
            time.sleep(0.02)
        raise Failure("%s not up within %g s" % (what, seconds))

    def powerfs_start(self):
        # an ASan build: libfuse's own leak of interrupts (tests/lsan.supp)
        env = dict(os.environ)
        env["LSAN_OPTIONS"] = ":".join(filter(None, [
            env.get("LSAN_OPTIONS"), "suppressions=" + os.path.join(ROOT, "tests/lsan.supp"),
            "print_suppressions=0"]))
        with self.log_file("powerfs.log") as log:
            self.pfs = subprocess.Popen([os.path.join(self.build, "powerfs"), "-f",
                                         self.back, self.pm], stderr=log,
                                        stdin=subprocess.DEVNULL, env=env)
        ctl = os.path.join(self.pm, ".powerfs")

        def live():
            try:
                with open(ctl) as f:
                    return f.read().startswith("state live")
            except OSError:
                return False
        self.wait_for("powerfs", live, self.pfs)

    def lendfs_spawn(self):
        # A daemon that touches its shared mapping of state.db-shm after the
        # cut gets SIGBUS (powerfs answers the page fault with EIO): a death
        # at the cut, as the kill is; an ASan build is not to report it.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                     "handle_sigbus=0"]))
        with self.log_file("lendfs.log") as log:
            self.lendfs = subprocess.Popen(
                [os.path.join(self.build, "lendfs"), "-f", "-c", self.conf,
                 "--state", self.db, "--run-dir", self.rundir, self.lm],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)

    def lendfs_start(self):
        self.lendfs_spawn()
        self.wait_for("lendfs", lambda: os.path.exists(os.path.join(self.lm, "version")),
                      self.lendfs)
        self.mounted = True

    def unmount(self, path, proc, what):
        subprocess.run(["fusermount3", "-u", "-z", path], stderr=subprocess.DEVNULL)
        if proc is None:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise Failure("%s did not exit within 10 s of its unmount" % what)

    def stop(self):
        if self.lendfs and self.lendfs.poll() is None:
            self.lendfs.kill()
        for path, proc, what in ((self.lm, self.lendfs, "lendfs"), (self.pm, self.pfs, "powerfs")):
            try:
                self.unmount(path, proc, what)
            except Failure:
                pass

    # ---- writers -------------------------------------------------------------

    def note(self, text):
        with self.oplock:
            self.ops.write("%.6f %s\n" % (time.monotonic(), text))

    def request(self, dev, value):
        """One write to borrower: None when acknowledged, else the errno."""
        path = os.path.join(self.lm, "devices", dev, "borrower")
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, (value + "\n").encode())
            finally:
                os.close(fd)
        except OSError as e:
            return e.errno
        return None

    def writer(self, k, mine, hist, stop, rng):
        """Lend or return one of its own devices at a time until stopped or refused."""
        while not stop.is_set():
            dev = rng.choice(mine)
            cur = hist[dev]["acked"]
            if cur:
                value = ""
            else:
                value = rng.choice(["node%d" % h for h in range(HOSTS) if "node%d" % h != lender(dev)])
            hist[dev]["try"] = value
            self.note("w%d START %s '%s'" % (k, dev, value))
            err = self.request(dev, value)
            if err is None:
                self.note("w%d OK %s '%s'" % (k, dev, value))
                hist[dev]["acked"] = value
                hist[dev]["try"] = None
                hist[dev]["count"][value and "lend" or "return"] += 1
                continue
            self.note("w%d ERR %s '%s' %s" % (k, dev, value, errno.errorcode.get(err, err)))
            hist[dev]["err"] = err
            hist[dev]["err_at"] = time.monotonic()
            return	# the power is cut (or the daemon refused): this was the last

    # ---- one round -------------------------------------------------------------

    def power_cut(self, n, when):
        """Cut the power (it is cut when the write returns), then kill the daemon."""
        self.note("CUT %d %s" % (n, when))
        if self.cut:
            with open(os.path.join(self.pm, ".powerfs"), "w") as f:
                f.write("cut\n")
        self.lendfs.kill()
        self.lendfs.wait()
        self.unmount(self.lm, None, "lendfs")

    def writers_cut(self, n):
        """Writers lend and return until the cut; what each device saw."""
        if self.lendfs is None or self.lendfs.poll() is not None:
            self.lendfs_start()
        hist = self.history()
        stop = threading.Event()
        threads = []
        for k in range(WRITERS):
            mine = self.devices[k::WRITERS]
            t = threading.Thread(target=self.writer,
                                 args=(k, mine, hist, stop, random.Random(self.rng.random())))
            t.start()
            threads.append(t)
        time.sleep(self.rng.uniform(0.05, 0.4))
        if self.lendfs.poll() is not None:
            raise Failure("lendfs exited with %d before the cut" % self.lendfs.returncode)
        cut_at = time.monotonic()
        self.power_cut(n, "during writes")
        stop.set()
        for t in threads:
            t.join(timeout=20)
            if t.is_alive():
                raise Failure("a writer is still blocked 20 s after the cut")
        for d in self.devices:
            h = hist[d]
            if h["err"] is not None and (h["err"] not in CUT_ERRNOS or
                                         h["err_at"] < cut_at):
                raise Failure("%s: request '%s' failed with %s %s the cut" %
                              (d, h["try"], errno.errorcode.get(h["err"], h["err"]),
                               "before" if h["err_at"] < cut_at else "after"))
            for kind in ("lend", "return"):
                self.acked[kind] += h["count"][kind]
        return hist

    def start_cut(self, n):
        """The cut while lendfs starts: creating the database, or recovering."""
        if self.lendfs is not None and self.lendfs.poll() is None:
            self.lendfs.kill()
            self.lendfs.wait()
            self.unmount(self.lm, None, "lendfs")
        self.lendfs_spawn()
        time.sleep(self.rng.uniform(0, 0.06))	# a start takes 20-50 ms
        self.power_cut(n, "during a start")
        self.start_cuts += 1
        return self.history()

    def history(self):
        return {d: {"acked": self.value[d], "try": None, "err": None,
                    "count": {"lend": 0, "return": 0}} for d in self.devices}

    def round(self, n):
        """One cut (every fourth while lendfs starts), the reboot, the checks."""
        hist = self.start_cut(n) if n % 4 == 1 else self.writers_cut(n)
        self.unmount(self.pm, self.pfs, "powerfs")
        self.powerfs_start()
        self.integrity("as the cut left it")
        self.lendfs_start()
        self.check(hist)

    def integrity(self, when):
        """A copy of the database passes PRAGMA integrity_check; its path."""
        copy = os.path.join(self.tmp, "copy")
        shutil.rmtree(copy, ignore_errors=True)
        os.mkdir(copy)
        if not os.path.exists(self.db):
            if self.mounted:
                raise Failure("state.db is gone (%s)" % when)
            return None	# cut before the first start created it
        for suffix in ("", "-wal"):
            if os.path.exists(self.db + suffix):
                shutil.copyfile(self.db + suffix, os.path.join(copy, "state.db" + suffix))
        db = sqlite3.connect(os.path.join(copy, "state.db"))
        try:
            res = [r[0] for r in db.execute("PRAGMA integrity_check")]
        finally:
            db.close()
        if res != ["ok"]:
            raise Failure("integrity_check of the database %s: %s" % (when, "; ".join(res)))
        return os.path.join(copy, "state.db")

    def read(self, dev, attr):
        with open(os.path.join(self.lm, "devices", dev, attr)) as f:
            return f.read().rstrip("\n")

    def check(self, hist):
        bad = []
        lent = 0
        for d in self.devices:
            h = hist[d]
            got, state = self.read(d, "borrower"), self.read(d, "state")
            allowed = [h["acked"]]
            if h["try"] is not None:
                allowed.append(h["try"])
                self.inflight += 1
            if got not in allowed:
                what = "lend to %s" % h["acked"] if h["acked"] else "return"
                bad.append("%s: acknowledged %s, found borrower '%s' (%s)%s" %
                           (d, what, got, state,
                            "" if h["try"] is None else ", in flight: '%s'" % h["try"]))
            if state != ("lent" if got else "available"):
                bad.append("%s: borrower '%s' but state %s" % (d, got, state))
            lent += bool(got)
            self.value[d] = got
        with open(os.path.join(self.lm, "lends")) as f:
            nlends = sum(1 for line in f if line.strip())
        if nlends != lent:
            bad.append("lends lists %d lends, the devices %d" % (nlends, lent))
        if bad:
            raise Failure("\n".join(bad))
        copy = self.integrity("after recovery")
        if copy is None:
            raise Failure("no state.db after a start")
        res = subprocess.run([os.path.join(self.build, "lendfs"), "--check", "-c", self.conf,
                              "--state", copy, "--run-dir", self.rundir],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0 or res.stdout.strip():
            raise Failure("lendfs --check (exit %d):\n%s" % (res.returncode, res.stdout))


# --steps: a new database, two lends, a return, kill -9 and a restart, a
# lend, an unmount and a start, a return; the power cut after each disk
# operation of it in turn.
SCENARIO = [("start",), ("write", 0, "node1"), ("write", 1, "node2"), ("write", 0, ""),
            ("restart",), ("write", 0, "node3"), ("stop",), ("start",), ("write", 1, "")]


class Steps(Run):
    def fresh(self):
        """An empty disk: powerfs on a new backing directory."""
        self.stop()
        shutil.rmtree(self.back)
        os.makedirs(os.path.join(self.back, "state"))
        shutil.rmtree(self.rundir, ignore_errors=True)
        self.lendfs = None
        self.mounted = False
        self.value = {d: "" for d in self.devices}
        self.powerfs_start()

    def control(self, text):
        with open(os.path.join(self.pm, ".powerfs"), "r+") as f:
            if text:
                f.write(text + "\n")
                return ""
            return f.read()

    def is_cut(self):
        return self.control(None).startswith("state cut")

    def start_step(self, restart):
        """Start lendfs; False if the cut stopped it."""
        if restart:
            self.lendfs.kill()
            self.lendfs.wait()
            self.unmount(self.lm, None, "lendfs")
        self.lendfs_spawn()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if os.path.exists(os.path.join(self.lm, "version")):
                self.mounted = True
                return True
            if self.lendfs.poll() is not None:
                if not self.is_cut():
                    raise Failure("lendfs exited with %d, the power on" % self.lendfs.returncode)
                return False
            time.sleep(0.005)
        if not self.is_cut():
            raise Failure("lendfs not up within 10 s, the power on")
        return False

    def stop_step(self):
        """Unmount lendfs and let it close the store; False if the cut came."""
        subprocess.run(["fusermount3", "-u", self.lm], stderr=subprocess.DEVNULL)
        try:
            rc = self.lendfs.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise Failure("lendfs did not exit within 10 s of its unmount")
        if rc != 0 and not self.is_cut():
            raise Failure("lendfs exited with %d after its unmount, the power on" % rc)
        return not self.is_cut()

    def scenario(self, hist):
        """Run SCENARIO until a step fails for the cut."""
        for step in SCENARIO:
            if step[0] == "stop":
                if not self.stop_step():
                    return
                continue
            if step[0] in ("start", "restart"):
                if not self.start_step(step[0] == "restart"):
                    return
                continue
            dev, value = self.devices[step[1]], step[2]
            hist[dev]["try"] = value
            err = self.request(dev, value)
            if err is not None:
                if err not in CUT_ERRNOS or not self.is_cut():
                    raise Failure("%s: '%s' failed with %s, the power on" %
                                  (dev, value, errno.errorcode.get(err, err)))
                return
            hist[dev]["acked"], hist[dev]["try"] = value, None
            self.acked[value and "lend" or "return"] += 1

    def one(self, cut_after):
        """The scenario with the power cut after operation @cut_after (0: none)."""
        self.cut_after = cut_after
        self.fresh()
        if cut_after:
            self.control("cut-after %d" % cut_after)
        hist = self.history()
        self.scenario(hist)
        ops = int(self.control(None).split("operations ")[1].split()[0])
        if self.lendfs is not None and self.lendfs.poll() is None:
            self.lendfs.kill()
            self.lendfs.wait()
        self.unmount(self.lm, None, "lendfs")
        self.unmount(self.pm, self.pfs, "powerfs")
        self.powerfs_start()
        self.integrity("as the cut left it")
        self.lendfs_start()
        self.check(hist)
        return ops


def steps(run, start, stride):
    """--steps: count the scenario's operations, then cut after each in turn
    (with --stride K, after every Kth from a random one of the first K)."""
    total = run.one(0)
    if total < 10:
        raise Failure("the scenario made only %d operations" % total)
    cuts = range(run.rng.randint(1, stride), total + 1, stride)
    for n in cuts:
        run.one(n)
    print("powercut: steps: a cut after %s %d operations of a start on a new "
          "database, 2 lends, a return, kill -9 and a restart, a lend, an unmount, "
          "a start and a return (%d runs), %d acknowledged, lost 0, %.1f s" %
          ("each of the" if stride == 1 else "every %dth of the" % stride, total,
           len(cuts), run.acked["lend"] + run.acked["return"], time.monotonic() - start))


def tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("LENDFS_BUILD", "build"))
    ap.add_argument("--cuts", type=int, default=int(os.environ.get("POWERLOSS_CUTS", "200")))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the directory")
    ap.add_argument("--no-cut", action="store_true", help="kill -9 only, no power cut")
    ap.add_argument("--steps", action="store_true",
                    help="cut after every operation of a fixed scenario instead")
    ap.add_argument("--stride", type=int, default=1,
                    help="--steps: cut after every Nth operation only")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    run = Steps(args) if args.steps else Run(args)
    start = time.monotonic()
    n = 0
    ok = False
    try:
        if args.steps:
            steps(run, start, max(1, args.stride))
            run.stop()
            shutil.rmtree(run.tmp, ignore_errors=True)
            return 0
        os.mkdir(os.path.join(run.back, "state"))	# made before powerfs: durable
        run.powerfs_start()
        for n in range(1, args.cuts + 1):
            run.round(n)
        ok = True
    except Failure as e:
        where = ("steps, cut after operation %d" % run.cut_after if args.steps
                 else "cut %d of %d" % (n, args.cuts))
        print("powercut: %s (seed %d): %s" % (where, args.seed, e), file=sys.stderr)
        for name in ("ops.log", "lendfs.log", "powerfs.log"):
            print("--- %s (last lines):\n%s" % (name, tail(os.path.join(run.tmp, name))),
                  file=sys.stderr)
        print("powercut: kept %s" % run.tmp, file=sys.stderr)
    finally:
        run.stop()
    if ok:
        print("powercut: %d %s (%d while lendfs started), %d acknowledged (%d lends, "
              "%d returns), %d in flight at a cut, lost 0, %.1f s (seed %d)" %
              (args.cuts, "kills (--no-cut)" if args.no_cut else "cuts", run.start_cuts,
               run.acked["lend"] + run.acked["return"], run.acked["lend"],
               run.acked["return"], run.inflight, time.monotonic() - start, args.seed))
        if not args.keep:
            shutil.rmtree(run.tmp, ignore_errors=True)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
