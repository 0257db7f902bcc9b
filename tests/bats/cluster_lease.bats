#!/usr/bin/env bats
# Leases in distributed mode (SPEC section 9, docs/STATE.md "A lease"):
# three daemons, one real ZooKeeper.  The lender's daemon enforces a
# lease; a write on any mount is forwarded to it; every mount shows the
# lease from the record; a lease keeps running while the lender's daemon
# is down and its recovery returns the device.  cluster_down checks every
# daemon's registers against the records.

load helpers
load cluster_helpers

GPU=nodeA:0000:65:00.0

lease_of() {
	cat "$(cdev "$1" "$2")/lease"
}

all_available() {
	local h
	for h in nodeA nodeB nodeC; do
		state_is $h $GPU available "" || return 1
	done
}

# lend_gpu: GPU lent to nodeB from the lender's mount, seen everywhere.
lend_gpu() {
	echo nodeB >"$(cdev nodeA $GPU)/borrower"
	local h
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU lent nodeB
	done
}

@test "a 2 s lease returns the device within 2.5 s on every mount" {
	cluster_up nodeA nodeB nodeC
	lend_gpu
	local t0 t1 h i
	t0=$(date +%s%N)
	echo 2 >"$(cdev nodeA $GPU)/lease"
	for h in nodeB nodeC; do
		eventually 1 test "$(lease_of $h $GPU)" = 2
	done
	grep -q " expires " "$(mnt nodeC)/lends"
	for ((i = 0; i < 60; i++)); do
		all_available && break
		sleep 0.05
	done
	t1=$(date +%s%N)
	echo "available on all mounts $(((t1 - t0) / 1000000)) ms after the lease was set" >&2
	all_available
	[ $(((t1 - t0) / 1000000)) -le 2500 ]
	for h in nodeA nodeB nodeC; do
		run lease_of $h $GPU
		assert_output ""
		run cat "$(mnt $h)/lends"
		assert_output ""
	done
	run cat "$(cdev nodeA $GPU)/last_error"
	assert_output --regexp "^ETIME: lease expired at [0-9T:-]+Z$"
	# one shared log: every mount lists the expiry, logged once by the lender
	for h in nodeA nodeB nodeC; do
		eventually 5 grep -qE " $GPU returned borrower=nodeB cause=lease$" "$(mnt $h)/events"
		run grep -cE " $GPU expired borrower=nodeB deadline=[0-9T:-]+Z cause=lease$" "$(mnt $h)/events"
		assert_output 1
	done
	run grep '^lendfs_lease_expiries_total ' "$(mnt nodeA)/metrics" "$(mnt nodeB)/metrics"
	assert_line "$(mnt nodeA)/metrics:lendfs_lease_expiries_total 1"
	assert_line "$(mnt nodeB)/metrics:lendfs_lease_expiries_total 0"
}

@test "a renewal written on another mount is forwarded; the lender enforces the expiry" {
	cluster_up nodeA nodeB nodeC
	# on a device that is not lent, the lender's refusal comes back
	run bash -c "echo 5 > $(cdev nodeC $GPU)/lease"
	assert_failure
	assert_output --partial "Invalid argument"
	run cat "$(cdev nodeC $GPU)/last_error"
	assert_output "EINVAL: $GPU is not lent (available): only a lend can have a lease"
	# a malformed value is refused on the writer's mount
	run bash -c "echo 5x > $(cdev nodeC $GPU)/lease"
	assert_failure
	assert_output --partial "Invalid argument"
	run cat "$(cdev nodeC $GPU)/last_error"
	assert_output --partial "malformed lease"

	lend_gpu
	echo 30 >"$(cdev nodeC $GPU)/lease"
	# the writer's mount reads it at once (its replica has the record)
	run lease_of nodeC $GPU
	assert_output 30
	for h in nodeA nodeB; do
		eventually 2 test "$(lease_of $h $GPU)" = 30
	done
	eventually 5 grep -qE " $GPU lease-set borrower=nodeB seconds=30 expires=[0-9T:-]+Z host=nodeC " "$(mnt nodeA)/events"
	# removed from nodeB's mount, then a 2 s lease from nodeC's
	echo 0 >"$(cdev nodeB $GPU)/lease"
	run lease_of nodeB $GPU
	assert_output ""
	eventually 2 test -z "$(lease_of nodeA $GPU)"
	local t0 t1
	t0=$(date +%s%N)
	echo 3 >"$(cdev nodeC $GPU)/lease"
	sleep 1.5
	state_is nodeA $GPU lent nodeB
	# renewed from nodeB's mount: 3 s from now
	echo 3 >"$(cdev nodeB $GPU)/lease"
	sleep 1.8 # 3.3 s after the first one: it would have run out
	state_is nodeA $GPU lent nodeB
	state_is nodeC $GPU lent nodeB
	eventually 4 all_available
	t1=$(date +%s%N)
	echo "returned $(((t1 - t0) / 1000000)) ms after the first 3 s lease" >&2
	[ $(((t1 - t0) / 1000000)) -ge 4400 ]
	eventually 5 grep -qE " $GPU expired borrower=nodeB deadline=[0-9T:-]+Z cause=lease$" "$(mnt nodeC)/events"
	run grep -c " $GPU lease-set " "$(mnt nodeA)/events"
	assert_output 4
}

