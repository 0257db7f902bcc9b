#!/usr/bin/env bats
# The command line, configuration errors (exit 2 with FILE:LINE: reason),
# start-up failures (exit 1) and clean shutdown.

load helpers

setup() {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	LENDFS_PID=
}

teardown() {
	lendfs_unmount
}

# A valid start of a config; error cases append to it (it has 9 lines).
BASE='[cluster]
name = t
[host nodeA]
adapter = ntb0
[host nodeB]
adapter = ntb0
[link]
a = nodeA
b = nodeB'

# bad_config TEXT: run lendfs on BASE + TEXT, expect exit 2.
bad_config() {
	printf '%s\n%s\n' "$BASE" "$1" >"$TMP/bad.ini"
	run "$LENDFS" -f -c "$TMP/bad.ini" --state none --run-dir "$TMP/run" "$MNT"
	assert_failure 2
	refute [ -e "$MNT/version" ]
}

@test "--help prints usage and exits 0" {
	run "$LENDFS" --help
	assert_success
	assert_line --index 0 --partial "usage: lendfs"
	assert_output --partial "--state"
	assert_output --partial "--run-dir"
	assert_output --partial "--inventory"
	run "$LENDFS" -h
	assert_success
	assert_line --index 0 --partial "usage: lendfs"
}

@test "--version prints the version and exits 0" {
	run "$LENDFS" --version
	assert_success
	assert_output --regexp '^lendfs [0-9]+\.[0-9]+\.[0-9]+'
}

@test "no mount point is a usage error (exit 2)" {
	run "$LENDFS" -f --state none
	assert_failure 2
	assert_output --partial "no mount point"
}

@test "an unknown option is a usage error (exit 2)" {
	run "$LENDFS" -f --bogus --state none --run-dir "$TMP/run" "$MNT"
	assert_failure 2
	assert_output --partial "bogus"
}

@test "--inventory takes config or udev only" {
	run "$LENDFS" -f --inventory floppy --state none "$MNT"
	assert_failure 2
	assert_output --partial "floppy"
}

@test "bad config: unknown key" {
	bad_config 'bogus = 1'
	assert_output --regexp "^lendfs: $TMP/bad.ini:10: .*bogus"
}

@test "bad config: unknown section" {
	bad_config '[frobnicate]'
	assert_output --regexp "^lendfs: $TMP/bad.ini:10: .*frobnicate"
}

@test "bad config: bad number" {
	bad_config $'[host nodeC]\nlut_entries = lots'
	assert_output --regexp "^lendfs: $TMP/bad.ini:11: .*lots"
}

@test "bad config: duplicate device" {
	local d=$'[device nodeA:0000:65:00.0]\nvendor = 0x10de'
	bad_config "$d"$'\n'"$d"
	assert_output --regexp "^lendfs: $TMP/bad.ini:12: .*duplicate"
}

@test "bad config: link to an unknown host" {
	bad_config $'[link]\na = nodeA\nb = nodeZ'
	assert_output --regexp "^lendfs: $TMP/bad.ini:1[0-2]: .*nodeZ"
}

@test "bad config: malformed BDF" {
	bad_config $'[device nodeA:0000:6g:00.0]\nvendor = 0x10de'
	assert_output --regexp "^lendfs: $TMP/bad.ini:10: .*6g"
}

@test "bad config: a missing file" {
	run "$LENDFS" -f -c "$TMP/absent.ini" --state none "$MNT"
	assert_failure 2
	assert_output --regexp "^lendfs: $TMP/absent.ini: "
}

@test "an engine that cannot start exits 1 with the reason" {
	touch "$TMP/file"
	run "$LENDFS" -f -c "$DEMO" --state none --run-dir "$TMP/file/run" "$MNT"
	assert_failure 1
	assert_output --regexp "^lendfs: cannot start: "
}

@test "SIGTERM unmounts and exits 0" {
	rmdir "$MNT"
	rm -rf "$TMP"
	lendfs_mount
	echo nodeB >"$(dev $GPU)/borrower"
	kill -TERM "$LENDFS_PID"
	lendfs_wait_exit
	assert_equal "$LENDFS_STATUS" 0
	run mountpoint -q "$MNT"
	assert_failure
}

@test "fusermount3 -u unmounts and exits 0" {
	rm -rf "$TMP"
	lendfs_mount
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	assert_equal "$LENDFS_STATUS" 0
	run mountpoint -q "$MNT"
	assert_failure
}

@test "--state none keeps state in memory only" {
	rm -rf "$TMP"
	lendfs_mount "$DEMO" --state none
	echo nodeB >"$(dev $GPU)/borrower"
	run cat "$(dev $GPU)/state"
	assert_output lent
	[ ! -e "$TMP/state.db" ] || [ ! -s "$TMP/state.db" ]
}

@test "without -f it detaches once mounted and exits 0" {
	run "$LENDFS" -c "$DEMO" --state none --run-dir "$TMP/run" "$MNT"
	assert_success
	run cat "$MNT/devices/$GPU/state"
	assert_output available
	fusermount3 -u "$MNT"
	for ((i = 0; i < EXIT_WAIT_TENTHS; i++)); do
		mountpoint -q "$MNT" || break
		sleep 0.1
	done
	run mountpoint -q "$MNT"
	assert_failure
}
