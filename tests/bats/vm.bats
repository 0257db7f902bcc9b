#!/usr/bin/env bats
# VM borrowers (issue 8): hosts/HOST/vms/VM with a real QEMU guest.
#
# Each test that needs a guest starts a throw-away QEMU with
# tests/vm/qemu-guest.sh (pc, no OS, TCG when KVM is missing): lendfs gets
# its first QMP socket, the test plays the guest (BIOS, ACPI eject) and
# checks query-pci through the second one.  If qemu-system-x86_64 is not
# installed, those tests are skipped; a QEMU that does not start fails.

load helpers
load guest

GUEST="$ROOT/tests/vm/qemu-guest.sh"
# $GPU in the guest: one ivshmem-plain per memory BAR (docs/VM.md)
QDEV0=lendfs-nodeA-0000-65-00-0-bar0	# its bar0, 16 MiB: slot 2
GPU_BAR0=0x1000000
QDEV=lendfs-nodeA-0000-65-00-0-bar1	# its bar1, 64 MiB: slot 3
GPU_BAR=0x4000000

setup_file() {
	# the demo cluster, with a short unplug timeout for the timeout tests
	VMCONF="$BATS_FILE_TMPDIR/vm.ini"
	sed '/^\[cluster\]/a vm_unplug_timeout_ms = 1500' "$ROOT/conf/demo.ini" >"$VMCONF"
	export VMCONF
}

setup() {
	GDIR="$(mktemp -d /tmp/lendfs-vmg-XXXXXX)" # socket paths must be short
	lendfs_mount "$VMCONF"
	VMD="$MNT/hosts/nodeB/vms/vm1"
}

teardown() {
	sh "$GUEST" stop "$GDIR" 2>/dev/null || true
	lendfs_unmount
	rm -rf "$GDIR"
}

# vm_up [MACHINE [MEM [QEMU ARGS]]]: a guest, attached as vm:nodeB/vm1.
vm_up() {
	guest_start "$@"
	mkdir "$VMD"
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
}

# How many guest devices of $GPU (one per BAR) query-pci lists.
pci_count() {
	guest qmp '{"execute":"query-pci"}' |
		grep -oE '"lendfs-nodeA-0000-65-00-0-bar[0-5]"' | wc -l
}

# wait_for FILE VALUE: poll (3 s) until FILE reads VALUE.
wait_for() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ "$(cat "$1")" = "$2" ] && return 0
		sleep 0.02
	done
	echo "$1 is '$(cat "$1")', not '$2'" >&2
	return 1
}

# kill -9 the daemon and mount again on the same state and run directory.
crash_and_restart() {
	lendfs_crash_restart "$VMCONF"
}

# ---- the registry, no guest needed -------------------------------------

@test "mkdir creates a vm borrower, rmdir removes it" {
	run ls "$MNT/hosts/nodeB/vms"
	assert_output ""
	mkdir "$VMD"
	run ls "$MNT/hosts/nodeB/vms"
	assert_output vm1
	run ls "$VMD"
	assert_output "$(printf 'devices\nlast_error\nmemory\nqmp\nstate')"
	run cat "$VMD/state"
	assert_output disconnected
	run cat "$VMD/qmp"
	assert_output ""
	run cat "$VMD/memory"
	assert_output ""
	run ls "$VMD/devices"
	assert_output ""
	[ "$(stat -c %a "$VMD/qmp")" = "$(stat -c %a "$(dev $GPU)/borrower")" ]
	[ "$(stat -c %a "$VMD/state")" = 444 ]
	rmdir "$VMD"
	run ls "$MNT/hosts/nodeB/vms"
	assert_output ""
	run cat "$VMD/state"
	assert_failure
}

@test "mkdir and rmdir refuse what they cannot do, with the errno" {
	mkdir "$VMD"
	run mkdir "$VMD"
	assert_failure
	assert_output --partial "File exists"
	run mkdir "$MNT/hosts/nodeB/vms/bad.name"
	assert_failure
	assert_output --partial "Invalid argument"
	run mkdir "$MNT/hosts/nodeZ/vms/vm1"
	assert_failure
	assert_output --partial "No such file or directory"
	run rmdir "$MNT/hosts/nodeB/vms/nosuch"
	assert_failure
	assert_output --partial "No such file or directory"
	run mkdir "$MNT/hosts/nodeB/lent/x"
	assert_failure
	assert_output --partial "Operation not permitted"
	run grep -c "cannot create vm nodeB/bad.name: malformed vm name" "$TMP/lendfs.log"
	assert_output 1
}

