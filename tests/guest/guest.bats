#!/usr/bin/env bats
# A real guest (issue 20): Debian's kernel and an initramfs of
# busybox-static (tests/guest/mkinitramfs.sh, built by make check-vm into
# $LENDFS_BUILD/guest), booted under QEMU (TCG, -machine pc, no network)
# with its serial console on a socket the tests drive
# (tests/guest/console.py).  Through the mount a device is lent to it; the
# guest kernel's ACPI PCI hot-plug finds it, the guest maps its BAR and
# moves bytes both ways with the lender through each of its BARs (one
# ivshmem-plain per BAR); `echo > borrower` unplugs them and the guest
# kernel acknowledges each eject by itself.
#
# Only a machine without qemu-system-x86_64 skips; a QEMU that is
# installed but does not boot the guest fails (docs/TESTING.md, "Skips").
# One guest is booted per file (TCG boot: docs/TESTING.md, "A real guest").

load ../bats/helpers
load ../bats/guest

GUEST="$ROOT/tests/vm/qemu-guest.sh"
INITRAMFS="$BUILD_DIR/guest/initramfs.gz"
# $GPU in the guest: one ivshmem-plain per memory BAR (docs/VM.md), the
# BAR's memory is that device's resource2
QDEV=lendfs-nodeA-0000-65-00-0	# ... $QDEV-bar0 and $QDEV-bar1
GPU_BAR0_SIZE=0x1000000		# bar0, 16 MiB
GPU_BAR1_SIZE=0x4000000		# bar1, 64 MiB

setup_file() {
	# a TCG guest on a loaded machine can take a while to eject
	VMCONF="$BATS_FILE_TMPDIR/vm.ini"
	sed '/^\[cluster\]/a vm_unplug_timeout_ms = 30000' "$ROOT/conf/demo.ini" >"$VMCONF"
	export VMCONF
	[ -r "$INITRAMFS" ] || {
		echo "no $INITRAMFS: run make check-vm (it builds the guest)" >&2
		return 1
	}
	command -v "${QEMU:-qemu-system-x86_64}" >/dev/null || return 0 # tests skip
	GDIR="$(mktemp -d /tmp/lendfs-rg-XXXXXX)" # socket paths must be short
	export GDIR
	# guest RAM in a shared file the sim fabric maps (docs/VM.md)
	sh "$GUEST" boot "$GDIR" "$INITRAMFS" 512 -object \
		"memory-backend-file,id=ram0,size=512M,mem-path=$GDIR/ram,share=on" \
		-machine memory-backend=ram0 >&3 2>&1 || {
		echo "the guest did not boot (above)" >&3
		return 1
	}
	echo "# guest booted in $(cat "$GDIR/boot.time") s" >&3
}

teardown_file() {
	[ -n "${GDIR:-}" ] || return 0
	sh "$GUEST" stop "$GDIR" 2>/dev/null || true
	rm -rf "$GDIR"
}

setup() {
	command -v "${QEMU:-qemu-system-x86_64}" >/dev/null ||
		skip "${QEMU:-qemu-system-x86_64} is not installed (Debian package qemu-system-x86)"
	lendfs_mount "$VMCONF"
	VMD="$MNT/hosts/nodeB/vms/vm1"
}

teardown() {
	lendfs_unmount
}

# in_guest COMMAND [TIMEOUT]: run COMMAND in the guest's shell.
in_guest() {
	sh "$GUEST" sh "$GDIR" "$@"
}

