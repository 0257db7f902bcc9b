#!/usr/bin/env bats
# Partitions (issue 17), run by `make check-cluster`: one daemon (a
# borrower, a lender, a forwarding third host) is cut from ZooKeeper
# without being killed, then healed.  Each daemon runs in its own network
# namespace (tests/cluster/netns.bash); the cut drops its packets.
# docs/STATE.md, "Partitions", is what these tests hold the daemons to.

load ../bats/helpers
load ../bats/cluster_helpers
load netns

GPU=nodeA:0000:65:00.0
NIC=nodeB:0000:17:00.0
NVME_C=nodeC:0000:5e:00.0
SESSION_MS=$((SESSION_S * 1000))

setup_file() {
	[ "$(id -u)" -eq 0 ] || {
		echo "partition.bats needs root (network namespaces)" >&2
		return 1
	}
	ZK_BIND=0.0.0.0 zk_start 1
}

teardown_file() {
	zk_stop
}

setup() {
	netns_up nodeA nodeB nodeC
	cluster_up nodeA nodeB nodeC
}

teardown() {
	netns_teardown
}

ms() {
	date +%s%3N
}

# reads_answer HOST: every file of a device and the host list answer
# within 2 s, as while connected
reads_answer() {
	timeout 2 cat "$(cdev "$1" $GPU)/state" "$(cdev "$1" $GPU)/borrower" \
		"$(cdev "$1" $GPU)/last_error" "$(mnt "$1")/lends" >/dev/null &&
		timeout 2 ls "$(mnt "$1")/hosts" >/dev/null
}

# refused HOST DEV VALUE: the write fails within 1 s with EHOSTDOWN and the
# reason "no ZooKeeper session", and the device's state is unchanged
refused() {
	local h="$1" dev="$2" value="$3" before t0 took
	before=$(cat "$(cdev "$h" "$dev")/state" "$(cdev "$h" "$dev")/borrower")
	t0=$(ms)
	run timeout 5 bash -c "echo '$value' > '$(cdev "$h" "$dev")/borrower'"
	took=$(($(ms) - t0))
	assert_failure
	assert_output --partial "Host is down"
	[ "$took" -lt 1000 ] || {
		echo "the refusal took $took ms" >&2
		return 1
	}
	run cat "$(cdev "$h" "$dev")/last_error"
	assert_output --regexp "^EHOSTDOWN: no ZooKeeper session: $h has not reached ZooKeeper for [0-9]+ ms; nothing was written\$"
	[ "$(cat "$(cdev "$h" "$dev")/state" "$(cdev "$h" "$dev")/borrower")" = "$before" ]
}

# the BAR0 address of the GPU's lend, as its windows list it
gpu_bar() {
	awk '$1 == "lut" && $NF == "bar0" { print $5 }' "$(cdev nodeA $GPU)/windows"
}

