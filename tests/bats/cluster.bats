#!/usr/bin/env bats
# Distributed mode (issue 7): three daemons (--host nodeA/nodeB/nodeC),
# three mounts, one real ZooKeeper (tests/zk/zk.sh), 2 s sessions.
# docs/STATE.md describes the protocol these tests hold it to.

load helpers
load cluster_helpers

GPU=nodeA:0000:65:00.0
NVME_B=nodeB:0000:65:00.0
RACER="$BUILD_DIR/racer"

@test "a lend written on nodeC's mount shows lent on all three mounts" {
	cluster_up nodeA nodeB nodeC
	for h in nodeA nodeB nodeC; do
		run cat "$(cdev $h $GPU)/state"
		assert_output available
	done
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	# the writer's own mount answers at once
	run cat "$(cdev nodeC $GPU)/state" "$(cdev nodeC $GPU)/borrower"
	assert_output "$(printf 'lent\nnodeB')"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU lent nodeB
		run ls "$(mnt $h)/hosts/nodeB/borrowed"
		assert_output $GPU
	done
	# every mount shows the same windows
	run cat "$(cdev nodeA $GPU)/windows"
	assert_output --partial "lut nodeB"
	assert_output --partial "iommu nodeA"
	[ "$(cat "$(cdev nodeB $GPU)/windows")" = "$output" ]

	# each daemon programmed its own host's registers only: nodeB's CPU
	# reaches the BAR through nodeB's LUT (nodeB's run directory), and
	# nodeA's run directory has no such entry
	bar=$(awk '$1 == "lut" && $NF == "bar0" { print $5 }' "$(cdev nodeA $GPU)/windows")
	run "$BUILD_DIR/lendfs-dma" -r "$CTMP/run.nodeB" -x cpu-write nodeB "$bar" c0ffee
	assert_success
	run "$BUILD_DIR/lendfs-dma" -r "$CTMP/run.nodeA" -x cpu-write nodeB "$bar" c0ffee
	assert_failure
	assert_output --partial "unmapped address"

	# and back, from the lender's mount
	echo >"$(cdev nodeA $GPU)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU available ""
	done
	run "$BUILD_DIR/lendfs-dma" -r "$CTMP/run.nodeB" -x cpu-write nodeB "$bar" c0ffee
	assert_failure
}

@test "errors of a forwarded write come back with their errno and reason" {
	cluster_up nodeA nodeB nodeC
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	run bash -c "echo nodeC > $(cdev nodeB $GPU)/borrower"
	assert_failure
	assert_output --partial "Device or resource busy"
	run cat "$(cdev nodeB $GPU)/last_error"
	assert_output "EBUSY: lent to nodeB; return it first"
	# decided on the writer's mount: malformed, unknown, the lender itself
	run bash -c "echo nodeA > $(cdev nodeC nodeA:0000:b3:00.0)/borrower"
	assert_failure
	assert_output --partial "Invalid argument"
	# decided by the lender: policy, and a borrower whose daemon is down
	run bash -c "echo nodeB > $(cdev nodeC nodeA:0000:b3:00.0)/borrower"
	assert_failure
	assert_output --partial "Operation not permitted"
	run bash -c "echo nodeD > $(cdev nodeC $NVME_B)/borrower"
	assert_failure
	assert_output --partial "Host is down"
	run cat "$(cdev nodeC $NVME_B)/last_error"
	assert_output "EHOSTDOWN: borrower nodeD is offline"
	# the current value again is a no-op, on any mount
	echo nodeB >"$(cdev nodeA $GPU)/borrower"
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	# a host with no daemon is offline everywhere, its devices too
	run cat "$(mnt nodeA)/hosts/nodeD/state" "$(cdev nodeB nodeD:0000:3b:00.0)/state"
	assert_output "$(printf 'offline\noffline')"
}