@test "the vm registry survives a restart" {
	mkdir "$VMD" "$MNT/hosts/nodeA/vms/other"
	crash_and_restart
	run ls "$MNT/hosts/nodeB/vms" "$MNT/hosts/nodeA/vms"
	assert_output --partial vm1
	assert_output --partial other
	run cat "$VMD/state"
	assert_output disconnected
}

@test "a bad qmp socket path is refused with a clear error" {
	mkdir "$VMD"
	run bash -c 'echo relative.sock >"$1"' _ "$VMD/qmp"
	assert_failure
	assert_output --partial "Invalid argument"
	run bash -c 'echo "$2" >"$1"' _ "$VMD/qmp" "$GDIR/nosuch.sock"
	assert_failure
	assert_output --partial "No such file or directory"
	run cat "$VMD/last_error"
	assert_output --regexp "^ENOENT: vm nodeB/vm1: .*nosuch.sock"
	run cat "$VMD/state"
	assert_output disconnected
	run cat "$VMD/qmp"
	assert_output ""
	: >"$GDIR/plain"
	run bash -c 'echo "$2" >"$1"' _ "$VMD/qmp" "$GDIR/plain"
	assert_failure
	assert_output --partial "Connection refused"
	run grep -c "cannot attach vm nodeB/vm1 to '$GDIR/plain'" "$TMP/lendfs.log"
	assert_output 1
	# a disconnected vm takes no devices
	assert_lend_fails $GPU vm:nodeB/vm1 EHOSTDOWN "Host is down"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "vm nodeB/vm1 is not connected"
	assert_lend_fails $GPU vm:nodeB/nosuch EINVAL "Invalid argument"
}

# ---- starting a guest: a QEMU that does not start fails, never skips ----

# fake_qemu BODY: a qemu-system-x86_64 in $TMP/fakeqemu running BODY (sh).
fake_qemu() {
	mkdir -p "$TMP/fakeqemu"
	printf '#!/bin/sh\n%s\n' "$1" >"$TMP/fakeqemu/qemu-system-x86_64"
	chmod +x "$TMP/fakeqemu/qemu-system-x86_64"
}

@test "guest start: a QEMU that exits fails (status 1) with its log" {
	fake_qemu 'echo "qemu: -machine $4: unsupported machine type" >&2; exit 1'
	PATH="$TMP/fakeqemu:$PATH" run sh "$GUEST" start "$GDIR" nosuchmachine
	assert_failure 1
	assert_line --partial "qemu-system-x86_64 exited with status 1 after"
	assert_line "---- $GDIR/qemu.log (stdout and stderr of qemu-system-x86_64) ----"
	assert_line "qemu: -machine nosuchmachine: unsupported machine type"
	# guest_start, which every test with a guest calls, fails with it too
	PATH="$TMP/fakeqemu:$PATH" run guest_start nosuchmachine
	assert_failure 1
	assert_line "qemu: -machine nosuchmachine: unsupported machine type"
	assert_line --partial "guest_start: $GUEST start $GDIR nosuchmachine failed (status 1)"
}

@test "guest start: a QEMU without a qmp socket in time is killed, fails with its log" {
	fake_qemu 'echo "qemu: slow firmware"; exec sleep 600'
	LENDFS_QEMU_START_S=1 SANITIZE= PATH="$TMP/fakeqemu:$PATH" \
		run sh "$GUEST" start "$GDIR"
	assert_failure 1
	assert_line "qemu-guest: qemu-system-x86_64 made no qmp socket in 1 s; killed"
	assert_line "qemu: slow firmware"
	run kill -0 "$(cat "$GDIR/qemu.pid")"
	assert_failure # killed
}

@test "guest start: only a QEMU that is not installed skips (status 77)" {
	QEMU=lendfs-no-such-qemu run sh "$GUEST" start "$GDIR"
	assert_failure 77
	assert_output "qemu-guest: lendfs-no-such-qemu is not installed (Debian package qemu-system-x86)"
}