@test "a lease runs out while the lender's daemon is down; its recovery returns the device" {
	cluster_up nodeA nodeB nodeC
	lend_gpu
	echo 3 >"$(cdev nodeB $GPU)/lease"
	node_kill nodeA
	for h in nodeB nodeC; do
		eventually $((SESSION_S * 4)) state_is $h $GPU offline
	done
	sleep 3
	# nobody else returned it: the record is still there
	run "$ZKCTL" "$ZK" get "$CHROOT/lends/$GPU"
	assert_success
	assert_output --partial "expires "
	node_up nodeA
	eventually 10 all_available
	for h in nodeA nodeB nodeC; do
		eventually 5 grep -qE " $GPU expired borrower=nodeB deadline=[0-9T:-]+Z cause=recovery$" "$(mnt $h)/events"
	done
	run cat "$(cdev nodeA $GPU)/last_error"
	assert_output --regexp "^ETIME: lease expired at [0-9T:-]+Z$"
	run "$ZKCTL" "$ZK" get "$CHROOT/lends/$GPU"
	assert_failure
}

@test "a lease survives a restart of the lender's daemon, which enforces it" {
	cluster_up nodeA nodeB nodeC
	lend_gpu
	echo 8 >"$(cdev nodeC $GPU)/lease"
	node_kill nodeA
	node_up nodeA
	eventually 10 state_is nodeA $GPU lent nodeB
	# restored with its deadline, not yet passed
	run lease_of nodeA $GPU
	[ "$output" -ge 1 ]
	[ "$output" -le 8 ]
	# enforced by the restarted daemon, with no write after the restart
	eventually 10 all_available
	eventually 5 grep -qE " $GPU expired borrower=nodeB deadline=[0-9T:-]+Z cause=lease$" "$(mnt nodeB)/events"
}

@test "pollers of lease and state on every mount wake when the lease runs out" {
	cluster_up nodeA nodeB nodeC
	lend_gpu
	POLL_DIR="$CTMP"
	echo 3 >"$(cdev nodeA $GPU)/lease"
	local h
	for h in nodeB nodeC; do
		eventually 1 test "$(lease_of $h $GPU)" = 3
	done
	for h in nodeA nodeB nodeC; do
		poller state.$h "$(cdev $h $GPU)/state" 10
		poller lease.$h "$(cdev $h $GPU)/lease" 10
	done
	for h in nodeA nodeB nodeC; do
		# woken by the first change: the return's intent or its end
		wait_line "$CTMP/state.$h.out" '^now (returning|available)$'
		wait_line "$CTMP/lease.$h.out" '^now $'
		grep -q '^woken ' "$CTMP/state.$h.out"
		grep -q '^woken ' "$CTMP/lease.$h.out"
	done
	eventually 2 all_available
}

@test "default_lease: a lend written on another mount gets the lease, in the record the peer commits" {
	CLUSTER_CONF="$BATS_TEST_TMPDIR/zk-lease.ini"
	sed '/^\[cluster\]/a default_lease = 3' "$ZKCONF" >"$CLUSTER_CONF"
	cluster_up nodeA nodeB nodeC
	echo nodeB >"$(cdev nodeC $GPU)/borrower"
	local h
	for h in nodeA nodeB nodeC; do
		eventually 5 state_is $h $GPU lent nodeB
		run lease_of $h $GPU
		assert_output --regexp '^[1-3]$'
	done
	run "$ZKCTL" "$ZK" get "$CHROOT/lends/$GPU"
	assert_output --regexp "expires [0-9]+"
	assert_output --partial "state lent"
	eventually 5 all_available
	eventually 5 grep -qE " $GPU expired borrower=nodeB deadline=[0-9T:-]+Z cause=lease$" "$(mnt nodeC)/events"
}
