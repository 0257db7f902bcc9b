#!/usr/bin/env bats
# The history check (issue 17), run by `make check-cluster`: three mounts,
# each daemon in its own network namespace, a 3-node ZooKeeper ensemble.
# tests/tools/jepsen.py records at least HISTORY_OPS operations (lends,
# returns and reads of a few devices from every mount) under random cuts,
# kill -9 of daemons and one kill -9 of the ZooKeeper leader; then
# tests/tools/linearize.py checks the history per device as a
# linearizable register (docs/TESTING.md).

load ../bats/helpers
load ../bats/cluster_helpers
load netns

HISTORY_OPS=${HISTORY_OPS:-1000}
HISTORY_SECONDS=${HISTORY_SECONDS:-60}

setup_file() {
	[ "$(id -u)" -eq 0 ] || {
		echo "history.bats needs root (network namespaces)" >&2
		return 1
	}
	ZK_BIND=0.0.0.0 zk_start 3
}

teardown_file() {
	zk_stop
}

teardown() {
	local status=0
	netns_teardown || status=1
	[ -z "${HIST:-}" ] || rm -f "$HIST"
	return $status
}

@test "a history of lends, returns and reads under partitions, kills and a leader kill is linearizable" {
	netns_up nodeA nodeB nodeC
	cluster_up nodeA nodeB nodeC
	local h ns=""
	for h in nodeA nodeB nodeC; do
		ns="$ns${ns:+,}$h=${NODE_NS[$h]}:${NODE_NET[$h]}"
	done
	HIST="$(mktemp)"
	run python3 "$ROOT/tests/tools/jepsen.py" --ctmp "$CTMP" \
		--hosts nodeA,nodeB,nodeC --netns "$ns" \
		--devices nodeA:0000:65:00.0=nodeA,nodeB:0000:17:00.0=nodeB,nodeB:0000:65:00.0=nodeB,nodeC:0000:5e:00.0=nodeC \
		--lendfs "$LENDFS" --conf "$ZKCONF" --zk "$ZK" --chroot "$CHROOT" \
		--zksh "$ZKSH" --zkdir "$ZKDIR/zk" --out "$HIST" \
		--ops "$HISTORY_OPS" --duration "$HISTORY_SECONDS"
	echo "$output" | sed 's/^/# /' >&3
	[ -z "${HISTORY_KEEP:-}" ] || cp "$HIST" "$HISTORY_KEEP"
	assert_success
	# checked by the driver with the daemons it started still running
	assert_output --partial "registers of every host match the stored lends"
	ops=$(grep -c '"type": "op"' "$HIST")
	[ "$ops" -ge "$HISTORY_OPS" ]
	grep -q '"kind": "cut"' "$HIST"
	grep -q '"kind": "kill"' "$HIST"
	grep -q '"what": "zk-leader-kill"' "$HIST"
	# not a history of failures only: acknowledged writes and settled reads
	# on every mount
	run python3 -c '
import json, sys
n = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["type"] == "op" and r["result"] == "ok":
        n[r["f"], r["mount"]] = n.get((r["f"], r["mount"]), 0) + 1
print(min(n.get((f, h), 0) for f in ("write", "read")
          for h in ("nodeA", "nodeB", "nodeC")))' "$HIST"
	[ "$output" -ge 30 ]

	run python3 "$ROOT/tests/tools/linearize.py" --lag "${HISTORY_LAG_MS:-3000}" "$HIST"
	echo "$output" | sed 's/^/# /' >&3
	assert_success
	run "$LENDFS" --check -c "$ZKCONF" --store "zk://$ZK$CHROOT"
	assert_success
}
