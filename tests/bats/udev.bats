#!/usr/bin/env bats
# The udev inventory (--inventory udev): a lendfs under umockdev-wrapper
# reads fake PCI devices from a umockdev test bed (tests/udev/testbed.c,
# itself under umockdev-wrapper) and follows the uevents the test bed
# sends: coldplug, auto-lend by LENDFS_BORROWER at start and on add,
# hot-add, hot-remove of an available and of a lent device, change, the
# lender's safety policy, no double lend after a restart.  The last tests
# run lendfs on the real machine's PCI devices, read-only.

load helpers
load testbed

UDEV_DIR="$ROOT/tests/udev"
UCONF="$UDEV_DIR/udev.ini"
GPU=nodeA:0000:65:00.0	# lendable, LENDFS_BORROWER=nodeB
GPU_SYS=/sys/devices/pci0000:00/0000:65:00.0
NVME=nodeA:0000:b3:00.0	# lendable, no borrower
NIC=nodeA:0000:17:00.0	# LENDFS_BORROWER=nodeC but not lendable (no tag)
DENIED=nodeA:0000:1a:00.0	# in the config's [policy] deny
HOT_GPU=nodeA:0000:66:00.0	# hot-added, LENDFS_BORROWER=nodeC
HOT_NIC=nodeA:0000:67:00.0	# hot-added, no borrower
HOT_NIC_SYS=/sys/devices/pci0000:00/0000:67:00.0
ROOT_NVME=nodeA:0000:b5:00.0	# its namespace has the root fs's MAJ:MIN
ROUTE_NIC=nodeA:0000:19:00.0	# its interface carries the default route

TB_WAIT_TENTHS=100	# 10 s for the test bed to answer

setup_file() {
	local rootdev iface
	testbed_build || return 1

	rootdev=$(mountpoint -d / 2>/dev/null || echo 0:0)
	[ "${rootdev%%:*}" != 0 ] || echo 0 >"$BATS_FILE_TMPDIR/root-check"
	iface=$(awk '$2 == "00000000" && $8 == "00000000" { print $1; exit }' /proc/net/route)
	if [ -z "$iface" ]; then
		iface=lendfsnone0
		echo 0 >"$BATS_FILE_TMPDIR/route-check"
	fi
	echo "$iface" >"$BATS_FILE_TMPDIR/iface"
	sed -e '/^#/d' -e "s|@ROOTDEV@|$rootdev|" -e "s|@IFACE@|$iface|" \
		"$UDEV_DIR/policy.umockdev.in" >"$BATS_FILE_TMPDIR/policy.umockdev"
}

setup() {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	TB_PID=
	TB_FD=
	LENDFS_PID=
}

teardown() {
	local status=0
	pollers_stop
	udev_unmount || status=1
	testbed_stop
	rm -rf "$TMP"
	return $status
}

# within_1s CMD...: CMD succeeds within one second.
within_1s() {
	local i
	for ((i = 0; i < 100; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.01
	done
	echo "not within 1 s: $*" >&2
	return 1
}

state_is() {
	[ "$(cat "$(dev "$1")/state")" = "$2" ]
}

gone() {
	[ ! -e "$(dev "$1")" ]
}

# BAR sizes from a resource file, one per line.
bar_sizes() {
	local s e f
	while read -r s e f; do
		if ((s || e)); then echo $((e - s + 1)); else echo 0; fi
	done <"$1"
}

@test "coldplug: devices/ lists exactly the test bed's PCI devices" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	run ls "$MNT/devices"
	assert_success
	assert_output "$(ls "$UMOCKDEV_DIR/sys/bus/pci/devices" | sed 's/^/nodeA:/')"
	assert_equal "${#lines[@]}" 4
	run cat "$(dev $GPU)/lender"
	assert_output nodeA
	run ls "$MNT/hosts"
	assert_line nodeA
}

@test "coldplug: ids and BARs are what sysfs says" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	run cat "$(dev $GPU)"/{vendor,device,class,subsystem_vendor,subsystem_device}
	assert_output "$(printf '0x10de\n0x1db6\n0x030200\n0x10de\n0x124a')"
	# memory BARs 0 and 1 (16M, 64M); BAR4 is I/O; the ROM line is not a BAR
	run bar_sizes "$(dev $GPU)/resource"
	assert_output "$(printf '%s\n' 16777216 67108864 0 0 0 0)"
	run bar_sizes "$(dev $NVME)/resource"
	assert_line --index 0 16384
}

