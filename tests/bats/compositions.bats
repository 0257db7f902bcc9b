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
	assert_output "$(printf '%s\n' borrower devices last_error state)"
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
		for d in $GPU $C1 $C2; do
			run cat "$(dev $d)/state"
			assert_output available
		done
		run cat "$MNT/lends"
		assert_output ""
		run stored_comp job
		assert_output "[]"
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
