#!/usr/bin/env bats
# Compositions (SPEC section 10, issue 19): compositions/NAME/, devices
# lent to one borrower together or not at all, one-daemon mode (SQLite).
# Every test ends with registers_check (helpers.bash): the sim's
# registers hold exactly the windows of the stored lends, so a
# composition's failed lend that left a window behind fails the test.

load helpers

C1=nodeC:0000:5e:00.0
C2=nodeC:0000:af:00.0

setup() {
	lendfs_mount
}

teardown() {
	pollers_stop
	lendfs_unmount
}

comp() {
	echo "$MNT/compositions/$1"
}

# put FILE VALUE: VALUE (printf %b) in ONE write(2), as `cat LIST > FILE`
# does (bash's printf and echo write line by line: one request a line).
put() {
	printf '%b' "$2" >"$TMP/value"
	cat "$TMP/value" >"$1"
}

# write_fails FILE VALUE MESSAGE: one write of VALUE (printf %b) fails.
write_fails() {
	printf '%b' "$2" >"$TMP/value"
	run bash -c 'cat "$1" > "$2"' _ "$TMP/value" "$1"
	assert_failure
	assert_output --partial "write error: $3"
}

@test "compositions/ is at the root; mkdir makes one, rmdir removes it" {
	run ls "$MNT"
	assert_line compositions
	run ls "$MNT/compositions"
	assert_output ""
	mkdir "$(comp job1)"
	run ls "$MNT/compositions"
	assert_output job1
	run ls "$(comp job1)"
	assert_output "$(printf '%s\n' borrower devices last_error lease plans state)"
	run cat "$(comp job1)/state" "$(comp job1)/devices" "$(comp job1)/borrower"
	assert_output "$(printf 'available\n\n')"
	run mkdir "$(comp job1)"
	assert_failure
	assert_output --partial "File exists"
	rmdir "$(comp job1)"
	run ls "$MNT/compositions"
	assert_output ""
	run rmdir "$(comp job1)"
	assert_failure
	assert_output --partial "No such file"
}

@test "mkdir refuses names outside [A-Za-z0-9_.-]{1,64}" {
	run mkdir "$(comp 'a b')"
	assert_failure
	assert_output --partial "Invalid argument"
	run mkdir "$(comp 'x@y')"
	assert_failure
	assert_output --partial "Invalid argument"
	run mkdir "$(comp "$(printf 'a%.0s' $(seq 65))")"
	assert_failure
	assert_output --partial "Invalid argument"
	mkdir "$(comp "$(printf 'a%.0s' $(seq 64))")"
	mkdir "$(comp A-z_0.9)"
	run ls "$MNT/compositions"
	assert_equal "${#lines[@]}" 2
	run mkdir "$MNT/compositions/A-z_0.9/sub"
	assert_failure
}

@test "devices: a write replaces the whole list" {
	mkdir "$(comp j)"
	put "$(comp j)/devices" "$GPU\n$C1\n"
	run cat "$(comp j)/devices"
	assert_output "$(printf '%s\n%s' "$GPU" "$C1")"
	echo "$C2" >"$(comp j)/devices"
	run cat "$(comp j)/devices"
	assert_output "$C2"
	echo >"$(comp j)/devices"
	run cat "$(comp j)/devices"
	assert_output ""
	run cat "$(comp j)/last_error"
	assert_output ""
}

@test "devices: unknown ID EINVAL, in another composition EBUSY, malformed EINVAL; nothing changes" {
	mkdir "$(comp j)" "$(comp k)"
	echo "$GPU" >"$(comp j)/devices"
	echo "$C1" >"$(comp k)/devices"
	write_fails "$(comp j)/devices" "$C2\nnodeA:0000:99:00.0\n" "Invalid argument"
	run cat "$(comp j)/last_error"
	assert_output "EINVAL: unknown device nodeA:0000:99:00.0"
	write_fails "$(comp j)/devices" "$GPU\n$C1\n" "Device or resource busy"
	run cat "$(comp j)/last_error"
	assert_output "EBUSY: $C1 is in composition k"
	write_fails "$(comp j)/devices" "$GPU\n$GPU\n" "Invalid argument"
	write_fails "$(comp j)/devices" "$GPU\n\n$C2\n" "Invalid argument"
	write_fails "$(comp j)/devices" "$GPU\n\n" "Invalid argument"
	write_fails "$(comp j)/devices" "\n\n" "Invalid argument"
	write_fails "$(comp j)/devices" "$GPU\0\n" "Invalid argument"
	write_fails "$(comp j)/devices" "$GPU $C2\n" "Invalid argument"
	run cat "$(comp j)/devices"
	assert_output "$GPU"
	echo "$C2" >"$(comp j)/devices"
	run cat "$(comp j)/last_error"
	assert_output ""
}

