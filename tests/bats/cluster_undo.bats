#!/usr/bin/env bats
# Distributed mode: a lend that the borrower committed is never undone
# (docs/STATE.md "A lend", step 4; issue 22 part 2: the safety of the
# fault tests).  Three daemons, one real ZooKeeper; nodeA, the lender of
# $GPU, fails one step of its lend after its intent (LENDFS_FAULT), and
# nodeB, the borrower, commits the lend (the record `lent`, the answer
# `= 0` to a writer on nodeC's mount) before that step fails, after it,
# or not at all.  Whatever the race, what write(2) returned must be what
# every mount, ZooKeeper and the registers say afterwards: success, the
# device lent everywhere; a failure, available everywhere, no record, no
# marker, every host's register files as before, last_error set.
# The same for a return that nodeB completed (it removed the record,
# answering a writer on nodeC's mount) before a step of nodeA's failed
# (docs/STATE.md, "A return goes the same way"); and a lend that failed
# and was undone cleanly leaves nothing unsure: a retry at once is a lend.

load helpers
load cluster_helpers

GPU=nodeA:0000:65:00.0

# undo_up FAULT [DELAY [BDELAY]]: the three daemons, nodeA's with
# LENDFS_FAULT=FAULT and LENDFS_DELAY=DELAY, nodeB's with
# LENDFS_DELAY=BDELAY.
undo_up() {
	local h
	CTMP="$(mktemp -d)"
	CHROOT="/t$$.$RANDOM"
	CLUSTER_HOSTS=(nodeA nodeB nodeC)
	LENDFS_FAULT="$1" LENDFS_DELAY="${2:-}" node_up nodeA
	LENDFS_DELAY="${3:-}" node_up nodeB
	node_up nodeC
	for h in nodeA nodeB nodeC; do
		eventually 20 node_online "$h"
	done
}

