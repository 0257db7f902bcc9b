#!/usr/bin/env bats
# The bad-input suite (issue 10): every row of tests/badinput/writes.tsv
# against one mount, every row of tests/badinput/configs.tsv through
# `lendfs --check`; each with its errno or exit status 2 and FILE:LINE.
# After the writes the daemon is alive, the tree is unchanged (every path,
# mode, owner and content but last_error and metrics) and --check passes.
# tests/badinput/run.py does the work and names any row that differs.

load helpers

BADINPUT="$ROOT/tests/badinput"

teardown() {
	lendfs_unmount
}

@test "malformed writes: each refused with its errno, nothing changes" {
	lendfs_mount
	python3 "$BADINPUT/run.py" snapshot "$MNT" >"$TMP/before"
	run python3 "$BADINPUT/run.py" writes "$MNT" "$BADINPUT/writes.tsv"
	echo "# $(tail -n 1 <<<"$output")" >&3
	assert_success
	assert_line --regexp '^[0-9]+ inputs, [0-9]+ attempts, 0 failed$'

	# the daemon is alive and serves, and the tree is what it was
	kill -0 "$LENDFS_PID"
	python3 "$BADINPUT/run.py" snapshot "$MNT" >"$TMP/after"
	run diff "$TMP/before" "$TMP/after"
	assert_success
	run grep -c . "$TMP/after"
	[ "$output" -gt 100 ]
	# every refusal is in events, and no line holds a raw byte of what
	# was written: printable ASCII and the newline only
	run grep -c ' failed ' "$MNT/events"
	[ "$output" -gt 100 ]
	run bash -c "LC_ALL=C tr -d '\\n -~' <'$MNT/events' | wc -c"
	assert_output 0
	# no temp file was left behind
	run bash -c "ls -A '$MNT'/devices/* | grep -c badinput"
	assert_output 0
	run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db"
	assert_success
	assert_output ""
	# and it still lends
	lend $GPU nodeB
	run cat "$(dev $GPU)/state"
	assert_output lent
}

@test "malformed configurations: each exits 2 with FILE:LINE and the reason" {
	run python3 "$BADINPUT/run.py" configs "$LENDFS" "$BADINPUT/configs.tsv" \
		"$BATS_TEST_TMPDIR"
	echo "# $(tail -n 1 <<<"$output")" >&3
	assert_success
	assert_line --regexp '^[0-9]+ inputs, [0-9]+ attempts, 0 failed$'
}

@test "the tables hold at least 200 bad inputs" {
	local writes configs
	writes="$(grep -vc -e '^#' -e '^$' "$BADINPUT/writes.tsv")"
	configs="$(grep -vc -e '^#' -e '^$' "$BADINPUT/configs.tsv")"
	[ $((writes + configs)) -ge 200 ]
	[ "$configs" -ge 100 ]
}