@test "a cut borrower: reads answer, writes are refused, its devices are taken back only after its session expired, and it knows after the heal" {
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU lent nodeB
	done
	bar=$(gpu_bar)
	run "$BUILD_DIR/lendfs-dma" -r "$CTMP/run.nodeB" -x cpu-write nodeB "$bar" c0ffee
	assert_success

	t_cut=$(ms)
	cut nodeB
	# the lender keeps the lend until the borrower's session has expired:
	# sample its mount every 50 ms until the take-back, and the borrower's
	# register: it stops mapping the BAR (fences itself) first
	t_unmap=""
	while state_is nodeA $GPU lent nodeB; do
		[ $(($(ms) - t_cut)) -lt $((SESSION_MS * 4)) ] || {
			echo "not taken back within $((SESSION_MS * 4)) ms" >&2
			return 1
		}
		[ -n "$t_unmap" ] ||
			"$BUILD_DIR/lendfs-dma" -r "$CTMP/run.nodeB" -x cpu-write nodeB "$bar" c0ffee 2>/dev/null ||
			t_unmap=$(($(ms) - t_cut))
		sleep 0.05
	done
	t_back=$(($(ms) - t_cut))
	echo "# borrower unmapped $t_unmap ms, taken back $t_back ms after the cut (session timeout $SESSION_MS ms)" >&3
	[ "$t_back" -ge "$SESSION_MS" ]
	[ -n "$t_unmap" ]
	[ "$t_unmap" -lt "$t_back" ]
	run "$BUILD_DIR/lendfs-dma" -r "$CTMP/run.nodeB" -x cpu-write nodeB "$bar" c0ffee
	assert_failure
	assert_output --partial "unmapped address"
	grep -q "ZooKeeper: connection lost; 1 device(s) lent to nodeB no longer mapped here until the session is back" "$CTMP/log.nodeB"
	eventually 2 state_is nodeA $GPU available ""
	run cat "$(cdev nodeA $GPU)/last_error"
	assert_output --regexp "^EHOSTDOWN: taken back from nodeB, whose session expired \(fence epoch [0-9]+\)$"
	# the fence is recorded in ZooKeeper, not yet seen by nodeB
	eventually 5 bash -c "'$ZKCTL' '$ZK' get '$CHROOT/fence/nodeB' | grep -qx '[0-9][0-9]*'"
	fence=$("$ZKCTL" "$ZK" get "$CHROOT/fence/nodeB")

	# the cut mount: reads answer, everything offline since the loss,
	# writes are refused at once with the reason
	reads_answer nodeB
	eventually 5 bash -c "[ \"\$(cat '$(mnt nodeB)/hosts/nodeB/state')\" = offline ]"
	run cat "$(cdev nodeB $GPU)/state" "$(cdev nodeB $NIC)/state"
	assert_output "$(printf 'offline\noffline')"
	refused nodeB $GPU ""
	refused nodeB $NIC nodeC
	refused nodeB $NVME_C nodeA
	# a whole session timeout after the loss: a new session is due
	eventually 5 grep -q "ZooKeeper: no answer from any server for a session timeout ($SESSION_MS ms)" "$CTMP/log.nodeB"
	run grep -c "ZooKeeper: no answer from any server for a session timeout ($SESSION_MS ms)" "$CTMP/log.nodeB"
	assert_output 1

	# the others go on: the GPU is lent again at once
	echo nodeC >"$(cdev nodeA $GPU)/borrower"
	eventually 5 state_is nodeC $GPU lent nodeC
	echo nodeA >"$(cdev nodeC $NVME_C)/borrower"

	heal nodeB
	eventually 15 node_online nodeB
	# it lost the GPU: not its own any more, its registers still clear,
	# the fence seen and logged
	eventually 5 state_is nodeB $GPU lent nodeC
	run ls "$(mnt nodeB)/hosts/nodeB/borrowed"
	assert_output ""
	eventually 5 bash -c "! '$BUILD_DIR/lendfs-dma' -r '$CTMP/run.nodeB' -x cpu-write nodeB '$bar' c0ffee"
	grep -q "devices lent to nodeB were taken back while it was away (fence epoch $fence)" "$CTMP/log.nodeB"
	run "$ZKCTL" "$ZK" get "$CHROOT/fence/nodeB"
	assert_output "$fence seen"
	# and it writes again
	echo nodeA >"$(cdev nodeB $NIC)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $NIC lent nodeA
		eventually 5 state_is $h $NVME_C lent nodeA
	done
	run "$LENDFS" --check -c "$ZKCONF" --store "zk://$ZK$CHROOT"
	assert_success
	# and every host's registers hold exactly the stored lends' windows
	eventually 5 cluster_registers_ok nodeA nodeB nodeC
}

@test "a cut lender: its devices go offline on the other mounts and come back after the heal" {
	echo nodeB >"$(cdev nodeB $GPU)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU lent nodeB
	done
	bar=$(gpu_bar)
	t_cut=$(ms)
	cut nodeA
	for h in nodeB nodeC; do
		eventually $((SESSION_S * 4)) state_is $h $GPU offline
		run cat "$(mnt $h)/hosts/nodeA/state" "$(cdev $h nodeA:0000:b3:00.0)/state"
		assert_output "$(printf 'offline\noffline')"
	done
	echo "# offline on the others $(($(ms) - t_cut)) ms after the cut" >&3
	# writes for its devices fail clearly on the others
	run bash -c "echo > $(cdev nodeC $GPU)/borrower"
	assert_failure
	assert_output --partial "Host is down"
	run cat "$(cdev nodeC $GPU)/last_error"
	assert_output "EHOSTDOWN: lender nodeA is offline"
	# nodeB still holds its windows: a lender that is away takes nothing
	run "$BUILD_DIR/lendfs-dma" -r "$CTMP/run.nodeB" -x cpu-write nodeB "$bar" c0ffee
	assert_success
	# the cut lender's own mount answers and refuses; its lend is its own
	# record, and stays
	reads_answer nodeA
	eventually 5 bash -c "[ \"\$(cat '$(mnt nodeA)/hosts/nodeA/state')\" = offline ]"
	state_is nodeA $GPU lent nodeB
	state_is nodeA nodeA:0000:b3:00.0 offline
	refused nodeA $GPU ""
	refused nodeA $NIC nodeA
	# the others lend among themselves meanwhile
	echo nodeB >"$(cdev nodeC $NVME_C)/borrower"
	eventually 5 state_is nodeB $NVME_C lent nodeB

	heal nodeA
	eventually 15 node_online nodeA
	for h in nodeA nodeB nodeC; do
		eventually 10 state_is $h $GPU lent nodeB
		eventually 5 state_is $h nodeA:0000:b3:00.0 available
		eventually 5 state_is $h $NVME_C lent nodeB
	done
	echo >"$(cdev nodeC $GPU)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU available ""
	done
	run "$LENDFS" --check -c "$ZKCONF" --store "zk://$ZK$CHROOT"
	assert_success
	# and every host's registers hold exactly the stored lends' windows
	eventually 5 cluster_registers_ok nodeA nodeB nodeC
}

