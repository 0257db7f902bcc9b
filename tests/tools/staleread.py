#!/usr/bin/env python3
"""staleread.py - no read on a mount is older than the last completed write.

  staleread.py MNT DEVICE SECONDS READERS

One writer process lends and returns DEVICE through MNT/devices/DEVICE/
borrower (open, write(2), close), in the cycle nodeB, "", nodeC, "" (write
k, from 1, leaves the value VALUES[(k - 1) % 4]), pausing 0-2 ms after
each write so that some reads have no write in flight; READERS other processes
read, as fast as they can, `state` and `borrower` of the device (each an
open+read+close) and whether MNT/hosts/nodeB/borrowed/DEVICE exists.

The writer counts in shared memory (aligned 8-byte words through ctypes:
struct.pack_into() on an mmap copies byte by byte, and a reader saw torn
values): `started` (set to k before write k is opened) and `completed`
(set to k once its write(2) has returned).  A reader
loads c = completed, reads, then loads m = started.  Every write up to c had
returned before the read began, and no write after m had begun when it
ended, so the read may show only what writes c..m leave or pass through:

  borrower   the value after write c, or after any write c+1..m
  state      the state after write c ("lent" / "available"), or any state
             of writes c+1..m (a lend shows lending then lent, a return
             returning then available)
  link       hosts/nodeB/borrowed/DEVICE exists iff one of those
             borrowers is nodeB

Anything else is a stale (or impossible) read: printed, and exit 1.  A
read with m == c (no write in flight) allows exactly one value: these are
counted as "decisive", and the run fails unless the writer completed at
least 50 writes and the readers made at least 200 decisive reads of each
kind, so that it cannot pass by doing nothing.  Prints

  writes W reads R decisive D stale S

Standard library only.
"""
import ctypes
import mmap
import os
import random
import sys
import time

VALUES = ["nodeB", "", "nodeC", ""]
MIN_WRITES = 50
MIN_DECISIVE = 200
STARTED, COMPLETED, DONE = 0, 1, 2  # the shared counters (aligned 8-byte
                                     # loads and stores: never torn)


def value_after(k):
    """borrower after write k (k = 0: before the first write)."""
    return "" if k == 0 else VALUES[(k - 1) % 4]


def states_of(k):
    """every state write k can show: in flight, then done."""
    if k == 0:
        return {"available"}
    return {"lending", "lent"} if value_after(k) else {"returning", "available"}


def writer(sh, path, seconds):
    """a pause of 0-2 ms after each write leaves reads with no write in flight"""
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        k += 1
        sh[STARTED] = k
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, (value_after(k) + "\n").encode())
        finally:
            os.close(fd)
        sh[COMPLETED] = k
        time.sleep(random.random() * 0.002)


def read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode().rstrip("\n")
    finally:
        os.close(fd)


def check(what, got, c, m):
    """the allowed values of @what for writes c..m; None when allowed."""
    if what == "borrower":
        ok = {value_after(j) for j in range(c, m + 1)}
    elif what == "state":
        ok = {"lent" if value_after(c) else "available"}
        for j in range(c + 1, m + 1):
            ok |= states_of(j)
    else:
        ok = {value_after(j) == "nodeB" for j in range(c, m + 1)}
    return None if got in ok else ok


def reader(sh, mnt, dev, out):
    d = os.path.join(mnt, "devices", dev)
    link = os.path.join(mnt, "hosts", "nodeB", "borrowed", dev)
    reads = decisive = stale = 0
    per = {"state": 0, "borrower": 0, "link": 0}
    while sh[DONE] == 0:
        for what in ("state", "borrower", "link"):
            c = sh[COMPLETED]
            if what == "link":
                got = os.path.lexists(link)
            else:
                got = read_file(os.path.join(d, what))
            m = sh[STARTED]
            reads += 1
            bad = check(what, got, c, m)
            if m == c:
                decisive += 1
                per[what] += 1
            if bad is not None:
                stale += 1
                if stale <= 5:
                    print("stale: %s read %r after write %d completed (writes "
                          "up to %d started), allowed %r" %
                          (what, got, c, m, sorted(bad, key=str)), file=out,
                          flush=True)
    print("reader %d %d %d %d %d %d" % (reads, decisive, stale, per["state"],
                                         per["borrower"], per["link"]),
          file=out, flush=True)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: staleread.py MNT DEVICE SECONDS READERS")
    mnt, dev, seconds, nreaders = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    mem = mmap.mmap(-1, 4096)  # shared with the children (MAP_SHARED)
    sh = (ctypes.c_int64 * 3).from_buffer(mem)
    rfd, wfd = os.pipe()
    kids = []
    for _ in range(nreaders):
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            with os.fdopen(wfd, "w") as out:
                reader(sh, mnt, dev, out)
            os._exit(0)
        kids.append(pid)
    os.close(wfd)
    try:
        writer(sh, os.path.join(mnt, "devices", dev, "borrower"), seconds)
    finally:
        sh[DONE] = 1
    with os.fdopen(rfd) as inp:
        lines = inp.read().splitlines()
    failed = any(os.waitpid(p, 0)[1] != 0 for p in kids)
    writes = sh[COMPLETED]
    tot = [0] * 6
    for line in lines:
        if line.startswith("stale:"):
            print(line)
        elif line.startswith("reader "):
            tot = [a + int(b) for a, b in zip(tot, line.split()[1:])]
    print("writes %d reads %d decisive %d stale %d (decisive state %d borrower %d "
          "link %d)" % (writes, tot[0], tot[1], tot[2], tot[3], tot[4], tot[5]))
    if failed or len([x for x in lines if x.startswith("reader ")]) != nreaders:
        sys.exit("a reader failed")
    if tot[2]:
        sys.exit(1)
    if writes < MIN_WRITES or min(tot[3:]) < MIN_DECISIVE:
        sys.exit("too few writes or decisive reads to tell")


if __name__ == "__main__":
    main()
