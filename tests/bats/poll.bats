#!/usr/bin/env bats
# poll(2), select(2) and epoll(7) on the attributes of a device, of a host
# and on `lends` (issue 18, SPEC section 8): sysfs semantics.  A poller
# sleeps while the file does not change, wakes (POLLPRI|POLLERR|POLLIN)
# when it does, whoever changed it; `lendctl wait` is built on it.

load helpers

LENDCTL="$ROOT/contrib/lendctl"

setup() {
	lendfs_mount
	export LENDFS_MOUNT="$MNT" LENDFS_WAIT="$BUILD_DIR/lendfs-wait"
}

teardown() {
	pollers_stop
	lendfs_unmount
}

@test "a poller on state sleeps while nothing changes: a 2 s poll times out" {
	poller idle "$(dev $GPU)/state" 2
	poll_done "$TMP/idle.out"
	run cat "$TMP/idle.out"
	assert_line timeout
	assert_line "now available"
}

@test "poll, select and epoll wake within the bound of a lend by another process" {
	local how t0
	for how in poll select epoll; do
		poller "$how" "$(dev $GPU)/state" 10 "$how"
		lend $GPU nodeB
		t0=$(date +%s%N)
		woke_within "$how" "$t0"
		poll_done "$TMP/$how.out"
		run cat "$TMP/$how.out"
		assert_line --regexp '^woken [0-9]+ [0-9]+$'
		assert_line "now lent"
		lend $GPU ""
	done
}

@test "every pollable file wakes on its own change, and only then" {
	poller state "$(dev $GPU)/state" 10
	poller borrower "$(dev $GPU)/borrower" 10
	poller error "$(dev $GPU)/last_error" 3
	poller lends "$MNT/lends" 10
	poller nic "$(dev $NIC)/state" 3
	lend $GPU nodeB
	wait_line "$TMP/state.out" '^now lent$'
	wait_line "$TMP/borrower.out" '^now nodeB$'
	wait_line "$TMP/lends.out" "^now $GPU nodeB "
	# a lend that changes nothing else of the GPU, and nothing of the NIC
	poll_done "$TMP/error.out"
	poll_done "$TMP/nic.out"
	run cat "$TMP/error.out" "$TMP/nic.out"
	refute_line --regexp '^woken'
	# a failed request changes last_error alone
	poller error2 "$(dev $GPU)/last_error" 10
	poller state2 "$(dev $GPU)/state" 2
	assert_lend_fails $GPU nodeC EBUSY "Device or resource busy"
	wait_line "$TMP/error2.out" '^now EBUSY: '
	poll_done "$TMP/state2.out"
	run cat "$TMP/state2.out"
	assert_line timeout
}

@test "hosts/HOST/state wakes when the host goes offline and back" {
	poller host "$MNT/hosts/nodeD/state" 10
	echo offline >"$MNT/hosts/nodeD/state"
	wait_line "$TMP/host.out" '^now offline$'
	poller host2 "$MNT/hosts/nodeD/state" 10
	echo online >"$MNT/hosts/nodeD/state"
	wait_line "$TMP/host2.out" '^now online$'
}

@test "a descriptor that read the new value sleeps again; one that did not wakes at once" {
	poller first "$(dev $GPU)/state" 10
	lend $GPU nodeB
	wait_line "$TMP/first.out" '^now lent$'
	# a fresh descriptor has seen "lent": it sleeps
	poller second "$(dev $GPU)/state" 2
	poll_done "$TMP/second.out"
	run cat "$TMP/second.out"
	assert_line timeout
}

# A change renders a file at once only when a poller waits on it; one made
# while nobody polls is counted by the next poll or read (watch.c settle()).
@test "a change made while nobody polls wakes the next poll at once; a read settles it" {
	run timeout 20 python3 -c '
import os, select, sys, time
dev = sys.argv[1]
fd = os.open(dev + "/state", os.O_RDONLY)
print("was", os.pread(fd, 64, 0).decode().strip())
other = os.open(dev + "/state", os.O_RDONLY)
os.pread(other, 64, 0)
w = os.open(dev + "/borrower", os.O_WRONLY)
os.write(w, b"nodeB\n")
os.close(w)
p = select.poll()
p.register(fd, select.POLLPRI)
t = time.monotonic()
ev = p.poll(5000)
print("woken" if ev else "timeout", int((time.monotonic() - t) * 1000))
print("now", os.pread(fd, 64, 0).decode().strip())
print("again", "woken" if p.poll(1000) else "timeout")
# the other descriptor read before the change: it wakes too, at once
q = select.poll()
q.register(other, select.POLLPRI)
print("other", "woken" if q.poll(5000) else "timeout")
# a change, then a read before any poll: that read saw it, the poll sleeps
# (fresh descriptors: a poll that timed out leaves its handle waiting)
os.close(fd)
os.close(other)
fd = os.open(dev + "/state", os.O_RDONLY)
os.pread(fd, 64, 0)
w = os.open(dev + "/borrower", os.O_WRONLY)
os.write(w, b"\n")
os.close(w)
print("read", os.pread(fd, 64, 0).decode().strip())
p = select.poll()
p.register(fd, select.POLLPRI)
print("after read", "woken" if p.poll(1000) else "timeout")
# opened, never read: a change since the open wakes its first poll
os.close(fd)
fd = os.open(dev + "/state", os.O_RDONLY)
w = os.open(dev + "/borrower", os.O_WRONLY)
os.write(w, b"nodeB\n")
os.close(w)
p = select.poll()
p.register(fd, select.POLLPRI)
print("unread", "woken" if p.poll(5000) else "timeout")
' "$(dev $GPU)"
	assert_success
	assert_line "was available"
	assert_line --regexp '^woken [0-9]+$'
	local ms
	ms=$(printf '%s\n' "${lines[@]}" | sed -n 's/^woken //p')
	[ "$ms" -lt 1000 ]
	assert_line "now lent"
	assert_line "again timeout"
	assert_line "other woken"
	assert_line "read available"
	assert_line "after read timeout"
	assert_line "unread woken"
}

