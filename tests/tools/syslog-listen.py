#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stand in for the system logger's end of /dev/log.

    syslog-listen.py SOCKET LOG [TIMEOUT]

Binds a unix datagram socket at SOCKET (a test bind-mounts it, or a
directory holding it, where a process looks for /dev/log), creates
SOCKET.bound once it listens, and appends every message it receives to
LOG as one line, as syslog(3) sent it ("<PRI>TIMESTAMP lendfs[PID]: MSG"),
until TIMEOUT seconds (default 30) pass or it is killed.
"""
import socket
import sys
import time


def main():
    path, log = sys.argv[1:3]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    open(path + ".bound", "w").close()
    deadline = time.monotonic() + timeout
    with open(log, "a", buffering=1) as out:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            s.settimeout(left)
            try:
                msg = s.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                continue
            out.write(msg.rstrip("\n\0").replace("\n", " ") + "\n")


if __name__ == "__main__":
    sys.exit(main())