# ---- with a guest ------------------------------------------------------

@test "attach probes the guest memory layout (-m 512M)" {
	vm_up pc 512
	run cat "$VMD/state"
	assert_output connected
	run cat "$VMD/qmp"
	assert_output "$GDIR/qmp.sock"
	run cat "$VMD/memory"
	assert_output "$(printf '%s\n' 'ram 0x0-0x1fffffff' \
		'pci-hole 0x20000000-0xfebfffff' 'pci-hole64 0x100000000-0x17fffffff' \
		'not-shared /objects/pc.ram is memory-backend-ram, not a memory-backend-file')"
	run cat "$VMD/last_error"
	assert_output ""
}

@test "attach probes the guest memory layout (-m 3G)" {
	vm_up pc 3G
	run cat "$VMD/memory"
	assert_line --index 0 "ram 0x0-0xbfffffff"
	assert_line --index 1 "pci-hole 0xc0000000-0xfebfffff"
}

@test "lend hot-adds the device: it is in query-pci with the BAR's size" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	run cat "$(dev $GPU)/state"
	assert_output lent
	# one ivshmem-plain per memory BAR, in BAR order: bus 0, slot 2 (the
	# first free one) with BAR2 = bar0 of the GPU, slot 3 with BAR2 =
	# bar1; the addresses are the guest's business, unassigned (-1)
	# unless the firmware was still enumerating PCI when the devices came
	# (TCG on a loaded machine: seen once under ASan)
	run guest pci "$QDEV0"
	assert_success
	assert_output --regexp "^0 2 0 $GPU_BAR0 (-1|0x[0-9a-f]+)$"
	run guest pci "$QDEV"
	assert_success
	assert_output --regexp "^0 3 0 $GPU_BAR (-1|0x[0-9a-f]+)$"
	[ "$(pci_count)" -eq 2 ]
	# DMA windows for the guest RAM, through the lender's IOMMU
	run cat "$(dev $GPU)/windows"
	assert_line --regexp "^dma nodeA [0-9]+ 1 0x[0-9a-f]+ 0x20000000 0x0 vm:nodeB/vm1 - ram0$"
	assert_line --regexp "^iommu nodeA .* ram0$"
	# the tree shows it
	run readlink "$VMD/devices/$GPU"
	assert_output "../../../../../devices/$GPU"
	run cat "$VMD/devices/$GPU/borrower"
	assert_output vm:nodeB/vm1
	run ls "$MNT/hosts/nodeB/borrowed"
	assert_output "$GPU"
	run cat "$MNT/lends"
	assert_output --partial "$GPU vm:nodeB/vm1"
	# busy while it holds a device
	run rmdir "$VMD"
	assert_failure
	assert_output --partial "Device or resource busy"
	run bash -c 'echo >"$1"' _ "$VMD/qmp"
	assert_failure
	assert_output --partial "Device or resource busy"
	# writing the current value is a no-op
	lend $GPU vm:nodeB/vm1
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
	[ "$(pci_count)" -eq 2 ]
}

# shared_ram: QEMU arguments for guest RAM in the file $GDIR/ram, shared
shared_ram() {
	echo -object "memory-backend-file,id=ram0,size=512M,mem-path=$GDIR/ram,share=on" \
		-machine memory-backend=ram0
}