# regs HOST: the hashes of HOST's register files (its hardware).
regs() {
	(cd "$CTMP/run.$1" && md5sum hosts/*.hw)
}

regs_save() {
	local h
	for h in nodeA nodeB nodeC; do
		regs $h >"$CTMP/regs.$h.before"
	done
}

# regs_same HOST: HOST's register files are as regs_save found them.
regs_same() {
	[ "$(regs "$1")" = "$(cat "$CTMP/regs.$1.before")" ]
}

# not_lending HOST: HOST's mount shows $GPU neither lending nor returning
# (on nodeA: its own request is over).
not_lending() {
	local s
	s="$(cat "$(cdev "$1" $GPU)/state")"
	[ "$s" != lending ] && [ "$s" != returning ]
}

# lend_from HOST: write nodeB to $GPU's borrower on HOST's mount (one
# write(2)); its status in $status, its message in $output.  Then wait
# until the lender's request is over, and a little more (a record that a
# late undo removes would show `lent` meanwhile).
lend_from() {
	run bash -c "echo nodeB > '$(cdev "$1" $GPU)/borrower'"
	echo "write on $1: status $status: $output" >&2
	eventually 20 not_lending nodeA
	sleep 1
}

# zk_record: the record of $GPU in ZooKeeper (fails when there is none).
zk_record() {
	"$ZKCTL" "$ZK" get "$CHROOT/lends/$GPU"
}

# events_are HOST LENT FAILED: HOST's event log has LENT `lent` and
# FAILED `failed` events of $GPU.
events_are() {
	local ev="$(mnt "$1")/events"
	[ "$(grep -cE " $GPU lent .*borrower=nodeB" "$ev")" = "$2" ] &&
		[ "$(grep -cE " $GPU failed " "$ev")" = "$3" ]
}

# lent_as_recorded WHAT: the device lent to nodeB on every mount and in
# ZooKeeper's record; else "WHAT, but HOST says STATE".
lent_as_recorded() {
	local h
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU lent nodeB ||
			{ echo "$1, but $h says $(cat "$(cdev $h $GPU)/state")" >&2; return 1; }
	done
	run zk_record
	assert_success
	assert_line "state lent"
	assert_line "borrower nodeB"
}

# available_as_before WHAT: the device available on every mount, no
# record in ZooKeeper, every host's register files as regs_save left
# them; else "WHAT, but HOST says STATE" (or the registers' diff).
available_as_before() {
	local h
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU available "" ||
			{ echo "$1, but $h says $(cat "$(cdev $h $GPU)/state")" >&2; return 1; }
	done
	run zk_record
	assert_failure
	for h in nodeA nodeB nodeC; do
		eventually 5 regs_same $h ||
			{ regs $h | diff "$CTMP/regs.$h.before" -; return 1; }
	done
}

# agrees WRITER STATUS: the final state is what write(2) on WRITER's mount
# returned (STATUS).
agrees() {
	local h
	if [ "$2" -eq 0 ]; then
		lent_as_recorded acknowledged
		# the log: lent once (the borrower's commit carried it), no failure
		for h in nodeA nodeB nodeC; do
			eventually 5 events_are $h 1 0
		done
	else
		available_as_before failed
		run cat "$(cdev "$1" $GPU)/last_error"
		assert_output --regexp '^E[A-Z]+: .'
		for h in nodeA nodeB nodeC; do
			eventually 5 events_are $h 0 1
		done
	fi
	# no marker left open, and each host's registers are its records
	run "$ZKCTL" "$ZK" ls "$CHROOT/pending"
	assert_output ""
	cluster_registers_ok nodeA nodeB nodeC
}

# and_back: the device returns and lends again normally.
and_back() {
	echo >"$(cdev nodeA $GPU)/borrower"
	eventually 5 state_is nodeC $GPU available ""
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	eventually 5 state_is nodeA $GPU lent nodeB
	echo >"$(cdev nodeC $GPU)/borrower"
	eventually 5 state_is nodeA $GPU available ""
}

@test "nodeB commits a lend written on nodeC's mount, then nodeA's windows fail: acknowledged, so it stays lent everywhere" {
	undo_up iommu_map:1 lend.program:1500
	regs_save
	lend_from nodeC
	assert_success # the answer of nodeB's commit
	agrees nodeC 0
	grep -q "committed by its borrower before .*injected fault at iommu_map #1" \
		"$CTMP/log.nodeA"
	and_back
}

@test "nodeB commits a lend written on nodeA's mount, then nodeA's windows fail: the lend stands and the write says so" {
	undo_up iommu_map:1 lend.program:1500
	regs_save
	lend_from nodeA
	assert_success
	agrees nodeA 0
	and_back
}

@test "nodeB commits a lend written on nodeC's mount, then nodeA's commit step fails: acknowledged, lent everywhere" {
	undo_up lend_commit:1
	regs_save
	lend_from nodeC
	assert_success
	agrees nodeC 0
	and_back
}

@test "nodeB commits a lend written on nodeA's mount, then nodeA's commit step fails: the write succeeds, lent everywhere" {
	undo_up lend_commit:1
	regs_save
	lend_from nodeA
	assert_success
	agrees nodeA 0
	and_back
}

@test "nodeA's windows fail while nodeB commits, at every delay: what write(2) said is what every mount, ZooKeeper and the registers say" {
	local ms w
	for ms in 0 1 5 20; do
		for w in nodeC nodeA; do
			undo_up iommu_map:1 "$([ "$ms" = 0 ] || echo lend.program:$ms)"
			regs_save
			lend_from $w
			echo "delay $ms ms, written on $w: status $status" >&2
			agrees $w "$status"
			cluster_down
		done
	done
}

@test "nodeB commits only after nodeA gave up on it (its engine timeout): the write fails, nothing is lent anywhere" {
	# nodeB sleeps 5.5 s before its commit; nodeA waits 5 s (timeout_ms)
	undo_up "" "" zk.peer_commit:5500
	regs_save
	lend_from nodeC
	assert_failure
	assert_output --partial "Connection timed out"
	agrees nodeC 1
	run cat "$(cdev nodeC $GPU)/last_error"
	assert_output --partial "ETIMEDOUT: engine timeout (5000 ms): host nodeB did not map its windows"
}

# --- the return side: a return its borrower completed is never undone -------

# lent_up FAULT DELAY: undo_up, then $GPU lent to nodeB (a lend that
# goes through: the fault is on a return's step), registers saved before.
lent_up() {
	undo_up "$1" "$2"
	regs_save
	echo nodeB >"$(cdev nodeA $GPU)/borrower"
	eventually 5 state_is nodeA $GPU lent nodeB
	eventually 5 state_is nodeB $GPU lent nodeB
	eventually 5 state_is nodeC $GPU lent nodeB
	cluster_registers_ok nodeA nodeB nodeC
}

# return_from HOST: write "" to $GPU's borrower on HOST's mount (one
# write(2)), then wait until nodeA's request is over, and a little more.
return_from() {
	run bash -c "echo > '$(cdev "$1" $GPU)/borrower'"
	echo "return on $1: status $status: $output" >&2
	eventually 20 not_lending nodeA
	sleep 1
}

# returned_agrees WRITER STATUS: the final state is what the return's
# write(2) on WRITER's mount returned.
returned_agrees() {
	local h
	if [ "$2" -eq 0 ]; then
		available_as_before returned
	else
		lent_as_recorded failed
		run cat "$(cdev "$1" $GPU)/last_error"
		assert_output --regexp '^E[A-Z]+: .'
	fi
	cluster_registers_ok nodeA nodeB nodeC
}

@test "nodeB removes a returned record (answering a writer on nodeC's mount), then nodeA's windows fail to clear: the return stands everywhere" {
	lent_up iommu_unmap:1 return.stored:1500
	return_from nodeC
	assert_success # the answer of nodeB's removal
	returned_agrees nodeC 0
	grep -q "removed by its borrower before .*injected fault at iommu_unmap #1" \
		"$CTMP/log.nodeA"
	# and the device lends and returns again
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	eventually 5 state_is nodeA $GPU lent nodeB
	echo >"$(cdev nodeC $GPU)/borrower"
	eventually 5 state_is nodeA $GPU available ""
}

@test "nodeA's windows fail to clear while nodeB removes the returned record, at every delay: what write(2) said is what every mount, ZooKeeper and the registers say" {
	local ms w
	for ms in 0 2 1500; do
		for w in nodeC nodeA; do
			lent_up iommu_unmap:1 "$([ "$ms" = 0 ] || echo return.stored:$ms)"
			return_from $w
			echo "delay $ms ms, written on $w: status $status" >&2
			returned_agrees $w "$status"
			cluster_down
		done
	done
}