@test "an admin's offline host is offline on every mount, and back" {
	cluster_up nodeA nodeB nodeC
	echo offline >"$(mnt nodeA)/hosts/nodeC/state"
	for h in nodeA nodeB nodeC; do
		eventually 5 bash -c "[ \"\$(cat '$(mnt $h)/hosts/nodeC/state')\" = offline ]"
		eventually 5 state_is $h nodeC:0000:5e:00.0 offline
	done
	run bash -c "echo nodeC > $(cdev nodeB $NVME_B)/borrower"
	assert_failure
	assert_output --partial "Host is down"
	echo online >"$(mnt nodeB)/hosts/nodeC/state"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h nodeC:0000:5e:00.0 available
	done
	echo nodeC >"$(cdev nodeB $NVME_B)/borrower"
	eventually 5 state_is nodeA $NVME_B lent nodeC
}

@test "32 writers spread across the three mounts race on one device: one wins" {
	[ -x "$RACER" ] || { echo "no $RACER: make all builds it" >&2; return 1; }
	cluster_up nodeA nodeB nodeC
	local h pids=()
	for h in nodeA nodeB nodeC; do
		"$RACER" -t 11 -s "$CTMP/go" "$(cdev $h $GPU)/borrower" nodeB nodeC \
			>"$CTMP/racer.$h" 2>"$CTMP/racer.$h.err" &
		pids+=($!)
	done
	sleep 0.5
	touch "$CTMP/go"
	for p in "${pids[@]}"; do
		wait "$p"
	done
	cat "$CTMP"/racer.node? >"$CTMP/all"
	[ "$(wc -l <"$CTMP/all")" -eq 33 ]
	winner=$(cat "$(cdev nodeA $GPU)/borrower")
	[ -n "$winner" ]
	# exactly one value won; writers of the other got EBUSY; writers of
	# the winner got OK (first, or the no-op after) or EBUSY (in flight)
	run awk -v w="$winner" '
		$3 == "OK" && $2 != w { print "a loser succeeded: " $0 }
		$3 != "OK" && $3 != "EBUSY" { print "unexpected: " $0 }
		' "$CTMP/all"
	assert_output ""
	grep -q " $winner OK" "$CTMP/all"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU lent "$winner"
	done
	run "$LENDFS" --check -c "$ZKCONF" --store "zk://$ZK$CHROOT"
	assert_success
}

@test "kill -9 of the borrower's daemon: the device comes back, and the borrower knows" {
	cluster_up nodeA nodeB nodeC
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	eventually 5 state_is nodeA $GPU lent nodeB
	node_kill nodeB
	# after the session timeout (2 s): offline, and the GPU taken back
	eventually $((SESSION_S * 4)) state_is nodeC $GPU available ""
	run cat "$(mnt nodeC)/hosts/nodeB/state"
	assert_output offline
	eventually 5 state_is nodeA $GPU available ""
	run cat "$(cdev nodeA $GPU)/last_error"
	assert_output --regexp "^EHOSTDOWN: taken back from nodeB, whose session expired \(fence epoch [0-9]+\)$"
	grep -q "taken back from nodeB" "$CTMP/log.nodeA"
	# the event log says why, on every mount that is up, once
	for h in nodeA nodeC; do
		eventually 5 grep -qE "^[0-9]+ [0-9]+ $GPU taken-back borrower=nodeB fence=[0-9]+ cause=take-back\$" "$(mnt $h)/events"
		run grep -c "host:nodeB host-offline cause=session" "$(mnt $h)/events"
		assert_output 1
	done
	# it can be lent again at once
	echo nodeC >"$(cdev nodeA $GPU)/borrower"
	eventually 5 state_is nodeC $GPU lent nodeC
	# the borrower comes back: the GPU is not its own any more
	node_up nodeB
	eventually 10 node_online nodeB
	run cat "$(cdev nodeB $GPU)/state" "$(cdev nodeB $GPU)/borrower"
	assert_output "$(printf 'lent\nnodeC')"
	run ls "$(mnt nodeB)/hosts/nodeB/borrowed"
	assert_output ""
	grep -q "taken back while it was away (fence epoch" "$CTMP/log.nodeB"
	run "$ZKCTL" "$ZK" get "$CHROOT/fence/nodeB"
	assert_output --regexp "^[0-9]+ seen$"
	eventually 5 state_is nodeA $GPU lent nodeC
}

