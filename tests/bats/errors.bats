#!/usr/bin/env bats
# Every errno row of SPEC section 4 that the spine can produce, each
# asserted by the shell's message (the writer's write(2) got it) and by
# last_error, and each leaving nothing behind but last_error.

load helpers

teardown() {
	lendfs_unmount
}

# Nothing of a failed lend is left: state, borrower, windows, lends.
assert_untouched() {
	run cat "$(dev "$1")/state"
	assert_output "${2:-available}"
	run cat "$(dev "$1")/windows"
	assert_output ""
	run cat "$MNT/lends"
	refute_output --partial "$1"
}

@test "EINVAL: malformed borrower name (space)" {
	lendfs_mount
	assert_lend_fails $GPU "no de" EINVAL "Invalid argument"
	assert_untouched $GPU
}

@test "EINVAL: malformed borrower name (path)" {
	lendfs_mount
	assert_lend_fails $GPU "../x" EINVAL "Invalid argument"
	assert_untouched $GPU
}

@test "EINVAL: unknown host" {
	lendfs_mount
	assert_lend_fails $GPU nodeZ EINVAL "Invalid argument"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial nodeZ
	assert_untouched $GPU
}

@test "EINVAL: lending a device to its own lender" {
	lendfs_mount
	assert_lend_fails $GPU nodeA EINVAL "Invalid argument"
	assert_untouched $GPU
}

@test "EINVAL: more than 255 bytes" {
	lendfs_mount
	assert_lend_fails $GPU "$(printf 'n%.0s' {1..256})" EINVAL "Invalid argument"
	assert_untouched $GPU
}

@test "EBUSY: lending a lent device to another borrower" {
	lendfs_mount
	lend $GPU nodeB
	assert_lend_fails $GPU nodeC EBUSY "Device or resource busy"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "nodeB"
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
	run cat "$(dev $GPU)/state"
	assert_output lent
}

@test "EHOSTDOWN: the borrower is offline" {
	lendfs_mount
	echo offline >"$MNT/hosts/nodeB/state"
	assert_lend_fails $GPU nodeB EHOSTDOWN "Host is down"
	assert_untouched $GPU
}

@test "EHOSTDOWN: the lender is offline" {
	lendfs_mount
	echo offline >"$MNT/hosts/nodeA/state"
	assert_lend_fails $GPU nodeB EHOSTDOWN "Host is down"
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run cat "$MNT/lends"
	assert_output ""
}

@test "ENOSPC: no free NTB translation entry, reason names adapter and usage" {
	lendfs_mount "$CONF/tiny-lut.ini"
	assert_lend_fails $GPU nodeB ENOSPC "No space left on device"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "ntbB"
	assert_output --regexp "[0-9]+ free of 4"
	assert_untouched $GPU
	# the failed lend released what it took: a small lend still fits
	run lend nodeA:0000:b3:00.0 nodeB
	assert_success
}

@test "EPERM: policy refuses the device holding the lender's root fs" {
	lendfs_mount
	assert_lend_fails $ROOTFS nodeB EPERM "Operation not permitted"
	run cat "$(dev $ROOTFS)/last_error"
	assert_output --partial "policy"
	assert_untouched $ROOTFS
}

# ENODEV (the device vanished) needs a hot-unplug: udev.bats removes a lent
# device from a umockdev test bed and asserts the errno and last_error.

@test "ETIMEDOUT: engine timeout, everything rolled back" {
	LENDFS_DELAY=ntb_map:150 lendfs_mount "$CONF/timeout.ini"
	assert_lend_fails $GPU nodeB ETIMEDOUT "Connection timed out"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "timeout"
	assert_untouched $GPU
}

@test "a failed request is logged with the device, the value and the reason" {
	lendfs_mount
	run lend $GPU nodeZ
	assert_failure
	run cat "$TMP/lendfs.log"
	assert_line --regexp "^lendfs: cannot lend $GPU to nodeZ: .*nodeZ"
}

@test "last_error keeps the last failure until the next one" {
	lendfs_mount
	run lend $GPU nodeZ
	lend $GPU nodeB
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^EINVAL: "
	run lend $GPU nodeC
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^EBUSY: "
}
