#!/usr/bin/env bats
# Leases (SPEC section 9): devices/ID/lease on one daemon with the SQLite
# store.  A lend with a lease ends on time, through the return path of
# `echo > borrower` (teardown registers checked by lendfs_unmount), with
# an `expired` event and last_error ETIME; the deadline is wall-clock and
# durable: it survives a crash and runs out while the daemon is down.

load helpers

setup() {
	lendfs_mount
}

teardown() {
	pollers_stop
	lendfs_unmount
}

lease() {
	cat "$(dev "$1")/lease"
}

# set_lease ID VALUE: one write of "VALUE\n" to the lease file.
set_lease() {
	echo "$2" >"$(dev "$1")/lease"
}

# write_once FILE BYTES: one write(2) of BYTES (\0 \n ... escapes).
write_once() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))' "$1" "$2"
}

state_is() {
	[ "$(cat "$(dev "$1")/state")" = "$2" ]
}

# wait_state ID STATE TENTHS: poll state every 50 ms for at most TENTHS/10 s.
wait_state() {
	local i
	for ((i = 0; i < $3 * 2; i++)); do
		state_is "$1" "$2" && return 0
		sleep 0.05
	done
	state_is "$1" "$2"
}

# with_default_lease N: a copy of the demo config with [cluster]
# default_lease = N (its line 11), in $TMP/lease.ini.
with_default_lease() {
	sed "/^\[cluster\]/a default_lease = $1" "$DEMO" >"$TMP/lease.ini"
}

@test "lease is empty while the device is not lent, and while its lend has none" {
	run lease $GPU
	assert_success
	assert_output ""
	lend $GPU nodeB
	run lease $GPU
	assert_success
	assert_output ""
	run cat "$MNT/lends"
	refute_output --partial expires
	# writable as borrower is (0664, or 0644 without the write group)
	run stat -c %a "$(dev $GPU)/lease"
	assert_output "$(stat -c %a "$(dev $GPU)/borrower")"
}

@test "a lease on a device that is not lent: EINVAL with the reason, nothing else changes" {
	run bash -c "echo 10 > '$(dev $GPU)/lease'"
	assert_failure
	assert_output --partial "Invalid argument"
	run cat "$(dev $GPU)/last_error"
	assert_output "EINVAL: $GPU is not lent (available): only a lend can have a lease"
	run cat "$(dev $GPU)/state"
	assert_output available
	run lease $GPU
	assert_output ""
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU failed request=lease errno=EINVAL reason=.*not lent"
	refute_output --partial lease-set
}

@test "a read rounds the seconds left up; lends shows expires EPOCH" {
	lend $GPU nodeB
	local t0
	t0=$(date +%s)
	set_lease $GPU 30
	run lease $GPU
	assert_output 30
	sleep 1.2
	run lease $GPU
	assert_output 29
	run cat "$MNT/lends"
	assert_output --regexp "^$GPU nodeB since [0-9]+ windows [0-9]+ latency_ns [0-9]+ expires [0-9]+$"
	local exp
	exp=$(awk '{ print $NF }' "$MNT/lends")
	[ "$exp" -ge $((t0 + 29)) ]
	[ "$exp" -le $((t0 + 31)) ]
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU lease-set borrower=nodeB seconds=30 expires=[0-9T:-]+Z "
}

