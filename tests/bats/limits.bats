#!/usr/bin/env bats
# Every bound of docs/LIMITS.md, at the bound and one past it, with the
# errno (or exit status 2 and FILE:LINE) it is documented to give.

load helpers

teardown() {
	lendfs_unmount
}

# check_config FILE: lendfs --check on a config; output and status in run
check_config() {
	run "$LENDFS" --check -c "$1" --state "$BATS_TEST_TMPDIR/state.db"
}

# py CODE: python3 with os, errno imported; OSError printed as its name
py() {
	python3 -c "
import errno, os, resource, sys
try:
$(sed 's/^/    /' <<<"$1")
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(1)
"
}

@test "host names: 63 bytes is a name, 64 is malformed (EINVAL), in writes and configs" {
	lendfs_mount
	local n63 n64
	n63="$(printf 'h%.0s' {1..63})"
	n64="${n63}h"
	assert_lend_fails $GPU "$n63" EINVAL "Invalid argument"
	run cat "$(dev $GPU)/last_error"
	assert_output "EINVAL: unknown host '$n63'"
	assert_lend_fails $GPU "$n64" EINVAL "Invalid argument"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "malformed host name '$n64'"
	# a VM name has the same bound
	assert_lend_fails $GPU "vm:nodeB/$n64" EINVAL "Invalid argument"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "malformed vm borrower"

	printf '[host %s]\n' "$n63" >"$BATS_TEST_TMPDIR/ok.ini"
	check_config "$BATS_TEST_TMPDIR/ok.ini"
	assert_success
	printf '; a cluster\n[host %s]\n' "$n64" >"$BATS_TEST_TMPDIR/bad.ini"
	check_config "$BATS_TEST_TMPDIR/bad.ini"
	assert_failure 2
	assert_output --partial "bad.ini:2: invalid host name"
}

@test "device ids: HOST:DDDD:BB:DD.F with device <= 1f and function <= 7" {
	local id
	for id in nodeA:0000:65:1f.7 nodeA:ffff:ff:00.0; do
		printf '[host nodeA]\n[device %s]\n' "$id" >"$BATS_TEST_TMPDIR/ok.ini"
		check_config "$BATS_TEST_TMPDIR/ok.ini"
		assert_success
	done
	for id in nodeA:0000:65:20.0 nodeA:0000:65:00.8 nodeA:000:65:00.0 \
		nodeA:0000:65:00 nodeA:10000:65:00.0 :0000:65:00.0 nodeA:0000:g5:00.0; do
		printf '[host nodeA]\n[device %s]\n' "$id" >"$BATS_TEST_TMPDIR/bad.ini"
		check_config "$BATS_TEST_TMPDIR/bad.ini"
		assert_failure 2
		assert_output --partial "bad.ini:2: malformed device id '$id'"
	done
	# in the tree, a malformed or unknown id is simply not there
	lendfs_mount
	for id in nodeA:0000:65:20.0 NODEA:0000:65:00.0 "nodeA:0000:65:00.0 " x; do
		run cat "$MNT/devices/$id/state"
		assert_failure
		assert_output --partial "No such file or directory"
	done
}

@test "borrower writes: at most 255 bytes (EINVAL beyond, reason says so)" {
	lendfs_mount
	local v255
	v255="$(printf 'n%.0s' {1..255})"
	# 255 bytes (and a newline) are taken as a name: too long for a host
	assert_lend_fails $GPU "$v255" EINVAL "Invalid argument"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "malformed host name"
	assert_lend_fails $GPU "${v255}n" EINVAL "Invalid argument"
	run cat "$(dev $GPU)/last_error"
	assert_output "EINVAL: value too long (256 bytes, max 255)"
	# one write of 128 KiB (FUSE's largest): one request, refused
	run py "
fd = os.open('$(dev $GPU)/borrower', os.O_WRONLY)
print(os.write(fd, b'n' * 131072))"
	assert_failure
	assert_output EINVAL
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "value too long"
	run cat "$(dev $GPU)/state"
	assert_output available
}

@test "host state writes: online or offline only, bounded (EINVAL)" {
	lendfs_mount
	run bash -c "printf '%0100d' 0 > '$MNT/hosts/nodeB/state'"
	assert_failure
	assert_output --partial "Invalid argument"
	run bash -c "echo onlineonline > '$MNT/hosts/nodeB/state'"
	assert_output --partial "Invalid argument"
	run cat "$MNT/hosts/nodeB/state"
	assert_output online
}

@test "requests in flight: [cluster] max_requests, EBUSY beyond" {
	sed 's/^timeout_ms = 10000$/timeout_ms = 10000\nmax_requests = 1/' "$DEMO" \
		>"$BATS_TEST_TMPDIR/one.ini"
	LENDFS_DELAY=lend_commit:1500 lendfs_mount "$BATS_TEST_TMPDIR/one.ini"
	lend $GPU nodeB &
	local slow=$!
	# wait until the first lend is in flight
	for _ in $(seq 50); do
		[ "$(cat "$(dev $GPU)/state")" = lending ] && break
		sleep 0.05
	done
	run cat "$(dev $GPU)/state"
	assert_output lending
	assert_lend_fails $NIC nodeC EBUSY "Device or resource busy"
	run cat "$(dev $NIC)/last_error"
	assert_output "EBUSY: too many requests in flight (max 1)"
	wait $slow
	run cat "$(dev $GPU)/state"
	assert_output lent
	lend $NIC nodeC
	run cat "$(dev $NIC)/state"
	assert_output lent
}

