#!/usr/bin/env bats
# powerfs (tests/tools/powerfs.c): what was not made durable is gone after
# a power cut, what was synced stays.  Each test mounts powerfs over a
# backing directory, changes files through it, cuts the power (the control
# file, or SIGUSR1), unmounts and mounts a fresh powerfs on the same
# backing directory: the reboot.  fsop.py makes one system call each.

load helpers

POWERFS="$BUILD_DIR/powerfs"
FSOP="$ROOT/tests/tools/fsop.py"

pfs_start() {
	# an ASan build: libfuse's own leak (tests/lsan.supp)
	LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
		"$POWERFS" -f "$TMP/back" "$M" 2>>"$TMP/powerfs.log" &
	PFS_PID=$!
	for _ in $(seq 100); do
		grep -q '^state live' "$M/.powerfs" 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$TMP/powerfs.log" >&2
	return 1
}

pfs_stop() {
	fusermount3 -uz "$M" 2>/dev/null || true
	[ -z "${PFS_PID:-}" ] || wait "$PFS_PID" || true
	PFS_PID=
}

setup() {
	TMP="$(mktemp -d)"
	M="$TMP/m"
	mkdir -p "$TMP/back" "$M"
	pfs_start
}

teardown() {
	pfs_stop
	rm -rf "$TMP"
}

fsop() {
	python3 "$FSOP" "$@"
}

# cut the power, then reboot: a fresh powerfs on the durable image
cut_and_reboot() {
	echo cut >"$M/.powerfs"
	run cat "$M/.powerfs"
	assert_line "state cut"
	pfs_stop
	pfs_start
}

# a durable file: created, written, synced, and its directory synced
durable_file() { # PATH DATA
	fsop write "$1" 0 "$2" sync
	fsop fsync "$(dirname "$1")"
}

@test "powerfs: unsynced bytes are gone after a cut, synced ones stay" {
	durable_file "$M/a" AAAAAAAA
	durable_file "$M/b" AAAAAAAA
	fsop write "$M/a" 2 xyz
	fsop write "$M/b" 2 xyz sync
	fsop write "$M/b" 6 late
	run cat "$M/a"
	assert_output AAxyzAAA
	run cat "$M/.powerfs"
	assert_line "dirty_files 2"
	cut_and_reboot
	run cat "$M/a"
	assert_output AAAAAAAA
	run cat "$M/b"
	assert_output AAxyzAAA
}

@test "powerfs: the operations after a cut fail with EIO" {
	durable_file "$M/a" data
	echo cut >"$M/.powerfs"
	run cat "$M/a"
	assert_failure
	assert_output --partial "Input/output error"
	run fsop write "$M/c" 0 x
	assert_output EIO
	run ls "$M"
	assert_failure
	# the backing directory is the durable image, the stash is empty
	run ls -A "$TMP/back"
	assert_output ".powerfs-stash
a"
	run ls -A "$TMP/back/.powerfs-stash"
	assert_output ""
}

@test "powerfs: SIGUSR1 cuts the power too" {
	durable_file "$M/a" AAAA
	fsop write "$M/a" 0 BB
	kill -USR1 "$PFS_PID"
	for _ in $(seq 50); do
		grep -q '^state cut' "$M/.powerfs" && break
		sleep 0.1
	done
	run cat "$M/.powerfs"
	assert_line "state cut"
	pfs_stop
	pfs_start
	run cat "$M/a"
	assert_output AAAA
}

@test "powerfs: an unsynced create is gone; after fsync of the directory it stays" {
	mkdir "$M/d"
	fsop fsync "$M"
	fsop write "$M/d/kept" 0 hello sync
	fsop fsync "$M/d"
	fsop write "$M/d/new" 0 hello sync	# the file synced, not its directory
	ln -s kept "$M/d/link"
	mkdir "$M/d/sub"
	cut_and_reboot
	run ls -A "$M/d"
	assert_output kept
	run cat "$M/d/kept"
	assert_output hello
	# an unsynced mkdir of the root is gone too, whatever it held
	mkdir "$M/e"
	durable_file "$M/e/f" inside
	cut_and_reboot
	run ls -A "$M"
	assert_output d
}

@test "powerfs: an unsynced rename is gone; after fsync of the directory it stays" {
	durable_file "$M/old" one
	fsop rename "$M/old" "$M/new"
	run ls -A "$M"
	assert_output new
	cut_and_reboot
	run ls -A "$M"
	assert_output old
	run cat "$M/old"
	assert_output one
	fsop rename "$M/old" "$M/new"
	fsop fsync "$M"
	cut_and_reboot
	run ls -A "$M"
	assert_output new
}