@test "a composition lends all its devices, then returns them all, with events" {
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	echo nodeB >"$(comp job)/borrower"
	run cat "$(comp job)/state" "$(comp job)/borrower" "$(comp job)/last_error"
	assert_output "$(printf 'lent\nnodeB\n')"
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/state" "$(dev $d)/borrower"
		assert_output "$(printf 'lent\nnodeB')"
	done
	run ls "$MNT/hosts/nodeB/borrowed"
	assert_equal "${#lines[@]}" 3
	# the devices of one borrower reach each other (P2P, as separate lends)
	run ls "$(dev $GPU)/peers"
	assert_line "$C1"
	assert_line "$C2"
	run grep -E ' composition:job composition-lent .*borrower=nodeB' "$MNT/events"
	assert_success
	assert_output --partial "devices=$GPU,$C1,$C2"
	# the same value again is a no-op
	echo nodeB >"$(comp job)/borrower"
	run bash -c "echo nodeD > '$(comp job)/borrower'"
	assert_failure
	assert_output --partial "Device or resource busy"
	echo >"$(comp job)/borrower"
	run cat "$(comp job)/state" "$(comp job)/borrower"
	assert_output "$(printf 'available\n')"
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/state"
		assert_output available
	done
	run grep -cE ' composition:job composition-returned .*borrower=nodeB' "$MNT/events"
	assert_output 1
	run cat "$MNT/lends"
	assert_output ""
}

@test "all or nothing: a busy second device leaves the first available and the registers untouched" {
	echo nodeD >"$(dev $C1)/borrower"
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	run bash -c "echo nodeB > '$(comp job)/borrower'"
	assert_failure
	assert_output --partial "Device or resource busy"
	run cat "$(comp job)/last_error"
	assert_output --regexp "^EBUSY: $C1: .+"
	run cat "$(comp job)/state" "$(comp job)/borrower"
	assert_output "$(printf 'available\n')"
	run cat "$(dev $GPU)/state"
	assert_output available
	run cat "$(dev $C2)/state"
	assert_output available
	run cat "$(dev $C1)/borrower"
	assert_output nodeD
	run cat "$MNT/lends"
	assert_output --regexp "^$C1 nodeD "
	assert_equal "${#lines[@]}" 1
	run "$LENDFS" --check -c "$LENDFS_CONFIG" --state "$TMP/state.db" --run-dir "$TMP/run"
	assert_success
	run grep -c 'composition-lent' "$MNT/events"
	assert_output 0
}

@test "a member of a lent composition refuses its own borrower writes; devices and rmdir are EBUSY" {
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n"
	# available: its members are free to be lent on their own
	echo nodeD >"$(dev $C2)/borrower"
	echo nodeB >"$(comp job)/borrower"
	run bash -c "echo > '$(dev $GPU)/borrower'"
	assert_failure
	assert_output --partial "Device or resource busy"
	run cat "$(dev $GPU)/last_error"
	assert_output "EBUSY: part of composition job"
	run cat "$(dev $GPU)/state"
	assert_output lent
	run bash -c "echo nodeD > '$(dev $C1)/borrower'"
	assert_failure
	write_fails "$(comp job)/devices" "$GPU\n" "Device or resource busy"
	run rmdir "$(comp job)"
	assert_failure
	assert_output --partial "Device or resource busy"
	echo >"$(comp job)/borrower"
	echo >"$(dev $GPU)/borrower"
	rmdir "$(comp job)"
	echo >"$(dev $C2)/borrower"
}

@test "a composition lends to a VM borrower (a [vm] section) as its devices would" {
	local conf
	lendfs_unmount
	conf="$(mktemp)"
	{ cat "$DEMO"; printf '\n[vm nodeB/g1]\nram = 0x0-0x3fffffff\n'; } >"$conf"
	lendfs_mount "$conf"
	mv "$conf" "$TMP/vm.ini"
	LENDFS_CONFIG="$TMP/vm.ini"
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n"
	echo vm:nodeB/g1 >"$(comp job)/borrower"
	run cat "$(comp job)/state" "$(comp job)/borrower"
	assert_output "$(printf 'lent\nvm:nodeB/g1')"
	run ls "$MNT/hosts/nodeB/vms/g1/devices"
	assert_output "$(printf '%s\n%s' "$GPU" "$C1")"
	run bash -c "echo > '$(dev $C1)/borrower'"
	assert_failure
	echo >"$(comp job)/borrower"
	run ls "$MNT/hosts/nodeB/vms/g1/devices"
	assert_output ""
}

@test "borrower: malformed values are EINVAL; an empty list is EINVAL" {
	mkdir "$(comp job)"
	write_fails "$(comp job)/borrower" "nodeB\n" "Invalid argument"
	run cat "$(comp job)/last_error"
	assert_output "EINVAL: composition job has no devices"
	echo "$GPU" >"$(comp job)/devices"
	write_fails "$(comp job)/borrower" "no\0deB\n" "Invalid argument"
	write_fails "$(comp job)/borrower" "nodeQ\n" "Invalid argument"
	run cat "$(comp job)/last_error"
	assert_output --regexp "^EINVAL: $GPU: .+"
	run cat "$(comp job)/state"
	assert_output available
}