# events_same N: the three mounts' `events` are the same, with N device
# events (the hosts' host-online/host-offline come with the sessions).
events_same() {
	local a
	a="$(cat "$(mnt nodeA)/events")"
	[ -n "$a" ] && [ "$(printf '%s\n' "$a" | grep -vc ' host:')" -eq "$1" ] &&
		[ "$a" = "$(cat "$(mnt nodeB)/events")" ] &&
		[ "$a" = "$(cat "$(mnt nodeC)/events")" ]
}

# dev_events HOST: the device events of HOST's mount.
dev_events() {
	grep -v ' host:' "$(mnt "$1")/events"
}

@test "events: three mounts list the same events in the same order, with the writer; kept across a restart" {
	cluster_up nodeA nodeB nodeC
	echo nodeC >"$(cdev nodeA $GPU)/borrower"
	echo nodeA >"$(cdev nodeB $NVME_B)/borrower"
	eventually 5 events_same 4
	# each daemon logged its own session's start, once
	for h in nodeA nodeB nodeC; do
		run grep -cE "^[0-9]+ [0-9]+ host:$h host-online cause=session\$" "$(mnt nodeC)/events"
		assert_output 1
	done
	run dev_events nodeC
	assert_line --index 0 --regexp "^[0-9]+ [0-9]{19} $GPU lending borrower=nodeC host=nodeA uid=$(id -u) pid=[0-9]+ comm=bash\$"
	assert_line --index 1 --regexp "^[0-9]+ [0-9]{19} $GPU lent borrower=nodeC host=nodeA uid="
	assert_line --index 2 --regexp "^[0-9]+ [0-9]{19} $NVME_B lending borrower=nodeA host=nodeB uid="
	assert_line --index 3 --regexp "^[0-9]+ [0-9]{19} $NVME_B lent borrower=nodeA host=nodeB uid="
	# SEQ increases
	awk 'NR > 1 && $1 <= prev { exit 1 } { prev = $1 }' "$(mnt nodeC)/events"
	# concurrent writes on two mounts: one order everywhere
	echo >"$(cdev nodeA $GPU)/borrower" &
	p1=$!
	echo >"$(cdev nodeB $NVME_B)/borrower" &
	wait $p1 $!
	eventually 5 events_same 8
	before="$(dev_events nodeA)"
	# the lender of NVME_B restarts: the history is still there, then it goes on
	node_kill nodeB
	node_up nodeB
	eventually 20 node_online nodeB
	eventually 5 events_same 8
	assert_equal "$(dev_events nodeB)" "$before"
	# its new session, logged by itself once (its old one's end is logged
	# only if another daemon saw its live node go before it came back)
	run grep -c "host:nodeB host-online cause=session" "$(mnt nodeB)/events"
	assert_output 2
	# a write forwarded to the lender names its writer and its mount
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	eventually 5 events_same 10
	run dev_events nodeB
	assert_line --index 8 --regexp "^[0-9]+ [0-9]+ $GPU lending borrower=nodeB host=nodeC uid=$(id -u) pid=[0-9]+ comm=bash\$"
	assert_line --index 9 --regexp "^[0-9]+ [0-9]+ $GPU lent borrower=nodeB host=nodeC uid=$(id -u) pid=[0-9]+ comm=bash\$"
	# a forwarded write the lender refuses: logged once, by the lender, with the writer
	run bash -c "echo nodeC >'$(cdev nodeC $GPU)/borrower'"
	assert_failure
	eventually 5 events_same 11
	run dev_events nodeA
	assert_line --index 10 --regexp "^[0-9]+ [0-9]+ $GPU failed request=lend borrower=nodeC errno=EBUSY reason=\"lent to nodeB; return it first\" host=nodeC uid="
	# the log is in ZooKeeper, one node per event
	run "$ZKCTL" "$ZK" ls "$CHROOT/events"
	assert_success
	assert_equal "$(printf '%s\n' "$output" | grep -c '^e-')" "$(wc -l <"$(mnt nodeA)/events")"
}

