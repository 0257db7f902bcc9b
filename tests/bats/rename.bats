#!/usr/bin/env bats
# Config-management tools write a temp file in the device directory and
# rename(2) it over `borrower`: the rename is the request (SPEC section 4).

load helpers

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

# py CODE ARGS...: run python3 with D = the GPU directory, errors printed
# as "ERRNO_NAME" on stdout and exit 1.
py() {
	local code="$1"
	shift
	python3 -c "
import ctypes, errno, os, sys
D = sys.argv[1]
def renameat2(a, b, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
def create(path, data, mode=0o600):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    os.write(fd, data)
    os.close(fd)
try:
$(sed 's/^/    /' <<<"$code")
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(1)
" "$(dev $GPU)" "$@"
}

@test "rename(2) of a temp file over borrower lends the device" {
	run py "
create(D + '/.tmp1', b'nodeB\n')
os.rename(D + '/.tmp1', D + '/borrower')
print(sorted(n for n in os.listdir(D) if n.startswith('.')))"
	assert_success
	assert_output "[]"
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
	[ ! -e "$(dev $GPU)/.tmp1" ]
}

@test "a failing rename returns the errno and keeps the temp file" {
	run py "
create(D + '/.tmp2', b'bad host\n')
os.rename(D + '/.tmp2', D + '/borrower')"
	assert_failure
	assert_output EINVAL
	run ls -A "$(dev $GPU)"
	assert_line .tmp2
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^EINVAL: "
	run cat "$(dev $GPU)/state"
	assert_output available
	run rm "$(dev $GPU)/.tmp2"
	assert_success
	run ls -A "$(dev $GPU)"
	refute_line .tmp2
}

@test "a rename naming another borrower while lent fails with EBUSY, never EXDEV" {
	lend $GPU nodeB
	run py "
create(D + '/.tmp3', b'nodeC')
os.rename(D + '/.tmp3', D + '/borrower')"
	assert_output EBUSY
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
}

@test "the Ansible sequence: O_EXCL create, O_TRUNC reopen, write, utime, chmod, chown, rename" {
	run py "
assert os.access(D, os.W_OK)
before = open(D + '/borrower', 'rb').read()
assert before == b'\n', before
t = D + '/.ansible_tmpk3j4h5g6borrower'
fd = os.open(t, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
os.close(fd)
fd = os.open(t, os.O_WRONLY | os.O_TRUNC)
os.write(fd, b'nodeC\n')
os.close(fd)
st = os.stat(D + '/borrower')
os.utime(t, ns=(st.st_atime_ns, st.st_mtime_ns))
os.chmod(t, st.st_mode & 0o7777)
os.chown(t, st.st_uid, st.st_gid)
s = os.stat(t)
assert (s.st_mode & 0o7777, s.st_size, s.st_mtime_ns) == (0o644, 6, st.st_mtime_ns), s
os.rename(t, D + '/borrower')
print(open(D + '/borrower', 'rb').read())"
	assert_success
	assert_output "b'nodeC\\n'"
	run cat "$(dev $GPU)/state"
	assert_output lent
}

@test "a temp file in one device directory can be renamed over another's borrower" {
	run py "
create(D + '/.tmp4', b'nodeC\n')
os.rename(D + '/.tmp4', D + '/../$NIC/borrower')"
	assert_success
	run cat "$(dev $NIC)/borrower"
	assert_output nodeC
	run cat "$(dev $GPU)/state"
	assert_output available
}

@test "temp files read back what was written, at offsets, and truncate" {
	run py "
t = D + '/.tmp5'
create(t, b'hello world')
fd = os.open(t, os.O_RDWR)
os.pwrite(fd, b'W', 6)
os.ftruncate(fd, 8)
print(os.pread(fd, 100, 0))
os.close(fd)
print(os.stat(t).st_size)"
	assert_success
	assert_line --index 0 "b'hello Wo'"
	assert_line --index 1 8
}

@test "creating an existing temp file with O_EXCL is EEXIST" {
	run py "
create(D + '/.tmp6', b'x')
create(D + '/.tmp6', b'x')"
	assert_output EEXIST
}

@test "nothing but borrower can be a rename target; attributes cannot move" {
	run py "
create(D + '/.tmp7', b'nodeB')
os.rename(D + '/.tmp7', D + '/state')"
	assert_output EINVAL
	run py "os.rename(D + '/.tmp7', D + '/.tmp8')"
	assert_output EINVAL
	run py "os.rename(D + '/state', D + '/.tmp9')"
	assert_output EINVAL
	run py "os.rename(D + '/borrower', D + '/../$NIC/borrower')"
	assert_output EINVAL
	run cat "$(dev $GPU)/state"
	assert_output available
}

@test "RENAME_NOREPLACE onto borrower is EEXIST, RENAME_EXCHANGE is EINVAL" {
	run py "
create(D + '/.tmp10', b'nodeB')
renameat2(D + '/.tmp10', D + '/borrower', 1)"
	assert_output EEXIST
	run py "renameat2(D + '/.tmp10', D + '/borrower', 2)"
	assert_output EINVAL
	run cat "$(dev $GPU)/state"
	assert_output available
}

@test "at most 16 temp files per device directory (ENOSPC), 4096 bytes each (EFBIG)" {
	run py "
for i in range(16):
    create(D + '/t%d' % i, b'')
create(D + '/t16', b'')"
	assert_output ENOSPC
	run py "create(D + '/../$NIC/other', b'')"
	assert_success
	run py "
fd = os.open(D + '/t0', os.O_WRONLY)
os.pwrite(fd, b'x', 4095)
os.pwrite(fd, b'x', 4096)"
	assert_output EFBIG
	run stat -c %s "$(dev $GPU)/t0"
	assert_output 4096
}

@test "ansible-playbook copy: changed, then unchanged, then a bad host fails the task" {
	command -v ansible-playbook >/dev/null || skip "ansible-playbook not installed"
	cat >"$TMP/play.yml" <<PLAY
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - copy:
        content: "{{ who }}\n"
        dest: $(dev $GPU)/borrower
PLAY
	export ANSIBLE_LOCAL_TEMP="$TMP/ansible" ANSIBLE_NOCOLOR=1
	run timeout 120 ansible-playbook -i localhost, "$TMP/play.yml" -e who=nodeB
	assert_success
	assert_output --regexp "changed=1 "
	run timeout 120 ansible-playbook -i localhost, "$TMP/play.yml" -e who=nodeB
	assert_success
	assert_output --regexp "changed=0 "
	run cat "$(dev $GPU)/state"
	assert_output lent
	run timeout 120 ansible-playbook -i localhost, "$TMP/play.yml" -e who=nodeZ
	assert_failure
	assert_output --partial "rename"
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
	run ls -A "$(dev $GPU)"
	refute_output --partial ansible
}