@test "coldplug: a tagged device is lent to its LENDFS_BORROWER at start" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	run cat "$(dev $GPU)/state" "$(dev $GPU)/borrower" "$(dev $GPU)/last_error"
	assert_output "$(printf 'lent\nnodeB\n')"
	run cat "$MNT/lends"
	assert_line --regexp "^$GPU nodeB "
	run ls "$MNT/hosts/nodeB/borrowed"
	assert_output "$GPU"
	run grep "coldplug: $GPU has LENDFS_BORROWER=nodeB" "$TMP/lendfs.log"
	assert_success
	# a borrower on a device the rules did not tag is ignored
	run cat "$(dev $NIC)/state"
	assert_output available
	# an auto-lend the policy refuses is logged and kept in last_error
	run cat "$(dev $DENIED)/state" "$(dev $DENIED)/last_error"
	assert_line --index 0 available
	assert_line --index 1 --regexp '^EPERM: .*\[policy\] deny'
	run grep "autolend $DENIED -> nodeB failed" "$TMP/lendfs.log"
	assert_success
}

@test "hot-add: a new device appears under devices/ within 1 s" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	run ls "$(dev $HOT_NIC)"
	assert_failure
	tb load "$UDEV_DIR/hotadd-nic.umockdev"
	within_1s test -d "$(dev $HOT_NIC)"
	run cat "$(dev $HOT_NIC)/state" "$(dev $HOT_NIC)/vendor" "$(dev $HOT_NIC)/class"
	assert_output "$(printf 'available\n0x8086\n0x020000')"
	run grep "hot-plug: added $HOT_NIC" "$TMP/lendfs.log"
	assert_success
}

@test "hot-add: a tagged device is lent to its LENDFS_BORROWER" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	tb load "$UDEV_DIR/hotadd-gpu.umockdev"
	within_1s state_is $HOT_GPU lent
	run cat "$(dev $HOT_GPU)/borrower" "$(dev $HOT_GPU)/last_error"
	assert_output "$(printf 'nodeC\n')"
	run grep "autolend $HOT_GPU -> nodeC done" "$TMP/lendfs.log"
	assert_success
}

@test "hot-remove: an available device disappears" {
	testbed_start "$UDEV_DIR/devices.umockdev" "$UDEV_DIR/hotadd-nic.umockdev"
	udev_mount
	run cat "$(dev $HOT_NIC)/state"
	assert_output available
	tb remove "$HOT_NIC_SYS"
	within_1s gone $HOT_NIC
	run ls "$MNT/devices"
	refute_line "$HOT_NIC"
	assert_equal "${#lines[@]}" 4
}

@test "hot-remove: a poller on the device's state wakes; the next read fails ENOENT" {
	local t0
	testbed_start "$UDEV_DIR/devices.umockdev" "$UDEV_DIR/hotadd-nic.umockdev"
	udev_mount
	poller gone "$(dev $HOT_NIC)/state" 10
	tb remove "$HOT_NIC_SYS"
	t0=$(date +%s%N)
	woke_within gone "$t0"
	poll_done "$TMP/gone.out"
	run cat "$TMP/gone.out"
	assert_line "gone ENOENT"
	pollers_stop
}

