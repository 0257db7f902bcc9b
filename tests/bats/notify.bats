#!/usr/bin/env bats
# sd_notify(3): with $NOTIFY_SOCKET set (Type=notify, contrib/lendfs.service)
# lendfs says READY=1 only once the mount serves, with STATUS= lines, and
# STOPPING=1 when it is unmounted.  tests/tools/sd-notify-listen.py plays
# the service manager: it binds the datagram socket, logs every line, and
# looks at the mount the moment READY=1 arrives.

load helpers

LISTEN="$ROOT/tests/tools/sd-notify-listen.py"

setup() {
	NTMP="$(mktemp -d)"
	SOCK="$NTMP/notify"
	NLOG="$NTMP/notify.log"
	LISTENER_PID=
	DAEMON_PID=
}

teardown() {
	if [ -n "$DAEMON_PID" ]; then
		fusermount3 -uz "$MNT" 2>/dev/null || true
		kill "$DAEMON_PID" 2>/dev/null || true
	fi
	lendfs_unmount
	[ -z "$LISTENER_PID" ] || kill "$LISTENER_PID" 2>/dev/null || true
	rm -rf "$NTMP"
}

# listen MOUNT: start the fake service manager, wait until it is bound.
listen() {
	timeout 30 python3 "$LISTEN" "$SOCK" "$1" "$NLOG" 20 &
	LISTENER_PID=$!
	local i
	for ((i = 0; i < 50; i++)); do
		[ -e "$SOCK.bound" ] && return 0
		sleep 0.1
	done
	echo "the listener did not bind $SOCK" >&2
	return 1
}

# Wait for the listener to finish (it stops after STOPPING=1).
wait_listener() {
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$LISTENER_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$LISTENER_PID"
	LISTENER_PID=
}

@test "foreground: STATUS while recovering, READY=1 once the mount answers, STOPPING=1 on unmount" {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	listen "$MNT"
	NOTIFY_SOCKET="$SOCK" "$LENDFS" -f -c "$DEMO" --state "$TMP/state.db" \
		--run-dir "$TMP/run" "$MNT" </dev/null 2>"$TMP/lendfs.log" &
	LENDFS_PID=$!
	wait_line "$NLOG" '^READY=1'
	run cat "$NLOG"
	# in this order: recovering, then ready (with the mount serving)
	assert_line --index 0 "STATUS=recovering stored lends"
	assert_line --index 1 --regexp "^READY=1 mounted=1 version=[0-9]+\.[0-9]+\.[0-9]+$"
	assert_line --index 2 "MAINPID=$LENDFS_PID"
	assert_line --index 3 "STATUS=serving 7 devices at $MNT"
	refute_line STOPPING=1
	# still serving after READY: a lend works
	lend $GPU nodeB
	run cat "$(dev $GPU)/state"
	assert_output lent

	fusermount3 -u "$MNT"
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 0 ]
	wait_listener
	run cat "$NLOG"
	assert_line --index 4 STOPPING=1
	assert_line --index 5 "STATUS=unmounting"
	refute_line TIMEOUT
	[ "$(grep -c '^READY=1' "$NLOG")" -eq 1 ]
}

@test "SIGTERM (systemctl stop) sends STOPPING=1 and unmounts" {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	listen "$MNT"
	NOTIFY_SOCKET="$SOCK" "$LENDFS" -f -c "$DEMO" --state "$TMP/state.db" \
		--run-dir "$TMP/run" "$MNT" </dev/null 2>"$TMP/lendfs.log" &
	LENDFS_PID=$!
	wait_line "$NLOG" '^READY=1 mounted=1'
	kill -TERM "$LENDFS_PID"
	lendfs_wait_exit
	[ "$LENDFS_STATUS" -eq 0 ]
	wait_listener
	run cat "$NLOG"
	assert_line STOPPING=1
	refute mountpoint -q "$MNT"
}

@test "background: the forked daemon sends READY=1 with its own MAINPID" {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	listen "$MNT"
	run env NOTIFY_SOCKET="$SOCK" timeout 20 "$LENDFS" -c "$DEMO" \
		--state "$TMP/state.db" --run-dir "$TMP/run" "$MNT"
	assert_success
	# the parent exits only once the child has mounted, so READY is near
	wait_line "$NLOG" '^READY=1'
	DAEMON_PID="$(sed -n 's/^MAINPID=//p' "$NLOG")"
	[ -n "$DAEMON_PID" ]
	run cat "/proc/$DAEMON_PID/comm"
	assert_output lendfs
	run cat "$NLOG"
	assert_line --regexp "^READY=1 mounted=1 version="
	fusermount3 -u "$MNT"
	wait_listener
	run cat "$NLOG"
	assert_line STOPPING=1
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	run kill -0 "$DAEMON_PID"
	assert_failure
	DAEMON_PID=
}

@test "a daemon that cannot start never says READY=1" {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	echo "not a database" >"$TMP/state.db"
	listen "$MNT"
	run env NOTIFY_SOCKET="$SOCK" timeout 20 "$LENDFS" -f -c "$DEMO" \
		--state "$TMP/state.db" --run-dir "$TMP/run" "$MNT"
	assert_failure 1
	assert_output --partial "cannot start"
	wait_line "$NLOG" "^STATUS=recovering"
	sleep 0.3
	run grep -c READY=1 "$NLOG"
	assert_output 0
	refute mountpoint -q "$MNT"
}
