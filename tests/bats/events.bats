#!/usr/bin/env bats
# The event log `events` (issue 18, SPEC section 8, docs/ABI/events): one
# line per change, with the writer's uid, pid and comm; hostile bytes of a
# refused write escaped; kept in the store across a restart, trimmed to
# [cluster] event_retention; an append-only file that tail -f, a poll(2)
# loop and `lendctl events --follow` follow.  Distributed mode:
# cluster.bats; hot-plug causes: udev.bats.

load helpers

LENDCTL="$ROOT/contrib/lendctl"
LINE_RE='^[0-9]+ [0-9]{19} [^ ]+ [a-z-]+( [a-z_]+=([-A-Za-z0-9:._/@+,]+|"([^"\\]|\\.)*"))*$'

setup() {
	lendfs_mount
	export LENDFS_MOUNT="$MNT" LENDFS_WAIT="$BUILD_DIR/lendfs-wait"
}

teardown() {
	pollers_stop
	[ -z "${FOLLOW_PID:-}" ] || kill "$FOLLOW_PID" 2>/dev/null || true
	lendfs_unmount
}

# kill -9 the daemon and mount again on the same state.
restart() {
	lendfs_crash_restart
}

@test "events shows a lend with the writer's uid, pid and comm, one well-formed line each" {
	run stat -c '%a %s' "$MNT/events"
	assert_output "444 0"
	pid=$(python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"nodeB\n")
print(os.getpid())' "$(dev $GPU)/borrower")
	lend $GPU ""
	run cat "$MNT/events"
	assert_success
	assert_equal "${#lines[@]}" 4
	assert_line --index 0 --regexp "^1 [0-9]{19} $GPU lending borrower=nodeB uid=$(id -u) pid=$pid comm=python3\$"
	assert_line --index 1 --regexp "^2 [0-9]{19} $GPU lent borrower=nodeB uid=$(id -u) pid=$pid comm=python3\$"
	assert_line --index 2 --regexp "^3 [0-9]{19} $GPU returning borrower=nodeB uid=$(id -u) pid=[0-9]+ comm=bash\$"
	assert_line --index 3 --regexp "^4 [0-9]{19} $GPU returned borrower=nodeB "
	for l in "${lines[@]}"; do
		[[ $l =~ $LINE_RE ]] || { echo "malformed: $l" >&2; false; }
	done
	# TIME_NS is the wall clock (UTC) of the change: within the last minute
	t=$(awk 'NR == 2 { print $2 }' "$MNT/events")
	now=$(date +%s%N)
	[ $((now - t)) -ge 0 ]
	[ $((now - t)) -lt 60000000000 ]
	# the metrics count them
	run grep '^lendfs_events_total{event="lent"}' "$MNT/metrics"
	assert_output 'lendfs_events_total{event="lent"} 1'
	# size grows with the log, mtime is the last event's
	run stat -c %s "$MNT/events"
	assert_output "$(cat "$MNT/events" | wc -c)"
}

