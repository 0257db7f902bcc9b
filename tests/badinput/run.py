#!/usr/bin/env python3
"""Table-driven bad inputs for lendfs (tests/bats/badinput.bats).

  run.py writes MNT TABLE        every row of writes.tsv against a mount
  run.py configs LENDFS TABLE DIR   every row of configs.tsv through
                                 `lendfs --check` (configs written to DIR)
  run.py snapshot MNT            every path of the tree with its content

Input columns use backslash escapes (\\n \\r \\t \\\\ \\xNN) and {N*TEXT}
for TEXT repeated N times.  A mismatch is printed as "row N (file:line):
want ..., got ..."; the last line is "N inputs, M attempts, K failed" and
the exit status is 1 if any row failed.

writes.tsv: KIND  TARGET  EXPECT  INPUT  [comment]
  borrower ID   one write(2) of INPUT to devices/ID/borrower, then the same
                bytes as a temp file renamed over it (both must give EXPECT;
                the rename only when INPUT fits a temp file, 4096 bytes)
  state HOST    one write(2) to hosts/HOST/state
  write PATH    open(PATH, O_WRONLY) and one write(2) (EXPECT may come
                from open)
  open PATH     open(MNT/PATH + INPUT, O_RDONLY)
  unlink PATH, mkdir PATH, rmdir PATH   that system call on MNT/PATH + INPUT
EXPECT is OK or an errno name.

configs.tsv: LINE  MESSAGE  CONFIG
  `lendfs --check -c FILE` must exit 2 and print "lendfs: FILE:LINE:
  MESSAGE..." (MESSAGE a prefix of the reason).
"""
import codecs
import errno
import os
import re
import subprocess
import sys

TMPFILE_MAX_SIZE = 4096


def decode(text):
    text = re.sub(r'\{(\d+)\*([^}]*)\}',
                  lambda m: m.group(2) * int(m.group(1)), text)
    return codecs.escape_decode(text.encode('utf-8'))[0]


def rows(table):
    with open(table, encoding='utf-8') as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line or line.startswith('#'):
                continue
            yield no, line.split('\t')


def errname(e):
    return errno.errorcode.get(e, 'E%d' % e)


def do_write(path, data):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return errname(e.errno)
    try:
        n = os.write(fd, data)
        return 'OK' if n == len(data) else 'SHORT(%d)' % n
    except OSError as e:
        return errname(e.errno)
    finally:
        os.close(fd)


def do_rename(devdir, data):
    tmp = os.path.join(devdir, '.badinput.tmp')
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, os.path.join(devdir, 'borrower'))
        return 'OK'
    except OSError as e:
        return errname(e.errno)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def call(fn, *args):
    try:
        fn(*args)
        return 'OK'
    except OSError as e:
        return errname(e.errno)


def run_writes(mnt, table):
    inputs = attempts = failed = 0
    name = os.path.basename(table)
    for no, cols in rows(table):
        kind, target, want, raw = cols[0], cols[1], cols[2], cols[3]
        data = decode(raw)
        inputs += 1
        got = []
        if kind == 'borrower':
            devdir = os.path.join(mnt, 'devices', target)
            got.append(('write', do_write(os.path.join(devdir, 'borrower'),
                                          data)))
            if len(data) <= TMPFILE_MAX_SIZE:
                got.append(('rename', do_rename(devdir, data)))
        elif kind == 'state':
            got.append(('write', do_write(
                os.path.join(mnt, 'hosts', target, 'state'), data)))
        elif kind == 'write':
            got.append(('write', do_write(os.path.join(mnt, target), data)))
        else:
            path = os.path.join(mnt, target).encode() + data
            if kind == 'open':
                def opener(p):
                    os.close(os.open(p, os.O_RDONLY))
                got.append(('open', call(opener, path)))
            elif kind == 'unlink':
                got.append(('unlink', call(os.unlink, path)))
            elif kind == 'mkdir':
                got.append(('mkdir', call(os.mkdir, path)))
            elif kind == 'rmdir':
                got.append(('rmdir', call(os.rmdir, path)))
            else:
                print('row %d (%s:%d): unknown kind %s' % (inputs, name, no,
                                                           kind))
                failed += 1
                continue
        for how, result in got:
            attempts += 1
            if result != want:
                failed += 1
                print('row %d (%s:%d): %s %s %r: want %s, got %s' % (
                    inputs, name, no, how, target, data[:80], want, result))
    print('%d inputs, %d attempts, %d failed' % (inputs, attempts, failed))
    return 1 if failed else 0


def run_configs(lendfs, table, tmpdir):
    inputs = failed = 0
    name = os.path.basename(table)
    state = os.path.join(tmpdir, 'state.db')
    for no, cols in rows(table):
        line, message, raw = cols[0], cols[1], cols[2]
        inputs += 1
        path = os.path.join(tmpdir, 'case%d.ini' % inputs)
        with open(path, 'wb') as f:
            f.write(decode(raw))
        p = subprocess.run([lendfs, '--check', '-c', path, '--state', state],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = p.stderr.decode('utf-8', 'backslashreplace').rstrip('\n')
        want = 'lendfs: %s:%s: %s' % (path, line, message)
        if p.returncode != 2 or not err.startswith(want):
            failed += 1
            print('row %d (%s:%d): want exit 2 and %r, got exit %d and %r' % (
                inputs, name, no, want, p.returncode, err))
        os.unlink(path)
    print('%d inputs, %d attempts, %d failed' % (inputs, inputs, failed))
    return 1 if failed else 0


# Files whose content changes with every request, by design (events logs
# each refused write: badinput.bats checks those lines separately).
VOLATILE = {'last_error', 'metrics', 'events'}


def snapshot(mnt):
    for root, dirs, files in os.walk(mnt):
        dirs.sort()
        rel = os.path.relpath(root, mnt)
        st = os.lstat(root)
        print('%s/ %o %d:%d' % (rel, st.st_mode, st.st_uid, st.st_gid))
        for f in sorted(files + [d for d in dirs
                                 if os.path.islink(os.path.join(root, d))]):
            path = os.path.join(root, f)
            st = os.lstat(path)
            head = '%s %o %d:%d' % (os.path.join(rel, f), st.st_mode,
                                    st.st_uid, st.st_gid)
            if os.path.islink(path):
                print('%s -> %s' % (head, os.readlink(path)))
            elif f in VOLATILE:
                print('%s (volatile)' % head)
            else:
                with open(path, 'rb') as fh:
                    print('%s %r' % (head, fh.read()))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == 'writes':
        return run_writes(argv[2], argv[3])
    if len(argv) == 5 and argv[1] == 'configs':
        return run_configs(argv[2], argv[3], argv[4])
    if len(argv) == 3 and argv[1] == 'snapshot':
        return snapshot(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
