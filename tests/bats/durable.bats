#!/usr/bin/env bats
# Durable state (issue 5): acknowledged lends survive kill -9, the store
# refuses bad disks, and `lendfs --check` verifies it offline.

load helpers

setup() {
	lendfs_mount
}

teardown() {
	local t="${TMP:-}"

	lendfs_unmount
	if [ -n "$t" ]; then
		umount -l "$t/small" 2>/dev/null || true
		umount -l "$t/ro" 2>/dev/null || true
		rm -rf "$t"
	fi
}

DMA() {
	"$BUILD_DIR/lendfs-dma" "$@"
}

# kill -9 the daemon and mount again on the same state and run directory.
crash_and_restart() {
	lendfs_crash_restart "${1:-$DEMO}"
}

bar0_window() { # DEV HOST -> the borrower-side address of bar0
	awk -v h="$2" '$1 == "lut" && $2 == h && $NF == "bar0" { print $5 }' \
		"$(dev "$1")/windows"
}

@test "an acknowledged lend survives kill -9 and still moves bytes" {
	lend "$GPU" nodeC
	lend "$NIC" nodeA
	before=$(cat "$(dev "$GPU")/windows")
	crash_and_restart
	run cat "$(dev "$GPU")/state"
	assert_output lent
	run cat "$(dev "$GPU")/borrower"
	assert_output nodeC
	run cat "$(dev "$NIC")/borrower"
	assert_output nodeA
	# the same windows, re-programmed into the fresh sim fabric
	assert_equal "$(cat "$(dev "$GPU")/windows")" "$before"
	addr=$(bar0_window "$GPU" nodeC)
	run DMA -r "$TMP/run" cpu-write nodeC "$addr" survived
	assert_success
	run dd if="$TMP/run/devices/$GPU/bar0" bs=1 count=8 status=none
	assert_output survived
	# and the P2P composition was rebuilt from the lends
	run ls "$(dev "$GPU")/peers"
	assert_success
	echo >"$(dev "$GPU")/borrower"
	echo >"$(dev "$NIC")/borrower"
}

@test "a return survives kill -9" {
	lend "$GPU" nodeB
	echo >"$(dev "$GPU")/borrower"
	crash_and_restart
	run cat "$(dev "$GPU")/state"
	assert_output available
	run cat "$MNT/lends"
	assert_output ""
}

@test "admin host state survives a restart" {
	echo offline >"$MNT/hosts/nodeD/state"
	crash_and_restart
	run cat "$MNT/hosts/nodeD/state"
	assert_output offline
	echo online >"$MNT/hosts/nodeD/state"
}

@test "kill -9 at random moments while lends run: nothing acknowledged is lost" {
	lendfs_unmount
	run "$ROOT/tests/stress/crash-loop.sh" "${LENDFS_CRASH_ITERATIONS:-50}"
	echo "$output"
	assert_success
	assert_output --regexp "lost 0, leaked windows 0"
}

@test "lendfs --check passes on a clean store and names every violation" {
	lend "$GPU" nodeB
	run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db"
	assert_success
	assert_output ""
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	# a second lend of a device that does not exist, on the same LUT entry
	sqlite3 "$TMP/state.db" \
		"INSERT INTO lends(device, borrower, state, since, epoch, windows) SELECT 'nodeA:0000:99:00.0', 'nodeB', 1, 0, 7, windows FROM lends WHERE device = '$GPU';"
	run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db"
	assert_failure 1
	assert_output --partial "nodeA:0000:99:00.0: device is not in the config"
	assert_output --partial "overlaps lut entries"
}

@test "a corrupt state file is refused and left untouched" {
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	head -c 8192 /dev/urandom >"$TMP/bad.db"
	sum=$(sha256sum <"$TMP/bad.db")
	run "$LENDFS" -f -c "$DEMO" --state "$TMP/bad.db" --run-dir "$TMP/run" "$MNT"
	assert_failure
	assert_output --partial "$TMP/bad.db"
	assert_output --regexp "not an SQLite|corrupt|refusing"
	assert_equal "$(sha256sum <"$TMP/bad.db")" "$sum"
	run mountpoint -q "$MNT"
	assert_failure
}

@test "a foreign SQLite database is refused and left untouched" {
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	sqlite3 "$TMP/other.db" "CREATE TABLE photos(id INTEGER); INSERT INTO photos VALUES (1);"
	sum=$(sha256sum <"$TMP/other.db")
	run "$LENDFS" -f -c "$DEMO" --state "$TMP/other.db" --run-dir "$TMP/run" "$MNT"
	assert_failure
	assert_output --partial "$TMP/other.db"
	assert_equal "$(sha256sum <"$TMP/other.db")" "$sum"
}

@test "a read-only state directory gives a clear error" {
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	mkdir "$TMP/ro"
	mount -t tmpfs -o size=1m tmpfs "$TMP/ro"
	mount -o remount,ro "$TMP/ro"
	run "$LENDFS" -f -c "$DEMO" --state "$TMP/ro/state.db" --run-dir "$TMP/run" "$MNT"
	umount "$TMP/ro"
	assert_failure
	assert_output --partial "$TMP/ro/state.db"
	assert_output --regexp "[Rr]ead-only"
}

@test "a full disk refuses the request with ENOSPC and rolls it back" {
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	mkdir "$TMP/small"
	mount -t tmpfs -o size=400k tmpfs "$TMP/small"
	"$LENDFS" -f -c "$DEMO" --state "$TMP/small/state.db" --run-dir "$TMP/run" \
		"$MNT" </dev/null >/dev/null 2>>"$TMP/lendfs.log" 3>&- &
	LENDFS_PID=$!
	for _ in $(seq 100); do [ -e "$MNT/version" ] && break; sleep 0.1; done
	lend "$GPU" nodeB
	# fill the disk, then ask for more
	dd if=/dev/zero of="$TMP/small/fill" bs=4k 2>/dev/null || true
	run bash -c "echo nodeC > '$(dev "$NIC")/borrower'"
	assert_failure
	assert_output --partial "No space left on device"
	run cat "$(dev "$NIC")/state"
	assert_output available
	run cat "$(dev "$NIC")/last_error"
	assert_output --regexp "^ENOSPC: "
	# the acknowledged lend is intact
	run cat "$(dev "$GPU")/borrower"
	assert_output nodeB
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	umount "$TMP/small"
}
