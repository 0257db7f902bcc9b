#!/usr/bin/env python3
"""pollers.py - poll(2)/epoll(7) on lendfs attributes, for the bats tests.

  pollers.py wait FILE TIMEOUT_S [select|poll|epoll]
      read FILE, print "ready", poll it for POLLPRI|POLLERR; print
      "woken T_NS EVENTS" (CLOCK_REALTIME, as date +%s%N) or "timeout", then what a read
      from offset 0 gives now ("now VALUE" or "gone ERRNO").
  pollers.py many TIMEOUT_S FILE...
      open and read every FILE, register them all in one epoll set for
      EPOLLPRI, print "ready", then print "woken FILE" for each one that
      wakes within TIMEOUT_S (re-reading it, so each wakes once per
      change), and "done N" with how many woke.
  pollers.py append FILE TIMEOUT_S
      the append-only `events`: read FILE to its end, print "eof MS" (how
      long the read that returned 0 took), "ready", then poll it for
      POLLIN: print "woken T_NS EVENTS" or "timeout", then each line read
      after it as "new LINE".
Standard library only.
"""
import errno
import os
import resource
import select
import sys
import time


def read0(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096)


def now_line(fd):
    try:
        return "now " + read0(fd).decode().strip()
    except OSError as e:
        return "gone " + errno.errorcode.get(e.errno, str(e.errno))


def wait(path, timeout, how="poll"):
    fd = os.open(path, os.O_RDONLY)
    read0(fd)
    print("ready", flush=True)
    if how == "select":
        _, _, x = select.select([], [], [fd], timeout)
        ev = select.POLLPRI if x else 0
    elif how == "epoll":
        ep = select.epoll()
        ep.register(fd, select.EPOLLPRI | select.EPOLLERR)
        got = ep.poll(timeout)
        ev = got[0][1] if got else 0
    else:
        p = select.poll()
        p.register(fd, select.POLLPRI | select.POLLERR)
        got = p.poll(timeout * 1000)
        ev = got[0][1] if got else 0
    if ev:
        print("woken %d %d" % (time.time_ns(), ev), flush=True)
    else:
        print("timeout", flush=True)
    print(now_line(fd), flush=True)
    return 0


def many(timeout, paths):
    want = len(paths) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    ep = select.epoll()
    fds = {}
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        read0(fd)
        ep.register(fd, select.EPOLLPRI | select.EPOLLERR)
        fds[fd] = p
    print("ready", flush=True)
    woke = 0
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        for fd, _ in ep.poll(left):
            print("woken " + fds[fd], flush=True)
            woke += 1
            try:
                read0(fd)
            except OSError:
                ep.unregister(fd)
    print("done %d" % woke, flush=True)
    return 0


def append(path, timeout):
    fd = os.open(path, os.O_RDONLY)
    while os.read(fd, 65536):
        pass
    t0 = time.monotonic()
    last = os.read(fd, 65536)
    print("eof %d %d" % ((time.monotonic() - t0) * 1000, len(last)), flush=True)
    print("ready", flush=True)
    p = select.poll()
    p.register(fd, select.POLLIN)
    got = p.poll(timeout * 1000)
    if got:
        print("woken %d %d" % (time.time_ns(), got[0][1]), flush=True)
    else:
        print("timeout", flush=True)
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    for line in data.decode(errors="replace").splitlines():
        print("new " + line, flush=True)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "append":
        return append(argv[1], float(argv[2]))
    if len(argv) >= 3 and argv[0] == "wait":
        return wait(argv[1], float(argv[2]), argv[3] if len(argv) > 3 else "poll")
    if len(argv) >= 3 and argv[0] == "many":
        return many(float(argv[1]), argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