# same_tail N: the three mounts' events are the same N lines, with
# consecutive SEQs.
same_tail() {
	local a
	a="$(cat "$(mnt nodeA)/events")"
	[ "$(printf '%s\n' "$a" | wc -l)" -eq "$1" ] &&
		[ "$a" = "$(cat "$(mnt nodeB)/events")" ] &&
		[ "$a" = "$(cat "$(mnt nodeC)/events")" ] &&
		printf '%s\n' "$a" | awk 'NR > 1 && $1 != prev + 1 { exit 1 } { prev = $1 }'
}

# cycles HOST DEV BORROWER N: N lends and returns through HOST's mount.
cycles() {
	for _ in $(seq "$4"); do
		echo "$3" >"$(cdev "$1" "$2")/borrower"
		echo >"$(cdev "$1" "$2")/borrower"
	done
}

@test "events in ZooKeeper: two lenders append at once, one gapless order, trimmed to the retention; a restarted mount catches up" {
	CLUSTER_CONF="$BATS_TEST_TMPDIR/retain.ini"
	sed 's/^\[cluster\]$/[cluster]\nevent_retention = 10/' "$ZKCONF" >"$CLUSTER_CONF"
	cluster_up nodeA nodeB nodeC
	# two lenders, 4 events a cycle each, racing for the log's head
	cycles nodeA $GPU nodeC 40 &
	p1=$!
	cycles nodeB $NVME_B nodeA 40 &
	wait $p1 $!
	eventually 5 same_tail 10
	last=$(tail -n 1 "$(mnt nodeA)/events" | cut -d' ' -f1)
	[ "$last" -ge 320 ]
	# the head names the last SEQ and carries the last append
	run "$ZKCTL" "$ZK" get "$CHROOT/events"
	assert_success
	assert_line --index 0 --regexp "^$last [1-9][0-9]*\$"
	assert_output --partial "$(tail -n 1 "$(mnt nodeA)/events" | cut -d' ' -f2-)"
	# trimmed: the retention, plus at most one trim interval and a batch
	run "$ZKCTL" "$ZK" ls "$CHROOT/events"
	n=$(printf '%s\n' "$output" | grep -c '^e-')
	echo "event nodes: $n" >&2
	[ "$n" -ge 10 ]
	[ "$n" -le $((10 + 64 + 8)) ]
	# nodeC misses more than a head's worth while it is down, then reads
	# them back from the nodes
	node_kill nodeC
	cycles nodeA $GPU nodeB 20
	node_up nodeC
	eventually 20 node_online nodeC
	eventually 5 same_tail 10
}

# zxids NODE: "czxid mzxid version pzxid" of ROOT/NODE.
zxids() {
	"$ZKCTL" "$ZK" stat "$CHROOT/$1"
}

# last_event FIELD: that field of zxids of the newest event node.
last_event() {
	zxids "events/$("$ZKCTL" "$ZK" ls "$CHROOT/events" | tail -n 1)" | cut -d' ' -f"$1"
}

# lend_txns MOUNT: lend $GPU to nodeB through MOUNT's host, then return
# it, and check that each took two ZooKeeper writes after the request:
# the intent, then the borrower's commit carrying the answer and the two
# events (the commit is the transaction right after the intent, and it
# set the events' head and created the last event's node); the return's
# removal of the record created its `returned` event.
lend_txns() {
	local rec head c m
	echo nodeB >"$(cdev "$1" $GPU)/borrower"
	rec="$(zxids "lends/$GPU")"
	head="$(zxids events)"
	c=$(echo "$rec" | cut -d' ' -f1)
	m=$(echo "$rec" | cut -d' ' -f2)
	echo "record: $rec; head: $head" >&2
	[ "$m" -eq $((c + 1)) ]
	[ "$(echo "$head" | cut -d' ' -f2)" -eq "$m" ]
	[ "$(last_event 1)" -eq "$m" ]
	run "$ZKCTL" "$ZK" get "$CHROOT/events/$("$ZKCTL" "$ZK" ls "$CHROOT/events" | tail -n 1)"
	assert_output --regexp "^[0-9]+ $GPU lent borrower=nodeB host=$1 uid="
	# the committed record keeps no event line
	run "$ZKCTL" "$ZK" get "$CHROOT/lends/$GPU"
	assert_line --index 0 "state lent"
	refute_output --partial "event "
	echo >"$(cdev "$1" $GPU)/borrower"
	# the removal (the last change of ROOT/lends's children) made the event
	[ "$(last_event 1)" -eq "$(zxids lends | cut -d' ' -f4)" ]
	run "$ZKCTL" "$ZK" get "$CHROOT/events/$("$ZKCTL" "$ZK" ls "$CHROOT/events" | tail -n 1)"
	assert_output --regexp "^[0-9]+ $GPU returned borrower=nodeB host=$1 uid="
}