@test "borrower, state and last_error of a composition are pollable" {
	local t0
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n"
	poller state "$(comp job)/state" 10
	poller borrower "$(comp job)/borrower" 10
	poller idle "$(comp job)/last_error" 2
	# pollable: they sleep while nothing changes
	sleep 0.3
	run grep -h '^woken' "$TMP/state.out" "$TMP/borrower.out" "$TMP/idle.out"
	assert_output ""
	echo nodeB >"$(comp job)/borrower"
	t0=$(date +%s%N)
	woke_within state "$t0"
	woke_within borrower "$t0"
	wait_line "$TMP/idle.out" '^timeout'
	# a failed write changes last_error: its poller wakes
	poller error "$(comp job)/last_error" 10
	run bash -c "echo nodeD > '$(comp job)/borrower'"
	assert_failure
	t0=$(date +%s%N)
	woke_within error "$t0"
	echo >"$(comp job)/borrower"
}

@test "a restart keeps the compositions, their lists and a lent composition" {
	mkdir "$(comp a)" "$(comp b)"
	put "$(comp a)/devices" "$GPU\n$C1\n"
	echo "$C2" >"$(comp b)/devices"
	echo nodeB >"$(comp a)/borrower"
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	lendfs_remount
	run ls "$MNT/compositions"
	assert_output "$(printf 'a\nb')"
	run cat "$(comp a)/devices"
	assert_output "$(printf '%s\n%s' "$GPU" "$C1")"
	run cat "$(comp a)/state" "$(comp a)/borrower"
	assert_output "$(printf 'lent\nnodeB')"
	run cat "$(comp b)/devices"
	assert_output "$C2"
	run bash -c "echo > '$(dev $C1)/borrower'"
	assert_failure
	echo >"$(comp a)/borrower"
	run cat "$MNT/lends"
	assert_output ""
}

# stored_comp NAME: "BORROWER" of its SQLite row ("!VALUE" an intent).
stored_comp() {
	python3 - "$TMP/state.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for (b,) in db.execute("SELECT borrower FROM compositions WHERE name = ?",
                       (sys.argv[2],)):
    print("[%s]" % b)
PY
}

# members_returned: GPU, C1 and C2 available, nothing lent, and
# composition job stored as not lent.
members_returned() {
	local d
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/state"
		assert_output available
	done
	run cat "$MNT/lends"
	assert_output ""
	run stored_comp job
	assert_output "[]"
}

# crash_lend POINT: a daemon that crashes at POINT (LENDFS_FAULT), a
# composition of three devices whose lend to nodeB ends the daemon there,
# then the daemon again on the same state and run directory.
crash_lend() {
	LENDFS_FAULT="$1:crash" lendfs_mount
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	run bash -c "echo nodeB > '$(comp job)/borrower'"
	assert_failure
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 86 ] || { cat "$TMP/lendfs.log" >&2; return 1; }
	grep -q "^lendfs: injected crash at ${1%%:*} #" "$TMP/lendfs.log"
	fusermount3 -uz "$MNT"
	lendfs_remount
}

@test "a crash before a composition's lend is acknowledged ends with none of it lent" {
	lendfs_unmount
	for point in compose.intent:1 lend.done:1 lend.done:2 compose.commit:1; do
		echo "# crash at $point" >&3
		crash_lend "$point"
		run cat "$(comp job)/state" "$(comp job)/borrower"
		assert_output "$(printf 'available\n')"
		members_returned
		run "$LENDFS" --check -c "$LENDFS_CONFIG" --state "$TMP/state.db" --run-dir "$TMP/run"
		assert_success
		# and it can be lent again
		echo nodeB >"$(comp job)/borrower"
		echo >"$(comp job)/borrower"
		lendfs_unmount
	done
}

@test "a crash after a composition's lend is committed ends with all of it lent" {
	lendfs_unmount
	crash_lend compose.done:1
	run cat "$(comp job)/state" "$(comp job)/borrower"
	assert_output "$(printf 'lent\nnodeB')"
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/borrower"
		assert_output nodeB
	done
	run stored_comp job
	assert_output "[nodeB]"
	run bash -c "echo > '$(dev $C2)/borrower'"
	assert_failure
	echo >"$(comp job)/borrower"
	run cat "$MNT/lends"
	assert_output ""
}

@test "a crash in the middle of a composition's return finishes the return" {
	lendfs_unmount
	LENDFS_FAULT="compose.return:2:crash" lendfs_mount
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	echo nodeB >"$(comp job)/borrower"
	run bash -c "echo > '$(comp job)/borrower'"
	assert_failure
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 86 ]
	fusermount3 -uz "$MNT"
	# one device returned before the crash, two still stored lent
	run python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from lends").fetchone()[0])' "$TMP/state.db"
	assert_output 2
	lendfs_remount
	run cat "$(comp job)/state"
	assert_output available
	run cat "$MNT/lends"
	assert_output ""
	run stored_comp job
	assert_output "[]"
}