# guest_find TRIES [N]: the guest's sysfs directories of the ivshmem
# devices (1af4:1110), one "DIR RESOURCE2-SIZE" line each, once there are
# N (default 2: one per BAR of $GPU), looking TRIES times 0.1 s apart (in
# the guest) while their hot-plug is under way; status 1 if there are
# fewer, with what there is.
guest_find() {
	in_guest 'for i in $(seq '"$1"'); do
		found= n=0
		for d in /sys/bus/pci/devices/*; do
			[ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1110 ] &&
				found="$found$d $(stat -c %s $d/resource2);" n=$((n + 1))
		done
		[ $n -ge '"${2:-2}"' ] && { echo "$found" | tr ";" "\n"; exit 0; }
		sleep 0.1; done; echo "$found" | tr ";" "\n"; exit 1'
}

# guest_dev SIZE: the sysfs directory of the one whose resource2 is SIZE
# bytes, from guest_find's $output
guest_dev() {
	echo "$output" | awk -v size="$(($1))" '$2 == size { print $1 }'
}

# both BAR devices of $GPU are out of the guest's query-pci
pci_gone() {
	! guest pci "$QDEV-bar0" && ! guest pci "$QDEV-bar1"
}

@test "the guest boots Debian's kernel and answers on its serial console" {
	run in_guest 'uname -s; cat /proc/cmdline; ls /sys/bus/pci/slots | wc -l'
	assert_success
	assert_line --index 0 Linux
	assert_line --index 1 --partial "console=ttyS0"
	# ACPI PCI hot-plug (built into Debian's kernel) registered the slots
	[ "${lines[2]}" -gt 0 ]
	run in_guest 'exit 7'
	assert_failure 7
}

@test "lend to a real guest: hot-plug, every BAR both ways, the guest's own eject" {
	mkdir "$VMD"
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
	run guest_find 1 1
	assert_failure # nothing lent yet
	lend $GPU vm:nodeB/vm1
	# the lender's side of each BAR: the sim's files behind bar0 and bar1
	bar0="$TMP/run/devices/$GPU/bar0"
	bar1="$TMP/run/devices/$GPU/bar1"
	[ "$(stat -c %s "$bar0")" -eq $((GPU_BAR0_SIZE)) ]
	[ "$(stat -c %s "$bar1")" -eq $((GPU_BAR1_SIZE)) ]
	printf 'lender wrote bar0' | dd of="$bar0" bs=1 seek=256 conv=notrunc status=none
	printf 'lender wrote bar1' | dd of="$bar1" bs=1 seek=256 conv=notrunc status=none
	# the guest kernel found both (ACPI hot-plug), one device per BAR at
	# its size, and assigned their BARs
	run guest_find 100
	assert_success
	d0=$(guest_dev $GPU_BAR0_SIZE)
	d1=$(guest_dev $GPU_BAR1_SIZE)
	[ -n "$d0" ] && [ -n "$d1" ] && [ "$d0" != "$d1" ]
	for d in "$d0" "$d1"; do
		run in_guest "cat $d/class; dmesg | grep -c '${d##*/}: BAR 2 .*assigned'"
		assert_line --index 0 0x050000
		assert_line --index 1 1
	done
	# the guest maps each resource2 and reads what the lender wrote ...
	run in_guest "echo 1 >$d0/enable && guestmem read $d0/resource2 256 17"
	assert_success
	assert_output "$(printf 'lender wrote bar0' | od -An -tx1 | xargs)"
	run in_guest "echo 1 >$d1/enable && guestmem read $d1/resource2 256 17"
	assert_success
	assert_output "$(printf 'lender wrote bar1' | od -An -tx1 | xargs)"
	# ... and writes what the lender then reads, in that BAR's file
	run in_guest "guestmem write $d0/resource2 4096 'guest wrote b0' &&
		guestmem write $d1/resource2 8192 'guest wrote b1'"
	assert_success
	run dd if="$bar0" bs=1 skip=4096 count=14 status=none
	assert_output "guest wrote b0"
	run dd if="$bar1" bs=1 skip=8192 count=14 status=none
	assert_output "guest wrote b1"
	# the return: device_del of both, the guest kernel ejects both slots
	# itself (no test-written hot-plug register), a DEVICE_DELETED for
	# each, and only then the device is available
	t0=$(date +%s%N)
	echo >"$(dev $GPU)/borrower"
	echo "# the guest acknowledged both unplugs in $((($(date +%s%N) - t0) / 1000000)) ms" >&3
	run cat "$(dev $GPU)/state"
	assert_output available
	pci_gone
	run in_guest "[ -e $d0 ] || [ -e $d1 ] && echo still there || echo gone"
	assert_output gone
	run cat "$(dev $GPU)/windows"
	assert_output ""
	rmdir "$VMD"
}

