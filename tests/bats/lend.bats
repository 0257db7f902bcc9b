#!/usr/bin/env bats
# The lend lifecycle through `borrower` (SPEC section 4): lend, the
# symlinks in hosts/, return, idempotent writes, truncation, restart.

load helpers

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

@test "echo host > borrower lends the device" {
	run lend $GPU nodeB
	assert_success
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
	# exactly "nodeB\n"
	run od -An -c "$(dev $GPU)/borrower"
	assert_output "   n   o   d   e   B  \\n"
	run cat "$(dev $GPU)/last_error"
	assert_output ""
	run cat "$MNT/lends"
	assert_output --regexp "^$GPU nodeB "
	assert_equal "${#lines[@]}" 1
	run cat "$(dev $GPU)/path"
	assert_line --index 0 --partial "nodeA"
	assert_line --partial "latency_ns"
	run cat "$(dev $GPU)/windows"
	assert_line --regexp '^lut nodeB '
	run cat "$MNT/hosts/nodeB/state"
	assert_output online
}

@test "a lend appears as symlinks in hosts/LENDER/lent and hosts/BORROWER/borrowed" {
	lend $GPU nodeB
	run ls "$MNT/hosts/nodeA/lent"
	assert_output "$GPU"
	run ls "$MNT/hosts/nodeB/borrowed"
	assert_output "$GPU"
	run readlink "$MNT/hosts/nodeA/lent/$GPU"
	assert_output "../../../devices/$GPU"
	run realpath "$MNT/hosts/nodeA/lent/$GPU"
	assert_output "$(dev $GPU)"
	run realpath "$MNT/hosts/nodeB/borrowed/$GPU"
	assert_output "$(dev $GPU)"
	run cat "$MNT/hosts/nodeB/borrowed/$GPU/state"
	assert_output lent
	run ls "$MNT/hosts/nodeC/borrowed" "$MNT/hosts/nodeB/lent"
	refute_output --partial "$GPU"
}

@test "echo > borrower returns the device; the symlinks go away" {
	lend $GPU nodeB
	run bash -c "echo > '$(dev $GPU)/borrower'"
	assert_success
	run cat "$(dev $GPU)/state"
	assert_output available
	run od -An -c "$(dev $GPU)/borrower"
	assert_output "  \\n"
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run cat "$MNT/lends"
	assert_output ""
	run ls "$MNT/hosts/nodeA/lent" "$MNT/hosts/nodeB/borrowed"
	refute_output --partial "$GPU"
	[ ! -e "$MNT/hosts/nodeA/lent/$GPU" ]
	[ ! -L "$MNT/hosts/nodeB/borrowed/$GPU" ]
}

@test "a device can be lent again after it was returned, to another host" {
	lend $GPU nodeB
	lend $GPU ""
	run lend $GPU nodeC
	assert_success
	run cat "$(dev $GPU)/borrower"
	assert_output nodeC
	run ls "$MNT/hosts/nodeC/borrowed"
	assert_output "$GPU"
}

@test "writing the current value again is a successful no-op" {
	lend $GPU nodeB
	before_windows="$(cat "$(dev $GPU)/windows")"
	before_lends="$(cat "$MNT/lends")"
	run lend $GPU nodeB
	assert_success
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$(dev $GPU)/windows"
	assert_output "$before_windows"
	run cat "$MNT/lends"
	assert_output "$before_lends"
	run cat "$(dev $GPU)/last_error"
	assert_output ""
	# and without the trailing newline
	run bash -c "printf nodeB > '$(dev $GPU)/borrower'"
	assert_success
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
}

@test "returning a device that is not lent is a successful no-op" {
	run lend $GPU ""
	assert_success
	run cat "$(dev $GPU)/state"
	assert_output available
	run cat "$(dev $GPU)/last_error"
	assert_output ""
}

@test "truncate alone never acts: truncate -s0 and : > leave the lend" {
	lend $GPU nodeB
	run truncate -s0 "$(dev $GPU)/borrower"
	assert_success
	run bash -c ": > '$(dev $GPU)/borrower'"
	assert_success
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
}