@test "hot-remove: a lent device's lend is torn down (failed, ENODEV)" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$(dev $GPU)/windows"
	refute_output ""
	tb remove "$GPU_SYS"
	within_1s state_is $GPU failed
	run cat "$(dev $GPU)/last_error"
	assert_output "ENODEV: device removed"
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run cat "$MNT/lends"
	refute_output --partial "$GPU"
	run ls "$MNT/hosts/nodeB/borrowed" "$MNT/hosts/nodeA/lent"
	refute_output --partial "$GPU"
	# it cannot be lent again; clearing the failure removes it
	assert_lend_fails $GPU nodeC ENODEV "No such device"
	run bash -c "echo > '$(dev $GPU)/borrower'"
	assert_success
	within_1s gone $GPU
}

@test "hot-remove then add again: the device comes back available, both logged with cause=hotplug" {
	testbed_start "$UDEV_DIR/devices.umockdev" "$UDEV_DIR/hotadd-nic.umockdev"
	udev_mount
	lend $HOT_NIC nodeB
	tb remove "$HOT_NIC_SYS"
	within_1s state_is $HOT_NIC failed
	tb load "$UDEV_DIR/hotadd-nic.umockdev"
	within_1s state_is $HOT_NIC available
	# events: removal of a lent device and its return, cause=hotplug
	run grep -E " $HOT_NIC " "$MNT/events"
	assert_line --index 0 --regexp "^[0-9]+ [0-9]+ $HOT_NIC lending borrower=nodeB uid="
	assert_line --index 1 --regexp "^[0-9]+ [0-9]+ $HOT_NIC lent borrower=nodeB uid="
	assert_line --index 2 --regexp "^[0-9]+ [0-9]+ $HOT_NIC failed borrower=nodeB errno=ENODEV reason=\"device removed\" cause=hotplug\$"
	assert_line --index 3 --regexp "^[0-9]+ [0-9]+ $HOT_NIC device-removed borrower=nodeB cause=hotplug\$"
	assert_line --index 4 --regexp "^[0-9]+ [0-9]+ $HOT_NIC device-added cause=hotplug\$"
	# the coldplug's auto-lend at start is there too, with no writer
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU lent borrower=nodeB\$"
	run cat "$(dev $HOT_NIC)/borrower"
	assert_output ""
	# and it can be lent again
	run lend $HOT_NIC nodeC
	assert_success
	run cat "$(dev $HOT_NIC)/state"
	assert_output lent
}

@test "change: attributes are refreshed" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	run cat "$(dev $NVME)/device"
	assert_output 0xa80a
	tb attr /sys/devices/pci0000:00/0000:b3:00.0 device 0xa808
	tb uevent /sys/devices/pci0000:00/0000:b3:00.0 change
	within_1s grep -qx 0xa808 "$(dev $NVME)/device"
	# a bind is a change too
	tb link /sys/devices/pci0000:00/0000:b3:00.0 driver ../../../bus/pci/drivers/vfio-pci
	tb uevent /sys/devices/pci0000:00/0000:b3:00.0 bind
	within_1s grep -q "hot-plug: $NVME changed (driver vfio-pci)" "$TMP/lendfs.log"
}

@test "policy: a [policy] deny device is refused with EPERM" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	assert_lend_fails $DENIED nodeC EPERM "Operation not permitted"
	run cat "$(dev $DENIED)/last_error"
	assert_output --partial "[policy] deny"
	run cat "$(dev $DENIED)/state"
	assert_output available
}

@test "policy: the device holding the root file system is refused with EPERM" {
	[ ! -e "$BATS_FILE_TMPDIR/root-check" ] ||
		skip "the root file system has no block device here"
	testbed_start "$UDEV_DIR/devices.umockdev" "$BATS_FILE_TMPDIR/policy.umockdev"
	udev_mount
	# not even its LENDFS_BORROWER lends it
	run cat "$(dev $ROOT_NVME)/state" "$(dev $ROOT_NVME)/last_error"
	assert_line --index 0 available
	assert_line --index 1 --partial "EPERM: policy refuses to lend $ROOT_NVME: it holds the root file system (/dev/nvme5n1)"
	assert_lend_fails $ROOT_NVME nodeB EPERM "Operation not permitted"
	run cat "$(dev $ROOT_NVME)/last_error"
	assert_output --partial "holds the root file system (/dev/nvme5n1)"
}