@test "a failed commit of a composition returns every device it lent" {
	lendfs_unmount
	LENDFS_FAULT="store_compose:1" lendfs_mount
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n"
	run bash -c "echo nodeB > '$(comp job)/borrower'"
	assert_failure
	assert_output --partial "Input/output error"
	run cat "$(comp job)/last_error"
	assert_output --regexp "^EIO: .*injected fault"
	run cat "$(comp job)/state"
	assert_output available
	run cat "$MNT/lends"
	assert_output ""
	run stored_comp job
	assert_output "[]"
	echo nodeB >"$(comp job)/borrower"
	run cat "$(comp job)/state"
	assert_output lent
	echo >"$(comp job)/borrower"
}

# ---- compositions/NAME/lease --------------------------------------------------

# wait_compo NAME STATE TENTHS: poll its state every 50 ms, at most TENTHS/10 s.
wait_compo() {
	local i
	for ((i = 0; i < $3 * 2; i++)); do
		[ "$(cat "$(comp "$1")/state")" = "$2" ] && return 0
		sleep 0.05
	done
	[ "$(cat "$(comp "$1")/state")" = "$2" ]
}

# lent3 NAME: NAME holds GPU (nodeA), C1 and C2 (nodeC), lent to nodeB.
lent3() {
	mkdir "$(comp "$1")"
	put "$(comp "$1")/devices" "$GPU\n$C1\n$C2\n"
	echo nodeB >"$(comp "$1")/borrower"
}

# stored_expires ID: the expires column of ID's stored lend (0: none).
stored_expires() {
	python3 - "$TMP/state.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for (x,) in db.execute("SELECT expires FROM lends WHERE device = ?", (sys.argv[2],)):
    print(x)
PY
}

@test "lease: empty until a lease is set; on a composition that is not lent EINVAL with the reason" {
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n"
	run cat "$(comp job)/lease"
	assert_success
	assert_output ""
	write_fails "$(comp job)/lease" "30\n" "Invalid argument"
	run cat "$(comp job)/last_error"
	assert_output "EINVAL: composition job is not lent (available): only a lend can have a lease"
	run cat "$(comp job)/lease"
	assert_output ""
	echo nodeB >"$(comp job)/borrower"
	run cat "$(comp job)/lease" "$(comp job)/last_error"
	assert_output ""
	run grep -c ' lease-set ' "$MNT/events"
	assert_output 0
}

@test "a lease write sets one deadline on every member at once; a member's own lease write is EBUSY" {
	lent3 job
	echo 600 >"$(comp job)/lease"
	run cat "$(comp job)/lease"
	assert_output 600
	# one deadline, in every member's stored lend
	local x
	x=$(stored_expires $GPU)
	[ "$x" -gt 0 ]
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/lease"
		[ "$output" -ge 595 ]
		[ "$output" -le 600 ]
		run stored_expires $d
		assert_output "$x"
	done
	run grep -c ' expires ' "$MNT/lends"
	assert_output 3
	# a member's own lease is the composition's
	write_fails "$(dev $C1)/lease" "5\n" "Device or resource busy"
	run cat "$(dev $C1)/last_error"
	assert_output "EBUSY: part of composition job"
	run cat "$(dev $C1)/lease"
	[ "$output" -ge 595 ]
	[ "$output" -le 600 ]
	# renewed, then removed
	echo 1200 >"$(comp job)/lease"
	run cat "$(comp job)/lease"
	[ "$output" -ge 1195 ]
	[ "$output" -le 1200 ]
	[ "$(stored_expires $C2)" -gt "$x" ]
	echo 0 >"$(comp job)/lease"
	run cat "$(comp job)/lease" "$(dev $GPU)/lease" "$(dev $C2)/lease"
	assert_output ""
	run grep -c ' expires ' "$MNT/lends"
	assert_output 0
	# events: the composition's lease-set (set, renewed, removed), and each member's
	run grep -E ' composition:job lease-set ' "$MNT/events"
	assert_line --index 0 --regexp "lease-set borrower=nodeB seconds=600 expires=[0-9T:-]+Z "
	assert_line --index 1 --regexp "lease-set borrower=nodeB seconds=1200 expires=[0-9T:-]+Z "
	assert_line --index 2 --regexp "lease-set borrower=nodeB seconds=none "
	run grep -cE " ($GPU|$C1|$C2) lease-set " "$MNT/events"
	assert_output 9
}