@test "a lend that fails under the engine: the guest kernel lets the device go" {
	mkdir "$VMD"
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
	lend $GPU vm:nodeB/vm1
	run guest_find 100
	assert_success
	d0=$(guest_dev $GPU_BAR0_SIZE)
	d1=$(guest_dev $GPU_BAR1_SIZE)
	# nodeB, the VM's host, goes offline: the route is lost, the lend
	# fails, the device is hot-removed and the guest ejects it itself
	echo offline >"$MNT/hosts/nodeB/state"
	run cat "$(dev $GPU)/state"
	assert_output failed
	run cat "$(dev $GPU)/last_error"
	assert_output --partial "EHOSTDOWN: route lost"
	run grep -c "still being unplugged" "$TMP/lendfs.log"
	assert_output 0
	pci_gone
	run guest qmp '{"execute":"qom-list","arguments":{"path":"/objects"}}'
	refute_output --partial lendfs-mem-
	run in_guest "[ -e $d0 ] || [ -e $d1 ] && echo still there || echo gone"
	assert_output gone
	echo online >"$MNT/hosts/nodeB/state"
	echo >"$(dev $GPU)/borrower" # clear failed
	rmdir "$VMD"
}

# bus_addr GPA: the bus address at which $GPU's DMA reaches guest-physical
# address GPA: the IOVA of its IOMMU mapping of the guest RAM (ram0) plus
# GPA's offset in the DMA window for it.
bus_addr() {
	local iova base
	iova=$(awk '$1 == "iommu" && $NF == "ram0" { print $5 }' "$(dev $GPU)/windows")
	base=$(awk '$1 == "dma" && $NF == "ram0" { print $7 }' "$(dev $GPU)/windows")
	printf '0x%x\n' $((iova + $1 - base))
}

@test "the device DMAs into the guest's RAM, at a buffer the guest chose" {
	mkdir "$VMD"
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
	run cat "$VMD/memory"
	assert_line "shared $GDIR/ram"
	lend $GPU vm:nodeB/vm1
	# a process in the guest locks a zeroed page and prints its physical
	# address, then waits for bytes to appear in it
	run in_guest 'guestmem buffer 16 120 >/tmp/buf 2>&1 & echo $! >/tmp/buf.pid
		for i in $(seq 100); do grep -q phys /tmp/buf && break; sleep 0.1; done
		cat /tmp/buf'
	assert_success
	assert_line --regexp '^phys 0x[0-9a-f]+$'
	gpa="${output#phys }"
	[ $((gpa)) -gt 0 ]
	[ $((gpa)) -lt $((512 << 20)) ]
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" dma-write $GPU "$(bus_addr "$gpa")" \
		"dma from device"
	assert_success
	# the guest process sees them in its buffer ...
	run in_guest 'for i in $(seq 100); do grep -q "^got\|timeout" /tmp/buf && break; sleep 0.1; done
		cat /tmp/buf'
	assert_line "got $(printf 'dma from device' | od -An -tx1 | xargs)"
	# ... and QEMU at that guest-physical address
	run guest xp "$gpa" 15
	assert_output "$(printf 'dma from device' | od -An -tx1 | xargs)"
	in_guest 'kill $(cat /tmp/buf.pid)'
	echo >"$(dev $GPU)/borrower"
	run cat "$(dev $GPU)/state"
	assert_output available
	rmdir "$VMD"
}

@test "a guest that does not boot fails the boot (status 1), never skips" {
	# an initramfs with no init: the kernel panics, QEMU stops (-no-reboot)
	local dir bad
	dir="$(mktemp -d /tmp/lendfs-rgb-XXXXXX)"
	bad="$dir/bad.gz"
	printf 'not a cpio archive' | gzip >"$bad"
	LENDFS_GUEST_BOOT_S=120 run sh "$GUEST" boot "$dir" "$bad" 256
	sh "$GUEST" stop "$dir" 2>/dev/null || true
	rm -rf "$dir"
	assert_failure 1
	assert_line --partial "qemu-system-x86_64 exited before the guest booted"
	assert_output --partial "Kernel panic"
	# and a guest that boots too slowly is killed
	dir="$(mktemp -d /tmp/lendfs-rgb-XXXXXX)"
	LENDFS_GUEST_BOOT_S=1 run sh "$GUEST" boot "$dir" "$INITRAMFS" 256
	sh "$GUEST" stop "$dir" 2>/dev/null || true
	rm -rf "$dir"
	assert_failure 1
	assert_line --partial "did not boot the guest in 1 s; killed"
}