@test "policy: the device carrying the default route is refused with EPERM" {
	[ ! -e "$BATS_FILE_TMPDIR/route-check" ] || skip "this machine has no default route"
	testbed_start "$UDEV_DIR/devices.umockdev" "$BATS_FILE_TMPDIR/policy.umockdev"
	udev_mount
	assert_lend_fails $ROUTE_NIC nodeB EPERM "Operation not permitted"
	run cat "$(dev $ROUTE_NIC)/last_error"
	assert_output --partial "carries the default route ($(cat "$BATS_FILE_TMPDIR/iface"))"
}

@test "restart: a device lent from the store is not lent twice" {
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
	# the admin moves it to nodeC: that is what the store keeps
	run bash -c "echo > '$(dev $GPU)/borrower' && echo nodeC > '$(dev $GPU)/borrower'"
	assert_success
	udev_unmount
	LENDFS_PID=
	: >"$TMP/lendfs.log"
	udev_mount
	run cat "$(dev $GPU)/state" "$(dev $GPU)/borrower" "$(dev $GPU)/last_error"
	assert_output "$(printf 'lent\nnodeC\n')"
	run grep "autolend $GPU" "$TMP/lendfs.log"
	assert_failure
}

@test "real machine: --inventory udev lists the local PCI devices, read-only" {
	local real expect ids addr
	[ -d /sys/bus/pci/devices ] || skip "no PCI bus here"
	command -v strace >/dev/null || skip "strace is not installed"
	unset UMOCKDEV_DIR
	# every file the daemon opens for writing is recorded (LeakSanitizer
	# cannot run under ptrace)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		LENDFS_PREFIX="strace -f -qq -e trace=open,openat,openat2,creat,truncate -o $TMP/strace" \
		LENDFS_REAL=1 udev_mount
	real=$(ls /sys/bus/pci/devices | sed 's/^/nodeA:/')
	run ls "$MNT/devices"
	assert_output "$real"
	for addr in $(ls /sys/bus/pci/devices); do
		assert_equal "$(cat "$(dev nodeA:$addr)/vendor")" \
			"$(cat /sys/bus/pci/devices/$addr/vendor)"
		assert_equal "$(cat "$(dev nodeA:$addr)/class")" \
			"$(cat /sys/bus/pci/devices/$addr/class)"
	done
	udev_unmount
	LENDFS_PID=
	run grep -E '"/sys/[^"]*", [^)]*(O_WRONLY|O_RDWR|O_CREAT|O_TRUNC)' "$TMP/strace"
	assert_output ""
	run grep -c '"/sys/' "$TMP/strace"
	refute_output 0 # it did read sysfs (the check above saw the opens)
}

# The PCI device behind the root file system, as the shell finds it.
root_pci() {
	local p
	p=$(readlink -f "/sys/dev/block/$(mountpoint -d /)" 2>/dev/null) || return 1
	[ -e "$p/partition" ] && p=${p%/*}
	[ -n "$(ls "$p/slaves" 2>/dev/null)" ] && return 1 # dm / md: see the unit tests
	while [ "${p#/sys/devices/}" != "$p" ]; do
		if [ "$(basename "$(readlink "$p/subsystem")")" = pci ]; then
			basename "$p"
			return 0
		fi
		p=${p%/*}
	done
	return 1
}

@test "real machine: the root disk's PCI device is refused with EPERM" {
	local addr
	addr=$(root_pci) || skip "the root file system is not on a plain PCI disk here"
	unset UMOCKDEV_DIR
	LENDFS_REAL=1 udev_mount
	assert_lend_fails "nodeA:$addr" nodeB EPERM "Operation not permitted"
	run cat "$(dev "nodeA:$addr")/last_error"
	assert_output --regexp "^EPERM: policy refuses to lend nodeA:$addr: it holds the root file system \(/dev/[^)]+\)$"
	run cat "$(dev "nodeA:$addr")/state"
	assert_output available
}