@test "a 2 s lease returns the whole composition within 2.5 s, as echo > borrower would" {
	lent3 job
	poller st "$(comp job)/state" 10
	local t0 t1
	t0=$(date +%s%N)
	echo 2 >"$(comp job)/lease"
	wait_compo job available 25
	t1=$(date +%s%N)
	echo "returned $(((t1 - t0) / 1000000)) ms after the lease was set" >&2
	[ $(((t1 - t0) / 1000000)) -ge 1900 ]
	[ $(((t1 - t0) / 1000000)) -le 2500 ]
	poll_done "$TMP/st.out"
	run cat "$(comp job)/borrower" "$(comp job)/lease"
	assert_output ""
	run cat "$(comp job)/last_error"
	assert_output --regexp "^ETIME: lease expired at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
	local at
	at=$(sed 's/.* at //' "$(comp job)/last_error")
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/state" "$(dev $d)/borrower" "$(dev $d)/windows"
		assert_output "available"
		run cat "$(dev $d)/last_error"
		assert_output "ETIME: lease expired at $at"
	done
	run cat "$MNT/lends"
	assert_output ""
	run stored_comp job
	assert_output "[]"
	# events: the composition expired, then each member (last first), then returned
	run grep -E " (composition:job|$GPU|$C1|$C2) (expired|returned|composition-returned) " "$MNT/events"
	assert_line --index 0 --regexp " composition:job expired borrower=nodeB deadline=$at cause=lease$"
	assert_line --index 1 --regexp " $C2 expired borrower=nodeB deadline=$at cause=lease composition=job$"
	assert_line --index 2 --regexp " $C2 returned borrower=nodeB cause=lease$"
	assert_line --index 5 --regexp " $GPU expired borrower=nodeB deadline=$at cause=lease composition=job$"
	assert_line --index 7 --regexp " composition:job composition-returned borrower=nodeB cause=lease$"
	run grep '^lendfs_lease_expiries_total ' "$MNT/metrics"
	assert_output "lendfs_lease_expiries_total 3"
	grep -q "composition job: lease expired at $at: returned" "$TMP/lendfs.log"
	# and it lends again
	echo nodeD >"$(comp job)/borrower"
	run cat "$(comp job)/state" "$(comp job)/last_error"
	assert_output "$(printf 'lent\n')"
	echo >"$(comp job)/borrower"
}

@test "members never expire one by one: default_lease gives each its own deadline, the earliest returns them all" {
	sed "/^\[cluster\]/a default_lease = 2" "$DEMO" >"$TMP/lease.ini"
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	lendfs_remount "$TMP/lease.ini"
	lent3 job
	run cat "$(comp job)/lease"
	assert_output 2
	# the members' deadlines: one a lend, in list order
	local g c2
	g=$(stored_expires $GPU)
	c2=$(stored_expires $C2)
	[ "$g" -gt 0 ]
	[ "$c2" -ge "$g" ]
	wait_compo job available 30
	run cat "$(comp job)/last_error"
	assert_output --partial "ETIME: lease expired at "
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/state"
		assert_output available
	done
	run stored_comp job
	assert_output "[]"
	# one expiry of the composition, none of a member on its own
	run grep -c " composition:job expired " "$MNT/events"
	assert_output 1
	run grep -cE " ($GPU|$C1|$C2) expired .*composition=job$" "$MNT/events"
	assert_output 3
	run grep -cE " ($GPU|$C1|$C2) expired .*cause=lease$" "$MNT/events"
	assert_output 0
	# no member went before the composition's expiry
	run grep -nE " (composition:job expired|($GPU|$C1|$C2) returned) " "$MNT/events"
	assert_line --index 0 --partial "composition:job expired"
}

@test "a lease write that fails on its second member changes no member's lease" {
	lendfs_unmount
	LENDFS_FAULT=store_lease:5 lendfs_mount
	lent3 job
	echo 900 >"$(comp job)/lease"
	run bash -c "echo 5 > '$(comp job)/lease'"
	assert_failure
	assert_output --partial "Input/output error"
	run cat "$(comp job)/last_error"
	assert_output "EIO: $C1: injected fault at store_lease #5"
	# the first member has its old deadline back; the others never changed
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/lease"
		[ "$output" -ge 898 ]
		[ "$output" -le 900 ]
	done
	run cat "$(comp job)/state"
	assert_output lent
	run grep -c " composition:job lease-set " "$MNT/events"
	assert_output 1
	echo >"$(comp job)/borrower"
}

@test "a composition's lease survives a crash and is enforced after it" {
	lent3 job
	echo 4 >"$(comp job)/lease"
	lendfs_crash_restart
	run cat "$(comp job)/state"
	assert_output lent
	run cat "$(comp job)/lease"
	[ "$output" -ge 1 ]
	[ "$output" -le 4 ]
	wait_compo job available 50
	run cat "$(comp job)/last_error"
	assert_output --partial "ETIME: lease expired at "
	run cat "$MNT/lends"
	assert_output ""
	run grep -c " composition:job expired .*cause=lease$" "$MNT/events"
	assert_output 1
}

