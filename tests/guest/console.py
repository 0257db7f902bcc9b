#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""console.py - run shell commands in the test guest over its serial console.

    console.py run SOCKET TIMEOUT 'COMMAND'
        send COMMAND to the guest's shell (tests/guest/init) on the serial
        console socket SOCKET, print what it prints, exit with its status;
        exit 124 with "console: no answer in TIMEOUT s" if the marker line
        does not come back in time.
    console.py wait LOG TIMEOUT TEXT
        wait until the console log LOG (the chardev's logfile=) has a line
        containing TEXT; exit 124 if it does not come in time.

COMMAND runs in a subshell between two marker lines computed by the
guest's shell (`__lendfs_begin_$((N+1))`, `__lendfs_done_$((N+1)) STATUS`),
so the echo of the command line, if any, never matches them and what the
console printed before (a shell's banner, kernel messages) is not output.  The guest's shell has no prompt and no echo
(tests/guest/init).  python3 standard library only.
"""
import random
import socket
import sys
import time


def run(path, timeout, command):
    n = random.randrange(1 << 30)
    begin = "__lendfs_begin_%d\n" % (n + 1)
    marker = "__lendfs_done_%d" % (n + 1)
    # in a subshell: an `exit` or `cd` in COMMAND stays there
    line = ("printf '__lendfs_begin_%%d\\n' $((%d+1))\n(\n%s\n)\n"
            "printf '\\n__lendfs_done_%%d %%d\\n' $((%d+1)) $?\n" % (n, command, n))
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(line.encode())
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            sys.stderr.write("console: %s closed the connection\n" % path)
            return 1
        buf += chunk
        text = buf.decode(errors="replace").replace("\r", "")
        start = text.find(begin)
        at = text.find("\n" + marker + " ", max(start, 0))
        if start >= 0 and at >= 0 and "\n" in text[at + 1:]:
            end = text.index("\n", at + 1)
            status = int(text[at + 1 + len(marker) + 1:end].strip() or "1")
            out = text[start + len(begin):at]
            sys.stdout.write(out + ("\n" if out and not out.endswith("\n") else ""))
            return status
    sys.stderr.write("console: no answer in %g s to: %s\n--- got ---\n%s\n"
                     % (timeout, command, buf.decode(errors="replace")))
    return 124


def wait(log, timeout, text):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(log, errors="replace") as f:
                if any(text in l for l in f):
                    return 0
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    sys.stderr.write("console: no '%s' in %s after %g s\n" % (text, log, timeout))
    return 124


def main(argv):
    if len(argv) != 5 or argv[1] not in ("run", "wait"):
        sys.stderr.write(__doc__)
        return 2
    timeout = float(argv[3])
    if argv[1] == "run":
        return run(argv[2], timeout, argv[4])
    return wait(argv[2], timeout, argv[4])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