@test "a 2 s lease returns the device within 2.5 s, as echo > borrower would" {
	lend $GPU nodeB
	local t0 t1
	t0=$(date +%s%N)
	set_lease $GPU 2
	run lease $GPU
	assert_output 2
	wait_state $GPU available 25
	t1=$(date +%s%N)
	echo "returned $(((t1 - t0) / 1000000)) ms after the lease was set" >&2
	[ $(((t1 - t0) / 1000000)) -ge 1900 ]
	[ $(((t1 - t0) / 1000000)) -le 2500 ]
	run cat "$(dev $GPU)/borrower"
	assert_output ""
	run lease $GPU
	assert_output ""
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run cat "$MNT/lends"
	assert_output ""
	run ls "$MNT/hosts/nodeB/borrowed"
	assert_output ""
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^ETIME: lease expired at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
	# the events: set, expired (with the same time), then the return
	local at
	at=$(sed 's/.* at //' "$(dev $GPU)/last_error")
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU lease-set borrower=nodeB seconds=2 expires=$at "
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU expired borrower=nodeB deadline=$at cause=lease$"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU returned borrower=nodeB cause=lease$"
	run grep -E " $GPU (expired|returning|returned) " "$MNT/events"
	assert_line --index 0 --partial " expired "
	assert_line --index 1 --partial " returning "
	assert_line --index 2 --partial " returned "
	run grep '^lendfs_lease_expiries_total ' "$MNT/metrics"
	assert_output "lendfs_lease_expiries_total 1"
	# the record is gone from the store: a restart finds nothing to recover
	lendfs_crash_restart
	run cat "$(dev $GPU)/state"
	assert_output available
	# and the device lends again
	lend $GPU nodeC
	run cat "$(dev $GPU)/state"
	assert_output lent
}

@test "a renewal extends the lease" {
	lend $GPU nodeB
	set_lease $GPU 3
	sleep 1.5
	set_lease $GPU 4
	run lease $GPU
	assert_output 4
	sleep 2 # 3.5 s after the first lease: it would have run out
	run cat "$(dev $GPU)/state"
	assert_output lent
	run lease $GPU
	assert_output --regexp '^[12]$'
	wait_state $GPU available 40
	run grep -c " $GPU lease-set " "$MNT/events"
	assert_output 2
}

@test "0 or an empty value removes the lease" {
	lend $GPU nodeB
	set_lease $GPU 1
	set_lease $GPU 0
	run lease $GPU
	assert_output ""
	set_lease $GPU 5
	printf '' >"$(dev $GPU)/lease" # O_TRUNC and no write: no request
	run lease $GPU
	assert_output 5
	echo >"$(dev $GPU)/lease"
	run lease $GPU
	assert_output ""
	sleep 1.5
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$MNT/lends"
	refute_output --partial expires
	run grep -c " $GPU lease-set borrower=nodeB seconds=none " "$MNT/events"
	assert_output 2
	run grep -c " $GPU expired " "$MNT/events"
	assert_output 0
}

@test "malformed lease values: EINVAL, the lease unchanged, only last_error changes" {
	lend $GPU nodeB
	set_lease $GPU 600
	local v
	for v in abc -1 +5 ' 5' '5 ' 1.5 0x10 31536001 99999999999999999999 '1 2' \
		"$(printf '%020d' 7)"; do
		run bash -c 'printf "%s\n" "$1" > "$2"' _ "$v" "$(dev $GPU)/lease"
		assert_failure
		assert_output --partial "Invalid argument"
		run cat "$(dev $GPU)/last_error"
		assert_output --regexp "^EINVAL: (malformed lease|lease of [0-9]+ s is out of range|lease too long)"
	done
	# a NUL, and a second line, each in one write(2)
	run write_once "$(dev $GPU)/lease" '5\0'
	assert_failure
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "byte 0x00 at offset 1"
	run write_once "$(dev $GPU)/lease" '5\n5\n'
	assert_failure
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "byte 0x0a at offset 1"
	run lease $GPU
	[ "$output" -ge 599 ]
	[ "$output" -le 600 ]
	run cat "$(dev $GPU)/state"
	assert_output lent
	run grep -c " $GPU lease-set " "$MNT/events"
	assert_output 1
	# the largest lease is accepted
	set_lease $GPU 31536000
	run lease $GPU
	assert_output 31536000
}