@test "a composition's lease that runs out while the daemon is down: returned whole during recovery" {
	lent3 job
	echo 2 >"$(comp job)/lease"
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 0 ]
	sleep 2.5
	lendfs_remount
	run cat "$(comp job)/state" "$(comp job)/borrower"
	assert_output "$(printf 'available\n')"
	run cat "$(comp job)/last_error"
	assert_output --regexp "^ETIME: lease expired at .*Z$"
	members_returned
	run grep -E " composition:job (expired|composition-returned) " "$MNT/events"
	assert_line --index 0 --regexp "expired borrower=nodeB deadline=[0-9T:-]+Z cause=recovery$"
	assert_line --index 1 --regexp "composition-returned borrower=nodeB cause=recovery$"
}

@test "a composition's lease is pollable: a lease write wakes its pollers, and so does the expiry" {
	lent3 job
	poller lease "$(comp job)/lease" 10
	echo 600 >"$(comp job)/lease"
	local t0
	t0=$(date +%s%N)
	woke_within lease "$t0"
	poll_done "$TMP/lease.out"
	run grep '^now' "$TMP/lease.out"
	assert_output --regexp "^now (599|600)$"
	echo 2 >"$(comp job)/lease"
	poller st "$(comp job)/state" 10
	wait_compo job available 25
	poll_done "$TMP/st.out"
	run grep -c '^woken' "$TMP/st.out"
	assert_output 1
}

@test "a crash in the middle of a composition's lease write: the earliest deadline wins, the composition still goes whole" {
	lendfs_unmount
	# the 5th lease.publish: the first write's three, then the second
	# write's first member published, its second stored but not published
	LENDFS_FAULT="lease.publish:5:crash" lendfs_mount
	lent3 job
	echo 900 >"$(comp job)/lease"
	run bash -c "echo 3 > '$(comp job)/lease'"
	assert_failure
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 86 ]
	fusermount3 -uz "$MNT"
	lendfs_remount
	# two members have the new deadline, one the old: the earliest wins
	run cat "$(comp job)/state"
	assert_output lent
	run cat "$(comp job)/lease"
	[ "$output" -ge 1 ]
	[ "$output" -le 3 ]
	run cat "$(dev $C2)/lease"
	[ "$output" -ge 890 ]
	wait_compo job available 50
	members_returned
	run grep -c " composition:job expired " "$MNT/events"
	assert_output 1
}

# ---- compositions/NAME/plans/HOST ------------------------------------------

# plan_matches NAME HOST: the first line of NAME's plan for HOST is what a
# write of HOST to its borrower then does: "ok" and the write succeeds, or
# "ERRNO: ..." and the write fails with that errno, leaving that last_error.
plan_matches() {
	local first msg
	first=$(head -n 1 "$(comp "$1")/plans/$2")
	echo "# plan of $1 for $2: $first" >&3
	run bash -c "echo '$2' > '$(comp "$1")/borrower'"
	if [ "$first" = ok ]; then
		assert_success
		return
	fi
	assert_failure
	msg=$(python3 -c 'import errno, os, sys; print(os.strerror(getattr(errno, sys.argv[1])))' "${first%%:*}")
	assert_output --partial "write error: $msg"
	run cat "$(comp "$1")/last_error"
	assert_output "$first"
}

# lut_free FILE: its "lut_free ADAPTER N" lines, sorted.
lut_free() {
	grep '^lut_free ' "$1" | sort
}

@test "plans/ has one plan per host; reading one changes and reserves nothing" {
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	run ls "$(comp job)"
	assert_line plans
	run ls "$(comp job)/plans"
	assert_output "$(ls "$MNT/hosts")"
	run cat "$(comp job)/plans/nodeQ"
	assert_failure
	run cat "$(comp job)/plans/nodeB"
	assert_success
	local plan="$output"
	assert_line --index 0 ok
	assert_line "device $GPU"
	assert_line "device $C1"
	assert_line "device $C2"
	assert_line --regexp "^route nodeA -> .*nodeB$"
	assert_line --regexp "^lut_entries nodeB/ntb0 [0-9]+$"
	assert_line --regexp "^p2p $C1 $GPU latency_ns [0-9]+ lut_entries [0-9]+ iommu_mappings [0-9]+$"
	assert_line --regexp "^lut_free nodeB/ntb0 [0-9]+$"
	# nothing changed: no lend, no window, no event, no last_error
	local ev
	ev=$(grep -c . "$MNT/events" || true)
	for _ in 1 2 3; do cat "$(comp job)/plans/nodeB" "$(comp job)/plans/nodeD" >/dev/null; done
	run cat "$MNT/lends" "$(comp job)/last_error"
	assert_output ""
	for d in $GPU $C1 $C2; do
		run cat "$(dev $d)/state" "$(dev $d)/windows"
		assert_output available
	done
	run grep -c . "$MNT/events"
	assert_output "$ev"
	# nor reserved: the same plan again, to the entry
	run diff <(cat "$(comp job)/plans/nodeB") <(echo "$plan")
	assert_success
}

