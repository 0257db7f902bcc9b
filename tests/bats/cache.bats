#!/usr/bin/env bats
# The kernel keeps the tree's entries and attributes (lendfs/cache.h):
# whatever it cached, a process that starts after a write(2) to borrower
# returned sees the new value, its size and the links that came and went.

load helpers

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

# seen ID STATE BORROWER: a new process reads what the last request did,
# and stat(2) gives the size that read returns.
seen() {
	local d
	d="$(dev "$1")"
	run cat "$d/state"
	assert_output "$2"
	run cat "$d/borrower"
	assert_output "$3"
	run stat -c %s "$d/state" "$d/borrower" # one line each
	assert_output "$(printf '%s\n%s' $((${#2} + 1)) $((${#3} + 1)))"
}

@test "after every lend and return, another process reads the new state" {
	# cached from the start: names, attributes, sizes
	seen "$GPU" available ""
	for i in $(seq 25); do
		lend "$GPU" nodeB
		seen "$GPU" lent nodeB
		echo >"$(dev "$GPU")/borrower"
		seen "$GPU" available ""
	done
}

@test "a failed request shows its last_error and size at once" {
	local e
	e="$(dev "$GPU")/last_error"
	for host in nosuchhost nodeA x; do
		stat -c %s "$e" >/dev/null # the kernel caches the old size
		run bash -c 'echo "$1" > "$2"' _ "$host" "$(dev "$GPU")/borrower"
		assert_failure
		run cat "$e"
		assert_output --regexp "^EINVAL: "
		run stat -c %s "$e"
		assert_output "$(($(wc -c <"$e")))"
	done
}

@test "host links and peers appear and vanish with the lend, at once" {
	for i in $(seq 5); do
		[ ! -e "$MNT/hosts/nodeA/lent/$GPU" ]
		[ ! -e "$MNT/hosts/nodeC/borrowed/$GPU" ]
		lend "$GPU" nodeC
		lend "$NIC" nodeC
		[ -L "$MNT/hosts/nodeA/lent/$GPU" ]
		[ -L "$MNT/hosts/nodeC/borrowed/$GPU" ]
		[ -e "$(dev "$GPU")/peers/$NIC" ]
		[ -e "$(dev "$NIC")/peers/$GPU" ]
		echo >"$(dev "$NIC")/borrower"
		[ ! -e "$(dev "$GPU")/peers/$NIC" ]
		[ ! -e "$(dev "$NIC")/peers/$GPU" ]
		[ ! -e "$MNT/hosts/nodeC/borrowed/$NIC" ]
		echo >"$(dev "$GPU")/borrower"
		[ ! -e "$MNT/hosts/nodeA/lent/$GPU" ]
		[ ! -e "$MNT/hosts/nodeC/borrowed/$GPU" ]
		run cat "$MNT/lends"
		assert_output ""
		run stat -c %s "$MNT/lends"
		assert_output 0
	done
}

@test "a reader racing the writer never sees a value the writer did not leave" {
	# one process lends and returns; another reads state as fast as it can;
	# once the writer is done, the reader's next read is the final value
	(
		for i in $(seq 40); do
			echo nodeB >"$(dev "$GPU")/borrower"
			echo >"$(dev "$GPU")/borrower"
		done
		echo nodeB >"$(dev "$GPU")/borrower"
		: >"$TMP/writer-done"
	) &
	writer=$!
	while [ ! -e "$TMP/writer-done" ]; do
		v=$(cat "$(dev "$GPU")/state")
		case "$v" in
		available | lending | lent | returning) ;;
		*) echo "unexpected state '$v'" >&2; false ;;
		esac
	done
	wait "$writer"
	run cat "$(dev "$GPU")/state"
	assert_output lent
	run stat -c %s "$(dev "$GPU")/state"
	assert_output 5
	echo >"$(dev "$GPU")/borrower"
}

@test "no read is older than the last write that returned: readers hammer state, borrower, a link" {
	# tests/tools/staleread.py: one process lends and returns the GPU
	# (nodeB, "", nodeC, "" ...), three others read state and borrower and
	# look up hosts/nodeB/borrowed/GPU; a read may show only what the last
	# write completed before it began, or a write in flight, leaves
	run timeout 60 python3 "$ROOT/tests/tools/staleread.py" "$MNT" "$GPU" 5 3
	echo "$output"
	assert_success
	assert_output --regexp "^writes [0-9]+ reads [0-9]+ decisive [0-9]+ stale 0 "
}
