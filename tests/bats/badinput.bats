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

# replay_refused TSV: TSV holds 30 rows or more, each refused as the
# table says (run.py writes), and the tree is as it was before them.
replay_refused() {
	[ "$(grep -c . "$1")" -ge 30 ]
	python3 "$BADINPUT/run.py" snapshot "$MNT" >"$TMP/before"
	run python3 "$BADINPUT/run.py" writes "$MNT" "$1"
	echo "# $(tail -n 1 <<<"$output")" >&3
	assert_success
	assert_line --regexp '^[0-9]+ inputs, [0-9]+ attempts, 0 failed$'
	python3 "$BADINPUT/run.py" snapshot "$MNT" >"$TMP/after"
	run diff "$TMP/before" "$TMP/after"
	assert_success
}

@test "malformed writes: each refused with its errno, nothing changes" {
	lendfs_mount
	# the compositions the compositions/ rows of the table write to
	mkdir "$MNT/compositions/bad" "$MNT/compositions/other"
	echo "$GPU" >"$MNT/compositions/bad/devices"
	echo nodeC:0000:5e:00.0 >"$MNT/compositions/other/devices"
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

@test "malformed lease writes on a lent device: each refused with EINVAL, nothing changes" {
	lendfs_mount
	lend $GPU nodeB
	# the lease rows of the table, now against a device that can have one:
	# only the value refuses them (a lease set would show in lease, lends)
	grep -P '^write\tdevices/[^/]+/lease\t' "$BADINPUT/writes.tsv" >"$TMP/lease.tsv"
	replay_refused "$TMP/lease.tsv"
	run cat "$(dev $GPU)/lease"
	assert_output ""
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^EINVAL: (malformed lease|lease too long)"
	run grep -c " $GPU lease-set " "$MNT/events"
	assert_output 0
	# and a well-formed value is taken
	echo 600 >"$(dev $GPU)/lease"
	run cat "$(dev $GPU)/lease"
	assert_output 600
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

@test "malformed lease writes on a lent composition: each refused with EINVAL, nothing changes" {
	lendfs_mount
	mkdir "$MNT/compositions/bad"
	printf '%s\n%s\n' "$GPU" nodeC:0000:5e:00.0 >"$TMP/list"
	cat "$TMP/list" >"$MNT/compositions/bad/devices"
	echo nodeB >"$MNT/compositions/bad/borrower"
	# the malformed compositions/bad/lease rows (not the two well-formed
	# ones, which a lent composition takes)
	grep -P '^write\tcompositions/bad/lease\t' "$BADINPUT/writes.tsv" |
		grep -v 'not lent$' >"$TMP/lease.tsv"
	replay_refused "$TMP/lease.tsv"
	run cat "$MNT/compositions/bad/lease" "$(dev $GPU)/lease"
	assert_output ""
	run cat "$MNT/compositions/bad/last_error"
	assert_output --regexp "^EINVAL: (malformed lease|lease too long)"
	run grep -c " lease-set " "$MNT/events"
	assert_output 0
	# and a well-formed value is taken, by every member
	echo 600 >"$MNT/compositions/bad/lease"
	run cat "$MNT/compositions/bad/lease" "$(dev $GPU)/lease"
	assert_output "$(printf '600\n600')"
	echo >"$MNT/compositions/bad/borrower"
}