@test "one lender can lend several devices; each borrower sees its own" {
	lend $GPU nodeB
	lend nodeC:0000:5e:00.0 nodeB
	lend $NIC nodeC
	run ls "$MNT/hosts/nodeB/borrowed"
	assert_output "$(printf '%s\n' $GPU nodeC:0000:5e:00.0)"
	run ls "$MNT/hosts/nodeC/borrowed"
	assert_output "$NIC"
	run cat "$MNT/lends"
	assert_equal "${#lines[@]}" 3
}

@test "devices lent to one borrower list each other in peers/" {
	lend $GPU nodeC
	lend $NIC nodeC
	run ls "$(dev $GPU)/peers"
	assert_output "$NIC"
	run cat "$(dev $GPU)/peers/$NIC"
	assert_success
	assert_line --partial "latency_ns"
	run ls "$(dev $NIC)/peers"
	assert_output "$GPU"
}

@test "hosts/HOST/state is writable: offline and back online" {
	run bash -c "echo offline > '$MNT/hosts/nodeC/state'"
	assert_success
	run cat "$MNT/hosts/nodeC/state"
	assert_output offline
	run bash -c "echo online > '$MNT/hosts/nodeC/state'"
	assert_success
	run cat "$MNT/hosts/nodeC/state"
	assert_output online
	run bash -c "echo sideways > '$MNT/hosts/nodeC/state'"
	assert_failure
	assert_output --partial "Invalid argument"
}

@test "an acknowledged lend survives a restart of the daemon" {
	lend $GPU nodeB
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	assert_equal "$LENDFS_STATUS" 0
	"$LENDFS" -f -c "$DEMO" --state "$TMP/state.db" --run-dir "$TMP/run" \
		"$MNT" </dev/null >"$TMP/lendfs.out" 2>>"$TMP/lendfs.log" 3>&- &
	LENDFS_PID=$!
	for ((i = 0; i < MOUNT_WAIT_TENTHS; i++)); do
		[ -e "$MNT/version" ] && break
		sleep 0.1
	done
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
	run ls "$MNT/hosts/nodeB/borrowed"
	assert_output "$GPU"
}

@test "lends and returns are logged by the daemon" {
	lend $GPU nodeB
	lend $GPU ""
	run cat "$TMP/lendfs.log"
	assert_line "lendfs: $GPU: lent to nodeB"
	assert_line "lendfs: $GPU: available"
}

# The system calls of one request (issue 22, docs/PERFORMANCE.md "Where
# the time goes"): one fdatasync, one reply to the kernel for each of its
# OPEN, WRITE and RELEASE, and no cache notification while the kernel
# holds nothing the request changes but the written file itself and
# `version`, which never changes (attr.h `constant`: not invalidated).  A
# notification is a write to /dev/fuse whose header has unique 0 (bytes
# 8-15); a reply carries the request's unique.
@test "a lend and a return each cost one fdatasync and no cache notification" {
	command -v strace >/dev/null
	cat "$MNT/version" >/dev/null # the kernel holds it from here on
	lend $GPU nodeB               # warm: a first lend allocates
	lend $GPU ""
	strace -f -qq -xx -s 16 -e trace=writev,fdatasync,fsync -p "$LENDFS_PID" \
		-o "$TMP/strace" &
	local st=$! notes replies
	sleep 0.5 # attached
	python3 -c '
import os, sys
for i in range(5):
    for value in (b"nodeB\n", b"\n"):
        fd = os.open(sys.argv[1], os.O_WRONLY)
        os.write(fd, value)
        os.close(fd)
' "$(dev $GPU)/borrower"
	sleep 0.2
	kill "$st"
	wait "$st" || true
	run grep -cE '^[0-9]+ +f(data)?sync\(' "$TMP/strace"
	assert_output 10
	notes=$(grep -cE '^[0-9]+ +writev\([0-9]+, \[\{iov_base="(\\x[0-9a-f]{2}){8}(\\x00){8}"' \
		"$TMP/strace" || true)
	replies=$(($(grep -cE '^[0-9]+ +writev\(' "$TMP/strace") - notes))
	echo "# 5 lends and 5 returns: $replies replies, $notes notifications" >&3
	[ "$notes" -eq 0 ]
	# OPEN, WRITE and RELEASE of each (a LOOKUP more if an entry expired)
	[ "$replies" -ge 30 ]
	[ "$replies" -le 36 ]
	run cat "$(dev $GPU)/state"
	assert_output available
}