@test "a lend into a guest moves bytes both ways" {
	# the vCPU never runs (-S): the test plays the BIOS; the guest RAM is
	# a shared file the fabric maps (docs/VM.md, "Guest RAM")
	# shellcheck disable=SC2046
	vm_up pc 512 -S $(shared_ram)
	run cat "$VMD/memory"
	assert_line --index 0 "ram 0x0-0x1fffffff"
	assert_line "shared $GDIR/ram"
	lend $GPU vm:nodeB/vm1
	guest program-bar 3 2 0xe0000000 # bar1's device
	guest program-bar 2 2 0xe4000000 # bar0's device
	run guest pci "$QDEV"
	assert_output "0 3 0 $GPU_BAR 0xe0000000"
	run guest pci "$QDEV0"
	assert_output "0 2 0 $GPU_BAR0 0xe4000000"
	# the borrower host's CPU writes each BAR through its NTB window ...
	lut() {
		awk -v bar="$1" '$1 == "lut" && $2 == "nodeB" && $NF == bar { print $5 }' \
			"$(dev $GPU)/windows"
	}
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" cpu-write nodeB "$(lut bar1)" "hello vm"
	assert_success
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" cpu-write nodeB "$(lut bar0)" "bar zero"
	assert_success
	# ... and the guest reads them at the BAR2 of each device
	run guest xp 0xe0000000 8
	assert_output "68 65 6c 6c 6f 20 76 6d"
	run guest xp 0xe4000000 8
	assert_output "62 61 72 20 7a 65 72 6f"
	# each BAR's own file holds its bytes
	run bash -c 'dd if="$1" bs=1 count=8 status=none' _ "$TMP/run/devices/$GPU/bar1"
	assert_output "hello vm"
	run bash -c 'dd if="$1" bs=1 count=8 status=none' _ "$TMP/run/devices/$GPU/bar0"
	assert_output "bar zero"
	# the device DMAs into guest RAM through the windows for it: QEMU
	# shows the bytes at that guest-physical address
	run guest xp 0x1000 8
	assert_output "00 00 00 00 00 00 00 00"
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" dma-write $GPU 0x1000 "to guest"
	assert_success
	run guest xp 0x1000 8
	assert_output "74 6f 20 67 75 65 73 74"
	# beyond the guest RAM there is no window
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" dma-write $GPU 0x20000000 x
	assert_failure
}

@test "anonymous guest RAM: the lend works, DMA lands in a shadow file" {
	vm_up pc 512 -S
	run cat "$VMD/memory"
	assert_line "not-shared /objects/pc.ram is memory-backend-ram, not a memory-backend-file"
	lend $GPU vm:nodeB/vm1
	run cat "$(dev $GPU)/state"
	assert_output lent
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" dma-write $GPU 0x1000 "to guest"
	assert_success
	# in the sim's shadow of the guest RAM, not in the guest
	[ -f "$TMP/run/ram/vm.nodeB.vm1" ]
	[ ! -L "$TMP/run/ram/vm.nodeB.vm1" ]
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" cpu-read vm:nodeB/vm1 0x1000 8
	assert_output "to guest"
	run guest xp 0x1000 8
	assert_output "00 00 00 00 00 00 00 00"
}

@test "return: the guest acknowledges the unplug, the device is available" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	(sleep 0.2; guest_eject_slots 2 3) &
	echo >"$(dev $GPU)/borrower"
	wait $! # not the daemon's pid
	run cat "$(dev $GPU)/state"
	assert_output available
	run guest pci "$QDEV"
	assert_failure
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run ls "$VMD/devices"
	assert_output ""
	rmdir "$VMD"
}

@test "a lease that runs out unplugs the device from the guest, with its acknowledgement" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	echo 1 >"$(dev $GPU)/lease"
	# the lease's return asks the guest, which acknowledges
	wait_for "$(dev $GPU)/state" returning
	guest_eject_slots 2 3
	wait_for "$(dev $GPU)/state" available
	run cat "$MNT/events"
	assert_line --regexp "^[0-9]+ [0-9]+ $GPU expired borrower=vm:nodeB/vm1 deadline=[0-9T:-]+Z cause=lease$"
	run guest pci "$QDEV"
	assert_failure
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run ls "$VMD/devices"
	assert_output ""
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^ETIME: lease expired at [0-9T:-]+Z$"
	run grep -cE " $GPU returned borrower=vm:nodeB/vm1 cause=lease$" "$MNT/events"
	assert_output 1
}

@test "return timeout: ETIMEDOUT, then it completes when the guest acknowledges" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	run bash -c 'echo >"$1"' _ "$(dev $GPU)/borrower"
	assert_failure
	assert_output --partial "Connection timed out"
	run cat "$(dev $GPU)/state"
	assert_output returning
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^ETIMEDOUT: .*did not acknowledge the removal"
	assert_lend_fails $GPU vm:nodeB/vm1 EBUSY "Device or resource busy"
	# the guest lets go of bar0's device only: still returning
	guest eject 2
	sleep 0.3
	run guest pci "$QDEV0"
	assert_failure
	run guest pci "$QDEV"
	assert_success
	run cat "$(dev $GPU)/state"
	assert_output returning
	# the last late acknowledgement finishes the return by itself
	run guest eject-pending
	assert_output 3
	wait_for "$(dev $GPU)/state" available
	run guest pci "$QDEV"
	assert_failure
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run grep -c "$GPU returned from vm:nodeB/vm1: the guest acknowledged the removal late" \
		"$TMP/lendfs.log"
	assert_output 1
}