@test "a plan that says ok: the write succeeds and leaves the adapters as the plan said" {
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	cat "$(comp job)/plans/nodeB" >"$TMP/plan"
	plan_matches job nodeB
	run cat "$(comp job)/state"
	assert_output lent
	# what the adapters have left now, from the members' own plans (a
	# no-op plan counts the lend as it is), is what the plan said
	lut_free "$(dev $GPU)/plans/nodeB" >"$TMP/now"
	lut_free "$(dev $C1)/plans/nodeB" >>"$TMP/now"
	run diff <(lut_free "$TMP/plan") <(sort -u "$TMP/now")
	assert_success
	# lent to nodeB: a plan for nodeB is a no-op, one for nodeD EBUSY
	run cat "$(comp job)/plans/nodeB"
	assert_output "$(printf 'ok\nnoop already lent to nodeB')"
	plan_matches job nodeD
	echo >"$(comp job)/borrower"
}

@test "a plan that says an errno: the write fails with it and leaves that last_error" {
	mkdir "$(comp job)" "$(comp none)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	# EINVAL: the composition has no devices; a member's own lender
	plan_matches none nodeB
	plan_matches job nodeA
	run cat "$(comp job)/last_error"
	assert_output --regexp "^EINVAL: $GPU: "
	# EBUSY: the second member is lent elsewhere; the plan names it and
	# shows the first member's route, but no lut_free (nothing is taken)
	echo nodeD >"$(dev $C1)/borrower"
	run cat "$(comp job)/plans/nodeB"
	assert_line --index 0 --regexp "^EBUSY: $C1: "
	refute_line --regexp "^lut_free "
	plan_matches job nodeB
	echo >"$(dev $C1)/borrower"
	# EHOSTDOWN: the borrower is offline
	echo offline >"$MNT/hosts/nodeB/state"
	run head -n 1 "$(comp job)/plans/nodeB"
	assert_output --regexp "^EHOSTDOWN: $GPU: "
	plan_matches job nodeB
	echo online >"$MNT/hosts/nodeB/state"
	# and, all well again, ok
	plan_matches job nodeB
	echo >"$(comp job)/borrower"
	run cat "$MNT/lends"
	assert_output ""
}

# ---- the rename way (config-management tools) --------------------------------

