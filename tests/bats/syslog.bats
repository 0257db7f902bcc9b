#!/usr/bin/env bats
# Where the daemon's log lines go (lendfs/log.h): without -f the daemon
# forks and its stderr is /dev/null once it has mounted, so everything it
# says, the engine's recovery decisions at start-up included, goes to
# syslog(3); with -f everything goes to stderr, "lendfs: MESSAGE".
#
# glibc's syslog(3) writes to the fixed socket /dev/log.  To catch those
# messages without touching the machine's logging, the daemon runs in a
# mount namespace of its own (unshare --mount --propagation private) whose
# /dev is a directory of the test: the few device nodes lendfs opens are
# bind-mounted into it, and its `log` is a datagram socket bound by
# tests/tools/syslog-listen.py.  The whole of /dev is replaced rather than
# /dev/log alone because a bind mount needs an existing target, and many
# machines (containers, CI runners) have no /dev/log; creating one would
# change the real /dev, which the namespace shares.  Nothing of this is
# visible outside the namespace, the FUSE mount included: the test reads
# the log, and enters the namespace (nsenter) to write to the tree.

load helpers

LISTEN="$ROOT/tests/tools/syslog-listen.py"
GONE=nodeA:0000:99:00.0	# a device the config does not have
DROPPED="lend of $GONE to nodeB dropped: the device is no longer in the config"

setup() {
	LISTENER_PID=
	DAEMON_PID=
	[ "$(id -u)" -eq 0 ] || skip "needs root: a mount namespace"
	# a state whose recovery has something to say: a lend recorded for a
	# device that is no longer in the config (and one that is restored)
	lendfs_mount
	lend "$GPU" nodeB
	fusermount3 -u "$MNT"
	lendfs_wait_exit
	sqlite3 "$TMP/state.db" \
		"INSERT INTO lends(device, borrower, state, since, epoch, windows) SELECT '$GONE', 'nodeB', 1, 0, 7, windows FROM lends WHERE device = '$GPU';"
	SYSLOG="$TMP/syslog"
	listen
}

teardown() {
	[ -n "$DAEMON_PID" ] || DAEMON_PID=$(ns_daemon)
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
		wait_gone "$DAEMON_PID" || true
	fi
	[ -z "$LISTENER_PID" ] || kill "$LISTENER_PID" 2>/dev/null || true
	lendfs_unmount
}

# The listener on $TMP/dev/log, the socket the namespace's /dev/log is.
listen() {
	mkdir -p "$TMP/dev"
	timeout 60 python3 "$LISTEN" "$TMP/dev/log" "$SYSLOG" 50 &
	LISTENER_PID=$!
	local i
	for ((i = 0; i < 50; i++)); do
		[ -e "$TMP/dev/log.bound" ] && return 0
		sleep 0.1
	done
	echo "the listener did not bind $TMP/dev/log" >&2
	return 1
}

# in_private_dev CMD...: run CMD in a mount namespace of its own whose /dev
# is $TMP/dev (the listener's socket as `log`, and the devices lendfs
# opens); CMD's pid (the shell execs it) in $TMP/ns.pid.  The namespace
# and its mounts go away with its last process.
in_private_dev() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --propagation private bash -c '
		set -e
		dir=$1
		shift
		for n in null zero random urandom fuse; do
			: >"$dir/$n"
			mount --bind "/dev/$n" "$dir/$n"
		done
		mount --rbind "$dir" /dev
		readlink /proc/self/ns/mnt >"$dir/../ns.mnt"
		echo $$ >"$dir/../ns.pid"
		exec "$@"' _ "$TMP/dev" "$@"
}

# ns_daemon: the pid of the lendfs process in that namespace, if any (the
# forked daemon is not the process in_private_dev started).
ns_daemon() {
	local ns p
	ns=$(cat "$TMP/ns.mnt" 2>/dev/null) || return 0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] &&
			[ "$(cat "$p/comm" 2>/dev/null)" = lendfs ] &&
			echo "${p#/proc/}"
	done
	return 0
}

# wait_gone PID: wait (bounded, 10 s) for a process that is not our child.
wait_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# in_tree CMD: run a shell command in the daemon's namespace (its mount).
in_tree() {
	nsenter --target "$DAEMON_PID" --mount bash -c "$1"
}

# wait_mounted: wait (bounded, 10 s) until the tree answers in there.
wait_mounted() {
	local i
	for ((i = 0; i < 100; i++)); do
		in_tree "test -e '$MNT/version'" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "lendfs did not mount in its namespace:" >&2
	cat "$TMP/stderr" >&2
	return 1
}

@test "without -f, recovery at start-up and every later event reach syslog, not stderr" {
	# stdout and stderr until the child detaches, the recovery included
	run in_private_dev "$LENDFS" -c "$DEMO" --state "$TMP/state.db" \
		--run-dir "$TMP/run" "$MNT"
	# the parent exits 0 once the forked child has mounted
	assert_success
	assert_output ""
	wait_line "$SYSLOG" "lendfs\[[0-9]+\]: $DROPPED\$"
	DAEMON_PID=$(ns_daemon)
	[ -n "$DAEMON_PID" ]
	# the line comes from the forked daemon, not from the parent
	run sed -n 's/.* lendfs\[\([0-9]*\)\]: lend of .* dropped: .*/\1/p' "$SYSLOG"
	assert_output "$DAEMON_PID"
	[ "$DAEMON_PID" != "$(cat "$TMP/ns.pid")" ]
	# facility daemon (3), priority notice (5): <29>
	run grep -c "^<29>.* lendfs\[$DAEMON_PID\]: $DROPPED\$" "$SYSLOG"
	assert_output 1

	# after detaching: a refused request is a warning (<28>), a lend a notice
	run in_tree "echo nodeZ > '$MNT/devices/$GPU/borrower'"
	assert_failure
	run in_tree "echo nodeC > '$MNT/devices/$NIC/borrower'"
	assert_success
	wait_line "$SYSLOG" "^<28>.* lendfs\[$DAEMON_PID\]: cannot lend $GPU to nodeZ: "
	wait_line "$SYSLOG" "^<29>.* lendfs\[$DAEMON_PID\]: $NIC: lent to nodeC\$"

	# SIGTERM: a clean shutdown, which unmounts inside the namespace
	kill -TERM "$DAEMON_PID"
	wait_gone "$DAEMON_PID"
	DAEMON_PID=
}

@test "with -f, the same recovery message goes to stderr and nothing to syslog" {
	local job status=0

	in_private_dev "$LENDFS" -f -c "$DEMO" --state "$TMP/state.db" \
		--run-dir "$TMP/run" "$MNT" </dev/null >/dev/null 2>"$TMP/stderr" 3>&- &
	job=$!
	wait_line "$TMP/ns.pid" '^[0-9]+$'
	DAEMON_PID=$(cat "$TMP/ns.pid")
	wait_mounted
	# what it said while recovering, and while serving
	run grep -c "^lendfs: $DROPPED\$" "$TMP/stderr"
	assert_output 1
	run in_tree "echo nodeC > '$MNT/devices/$NIC/borrower'"
	assert_success
	wait_line "$TMP/stderr" "^lendfs: $NIC: lent to nodeC\$"
	kill -TERM "$DAEMON_PID"
	wait "$job" || status=$?
	DAEMON_PID=
	[ "$status" -eq 0 ]
	run cat "$SYSLOG"
	assert_output ""
}