@test "QEMU killed while lent: the device is available again" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	guest stop
	wait_for "$(dev $GPU)/state" available
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run cat "$VMD/state"
	assert_output disconnected
	run cat "$VMD/last_error"
	assert_output --partial "ECONNRESET: vm nodeB/vm1: qemu closed the qmp connection"
	run grep -c "$GPU released: vm nodeB/vm1" "$TMP/lendfs.log"
	assert_output 1
	# a new QEMU on the same socket: attach again, lend again
	guest_start pc 512
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
	lend $GPU vm:nodeB/vm1
	[ "$(pci_count)" -eq 2 ]
}

@test "a failed hot-add rolls the lend back (q35 without a free root port)" {
	vm_up q35 512
	assert_lend_fails $GPU vm:nodeB/vm1 ENOSPC "No space left on device"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "no free pcie-root-port"
	run cat "$(dev $GPU)/state"
	assert_output available
	run cat "$(dev $GPU)/windows"
	assert_output ""
	run cat "$MNT/lends"
	assert_output ""
}

# The QEMU objects lendfs made for $GPU: its ivshmem devices and backends.
gpu_objects() {
	guest qmp '{"execute":"qom-list","arguments":{"path":"/objects"}}' |
		grep -oE '"lendfs-mem-nodeA-0000-65-00-0-bar[0-5]"' | sort || true
	guest qmp '{"execute":"qom-list","arguments":{"path":"/machine/peripheral"}}' |
		grep -oE '"lendfs-nodeA-0000-65-00-0-bar[0-5]"' | sort || true
}

# gpu_objects_gone: the GPU's QEMU objects go within 3 s.
gpu_objects_gone() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ -z "$(gpu_objects)" ] && break
		sleep 0.02
	done
	run gpu_objects
	assert_output ""
}
GPU_OBJECTS='"lendfs-mem-nodeA-0000-65-00-0-bar0"
"lendfs-mem-nodeA-0000-65-00-0-bar1"
"lendfs-nodeA-0000-65-00-0-bar0"
"lendfs-nodeA-0000-65-00-0-bar1"'

# bsel PORT: the ACPI hot-plug bus number of q35 root port PORT
bsel() {
	guest qmp "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/$1/$1\",\"property\":\"acpi-pcihp-bsel\"}}"
}

@test "q35: one root port per BAR; with one port too few the lend rolls back" {
	# one free root port, two BARs: bar0 goes in, bar1 finds no port
	vm_up q35 512 -device pcie-root-port,id=rp0,bus=pcie.0,chassis=1
	assert_lend_fails $GPU vm:nodeB/vm1 ENOSPC "No space left on device"
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "no free pcie-root-port to hot-plug bar1"
	run cat "$(dev $GPU)/state" "$(dev $GPU)/windows"
	assert_output available
	# bar0's device was unplugged; nobody acknowledged it in time (1 s),
	# so it and its backend stay until the guest does
	run gpu_objects
	assert_output "$(printf '%s\n' "$GPU_OBJECTS" | grep bar0)"
	guest eject-q35 "$(bsel rp0)" 0
	gpu_objects_gone
	guest stop
	# two ports: each BAR behind its own
	rmdir "$VMD"
	vm_up q35 512 -device pcie-root-port,id=rp0,bus=pcie.0,chassis=1 \
		-device pcie-root-port,id=rp1,bus=pcie.0,chassis=2
	lend $GPU vm:nodeB/vm1
	run guest pci "$QDEV0"
	assert_output --regexp "^[12] 0 0 $GPU_BAR0 "
	run guest pci "$QDEV"
	assert_output --regexp "^[12] 0 0 $GPU_BAR "
	[ "$(pci_count)" -eq 2 ]
}

