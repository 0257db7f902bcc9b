#!/usr/bin/env bats
# contrib/ansible/lend.yml against a real mount (connection local): the
# first run lends (changed), the second changes nothing (changed=0), a bad
# host name fails the task with the errno text and last_error, and an
# empty borrower returns the device; the same for the play's composition
# (mkdir with file state=directory, devices, borrower).  Each run is
# bounded by timeout.

load helpers

PLAYBOOK="$ROOT/contrib/ansible/lend.yml"
INVENTORY="$ROOT/contrib/ansible/inventory"
C5E=nodeC:0000:af:00.0

setup() {
	command -v ansible-playbook >/dev/null || skip "ansible-playbook not installed"
	lendfs_mount
	export ANSIBLE_LOCAL_TEMP="$TMP/ansible-local"
	export ANSIBLE_REMOTE_TEMP="$TMP/ansible-remote"
	export ANSIBLE_NOCOLOR=1 ANSIBLE_PIPELINING=1 ANSIBLE_RETRY_FILES_ENABLED=0
	# no ansible.cfg of the caller's: an empty one of our own
	: >"$TMP/ansible.cfg"
	export ANSIBLE_CONFIG="$TMP/ansible.cfg"
}

teardown() {
	lendfs_unmount
}

# play [EXTRA-VARS-JSON]: run the playbook on this test's mount.
play() {
	local extra=(-e "lendfs_mount=$MNT")
	[ $# -eq 0 ] || extra+=(-e "$1")
	timeout 120 ansible-playbook -i "$INVENTORY" "${extra[@]}" "$PLAYBOOK"
}

@test "first run lends (changed), second run changes nothing (changed=0)" {
	run play
	assert_success
	assert_output --regexp "changed: \[localhost\] => \(item=$GPU -> nodeB\)"
	assert_output --regexp "changed: \[localhost\] => \(item=$C5E -> nodeD\)"
	# the devices' copy, then the composition's mkdir, devices and borrower
	assert_output --regexp "localhost +: ok=9 +changed=4 +unreachable=0 +failed=0"
	run cat "$(dev $GPU)/state" "$(dev $GPU)/borrower" "$(dev $C5E)/state" \
		"$(dev $C5E)/borrower"
	assert_output "$(printf '%s\n' lent nodeB lent nodeD)"

	run play
	assert_success
	assert_output --regexp "ok: \[localhost\] => \(item=$GPU -> nodeB\)"
	refute_output --partial "changed: ["
	assert_output --regexp "localhost +: ok=9 +changed=0 +unreachable=0 +failed=0"
	run ls -A "$(dev $GPU)" "$(dev $C5E)"
	refute_output --partial ansible
}

@test "a bad host name fails the task with the errno text and last_error" {
	run play '{"lendfs_lends": [{"device": "'$GPU'", "borrower": "nodeB"},
		{"device": "'$NIC'", "borrower": "nodeZ"}]}'
	assert_failure
	assert_output --regexp "failed: \[localhost\] \(item=$NIC -> nodeZ\)"
	assert_output --partial "[Errno 22] Invalid argument"
	assert_output --partial "last_error: $NIC: EINVAL: unknown host 'nodeZ'"
	assert_output --regexp "failed=1 "
	# the good item was lent, the bad one changed nothing and left no file
	run cat "$(dev $GPU)/state" "$(dev $NIC)/state" "$(dev $NIC)/borrower"
	assert_output "$(printf '%s\n' lent available '')"
	run ls -A "$(dev $NIC)"
	refute_output --partial ansible
}

@test "a device lent elsewhere fails with EBUSY and keeps its borrower" {
	lend $GPU nodeC
	run play '{"lendfs_lends": [{"device": "'$GPU'", "borrower": "nodeB"}]}'
	assert_failure
	assert_output --partial "[Errno 16] Device or resource busy"
	assert_output --partial "last_error: $GPU: EBUSY: lent to nodeC; return it first"
	run cat "$(dev $GPU)/borrower"
	assert_output nodeC
}

@test "an empty borrower returns the device, once" {
	lend $GPU nodeB
	run play '{"lendfs_lends": [{"device": "'$GPU'", "borrower": ""}]}'
	assert_success
	assert_output --regexp "changed: \[localhost\] => \(item=$GPU -> \(return\)\)"
	run cat "$(dev $GPU)/state"
	assert_output available
	run play '{"lendfs_lends": [{"device": "'$GPU'", "borrower": ""}]}'
	assert_success
	assert_output --regexp "changed=0 "
}

COMP_NIC=nodeB:0000:17:00.0
COMP_C1=nodeC:0000:5e:00.0

@test "the play's composition: made, filled and lent (changed), then unchanged, then returned" {
	# the devices' part done already: only the composition changes
	run play '{"lendfs_lends": []}'
	assert_success
	assert_output --regexp "changed: \[localhost\] => \(item=job\)"
	assert_output --regexp "changed: \[localhost\] => \(item=job: $COMP_NIC,$COMP_C1\)"
	assert_output --regexp "changed: \[localhost\] => \(item=job -> nodeA\)"
	assert_output --regexp "localhost +: ok=6 +changed=3 +unreachable=0 +failed=0 +skipped=3"
	run cat "$MNT/compositions/job/state" "$MNT/compositions/job/borrower" \
		"$MNT/compositions/job/devices"
	assert_output "$(printf '%s\n' lent nodeA "$COMP_NIC" "$COMP_C1")"
	run cat "$(dev $COMP_NIC)/borrower" "$(dev $COMP_C1)/borrower"
	assert_output "$(printf 'nodeA\nnodeA')"
	run grep -c ' composition:job composition-lent ' "$MNT/events"
	assert_output 1

	# idempotent: nothing written the second time
	run play '{"lendfs_lends": []}'
	assert_success
	refute_output --partial "changed: ["
	assert_output --regexp "localhost +: ok=6 +changed=0 +unreachable=0 +failed=0 +skipped=3"
	run grep -c ' composition:job composition-' "$MNT/events"
	assert_output 1
	run ls -A "$MNT/compositions/job"
	refute_output --partial ansible

	# an empty borrower returns the whole composition, once
	run play '{"lendfs_lends": [], "lendfs_compositions": [{"name": "job",
		"devices": ["'$COMP_NIC'", "'$COMP_C1'"], "borrower": ""}]}'
	assert_success
	assert_output --regexp "changed: \[localhost\] => \(item=job -> \(return\)\)"
	run cat "$MNT/compositions/job/state" "$MNT/lends"
	assert_output available
}

@test "a composition whose device is lent elsewhere fails with EBUSY and last_error, and lends nothing" {
	lend $COMP_C1 nodeD
	run play '{"lendfs_lends": []}'
	assert_failure
	assert_output --partial "[Errno 16] Device or resource busy"
	assert_output --partial "last_error: job: EBUSY: $COMP_C1: lent to nodeD; return it first"
	run cat "$MNT/compositions/job/state" "$(dev $COMP_NIC)/state" \
		"$(dev $COMP_C1)/borrower"
	assert_output "$(printf '%s\n' available available nodeD)"
	run ls -A "$MNT/compositions/job"
	refute_output --partial ansible
}
