#!/usr/bin/env bats
# Plans in distributed mode (docs/ABI/devices-ID-plans-HOST): three
# daemons (--host nodeA/nodeB/nodeC) on one real ZooKeeper; nodeD of
# tests/conf/zk.ini has no daemon, so it is offline on every mount.  A
# plan read on a mount that is not the lender's is computed from that
# daemon's mirror, and says what the write, forwarded to the lender,
# then does.

load helpers
load cluster_helpers

GPU=nodeA:0000:65:00.0

# write_errno HOST ID VALUE: one write on HOST's mount; the errno name
# write(2) failed with, or "ok".
write_errno() {
	python3 - "$(cdev "$1" "$2")/borrower" "$3" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, (sys.argv[2] + "\n").encode())
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
finally:
    os.close(fd)
EOF
}

plan_starts() {
	[ "$(head -n 1 "$(cdev "$1" "$2")/plans/$3")" = "$4" ]
}

@test "plans on every mount: EHOSTDOWN, ok and EBUSY are what the forwarded write does" {
	local h planned first events
	cluster_up nodeA nodeB nodeC
	events="$(cat "$(mnt nodeA)/events")"
	# nodeD has no daemon: every mount's plan says so, as the write does
	for h in nodeA nodeB nodeC; do
		run cat "$(cdev $h $GPU)/plans/nodeD"
		assert_output "EHOSTDOWN: borrower nodeD is offline"
	done
	# reading plans wrote no event, on any mount
	for h in nodeA nodeB nodeC; do
		run cat "$(mnt $h)/events"
		assert_output "$events"
	done
	run write_errno nodeB $GPU nodeD
	assert_output EHOSTDOWN
	run cat "$(cdev nodeB $GPU)/last_error"
	assert_output "EHOSTDOWN: borrower nodeD is offline"

	# an ok plan from nodeC's mirror is the lender's own plan
	planned="$(cat "$(cdev nodeC $GPU)/plans/nodeB")"
	run cat "$(cdev nodeA $GPU)/plans/nodeB"
	assert_output "$planned"
	run echo "$planned"
	assert_line --index 0 ok
	assert_line --index 1 "route nodeA -> nodeB"
	assert_line "lut_entries nodeB/ntb0 10"
	run write_errno nodeC $GPU nodeB
	assert_output ok
	run awk '$1 == "lut" && $2 == "nodeB" { n += $4 } END { print "lut_entries nodeB/ntb0 " n }' \
		"$(cdev nodeA $GPU)/windows"
	assert_output "$(grep '^lut_entries nodeB/' <<<"$planned")"
	run grep -c '^dma ' "$(cdev nodeA $GPU)/windows"
	assert_output "$(awk '$1 == "dma_windows" { print $2 }' <<<"$planned")"

	# nodeB's mirror follows the lend: its plan for nodeC is EBUSY, and
	# so is the write forwarded from there, with the same last_error
	eventually 5 plan_starts nodeB $GPU nodeC "EBUSY: lent to nodeB; return it first"
	first="$(head -n 1 "$(cdev nodeB $GPU)/plans/nodeC")"
	run write_errno nodeB $GPU nodeC
	assert_output EBUSY
	run cat "$(cdev nodeB $GPU)/last_error"
	assert_output "$first"
	# and on nodeC's mount the lend is a no-op its plan knows
	eventually 5 plan_starts nodeC $GPU nodeB ok
	run cat "$(cdev nodeC $GPU)/plans/nodeB"
	assert_line --index 1 "noop already lent to nodeB"
}

@test "a composition's plan on another mount says EHOSTDOWN for a borrower whose daemon is down, as its write then fails; ok, as its write then lends" {
	cluster_up nodeA nodeB
	mkdir "$(mnt nodeA)/compositions/job"
	echo nodeA:0000:65:00.0 >"$(mnt nodeA)/compositions/job/devices"
	eventually 5 test -e "$(mnt nodeB)/compositions/job"
	run cat "$(mnt nodeB)/compositions/job/plans/nodeC"
	assert_line --index 0 "EHOSTDOWN: nodeA:0000:65:00.0: borrower nodeC is offline"
	run bash -c 'echo nodeC >"$1"' _ "$(mnt nodeB)/compositions/job/borrower"
	assert_failure
	assert_output --partial "Host is down"
	run cat "$(mnt nodeB)/compositions/job/last_error"
	assert_output "EHOSTDOWN: nodeA:0000:65:00.0: borrower nodeC is offline"
	run cat "$(mnt nodeB)/compositions/job/plans/nodeB"
	assert_line --index 0 ok
	echo nodeB >"$(mnt nodeB)/compositions/job/borrower"
	eventually 5 state_is nodeA nodeA:0000:65:00.0 lent nodeB
	echo >"$(mnt nodeA)/compositions/job/borrower"
	eventually 5 state_is nodeB nodeA:0000:65:00.0 available ""
}
