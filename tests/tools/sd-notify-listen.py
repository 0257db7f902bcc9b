#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stand in for the service manager's end of $NOTIFY_SOCKET.

    sd-notify-listen.py SOCKET MOUNT LOG [TIMEOUT]

Binds a unix datagram socket at SOCKET, creates SOCKET.bound once it
listens, and appends every notification line to LOG, one per line, until
STOPPING=1 arrives or TIMEOUT seconds (default 20) pass.  The moment
READY=1 arrives it looks at MOUNT and adds what it saw to that line:

    READY=1 mounted=1 version=0.1.0

so a test can tell that READY came only once the mount answered.
"""
import os
import socket
import sys
import time


def probe(mount):
    mounted = os.path.ismount(mount)
    version = ""
    if mounted:
        try:
            with open(os.path.join(mount, "version")) as f:
                version = f.read().strip()
        except OSError as e:
            version = "error:%d" % e.errno
    return "mounted=%d version=%s" % (mounted, version)


def main():
    path, mount, log = sys.argv[1:4]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    open(path + ".bound", "w").close()
    deadline = time.monotonic() + timeout
    with open(log, "a", buffering=1) as out:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                out.write("TIMEOUT\n")
                return 1
            s.settimeout(left)
            try:
                msg = s.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                continue
            stop = False
            for line in msg.split("\n"):
                if not line:
                    continue
                if line == "READY=1":
                    line += " " + probe(mount)
                out.write(line + "\n")
                stop = stop or line == "STOPPING=1"
            if stop:
                return 0


if __name__ == "__main__":
    sys.exit(main())
