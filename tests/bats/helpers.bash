# Shared set-up for the lendfs bats suite: every test mounts a fresh
# lendfs in its own `mktemp -d` and unmounts it in teardown.
#
#   LENDFS_BUILD   build directory holding the lendfs binary (default build)
#
# The daemon runs in the foreground with stderr in $TMP/lendfs.log.  A
# daemon that exits non-zero (a crash, or a sanitizer report) fails the
# test in teardown.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
BUILD_DIR="${LENDFS_BUILD:-build}"
case "$BUILD_DIR" in
/*) ;;
*) BUILD_DIR="$ROOT/$BUILD_DIR" ;;
esac
LENDFS="$BUILD_DIR/lendfs"
DEMO="$ROOT/conf/demo.ini"
CONF="$ROOT/tests/conf"

# Devices of conf/demo.ini used throughout.
GPU=nodeA:0000:65:00.0	# NVIDIA V100 on nodeA
ROOTFS=nodeA:0000:b3:00.0	# nodeA's root NVMe: [policy] deny
NIC=nodeB:0000:17:00.0	# ConnectX-5 on nodeB

MOUNT_WAIT_TENTHS=100	# 10 s
EXIT_WAIT_TENTHS=100	# 10 s

# lendfs_mount [CONFIG [EXTRA ARGS...]]: start lendfs on $TMP/mnt and
# wait until the tree answers.  Sets TMP, MNT, LENDFS_PID.
lendfs_mount() {
	local config="${1:-$DEMO}"
	[ $# -gt 0 ] && shift
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	LENDFS_CONFIG="$config"
	mkdir -p "$MNT"
	"$LENDFS" -f -c "$config" --state "$TMP/state.db" \
		--run-dir "$TMP/run" "$@" "$MNT" \
		</dev/null >"$TMP/lendfs.out" 2>"$TMP/lendfs.log" 3>&- &
	LENDFS_PID=$!
	local i
	for ((i = 0; i < MOUNT_WAIT_TENTHS; i++)); do
		[ -e "$MNT/version" ] && return 0
		if ! kill -0 "$LENDFS_PID" 2>/dev/null; then
			echo "lendfs exited before mounting:" >&2
			cat "$TMP/lendfs.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "lendfs did not mount within 10 s:" >&2
	cat "$TMP/lendfs.log" >&2
	return 1
}

# lendfs_remount [CONFIG]: lendfs again on the same state and run
# directory (the last mount detached), with CONFIG (default: the one in
# use, which registers_check then uses too).  Sets LENDFS_PID.
lendfs_remount() {
	LENDFS_CONFIG="${1:-$LENDFS_CONFIG}"
	"$LENDFS" -f -c "$LENDFS_CONFIG" --state "$TMP/state.db" --run-dir "$TMP/run" \
		"$MNT" </dev/null >>"$TMP/lendfs.out" 2>>"$TMP/lendfs.log" 3>&- &
	LENDFS_PID=$!
	for _ in $(seq 100); do
		[ -e "$MNT/version" ] && return 0
		kill -0 "$LENDFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$TMP/lendfs.log" >&2
	return 1
}

# lendfs_crash_restart [CONFIG]: kill -9 the daemon, then lendfs_remount.
lendfs_crash_restart() {
	kill -KILL "$LENDFS_PID" 2>/dev/null || true
	wait "$LENDFS_PID" 2>/dev/null || true
	fusermount3 -uz "$MNT"
	lendfs_remount "$@"
}

# Wait (bounded) for the daemon to exit; its status in LENDFS_STATUS.
lendfs_wait_exit() {
	local i
	for ((i = 0; i < EXIT_WAIT_TENTHS; i++)); do
		kill -0 "$LENDFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$LENDFS_PID" 2>/dev/null; then
		echo "lendfs did not exit within 10 s; killing it" >&2
		kill -KILL "$LENDFS_PID" 2>/dev/null
	fi
	LENDFS_STATUS=0
	wait "$LENDFS_PID" || LENDFS_STATUS=$?
	LENDFS_PID=
}

# Unmount, reap the daemon, fail if it exited non-zero, clean up.
lendfs_unmount() {
	local status=0
	[ -n "${TMP:-}" ] || return 0
	if [ -n "${LENDFS_PID:-}" ]; then
		kill -0 "$LENDFS_PID" 2>/dev/null && { registers_check || status=1; }
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
		lendfs_wait_exit
		if [ "$LENDFS_STATUS" -ne 0 ]; then
			echo "lendfs exited with status $LENDFS_STATUS:" >&2
			cat "$TMP/lendfs.log" >&2
			status=1
		fi
	fi
	fusermount3 -uz "$MNT" 2>/dev/null || true
	rm -rf "$TMP"
	TMP=
	return $status
}

# registers_check: at the end of a test, while the daemon still runs (the
# device table that says where a BAR lies is the running daemon's), the
# sim's register files in $TMP/run hold exactly the windows of the lends
# stored in $TMP/state.db (lendfs --check --run-dir): every test that
# mounts lendfs is also a leak check in the hardware.  A test that
# corrupts the store on purpose sets REGISTERS_CHECK=0.
registers_check() {
	[ "${REGISTERS_CHECK:-1}" = 1 ] || return 0
	[ -f "$TMP/state.db" ] && [ -d "$TMP/run/hosts" ] || return 0
	[ -n "${LENDFS_CONFIG:-}" ] && [ -f "$LENDFS_CONFIG" ] || return 0
	local out
	if ! out="$("$LENDFS" --check -c "$LENDFS_CONFIG" --state "$TMP/state.db" \
		--run-dir "$TMP/run" 2>&1)"; then
		echo "registers do not match the stored lends:" >&2
		echo "$out" >&2
		return 1
	fi
}

# dev ID -> the device directory.
dev() {
	echo "$MNT/devices/$1"
}

# lend ID VALUE: one write of "VALUE\n" to the borrower file.
lend() {
	echo "$2" >"$(dev "$1")/borrower"
}

# assert_lend_fails ID VALUE ERRNO MESSAGE: the write fails, the shell
# prints MESSAGE (strerror), and last_error starts with "ERRNO: ".
assert_lend_fails() {
	local id="$1" value="$2" errno="$3" message="$4"
	run bash -c 'printf "%s\n" "$1" > "$2"' _ "$value" "$(dev "$id")/borrower"
	assert_failure
	assert_output --partial "write error: $message"
	run cat "$(dev "$id")/last_error"
	assert_success
	assert_output --regexp "^$errno: .+"
}

# wait_line FILE REGEX: wait (bounded, 10 s) for a line of FILE to match.
wait_line() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no line matching '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}

# Pollers (tests/tools/pollers.py) for the poll(2) tests: poll.bats,
# cluster.bats, udev.bats.  Output goes to $POLL_DIR (default $TMP).
POLLERS="$ROOT/tests/tools/pollers.py"
# wake-up bound: 100 ms (issue 18); the ASan pass is slower everywhere
WAKE_MS=100
[ -z "${SANITIZE:-}" ] || WAKE_MS=500

# poller NAME FILE TIMEOUT [select|poll|epoll]: in the background, output
# in $POLL_DIR/NAME.out; returns once it has read FILE and is about to poll.
poller() {
	local out="${POLL_DIR:-$TMP}/$1.out"
	python3 "$POLLERS" wait "$2" "$3" "${4:-poll}" >"$out" 2>&1 &
	POLLER_PIDS="${POLLER_PIDS:-} $!"
	wait_line "$out" '^ready$'
}

# poll_done OUT: the output of poller OUT (pollers.py wait) is whole:
# after "woken" or "timeout" it prints what a read gives now ("now VALUE"
# or "gone ERRNO"), last.
poll_done() {
	wait_line "$1" '^(now|gone) '
}

# woke_within NAME T0_NS: the poller woke at most WAKE_MS after T0_NS
# (date +%s%N), or before it.
woke_within() {
	local out="${POLL_DIR:-$TMP}/$1.out" t
	wait_line "$out" '^(woken|timeout)'
	t=$(awk '$1 == "woken" { print $2 }' "$out")
	[ -n "$t" ] || { cat "$out" >&2; return 1; }
	echo "$1 woke $(((t - $2) / 1000000)) ms after the change returned" >&2
	[ $(((t - $2) / 1000000)) -le "$WAKE_MS" ]
}

pollers_stop() {
	local p
	for p in ${POLLER_PIDS:-}; do
		kill "$p" 2>/dev/null || true
	done
	POLLER_PIDS=
}
