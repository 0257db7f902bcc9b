# Distributed mode (issue 7): real ZooKeeper servers (tests/zk/zk.sh) and
# one lendfs daemon per host, each on its own mount point and run
# directory, all with tests/conf/zk.ini (2 s sessions).
#
#   zk_start [N]          start ZooKeeper (N nodes, default 1) in $ZKDIR,
#                         a `mktemp -d` of the test file; sets ZK
#   zk_stop
#   cluster_up HOST...    start a daemon per HOST on a fresh chroot; sets
#                         CTMP, CHROOT; the mount of HOST is $(mnt HOST)
#   node_up HOST          (re)start HOST's daemon
#   node_kill HOST        kill -9 HOST's daemon and detach its mount
#   cluster_down          stop every daemon (unmount), fail on a crash
#   eventually SECS CMD   run CMD until it succeeds, at most SECS seconds
#   setup_file, teardown_file, teardown: the defaults below
#   cluster_registers_ok HOST...  registers = stored lends (lendfs --check)
#
# A HOST listed in NODE_NS (tests/cluster/netns.bash) runs in that network
# namespace, connected to ZooKeeper through NODE_ZK[HOST].

# The lifecycle of most cluster test files: one ZooKeeper server for the
# file, every daemon and poller stopped after each test.  A file that needs
# another defines its own after `load cluster_helpers` (bats keeps the last
# definition).
setup_file() {
	zk_start 1
}

teardown_file() {
	zk_stop
}

teardown() {
	pollers_stop
	cluster_down
}

ZKSH="$ROOT/tests/zk/zk.sh"
ZKCTL="$BUILD_DIR/tests/zk/zkctl"
ZKFLOOR="$BUILD_DIR/tests/zk/zkfloor"
ZKCONF="$ROOT/tests/conf/zk.ini"
SESSION_S=2 # session_timeout_ms of tests/conf/zk.ini

zk_start() {
	ZKDIR="$(mktemp -d)"
	ZK="$("$ZKSH" start "$ZKDIR/zk" "${1:-1}" | tail -n 1)"
	export ZKDIR ZK
}

zk_stop() {
	[ -n "${ZKDIR:-}" ] || return 0
	"$ZKSH" stop "$ZKDIR/zk" || true
	rm -rf "$ZKDIR"
}

mnt() {
	echo "$CTMP/mnt.$1"
}

# cdev HOST ID: the device directory on HOST's mount.
cdev() {
	echo "$CTMP/mnt.$1/devices/$2"
}

node_up() {
	local h="$1" i zk="$ZK" pre=()
	if declare -p NODE_NS >/dev/null 2>&1 && [ -n "${NODE_NS[$h]:-}" ]; then
		pre=(nsenter "--net=/run/netns/${NODE_NS[$h]}")
		zk="${NODE_ZK[$h]}"
	fi
	mkdir -p "$CTMP/mnt.$h"
	"${pre[@]}" "$LENDFS" -f -c "${CLUSTER_CONF:-$ZKCONF}" --host "$h" \
		--store "zk://$zk$CHROOT" --run-dir "$CTMP/run.$h" \
		"$CTMP/mnt.$h" </dev/null >>"$CTMP/out.$h" 2>>"$CTMP/log.$h" 3>&- &
	echo $! >"$CTMP/pid.$h"
	for ((i = 0; i < 100; i++)); do
		[ -e "$CTMP/mnt.$h/version" ] && return 0
		if ! kill -0 "$(cat "$CTMP/pid.$h")" 2>/dev/null; then
			cat "$CTMP/log.$h" >&2
			return 1
		fi
		sleep 0.1
	done
	cat "$CTMP/log.$h" >&2
	return 1
}

# node_online HOST: HOST's own mount sees itself online (session up).
node_online() {
	[ "$(cat "$CTMP/mnt.$1/hosts/$1/state" 2>/dev/null)" = online ]
}

cluster_up() {
	local h
	CTMP="$(mktemp -d)"
	CHROOT="/t$$.$RANDOM"
	CLUSTER_HOSTS=("$@")
	for h in "$@"; do
		node_up "$h"
	done
	for h in "$@"; do
		eventually 20 node_online "$h"
	done
}

node_kill() {
	local pid
	pid="$(cat "$CTMP/pid.$1")"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$CTMP/pid.$1"
	fusermount3 -uz "$CTMP/mnt.$1" 2>/dev/null || true
}

cluster_down() {
	local h pid status=0 rc live=()
	[ -n "${CTMP:-}" ] || return 0
	# every test ends with the hardware checked against the records: each
	# running daemon's registers hold exactly the windows stored for its
	# host (a test that stops ZooKeeper sets CLUSTER_REGISTERS=0)
	for h in "${CLUSTER_HOSTS[@]}"; do
		[ -f "$CTMP/pid.$h" ] && live+=("$h")
	done
	if [ "${CLUSTER_REGISTERS:-1}" = 1 ] && [ ${#live[@]} -gt 0 ]; then
		eventually 5 cluster_registers_ok "${live[@]}" || status=1
	fi
	for h in "${CLUSTER_HOSTS[@]}"; do
		[ -f "$CTMP/pid.$h" ] || continue
		pid="$(cat "$CTMP/pid.$h")"
		fusermount3 -u "$CTMP/mnt.$h" 2>/dev/null ||
			fusermount3 -uz "$CTMP/mnt.$h" 2>/dev/null || true
		rc=0
		timeout 15 tail --pid="$pid" -f /dev/null || kill -9 "$pid"
		wait "$pid" 2>/dev/null || rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "lendfs --host $h exited with status $rc:" >&2
			cat "$CTMP/log.$h" >&2
			status=1
		fi
	done
	# CLUSTER_KEEP=DIR: the daemons' logs and run directories kept there
	[ -z "${CLUSTER_KEEP:-}" ] || cp -r "$CTMP" "$CLUSTER_KEEP/ctmp.$$.$RANDOM" 2>/dev/null || true
	rm -rf "$CTMP"
	CTMP=
	return $status
}

eventually() {
	local secs="$1" i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# cluster_registers_ok HOST...: each HOST's run directory (its host's
# hardware) holds exactly the windows of the lends stored in ZooKeeper
# (lendfs --check --run-dir --host); with the daemons running and settled
cluster_registers_ok() {
	local h out status=0
	for h in "$@"; do
		if ! out="$("$LENDFS" --check -c "${CLUSTER_CONF:-$ZKCONF}" \
			--store "zk://$ZK$CHROOT" --run-dir "$CTMP/run.$h" \
			--host "$h" 2>&1)"; then
			echo "registers of $h do not match the stored lends:" >&2
			echo "$out" >&2
			status=1
		fi
	done
	return $status
}

# state_is HOST ID STATE [BORROWER]
state_is() {
	[ "$(cat "$(cdev "$1" "$2")/state" 2>/dev/null)" = "$3" ] || return 1
	[ $# -lt 4 ] || [ "$(cat "$(cdev "$1" "$2")/borrower")" = "$4" ]
}