@test "powerfs: a rename over an existing file is undone, and durable after fsync of the directory" {
	durable_file "$M/target" before
	durable_file "$M/tmp" after
	fsop rename "$M/tmp" "$M/target"
	run cat "$M/target"
	assert_output after
	cut_and_reboot
	run cat "$M/target"
	assert_output before
	run cat "$M/tmp"
	assert_output after
	# the config-tool pattern: write a temp file, sync it, rename, sync the directory
	fsop write "$M/tmp2" 0 third sync
	fsop rename "$M/tmp2" "$M/target"
	fsop fsync "$M"
	cut_and_reboot
	run cat "$M/target"
	assert_output third
	run ls -A "$M"
	assert_output "target
tmp"
	run ls -A "$TMP/back/.powerfs-stash"
	assert_output ""
}

@test "powerfs: a rename across directories needs both synced" {
	mkdir "$M/x" "$M/y"
	fsop fsync "$M"
	durable_file "$M/x/f" data
	fsop rename "$M/x/f" "$M/y/f"
	fsop fsync "$M/y"
	cut_and_reboot
	run ls -A "$M/x" "$M/y"
	assert_output "$M/x:
f

$M/y:"
	fsop rename "$M/x/f" "$M/y/f"
	fsop fsync "$M/y"
	fsop fsync "$M/x"
	cut_and_reboot
	run ls -A "$M/x" "$M/y"
	assert_output "$M/x:

$M/y:
f"
}

@test "powerfs: an unlink is undone; after fsync of the directory it stays" {
	durable_file "$M/a" alive
	durable_file "$M/b" alive
	rm "$M/a" "$M/b"
	fsop fsync "$M"
	run ls -A "$M"
	assert_output ""
	cut_and_reboot
	run ls -A "$M"
	assert_output ""
	durable_file "$M/c" alive
	mkdir "$M/dir"
	fsop fsync "$M"
	rm "$M/c"
	rmdir "$M/dir"
	run ls -A "$M"
	assert_output ""
	cut_and_reboot
	run ls -A "$M"
	assert_output "c
dir"
	run cat "$M/c"
	assert_output alive
}

@test "powerfs: a truncate and an extension are undone" {
	durable_file "$M/f" 0123456789
	fsop truncate "$M/f" 3
	run cat "$M/f"
	assert_output 012
	cut_and_reboot
	run cat "$M/f"
	assert_output 0123456789
	fsop write "$M/f" 20 tail
	run stat -c %s "$M/f"
	assert_output 24
	fsop truncate "$M/f" 2
	fsop write "$M/f" 4 ab
	cut_and_reboot
	run cat "$M/f"
	assert_output 0123456789
	# a sync past what a truncate cut off: the gap comes back as zeros
	fsop truncate "$M/f" 2
	fsop write "$M/f" 8 ZZ datasync
	cut_and_reboot
	run fsop read "$M/f"
	assert_output "b'01\\x00\\x00\\x00\\x00\\x00\\x00ZZ'"
	# a truncate made durable
	fsop truncate "$M/f" 1 sync
	cut_and_reboot
	run cat "$M/f"
	assert_output 0
}

@test "powerfs: an O_DSYNC or O_SYNC write is durable, and so is what fdatasync covers" {
	durable_file "$M/f" ..........
	fsop write "$M/f" 0 d dsync
	fsop write "$M/f" 1 s osync
	fsop write "$M/f" 2 x
	fsop write "$M/f" 3 y
	fsop fdatasync "$M/f"
	fsop write "$M/f" 4 lost
	cut_and_reboot
	run cat "$M/f"
	assert_output dsxy......
}

@test "powerfs: the stash is hidden and a cut empties it" {
	durable_file "$M/a" x
	rm "$M/a"
	run ls -A "$TMP/back/.powerfs-stash"
	assert_output 1
	run ls -A "$M"
	assert_output ""
	run stat "$M/.powerfs-stash"
	assert_failure
	run touch "$M/.powerfs-stash"
	assert_failure
	cut_and_reboot
	run ls -A "$M"
	assert_output a
	run ls -A "$TMP/back/.powerfs-stash"
	assert_output ""
}

@test "powerfs: cut-after N cuts right after the Nth operation that changes something" {
	durable_file "$M/f" ....
	echo "cut-after 3" >"$M/.powerfs"
	fsop write "$M/f" 0 a sync	# write, fsync: 2
	run fsop write "$M/f" 1 b sync	# write: 3, then the cut; its fsync fails
	assert_failure
	assert_output EIO
	run cat "$M/.powerfs"
	assert_line "state cut"
	assert_line "operations 7"	# durable_file's create, write, fsync, fsyncdir
	pfs_stop
	pfs_start
	run cat "$M/f"
	assert_output a...
	run bash -c 'echo "cut-after 0" >"$1"' _ "$M/.powerfs"
	assert_failure
	run bash -c 'echo "cut later" >"$1"' _ "$M/.powerfs"
	assert_failure
}