# cpy CODE ARGS...: python3 with C = the composition directory of job and
# G = the GPU's directory; errors printed as "ERRNO_NAME", exit 1.
cpy() {
	local code="$1"
	shift
	python3 -c "
import ctypes, errno, os, sys
C, G = sys.argv[1], sys.argv[2]
def renameat2(a, b, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
def create(path, data, mode=0o600):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    os.write(fd, data)
    os.close(fd)
def temps(d):
    return sorted(n for n in os.listdir(d) if n.startswith('.'))
try:
$(sed 's/^/    /' <<<"$code")
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(1)
" "$(comp job)" "$(dev $GPU)" "$@"
}

@test "rename(2) of a temp file over a composition's devices, then its borrower, lends it" {
	mkdir "$(comp job)"
	run cpy "
create(C + '/.devices.tmp', ('%s\n%s\n' % (sys.argv[3], sys.argv[4])).encode())
print(temps(C))
os.rename(C + '/.devices.tmp', C + '/devices')
create(C + '/.borrower.tmp', b'nodeB\n')
os.rename(C + '/.borrower.tmp', C + '/borrower')
print(temps(C))" "$GPU" "$C1"
	assert_success
	assert_output "$(printf "['.devices.tmp']\n[]")"
	run cat "$(comp job)/devices"
	assert_output "$(printf '%s\n%s' "$GPU" "$C1")"
	run cat "$(comp job)/state" "$(comp job)/borrower"
	assert_output "$(printf 'lent\nnodeB')"
	for d in $GPU $C1; do
		run cat "$(dev $d)/borrower"
		assert_output nodeB
	done
	# the same value again: a no-op, the temp file gone
	run cpy "
create(C + '/.b2', b'nodeB\n')
os.rename(C + '/.b2', C + '/borrower')
print(temps(C))"
	assert_output "[]"
	# and the return, the same way
	run cpy "
create(C + '/.b3', b'\n')
os.rename(C + '/.b3', C + '/borrower')"
	assert_success
	run cat "$(comp job)/state" "$MNT/lends"
	assert_output available
}

@test "a failing rename onto a composition returns the errno, keeps the temp file and changes nothing else" {
	mkdir "$(comp job)" "$(comp other)"
	echo "$C2" >"$(comp other)/devices"
	echo "$GPU" >"$(comp job)/devices"
	# devices: an unknown ID, an ID of another composition
	run cpy "
create(C + '/.d1', b'nodeA:0000:99:00.0\n')
os.rename(C + '/.d1', C + '/devices')"
	assert_failure
	assert_output EINVAL
	run cpy "
create(C + '/.d2', ('%s\n' % sys.argv[3]).encode())
os.rename(C + '/.d2', C + '/devices')" "$C2"
	assert_output EBUSY
	run cat "$(comp job)/devices"
	assert_output "$GPU"
	run cat "$(comp job)/last_error"
	assert_output "EBUSY: $C2 is in composition other"
	# borrower: a member lent elsewhere fails the lend as a whole
	echo nodeD >"$(dev $GPU)/borrower"
	run cpy "
create(C + '/.b1', b'nodeB\n')
os.rename(C + '/.b1', C + '/borrower')"
	assert_output EBUSY
	run ls -A "$(comp job)"
	assert_line .d1
	assert_line .d2
	assert_line .b1
	run cat "$(comp job)/state"
	assert_output available
	run cat "$(comp job)/last_error"
	assert_output --regexp "^EBUSY: $GPU: "
	echo >"$(dev $GPU)/borrower"
	# no rmdir while they are there
	run rmdir "$(comp job)"
	assert_failure
	assert_output --partial "Directory not empty"
	# the tool unlinks them; the directory lists attributes only again
	rm "$(comp job)/.d1" "$(comp job)/.d2" "$(comp job)/.b1"
	run ls -A "$(comp job)"
	assert_output "$(printf '%s\n' borrower devices last_error lease plans state)"
	rmdir "$(comp job)"
	mkdir "$(comp job)"
	run ls -A "$(comp job)"
	refute_output --partial .d1
}

@test "rename targets in a composition: borrower and devices only; across directories; flags" {
	mkdir "$(comp job)"
	echo "$GPU" >"$(comp job)/devices"
	# nothing else is a target, attributes cannot move
	run cpy "
create(C + '/.t', b'600\n')
os.rename(C + '/.t', C + '/lease')"
	assert_output EINVAL
	run cpy "os.rename(C + '/devices', C + '/.x')"
	assert_output EINVAL
	run cpy "os.rename(C + '/.t', C + '/plans/nodeB')"
	assert_output EINVAL
	run cpy "renameat2(C + '/.t', C + '/borrower', 1)"
	assert_output EEXIST
	run cpy "renameat2(C + '/.t', C + '/borrower', 2)"
	assert_output EINVAL
	rm "$(comp job)/.t"
	# a temp file of a device directory onto a composition's borrower
	run cpy "
create(G + '/.lend', b'nodeB\n')
os.rename(G + '/.lend', C + '/borrower')
print(temps(G))"
	assert_success
	assert_output "[]"
	run cat "$(comp job)/state"
	assert_output lent
	echo >"$(comp job)/borrower"
	# temp files are per directory: O_EXCL, no mkdir inside
	run cpy "
create(C + '/.same', b'x')
create(C + '/.same', b'y')"
	assert_output EEXIST
	run mkdir "$(comp job)/sub"
	assert_failure
	rm "$(comp job)/.same"
}

@test "the Ansible sequence onto a composition's borrower: O_EXCL create, O_TRUNC reopen, write, utime, chmod, rename" {
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n"
	run cpy "
t = C + '/.ansible_tmpXYZborrower'
create(t, b'', 0o600)
fd = os.open(t, os.O_WRONLY | os.O_TRUNC)
os.write(fd, b'nodeB\n')
os.fsync(fd)
os.close(fd)
os.utime(t, (1, 2))
os.chmod(t, 0o664)
st = os.stat(t)
print(st.st_size, oct(st.st_mode & 0o777))
os.rename(t, C + '/borrower')
print(temps(C))"
	assert_success
	assert_output "$(printf "6 0o664\n[]")"
	run cat "$(comp job)/state"
	assert_output lent
	echo >"$(comp job)/borrower"
}

# ---- durability cost ----------------------------------------------------------

@test "a composition's lend and its return each cost one fdatasync, whatever its size" {
	command -v strace >/dev/null
	mkdir "$(comp job)"
	put "$(comp job)/devices" "$GPU\n$C1\n$C2\n"
	echo nodeB >"$(comp job)/borrower"
	echo >"$(comp job)/borrower"
	strace -f -qq -e trace=fdatasync,fsync -p "$LENDFS_PID" -o "$TMP/strace" &
	local st=$! i
	sleep 0.5 # attached
	for i in 1 2 3 4 5; do
		echo nodeB >"$(comp job)/borrower"
		echo >"$(comp job)/borrower"
	done
	sleep 0.2
	kill "$st"
	wait "$st" || true
	run grep -cE '^[0-9]+ +f(data)?sync\(' "$TMP/strace"
	echo "# $output syncs for 5 lends and 5 returns of 3 devices" >&3
	assert_output 10
	# and the same for one device alone: one each
	: >"$TMP/strace"
	strace -f -qq -e trace=fdatasync,fsync -p "$LENDFS_PID" -o "$TMP/strace" &
	st=$!
	sleep 0.5
	echo nodeA >"$(dev $NIC)/borrower"
	echo >"$(dev $NIC)/borrower"
	sleep 0.2
	kill "$st"
	wait "$st" || true
	run grep -cE '^[0-9]+ +f(data)?sync\(' "$TMP/strace"
	assert_output 2
}