@test "comm is the writer's at each write: after PR_SET_NAME or exec, the same pid shows its new name" {
	# lendfs keeps the last writers' /proc/PID/comm open and preads it
	# (lendfs/fs.c caller_comm()): what it reads must be the comm of now
	pid=$(python3 -c 'import ctypes, os, sys
def w(v):
    fd = os.open(sys.argv[1], os.O_WRONLY)
    os.write(fd, v)
    os.close(fd)
w(b"nodeB\n")
ctypes.CDLL(None).prctl(15, b"renamed-writer", 0, 0, 0)  # PR_SET_NAME
w(b"\n")
print(os.getpid())' "$(dev $GPU)/borrower")
	bash -c 'echo $$ >"$2"; echo nodeC >"$1"; exec sh -c "echo >\"\$1\"" sh "$1"' \
		_ "$(dev $GPU)/borrower" "$TMP/pid2"
	pid2=$(cat "$TMP/pid2")
	run grep -E ' (lending|returning) ' "$MNT/events"
	assert_equal "${#lines[@]}" 4
	assert_line --index 0 --regexp " lending borrower=nodeB .* pid=$pid comm=python3\$"
	assert_line --index 1 --regexp " returning borrower=nodeB .* pid=$pid comm=renamed-writer\$"
	assert_line --index 2 --regexp " lending borrower=nodeC .* pid=$pid2 comm=bash\$"
	assert_line --index 3 --regexp " returning borrower=nodeC .* pid=$pid2 comm=sh\$"
}

@test "a failed request is logged with errno and reason; hostile bytes are escaped" {
	assert_lend_fails $ROOTFS nodeB EPERM "Operation not permitted"
	run bash -c 'printf "x\001\033[31m\"\\\\\n" >"$1"' _ "$(dev $GPU)/borrower"
	assert_failure
	lend $GPU nodeB
	run bash -c 'printf "nodeC\"\\\\\n" >"$1"' _ "$(dev $GPU)/borrower"
	assert_failure
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $ROOTFS failed request=lend borrower=nodeB errno=EPERM reason=\"policy refuses to lend $ROOTFS: listed in \\[policy\\] deny\" uid="
	assert_line --partial "$GPU failed request=write value=\"x\\x01\\x1b[31m\\\"\\\\\" errno=EINVAL reason=\"malformed name: byte 0x01 at offset 1\" uid="
	assert_line --partial "$GPU failed request=lend borrower=\"nodeC\\\"\\\\\" errno=EINVAL reason=\"malformed host name 'nodeC\\\"\\\\' (1-63 of A-Z a-z 0-9 _ -)\""
	# no raw control byte, quote or backslash outside the escapes
	run bash -c 'LC_ALL=C grep -c "[^[:print:]]" "$1"' _ "$MNT/events"
	assert_output 0
	run cat "$MNT/events"
	for l in "${lines[@]}"; do
		[[ $l =~ $LINE_RE ]] || { echo "malformed: $l" >&2; false; }
	done
}

@test "writes to events fail EACCES; the file is 0444" {
	run bash -c 'echo x >"$1"' _ "$MNT/events"
	assert_failure
	assert_output --partial "Permission denied"
	run python3 -c 'import os, sys
try:
    os.open(sys.argv[1], os.O_WRONLY)
except OSError as e:
    print(e.errno)' "$MNT/events"
	assert_output 13
	run cat "$MNT/events"
	assert_output ""
}

@test "after a restart (kill -9) the history is still there, and goes on" {
	lend $GPU nodeB
	lend $NIC nodeC
	before=$(cat "$MNT/events")
	restart
	run cat "$MNT/events"
	# the same lines first, then what recovery did
	assert_equal "$(head -n 4 "$MNT/events")" "$before"
	assert_line --regexp "^5 [0-9]+ $GPU lent borrower=nodeB cause=recovery\$"
	assert_line --regexp "^6 [0-9]+ $NIC lent borrower=nodeC cause=recovery\$"
	lend $GPU ""
	run tail -n 1 "$MNT/events"
	assert_output --regexp "^8 [0-9]+ $GPU returned borrower=nodeB uid="
}

@test "retention: [cluster] event_retention = 10 keeps the last 10, in memory and in the store" {
	local conf="$BATS_TEST_TMPDIR/retain.ini"
	sed 's/^\[cluster\]$/[cluster]\nevent_retention = 10/' "$DEMO" >"$conf"
	lendfs_unmount
	lendfs_mount "$conf"
	# 30 lend/return cycles: 120 events
	for i in $(seq 30); do
		lend $GPU nodeB
		lend $GPU ""
	done
	run cat "$MNT/events"
	assert_equal "${#lines[@]}" 10
	assert_line --index 0 --regexp "^111 "
	assert_line --index 9 --regexp "^120 [0-9]+ $GPU returned "
	# the store trims too (every 64 appends): at most 10 + 64 rows, the newest kept
	n=$(sqlite3 "$TMP/state.db" 'SELECT count(*) FROM events')
	[ "$n" -ge 10 ]
	[ "$n" -le 74 ]
	assert_equal "$(sqlite3 "$TMP/state.db" 'SELECT max(seq) FROM events')" 120
	restart
	run cat "$MNT/events"
	assert_equal "${#lines[@]}" 10
	assert_line --index 0 --regexp "^111 "
}

@test "a read at the end returns 0 at once; poll(2) gives POLLIN on an append" {
	lend $GPU nodeB
	# nothing appended: the poll times out
	python3 "$POLLERS" append "$MNT/events" 2 >"$TMP/idle.out" 2>&1
	run cat "$TMP/idle.out"
	assert_line --regexp '^eof [0-9]+ 0$'
	assert_line timeout
	ms=$(awk '$1 == "eof" { print $2 }' "$TMP/idle.out")
	[ "$ms" -lt 100 ]
	# an append wakes it, and the new lines are read from where it was
	python3 "$POLLERS" append "$MNT/events" 10 >"$TMP/app.out" 2>&1 &
	POLLER_PIDS="$!"
	wait_line "$TMP/app.out" '^ready$'
	lend $GPU ""
	t0=$(date +%s%N)
	woke_within app "$t0"
	wait_line "$TMP/app.out" "^new [0-9]+ [0-9]+ $GPU returned "
	run cat "$TMP/app.out"
	assert_line --regexp '^woken [0-9]+ [0-9]+$'
	ev=$(awk '$1 == "woken" { print $3 }' "$TMP/app.out")
	[ $((ev & 1)) -eq 1 ] # POLLIN
	# and only that (POLLIN|POLLRDNORM): POLLPRI or POLLERR would tell
	# readers such as less(1) that the input broke
	[ $((ev & (2 | 8))) -eq 0 ]
	assert_line --regexp "^new 3 [0-9]+ $GPU returning "
	refute_line --partial " lent "
}

@test "less +F follows the log (poll(2) on it never reports POLLERR)" {
	lend $GPU nodeB
	local writer
	( sleep 1.5; echo >"$(dev $GPU)/borrower" ) &
	writer=$!
	# less needs a terminal: script(1) gives it one.  --foreground keeps
	# less in the terminal's foreground process group: in a group of its
	# own (timeout's default) its first tcsetattr() stops it with SIGTTOU
	# wherever timeout is not the session leader, and it prints nothing.
	SHELL=/bin/sh TERM=dumb script -qc \
		"timeout --foreground 4 less +F '$MNT/events'" /dev/null \
		>"$TMP/less.out" 2>&1 </dev/null || true
	wait "$writer"
	run bash -c "tr -cd '[:print:]\\n' <'$TMP/less.out'"
	echo "less printed: $output" >&2
	assert_output --partial "$GPU lent borrower=nodeB"
	assert_output --partial "$GPU returned borrower=nodeB"
}

@test "tail -f, lendfs-wait -f and lendctl events --follow follow the log" {
	lend $GPU nodeB
	tail -f "$MNT/events" >"$TMP/tail.out" 2>&1 &
	POLLER_PIDS="$!"
	"$LENDCTL" events --follow >"$TMP/follow.out" 2>&1 &
	FOLLOW_PID=$!
	wait_line "$TMP/tail.out" " $GPU lent "
	wait_line "$TMP/follow.out" " $GPU lent "
	lend $NIC nodeA
	wait_line "$TMP/follow.out" "^4 [0-9]+ $NIC lent borrower=nodeA "
	wait_line "$TMP/tail.out" "^4 [0-9]+ $NIC lent borrower=nodeA "
	run cat "$TMP/follow.out"
	assert_equal "${#lines[@]}" 4
	run "$LENDCTL" events
	assert_success
	assert_equal "$output" "$(cat "$TMP/follow.out")"
}

@test "a reader open across many appends keeps its offsets; the daemon's memory stays flat" {
	exec 7<"$MNT/events"
	lend $GPU nodeB
	first=$(cat <&7)
	rss0=$(awk '/^VmRSS/ { print $2 }' /proc/$LENDFS_PID/status)
	for i in $(seq 200); do
		lend $GPU ""
		lend $GPU nodeB
	done
	rest=$(cat <&7)
	exec 7<&-
	assert_equal "$(printf '%s\n%s' "$first" "$rest")" "$(cat "$MNT/events")"
	rss1=$(awk '/^VmRSS/ { print $2 }' /proc/$LENDFS_PID/status)
	echo "rss $rss0 -> $rss1 kB" >&2
	# under ASan freed memory stays in its quarantine (256 MiB by default),
	# so the resident size says nothing there: the plain pass checks it
	[ -n "${SANITIZE:-}" ] || [ $((rss1 - rss0)) -lt 4096 ]
}

@test "an admin's host-offline and host-online are logged with the writer, before their devices' events" {
	lend $NIC nodeC
	echo offline >"$MNT/hosts/nodeC/state"
	echo online >"$MNT/hosts/nodeC/state"
	echo online >"$MNT/hosts/nodeC/state" # no change: no event
	run grep ' host:nodeC ' "$MNT/events"
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp "^3 [0-9]+ host:nodeC host-offline admin=offline uid=$(id -u) pid=[0-9]+ comm=bash\$"
	assert_line --index 1 --regexp "^[0-9]+ [0-9]+ host:nodeC host-online admin=online uid="
	# the lend to nodeC broke with its route: failed, cause=host, after the host's event
	run sed -n 4p "$MNT/events"
	assert_output --regexp "^4 [0-9]+ $NIC failed borrower=nodeC errno=EHOSTDOWN reason=\"route lost: host nodeC went offline\" cause=host uid="
}
