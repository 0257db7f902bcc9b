#!/usr/bin/env bats
# Races on the control files (issue 10), beyond race.bats (32 shell
# writers): writers that are threads of several processes (tests/tools/
# racer.c), rename(2) races of temp files onto one borrower, and lends,
# returns and host outages interleaved.  After each, the tree and the
# store are consistent: one winner, nothing half-done, `lendfs --check`
# clean.  make tsan runs this file against a ThreadSanitizer daemon.

load helpers

RACER="$BUILD_DIR/racer"

setup() {
	[ -x "$RACER" ] || { echo "no $RACER: make all builds it" >&2; return 1; }
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

# check_clean: the store agrees with the config (no violation).
check_clean() {
	run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db"
	assert_success
	assert_output ""
}

# assert_one_winner FILE: racer output (INDEX VALUE RESULT lines) for one
# borrower file; exactly one value won, every writer of another value got
# EBUSY, writers of the winning value got OK or EBUSY (while in flight).
# Sets WINNER.
assert_one_winner() {
	local file="$1" borrower
	borrower="$(cat "$(dev $GPU)/borrower")"
	run awk -v w="$borrower" '
		$3 == "OK" && $2 != w { bad++; print "a loser succeeded: " $0 }
		$3 != "OK" && $3 != "EBUSY" { bad++; print "unexpected: " $0 }
		$2 == w && $3 == "OK" { ok++ }
		END {
			if (!ok) { print "no writer of " w " succeeded"; bad++ }
			exit bad > 0
		}' "$file"
	assert_success
	WINNER="$borrower"
	run grep -c . "$MNT/lends"
	assert_output 1
}

@test "32 writers, threads of 4 processes, two borrowers: exactly one lend" {
	local p pids=()
	for p in 0 1 2 3; do
		"$RACER" -t 8 -s "$TMP/go" "$(dev $GPU)/borrower" nodeB nodeC \
			>"$TMP/racer.$p" 2>"$TMP/racer.$p.err" &
		pids+=($!)
	done
	sleep 0.3 # every racer has opened its 8 file descriptors
	touch "$TMP/go"
	for p in "${pids[@]}"; do
		wait "$p"
	done
	cat "$TMP"/racer.[0-3] >"$TMP/all"
	run grep -c . "$TMP/all"
	assert_output 32
	assert_one_winner "$TMP/all"
	run cat "$(dev $GPU)/state"
	assert_output lent
	run ls "$MNT/hosts/$WINNER/borrowed"
	assert_output "$GPU"
	check_clean
}

@test "64 threads of one process on one borrower, then all return at once" {
	run "$RACER" -t 64 "$(dev $GPU)/borrower" nodeB nodeC nodeD
	assert_success
	echo "$output" >"$TMP/all"
	assert_one_winner "$TMP/all"
	# 16 concurrent returns: all succeed (a return is idempotent), or
	# EBUSY while another return is in flight
	run "$RACER" -t 16 "$(dev $GPU)/borrower" ""
	assert_success
	echo "$output" >"$TMP/returns"
	run awk '$NF != "OK" && $NF != "EBUSY"' "$TMP/returns"
	assert_output ""
	run cat "$(dev $GPU)/state"
	assert_output available
	run cat "$MNT/lends"
	assert_output ""
	check_clean
}

@test "rename races: two temp files onto one borrower, 12 rounds, one winner each" {
	local round
	for ((round = 0; round < 12; round++)); do
		run "$RACER" -r -t 2 "$(dev $GPU)/borrower" nodeB nodeC
		assert_success
		echo "$output" >"$TMP/round"
		assert_one_winner "$TMP/round"
		# the loser's temp file was unlinked by racer; none is left
		run bash -c "ls -A '$(dev $GPU)' | grep racer"
		assert_output ""
		echo >"$(dev $GPU)/borrower"
		run cat "$(dev $GPU)/state"
		assert_output available
	done
	run cat "$MNT/lends"
	assert_output ""
	check_clean
}

@test "rename races across two device directories onto one borrower" {
	local round a b pa
	for ((round = 0; round < 10; round++)); do
		a="$(dev $NIC)/.t$round" b="$(dev nodeC:0000:5e:00.0)/.t$round"
		echo nodeB >"$a"
		echo nodeC >"$b"
		mv "$a" "$(dev $GPU)/borrower" 2>"$TMP/a.err" &
		pa=$!
		mv "$b" "$(dev $GPU)/borrower" 2>"$TMP/b.err" &
		# not a bare `wait`: the daemon is a background job too
		wait $pa || true
		wait $! || true
		run cat "$(dev $GPU)/state"
		assert_output lent
		# exactly one temp file is gone: the one whose rename won
		local left=0
		[ -e "$a" ] && left=$((left + 1))
		[ -e "$b" ] && left=$((left + 1))
		assert_equal "$left" 1
		run cat "$TMP/a.err" "$TMP/b.err"
		assert_output --partial "Device or resource busy"
		rm -f "$a" "$b"
		echo >"$(dev $GPU)/borrower"
	done
	check_clean
}

# loop NAME SECONDS CMD...: run CMD until SECONDS pass; each failure's
# message goes to $TMP/errs.NAME.
loop() {
	local name="$1" secs="$2"
	shift 2
	local end=$((SECONDS + secs))
	while ((SECONDS < end)); do
		"$@" 2>>"$TMP/errs.$name" || true
	done
}

lend_return() { # ID HOST
	echo "$2" >"$(dev "$1")/borrower" && echo >"$(dev "$1")/borrower"
}

racer_burst() { # FILE VALUE...: results appended to $TMP/racer.out
	"$RACER" -t 4 "$@" >>"$TMP/racer.out"
}

host_flap() { # HOST
	echo offline >"$MNT/hosts/$1/state" && echo online >"$MNT/hosts/$1/state"
}

@test "interleaved lends, returns and host outages for 4 s: consistent after" {
	local secs=4 pids=() id
	loop gpu $secs lend_return $GPU nodeB &
	pids+=($!)
	loop gpu2 $secs lend_return $GPU nodeC &
	pids+=($!)
	loop nic $secs lend_return $NIC nodeC &
	pids+=($!)
	loop e810 $secs lend_return nodeC:0000:af:00.0 nodeD &
	pids+=($!)
	loop mi100 $secs lend_return nodeD:0000:3b:00.0 nodeA &
	pids+=($!)
	loop flapC $secs host_flap nodeC &
	pids+=($!)
	loop flapD $secs host_flap nodeD &
	pids+=($!)
	loop racer $secs racer_burst "$(dev nodeB:0000:65:00.0)/borrower" \
		nodeA nodeC "" &
	pids+=($!)
	for id in "${pids[@]}"; do
		wait "$id"
	done
	kill -0 "$LENDFS_PID"
	# the loops really raced: many lends, and some refused
	run awk '/^lendfs_lends_total / { print ($2 >= 10) }' "$MNT/metrics"
	assert_output 1

	# every failure was one of the errors a race may give
	run bash -c "cat '$TMP'/errs.* | grep -v -e 'Device or resource busy' \
		-e 'Host is down' -e 'No space left on device' | grep ."
	assert_output ""
	run awk '$NF != "OK" && $NF != "EBUSY" && $NF != "EHOSTDOWN" &&
		$NF != "ENOSPC"' "$TMP/racer.out"
	assert_output ""

	# quiesce: hosts online, every device returned (a failed one cleared)
	for id in nodeA nodeB nodeC nodeD; do
		echo online >"$MNT/hosts/$id/state"
	done
	for id in $(ls "$MNT/devices"); do
		echo >"$(dev "$id")/borrower"
		run cat "$(dev "$id")/state"
		assert_output available
		run cat "$(dev "$id")/windows"
		assert_output ""
	done
	run cat "$MNT/lends"
	assert_output ""
	# every LUT entry and DMA window was given back
	run grep -cE '^lendfs_(lut_entries|dma_windows)_used\{' "$MNT/metrics"
	assert_output 8
	run grep -E '^lendfs_(lut_entries|dma_windows)_used\{.* [1-9][0-9]*$' \
		"$MNT/metrics"
	assert_output ""
	run grep -E '^lendfs_active_lends ' "$MNT/metrics"
	assert_output "lendfs_active_lends 0"
	check_clean
}