@test "a lend's and a return's events ride in the borrower's commit: two ZooKeeper writes each on the lender's mount" {
	cluster_up nodeA nodeB nodeC
	eventually 5 events_same 0
	lend_txns nodeA
	# forwarded from a third host's mount: the same, answered in the commit
	lend_txns nodeC
	eventually 5 events_same 8
	run dev_events nodeB
	local i=0 h e
	for h in nodeA nodeC; do
		for e in lending lent returning returned; do
			assert_line --index $i --regexp "^[0-9]+ [0-9]{19} $GPU $e borrower=nodeB host=$h uid="
			i=$((i + 1))
		done
	done
	# each event once
	for e in lending lent returning returned; do
		run bash -c "grep -c ' $e ' '$(mnt nodeA)/events'"
		assert_output 2
	done
}

@test "kill -9 of the lender's daemon: offline on the others, restored on restart" {
	cluster_up nodeA nodeB nodeC
	echo nodeB >"$(cdev nodeB $GPU)/borrower"
	eventually 5 state_is nodeC $GPU lent nodeB
	node_kill nodeA
	for h in nodeB nodeC; do
		eventually $((SESSION_S * 4)) state_is $h $GPU offline
		run cat "$(mnt $h)/hosts/nodeA/state" "$(cdev $h nodeA:0000:b3:00.0)/state"
		assert_output "$(printf 'offline\noffline')"
	done
	# writes for its devices fail clearly meanwhile
	run bash -c "echo > $(cdev nodeC $GPU)/borrower"
	assert_failure
	assert_output --partial "Host is down"
	node_up nodeA
	for h in nodeA nodeB nodeC; do
		eventually 10 state_is $h $GPU lent nodeB
		eventually 5 state_is $h nodeA:0000:b3:00.0 available
	done
	echo >"$(cdev nodeC $GPU)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU available ""
	done
}

@test "poll: a lend written on one mount wakes the pollers of the others; a take-back wakes them too" {
	local t0
	cluster_up nodeA nodeB nodeC
	POLL_DIR="$CTMP"
	poller onB "$(cdev nodeB $GPU)/state" 10
	poller onA "$(cdev nodeA $GPU)/borrower" 10
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	t0=$(date +%s%N)
	woke_within onB "$t0"
	woke_within onA "$t0"
	poll_done "$CTMP/onB.out"
	poll_done "$CTMP/onA.out"
	# woken by the first change it saw: the intent or the commit
	run cat "$CTMP/onB.out" "$CTMP/onA.out"
	assert_line --regexp '^now (lending|lent)$'
	assert_line "now nodeB"
	eventually 5 state_is nodeB $GPU lent nodeB
	# the borrower's daemon dies: the lender takes the GPU back once its
	# session expired; pollers on the lender's and a third mount wake
	poller takeA "$(cdev nodeA $GPU)/state" 15
	poller takeC "$(cdev nodeC $GPU)/state" 15
	node_kill nodeB
	poll_done "$CTMP/takeA.out"
	t0=$(awk '$1 == "woken" { print $2 }' "$CTMP/takeA.out")
	[ -n "$t0" ]
	woke_within takeC "$t0"
	eventually 5 state_is nodeA $GPU available ""
	eventually 5 state_is nodeC $GPU available ""
}