@test "max_requests is bounded in the config: 1 to 4096" {
	printf '[cluster]\nmax_requests = 4097\n[host a]\n' >"$BATS_TEST_TMPDIR/bad.ini"
	check_config "$BATS_TEST_TMPDIR/bad.ini"
	assert_failure 2
	assert_output --partial "bad.ini:2: max_requests: 4097 out of range [1, 4096]"
	printf '[cluster]\nmax_requests = 0\n[host a]\n' >"$BATS_TEST_TMPDIR/bad.ini"
	check_config "$BATS_TEST_TMPDIR/bad.ini"
	assert_failure 2
}

# A demo cluster with 66 more devices on nodeA: room for 1122 temp files
# by the per-directory bound, so the mount-wide one (1024) is what stops.
many_devices() {
	local bus
	cp "$DEMO" "$BATS_TEST_TMPDIR/many.ini"
	for ((bus = 0x10; bus < 0x52; bus++)); do
		printf '[device nodeA:0000:%02x:00.0]\nbar0 = 16K\n' "$bus"
	done >>"$BATS_TEST_TMPDIR/many.ini"
	echo "$BATS_TEST_TMPDIR/many.ini"
}

@test "temp files: 16 per device directory, 4096 bytes each (ENOSPC, EFBIG)" {
	lendfs_mount
	run py "
d = '$(dev $GPU)'
for i in range(16):
    os.close(os.open('%s/t%d' % (d, i), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
os.open(d + '/t16', os.O_CREAT | os.O_EXCL | os.O_WRONLY)"
	assert_failure
	assert_output ENOSPC
	run py "
fd = os.open('$(dev $GPU)/t0', os.O_WRONLY)
os.pwrite(fd, b'x' * 4096, 0)
os.pwrite(fd, b'x', 4096)"
	assert_output EFBIG
	run py "os.truncate('$(dev $GPU)/t1', 4097)"
	assert_output EFBIG
	# unlinking one makes room again
	rm "$(dev $GPU)/t5"
	touch "$(dev $GPU)/t16"
}

@test "temp files: 1024 in the whole mount, open-but-unlinked ones included (ENOSPC)" {
	lendfs_mount "$(many_devices)"
	run py "
import glob
dirs = sorted(glob.glob('$MNT/devices/*'))
assert len(dirs) == 73, len(dirs)
made = 0
try:
    for d in dirs:
        for i in range(16):
            os.close(os.open('%s/t%d' % (d, i), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            made += 1
finally:
    print(made)"
	assert_failure
	assert_line --index 0 1024
	assert_line --index 1 ENOSPC
	# unlinked files still held open count too: memory is what is bounded
	run py "
d = '$(dev nodeA:0000:10:00.0)'
fds = [os.open(d + '/t%d' % i, os.O_RDWR) for i in range(16)]
for i in range(16):
    os.unlink(d + '/t%d' % i)
try:
    os.open(d + '/new', os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except OSError as e:
    print('held', errno.errorcode[e.errno])
for fd in fds:
    os.close(fd)
os.close(os.open(d + '/new', os.O_CREAT | os.O_EXCL | os.O_WRONLY))
print('after close: created')"
	assert_success
	assert_line --index 0 "held ENOSPC"
	assert_line --index 1 "after close: created"
}

@test "open files: at most 4096 in the mount (ENFILE)" {
	lendfs_mount
	run py "
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
fds = []
try:
    for i in range(4097):
        fds.append(os.open('$MNT/version', os.O_RDONLY))
finally:
    print(len(fds))
    for fd in fds:
        os.close(fd)"
	assert_failure
	assert_line --index 0 4096
	assert_line --index 1 ENFILE
	# all closed: the next open works
	run cat "$MNT/version"
	assert_success
}

@test "config: 64 MiB at most, from a file or a pipe (exit 2)" {
	truncate -s 64M "$BATS_TEST_TMPDIR/big.ini"
	truncate -s +1 "$BATS_TEST_TMPDIR/big.ini"
	check_config "$BATS_TEST_TMPDIR/big.ini"
	assert_failure 2
	assert_output --partial "big.ini: file too large (67108865 bytes, max 67108864)"
	run bash -c "yes '; a comment line of the config, repeated until too big' |
		head -c 67108900 | '$LENDFS' --check -c /dev/stdin \
		--state '$BATS_TEST_TMPDIR/state.db'"
	assert_failure 2
	assert_output --partial "file too large (more than 67108864 bytes)"
}

@test "config: lines of at most 198 bytes (exit 2 with FILE:LINE)" {
	printf '[host a]\n;%s\n' "$(printf 'x%.0s' {1..197})" >"$BATS_TEST_TMPDIR/ok.ini"
	check_config "$BATS_TEST_TMPDIR/ok.ini"
	assert_success
	printf '[host a]\n;%s\n' "$(printf 'x%.0s' {1..198})" >"$BATS_TEST_TMPDIR/bad.ini"
	check_config "$BATS_TEST_TMPDIR/bad.ini"
	assert_failure 2
	assert_output --partial "bad.ini:2: line too long (more than 198 bytes)"
}

@test "config: at most 8 RAM ranges per host or VM" {
	local i ram=0x0-0x0
	for ((i = 1; i < 8; i++)); do
		ram="$ram,0x$((i * 2))-0x$((i * 2))"
	done
	printf '[host a]\nram = %s\n' "$ram" >"$BATS_TEST_TMPDIR/ok.ini"
	check_config "$BATS_TEST_TMPDIR/ok.ini"
	assert_success
	printf '[host a]\nram = %s,0x100-0x100\n' "$ram" >"$BATS_TEST_TMPDIR/bad.ini"
	check_config "$BATS_TEST_TMPDIR/bad.ini"
	assert_failure 2
	assert_output --partial "bad.ini:2: ram: more than 8 ranges"
}
