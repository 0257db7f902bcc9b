#!/usr/bin/env python3
"""fsop.py - one file-system call each, for tests/bats/powerfs.bats.

    fsop.py write PATH OFFSET DATA [sync|datasync|dsync|osync]
    fsop.py fsync PATH          fsync(2) of a file or directory
    fsop.py fdatasync PATH
    fsop.py truncate PATH SIZE [sync]
    fsop.py rename FROM TO
    fsop.py read PATH           the file's bytes, as Python prints bytes

write: pwrite DATA at OFFSET, creating the file (0644) if needed; then
fsync or fdatasync the same descriptor, or open it O_DSYNC / O_SYNC.
A failed call prints its errno name and exits 1.
"""
import errno
import os
import sys


def open_for_write(path, how):
    flags = os.O_WRONLY | os.O_CREAT
    if how == "dsync":
        flags |= os.O_DSYNC
    elif how == "osync":
        flags |= os.O_SYNC
    return os.open(path, flags, 0o644)


def after(fd, how):
    if how == "sync":
        os.fsync(fd)
    elif how == "datasync":
        os.fdatasync(fd)


def main(argv):
    op, path = argv[1], argv[2]
    if op == "write":
        how = argv[5] if len(argv) > 5 else ""
        fd = open_for_write(path, how)
        os.pwrite(fd, argv[4].encode(), int(argv[3]))
        after(fd, how)
        os.close(fd)
    elif op in ("fsync", "fdatasync"):
        fd = os.open(path, os.O_RDONLY)
        (os.fsync if op == "fsync" else os.fdatasync)(fd)
        os.close(fd)
    elif op == "truncate":
        fd = os.open(path, os.O_WRONLY)
        os.ftruncate(fd, int(argv[3]))
        after(fd, argv[4] if len(argv) > 4 else "")
        os.close(fd)
    elif op == "rename":
        os.rename(path, argv[3])
    elif op == "read":
        with open(path, "rb") as f:
            print(f.read())
    else:
        print("fsop.py: unknown operation " + op, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
        sys.exit(1)