@test "ZooKeeper down at start: hosts offline, a clear error, then it connects" {
	local dir
	dir="$(mktemp -d)"
	"$ZKSH" start "$dir/zk" 1 >/dev/null
	local zk
	zk="$(cat "$dir/zk/connect")"
	"$ZKSH" stop "$dir/zk"
	CTMP="$(mktemp -d)"
	CHROOT=/down
	CLUSTER_HOSTS=(nodeA)
	ZK_SAVED="$ZK"
	ZK="$zk"
	node_up nodeA
	ZK="$ZK_SAVED"
	run cat "$(mnt nodeA)/hosts/nodeA/state" "$(cdev nodeA $GPU)/state"
	assert_output "$(printf 'offline\noffline')"
	run bash -c "echo nodeB > $(cdev nodeA $GPU)/borrower"
	assert_failure
	assert_output --partial "Host is down"
	eventually 10 grep -q "ZooKeeper: no ZooKeeper server of $zk answered within 2000 ms; retrying in" "$CTMP/log.nodeA"
	# the client library's own chatter stays out of the log (and terminal)
	run grep -c "ZOO_INFO" "$CTMP/log.nodeA" "$CTMP/out.nodeA"
	refute_output --partial ":1"
	"$ZKSH" restart "$dir/zk" 1 >/dev/null
	eventually 30 node_online nodeA
	run cat "$(cdev nodeA $GPU)/state"
	assert_output available
	cluster_down
	"$ZKSH" stop "$dir/zk"
	rm -rf "$dir"
}

@test "--store: malformed URIs and a missing --host are usage errors" {
	run "$LENDFS" -c "$ZKCONF" --store zk:// --host nodeA "$BATS_TEST_TMPDIR"
	assert_failure 2
	assert_output --partial "no ZooKeeper servers"
	run "$LENDFS" -c "$ZKCONF" --store "zk://h:1/a//b" --host nodeA "$BATS_TEST_TMPDIR"
	assert_failure 2
	assert_output --partial "malformed chroot"
	run "$LENDFS" -c "$ZKCONF" --store zk://127.0.0.1:1/x "$BATS_TEST_TMPDIR"
	assert_failure 2
	assert_output --partial "needs --host"
	run "$LENDFS" -c "$ZKCONF" --store zk://127.0.0.1:1/x --state none --host nodeA "$BATS_TEST_TMPDIR"
	assert_failure 2
	run "$LENDFS" -c "$ZKCONF" --store "zk://$ZK/y" --host nodeZ -f "$BATS_TEST_TMPDIR"
	assert_failure 1
	assert_output --partial "needs --host NAME, a host of the config (got 'nodeZ')"
}

@test "a borrower's LUT entry lost behind its back: the return still clears every other one" {
	cluster_up nodeA nodeB nodeC
	local nic=nodeB:0000:17:00.0 dma="$BUILD_DIR/lendfs-dma" first
	# the NIC's 32M BAR takes 4 LUT entries of 8M on nodeA
	echo nodeA >"$(cdev nodeB $nic)/borrower"
	eventually 5 state_is nodeA $nic lent nodeA
	run "$dma" -r "$CTMP/run.nodeA" regs nodeA
	assert_success
	[ "$(grep -c "^lut nodeA .* bar $nic\$" <<<"$output")" -eq 4 ]
	first=$(awk -v d="$nic" '$1 == "lut" && $NF == d { print $3; exit }' <<<"$output")
	"$dma" -r "$CTMP/run.nodeA" lose-lut nodeA "$first"
	run "$dma" -r "$CTMP/run.nodeA" lose-lut nodeA "$first"
	assert_failure
	assert_output --partial "not programmed"
	echo >"$(cdev nodeB $nic)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $nic available ""
	done
	# none of the three others is left (a clear that rolled back on the
	# lost one would program them again)
	run "$dma" -r "$CTMP/run.nodeA" regs nodeA
	assert_success
	refute_output --partial "bar $nic"
}