@test "a cut forwarding host refuses writes, the others keep working" {
	cut nodeC
	# at once (before it notices) a write may wait for the connection and
	# fail with an unknown outcome; once it knows, it refuses at once
	eventually $((SESSION_S * 3)) bash -c "[ \"\$(cat '$(mnt nodeC)/hosts/nodeC/state')\" = offline ]"
	reads_answer nodeC
	refused nodeC $GPU nodeB
	refused nodeC $NIC nodeA
	# nodeA and nodeB lend to each other meanwhile
	echo nodeB >"$(cdev nodeB $GPU)/borrower"
	echo nodeA >"$(cdev nodeA $NIC)/borrower"
	for h in nodeA nodeB; do
		eventually 5 state_is $h $GPU lent nodeB
		eventually 5 state_is $h $NIC lent nodeA
	done
	# nodeC's own device cannot be lent: its lender is cut off
	eventually 5 state_is nodeA $NVME_C offline
	run bash -c "echo nodeB > $(cdev nodeA $NVME_C)/borrower"
	assert_failure
	assert_output --partial "Host is down"

	heal nodeC
	eventually 15 node_online nodeC
	eventually 5 state_is nodeC $GPU lent nodeB
	eventually 5 state_is nodeC $NIC lent nodeA
	echo nodeA >"$(cdev nodeC $NVME_C)/borrower"
	echo >"$(cdev nodeC $GPU)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $NVME_C lent nodeA
		eventually 5 state_is $h $GPU available ""
	done
	run "$LENDFS" --check -c "$ZKCONF" --store "zk://$ZK$CHROOT"
	assert_success
	# and every host's registers hold exactly the stored lends' windows
	eventually 5 cluster_registers_ok nodeA nodeB nodeC
}

# return_refused_unsure: a return written on nodeA's mount is refused as
# unsettled (false while it is refused for want of a session).
return_refused_unsure() {
	run bash -c "echo >'$(cdev nodeA $GPU)/borrower'"
	assert_failure
	if grep -q "Host is down" <<<"$output"; then
		return 1
	fi
	assert_output --partial "Device or resource busy"
	run cat "$(cdev nodeA $GPU)/last_error"
	assert_output --partial "EBUSY: the outcome of the last request of $GPU is not known yet"
}

@test "a lender cut between its intent and its commit: the borrower commits the lend; the lender, back, settles its books with the record" {
	# nodeA waits 3 s between its intent and waiting for the borrower,
	# and 4 s before it settles a device whose outcome it lost
	node_kill nodeA
	export LENDFS_DELAY=lend.peers:3000,settle:4000
	node_up nodeA
	unset LENDFS_DELAY
	eventually 20 node_online nodeA
	eventually 5 node_online nodeB
	bash -c "echo nodeB >'$(cdev nodeA $GPU)/borrower'" 2>"$BATS_TEST_TMPDIR/write.err" &
	writer=$!
	# the borrower, its sole peer, maps the lend and commits it meanwhile
	eventually 2 state_is nodeB $GPU lent nodeB
	cut nodeA
	# the lender cannot learn the outcome: the write fails, not as a
	# refusal (the lend may have gone in: it did)
	if wait "$writer"; then
		echo "the write succeeded" >&2
		return 1
	fi
	cat "$BATS_TEST_TMPDIR/write.err" >&2
	grep -q "Transport endpoint is not connected" "$BATS_TEST_TMPDIR/write.err"
	heal nodeA
	# connected again, not settled yet: its books say `available`, the
	# record says lent; a return on its mount is refused, not taken for
	# a no-op (the history check caught one acknowledged)
	eventually 15 return_refused_unsure
	eventually 15 node_online nodeA
	# back: the record (lent, committed by the borrower) wins; its windows
	# are programmed again (the registers check below, and at teardown)
	for h in nodeA nodeB nodeC; do
		eventually 10 state_is $h $GPU lent nodeB
	done
	grep -q "$GPU lent borrower=nodeB cause=recovery" "$(mnt nodeA)/events"
	cluster_registers_ok nodeA nodeB nodeC
	echo >"$(cdev nodeA $GPU)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU available ""
	done
}