@test "default_lease gives every new lend a lease; config errors name file:line" {
	with_default_lease 2
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	lendfs_remount "$TMP/lease.ini"
	lend $GPU nodeB
	run lease $GPU
	assert_output 2
	run cat "$MNT/lends"
	assert_output --partial " expires "
	wait_state $GPU available 25
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "ETIME: lease expired at "
	# a lease written after the lend replaces the default one
	lend $NIC nodeA
	set_lease $NIC 0
	run lease $NIC
	assert_output ""
	# bad values are refused at start, with the file and line
	local bad
	for bad in 31536001 -1 soon; do
		mkdir -p "$TMP/mnt2"
		sed "/^\[cluster\]/a default_lease = $bad" "$DEMO" >"$TMP/bad.ini"
		run "$LENDFS" -f -c "$TMP/bad.ini" --state none --run-dir "$TMP/run2" "$TMP/mnt2"
		assert_failure 2
		assert_output --regexp "$TMP/bad.ini:11: .*default_lease"
	done
}

@test "a lease survives a crash: kill -9 and start again, the deadline is kept and enforced" {
	lend $GPU nodeB
	set_lease $GPU 4
	local exp
	exp=$(awk '{ print $NF }' "$MNT/lends")
	lendfs_crash_restart
	run cat "$(dev $GPU)/state"
	assert_output lent
	run lease $GPU
	[ "$output" -ge 1 ]
	[ "$output" -le 4 ]
	run awk '{ print $NF }' "$MNT/lends"
	assert_output "$exp"
	# enforced after the restart, with no write after it
	wait_state $GPU available 50
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "ETIME: lease expired at "
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU expired borrower=nodeB deadline=[0-9T:-]+Z cause=lease$"
}

@test "a lease that runs out while the daemon is down: the device comes back during recovery" {
	lend $GPU nodeB
	set_lease $GPU 2
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 0 ]
	sleep 2.5
	lendfs_remount
	# at once: recovery returned it before the mount came up
	run cat "$(dev $GPU)/state"
	assert_output available
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^ETIME: lease expired at .*Z$"
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU expired borrower=nodeB deadline=[0-9T:-]+Z cause=recovery$"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU returned borrower=nodeB cause=recovery$"
	run cat "$MNT/lends"
	assert_output ""
	grep -q "lease of $GPU expired at" "$TMP/lendfs.log"
}

@test "pollers of lease and state wake when the lease runs out" {
	lend $GPU nodeB
	# 4 s: the three pollers (a python each) must be ready before it ends
	set_lease $GPU 4
	local t0
	t0=$(($(date +%s%N) + 4000000000))
	poller state "$(dev $GPU)/state" 10
	poller lease "$(dev $GPU)/lease" 10
	poller lends "$MNT/lends" 10
	woke_within state "$t0"
	woke_within lease "$t0"
	woke_within lends "$t0"
	poll_done "$TMP/state.out"
	run grep '^now' "$TMP/state.out"
	assert_output "now available"
}

@test "a lease write wakes pollers of lease" {
	lend $GPU nodeB
	poller lease "$(dev $GPU)/lease" 10
	local t0
	t0=$(date +%s%N)
	set_lease $GPU 100
	woke_within lease "$t0"
	poll_done "$TMP/lease.out"
	run grep '^now' "$TMP/lease.out"
	assert_output "now 100"
}

@test "a lease write that fails in the store changes nothing; a crash after the store finds the lease stored" {
	lend $GPU nodeB
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	LENDFS_FAULT=store_lease:1 lendfs_remount
	run bash -c "echo 60 > '$(dev $GPU)/lease'"
	assert_failure
	assert_output --partial "Input/output error"
	run lease $GPU
	assert_output ""
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "EIO: injected fault at store_lease #1"
	run cat "$MNT/events"
	refute_output --partial lease-set
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	# the record is written before the device shows it: a crash between
	# the two (the write never returned) restarts with the new deadline
	LENDFS_FAULT=lease.publish:1:crash lendfs_remount
	run bash -c "echo 60 > '$(dev $GPU)/lease'"
	assert_failure
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 86 ]
	fusermount3 -uz "$MNT"
	lendfs_remount
	run cat "$(dev $GPU)/state"
	assert_output lent
	run lease $GPU
	[ "$output" -ge 55 ]
	[ "$output" -le 60 ]
	grep -q "lease.publish" "$TMP/lendfs.log"
}