@test "files that are not watched are always ready, like regular files" {
	run timeout 5 python3 -c '
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
p = select.poll(); p.register(fd, select.POLLIN)
print(p.poll(3000))' "$MNT/version"
	assert_success
	assert_output --regexp '^\[\([0-9]+, (1|65|5|69|325|261|325)\)\]$'
}

@test "1,000 pollers on 1,000 devices: a lend wakes exactly its poller; threads stay bounded" {
	local conf="$BATS_TEST_TMPDIR/big.ini" ids threads_before threads_after
	local target borrower
	lendfs_unmount
	sh "$ROOT/tests/bench/genconf.sh" 1000 >"$conf"
	lendfs_mount "$conf"
	ids=$(ls "$MNT/devices")
	[ "$(echo "$ids" | wc -l)" -eq 1000 ]
	threads_before=$(awk '/^Threads:/ { print $2 }' "/proc/$LENDFS_PID/status")
	# shellcheck disable=SC2046
	python3 "$POLLERS" many 3 $(for i in $ids; do echo "$MNT/devices/$i/state"; done) \
		>"$TMP/many.out" 2>&1 &
	POLLER_PIDS="$!"
	wait_line "$TMP/many.out" '^ready$'
	threads_after=$(awk '/^Threads:/ { print $2 }' "/proc/$LENDFS_PID/status")
	echo "daemon threads: $threads_before before, $threads_after with 1,000 pollers" >&2
	[ "$threads_after" -le $((threads_before + 16)) ]
	target=$(echo "$ids" | sed -n 500p)
	borrower=node0
	[ "${target%%:*}" != node0 ] || borrower=node1
	echo "$borrower" >"$MNT/devices/$target/borrower"
	wait_line "$TMP/many.out" '^done '
	run cat "$TMP/many.out"
	assert_line "woken $MNT/devices/$target/state"
	assert_line "done 1"
}

@test "lendctl wait: returns on the change, exits 1 on timeout, 2 on bad arguments" {
	local t0 t1
	run "$LENDCTL" wait $GPU available
	assert_success
	# it returns within WAKE_MS of the write that made the change
	( "$LENDCTL" wait $GPU lent --timeout 10; echo "rc $? $(date +%s%N)" ) \
		>"$TMP/wait.out" 2>&1 &
	sleep 0.5
	echo nodeB >"$(dev $GPU)/borrower"
	t0=$(date +%s%N)
	wait_line "$TMP/wait.out" '^rc '
	run awk '$1 == "rc" { print $2 }' "$TMP/wait.out"
	assert_output 0
	t1=$(awk '$1 == "rc" { print $3 }' "$TMP/wait.out")
	echo "lendctl wait returned $(((t1 - t0) / 1000000)) ms after the write" >&2
	[ $(((t1 - t0) / 1000000)) -le "$WAKE_MS" ]
	t0=$(date +%s%N)
	run "$LENDCTL" wait $GPU available --timeout 1
	t1=$(date +%s%N)
	assert_failure 1
	assert_output --partial "timed out"
	echo "timeout 1 took $(((t1 - t0) / 1000000)) ms" >&2
	[ $(((t1 - t0) / 1000000)) -ge 1000 ]
	[ $(((t1 - t0) / 1000000)) -lt 3000 ]
	run "$LENDCTL" wait $GPU sleeping
	assert_failure 2
	assert_output --partial "unknown state 'sleeping'"
	run "$LENDCTL" wait nodeZ:0000:00:00.0 lent
	assert_failure 2
	assert_output --partial "no device nodeZ:0000:00:00.0"
	run "$LENDCTL" wait $GPU lent --timeout soon
	assert_failure 2
	assert_output --partial "invalid timeout 'soon'"
	run "$LENDCTL" wait $GPU
	assert_failure 2
}