@test "a lend that fails under the engine unplugs from the guest, QEMU objects removed" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	run gpu_objects
	assert_output "$GPU_OBJECTS"
	# nodeB (the VM's host) goes offline: no route, the lend fails; the
	# guest is asked to let the device go and acknowledges
	(sleep 0.3; guest_eject_slots 2 3) &
	echo offline >"$MNT/hosts/nodeB/state"
	wait $! # not the daemon's pid
	run cat "$(dev $GPU)/state"
	assert_output failed
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "EHOSTDOWN: route lost"
	run guest pci "$QDEV"
	assert_failure
	run gpu_objects
	assert_output ""
	run cat "$(dev $GPU)/windows"
	assert_output ""
}

@test "a failed lend whose guest acknowledges late: the QEMU objects go when it does" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	echo offline >"$MNT/hosts/nodeB/state" # no acknowledgement: 1.5 s
	run cat "$(dev $GPU)/state"
	assert_output failed
	run grep -c "$GPU: the failed lend to vm:nodeB/vm1 is still being unplugged" \
		"$TMP/lendfs.log"
	assert_output 1
	[ "$(pci_count)" -eq 2 ] # the removal is pending in the guest
	guest_eject_slots 2 3
	gpu_objects_gone
	# cleared, and lent again once nodeB is back
	echo >"$(dev $GPU)/borrower"
	echo online >"$MNT/hosts/nodeB/state"
	lend $GPU vm:nodeB/vm1
	[ "$(pci_count)" -eq 2 ]
}

@test "daemon restart keeps the vm lend: the device is in query-pci once" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	crash_and_restart
	run cat "$(dev $GPU)/state"
	assert_output lent
	run cat "$(dev $GPU)/borrower"
	assert_output vm:nodeB/vm1
	run cat "$VMD/state"
	assert_output connected
	[ "$(pci_count)" -eq 2 ]
	run readlink "$VMD/devices/$GPU"
	assert_success
	run grep -c "lend of $GPU to vm:nodeB/vm1 restored: the device is still in the guest" \
		"$TMP/lendfs.log"
	assert_output 1
	# and it returns as usual
	(sleep 0.2; guest_eject_slots 2 3) &
	echo >"$(dev $GPU)/borrower"
	wait $! # not the daemon's pid
	run guest pci "$QDEV"
	assert_failure
}

@test "daemon restart keeps the BAR file the guest maps: bytes before and after it" {
	vm_up pc 512 -S # the test plays the BIOS
	lend $GPU vm:nodeB/vm1
	guest program-bar 3 2 0xe0000000 # bar1's device
	lut_addr() {
		awk '$1 == "lut" && $2 == "nodeB" && $NF == "bar1" { print $5 }' \
			"$(dev $GPU)/windows"
	}
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" cpu-write nodeB "$(lut_addr)" "before"
	assert_success
	ino=$(stat -c %i "$TMP/run/devices/$GPU/bar1")
	crash_and_restart
	run cat "$(dev $GPU)/state"
	assert_output lent
	# the sim kept the file (same inode, same bytes): the guest, which
	# kept mapping it, still sees what was written before ...
	[ "$(stat -c %i "$TMP/run/devices/$GPU/bar1")" = "$ino" ]
	run guest xp 0xe0000000 6
	assert_output "62 65 66 6f 72 65"
	# ... and what the fabric writes after the restart
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" cpu-write nodeB \
		"$(printf '0x%x' $(($(lut_addr) + 8)))" "after"
	assert_success
	run guest xp 0xe0000008 5
	assert_output "61 66 74 65 72"
	(sleep 0.2; guest_eject_slots 2 3) &
	echo >"$(dev $GPU)/borrower"
	wait $! # not the daemon's pid
}

@test "daemon restart with the guest gone releases the vm lend" {
	vm_up pc 512
	lend $GPU vm:nodeB/vm1
	kill -KILL "$LENDFS_PID"
	guest stop # while the daemon is down
	crash_and_restart
	run cat "$(dev $GPU)/state"
	assert_output available
	run cat "$VMD/state"
	assert_output disconnected
	run cat "$MNT/lends"
	assert_output ""
}
