#!/usr/bin/env bats
# udev-rules/60-lendfs.rules, the example site rules and lendfs-udev-helper,
# run by the real `udevadm test` against fake PCI devices (umockdev) in a
# private mount namespace where only our rules are installed
# (tests/udev/udevadm-test.sh).  `udevadm test` exits 0 even when a rules
# file does not parse, so every log is searched for parse errors, and a
# deliberately broken copy of the rules proves that the search works.

load helpers

UDEV_DIR="$ROOT/tests/udev"
RULES_SRC="$ROOT/udev-rules"
GPU_SYS=/sys/devices/pci0000:00/0000:65:00.0
ALL_SYS="$GPU_SYS /sys/devices/pci0000:00/0000:3b:00.0
	/sys/devices/pci0000:00/0000:17:00.0 /sys/devices/pci0000:00/0000:18:00.0
	/sys/devices/pci0000:00/0000:b4:00.0 /sys/devices/pci0000:00/0000:b3:00.0
	/sys/devices/pci0000:00/0000:b5:00.0 /sys/devices/pci0000:00/0000:19:00.0
	/sys/devices/pci0000:00/0000:1a:00.0 /sys/devices/pci0000:00/0000:00:14.0"

# udevadm_run OUTDIR ACTION SRC SYSPATH...
udevadm_run() {
	local out="$1" action="$2" src="$3"
	shift 3
	mkdir -p "$out"
	local ns=(unshare -m)
	[ "$(id -u)" -eq 0 ] || ns=(unshare -r -m)
	timeout 300 "${ns[@]}" sh "$UDEV_DIR/udevadm-test.sh" "$src" \
		"$BATS_FILE_TMPDIR/devices.umockdev" "$out" "$action" "$@"
}

setup_file() {
	local rootdev iface
	for tool in udevadm umockdev-run unshare mountpoint; do
		command -v "$tool" >/dev/null ||
			{ echo "$tool is missing (make deps)" >&2; return 1; }
	done
	# the fake root disk has the machine's root MAJ:MIN; the fake NIC the
	# name of its default-route interface (both are what the helper checks)
	rootdev=$(mountpoint -d /)
	if [ "${rootdev%%:*}" = 0 ]; then
		rootdev=259:999
		echo 0 >"$BATS_FILE_TMPDIR/root-check"
	fi
	iface=$(awk '$2 == "00000000" && $8 == "00000000" { print $1; exit }' /proc/net/route)
	if [ -z "$iface" ]; then
		iface=lendfsnone0
		echo 0 >"$BATS_FILE_TMPDIR/route-check"
	fi
	echo "$iface" >"$BATS_FILE_TMPDIR/iface"
	cat >"$BATS_FILE_TMPDIR/lendfs.conf" <<-EOF
		[cluster]
		name = rules
		[host nodeA]
		[policy]
		deny = nodeA:0000:1a:00.0 ; the admin NIC
	EOF
	sed -e '/^#/d' -e "s|@ROOTDEV@|$rootdev|" -e "s|@IFACE@|$iface|" \
		-e "s|@CONFIG@|$BATS_FILE_TMPDIR/lendfs.conf|" \
		"$UDEV_DIR/rules.umockdev.in" | sed '/./,$!d' >"$BATS_FILE_TMPDIR/devices.umockdev"

	# shellcheck disable=SC2086
	udevadm_run "$BATS_FILE_TMPDIR/add" add "$RULES_SRC" $ALL_SYS
	udevadm_run "$BATS_FILE_TMPDIR/change" change "$RULES_SRC" "$GPU_SYS"
	udevadm_run "$BATS_FILE_TMPDIR/remove" remove "$RULES_SRC" "$GPU_SYS"

	mkdir -p "$BATS_FILE_TMPDIR/broken-src"
	cp "$RULES_SRC"/* "$BATS_FILE_TMPDIR/broken-src/"
	echo 'SUBSYSTEM=="pci", ATTR{class}=="0x03*' >>"$BATS_FILE_TMPDIR/broken-src/60-lendfs.rules"
	udevadm_run "$BATS_FILE_TMPDIR/broken" add "$BATS_FILE_TMPDIR/broken-src" "$GPU_SYS"
}

# props ACTION KERNEL: the properties `udevadm test` ended with.
props() {
	sed -n '/^DEVPATH=/,$p' "$BATS_FILE_TMPDIR/$1/$2.log"
}

# log_problems LOG: every line that shows a rules or helper problem.
log_problems() {
	# parse errors are logged while reading, as "FILE:LINE message" with
	# no device prefix; import and program failures name the device
	grep -E -e '^/[^ ]*\.rules:[0-9]+ ' \
		-e 'Failed to parse|Invalid key|Unknown key|failed with exit code' \
		-e "lendfs-udev-helper[^']*'\(err\)" \
		-e 'Failed to (open|read) rules' "$1"
}

@test "every rules log is free of parse errors and helper failures" {
	local log n=0
	for log in "$BATS_FILE_TMPDIR"/{add,change,remove}/*.log; do
		run log_problems "$log"
		assert_output ""
		run grep -c 'Reading rules file: .*lendfs' "$log"
		assert_output 2 # 60-lendfs.rules and the example
		n=$((n + 1))
	done
	assert_equal "$n" 12
}

@test "the parse-error check catches a broken rule" {
	run log_problems "$BATS_FILE_TMPDIR/broken/0000:65:00.0.log"
	assert_success
	assert_output --partial "60-lendfs.rules:"
}

@test "3D controller: tagged lendable, borrower by vendor/device" {
	run props add 0000:65:00.0
	assert_line "TAGS=:lendfs:"
	assert_line "CURRENT_TAGS=:lendfs:"
	assert_line "LENDFS_LENDABLE=1"
	assert_line "LENDFS_BORROWER=nodeB"
	refute_line --partial "LENDFS_DENY"
}

@test "other display controller: tagged lendable, no borrower" {
	run props add 0000:3b:00.0
	assert_line "TAGS=:lendfs:"
	assert_line "LENDFS_LENDABLE=1"
	refute_line --partial "LENDFS_BORROWER"
}

@test "network controller: borrower by slot" {
	run props add 0000:17:00.0
	assert_line "TAGS=:lendfs:"
	assert_line "LENDFS_BORROWER=nodeC"
}

@test "network controller: LENDFS_SERIAL from the PCIe Device Serial Number, borrower by serial" {
	run props add 0000:18:00.0
	assert_line "LENDFS_SERIAL=00-11-22-ff-fe-33-44-55"
	assert_line "TAGS=:lendfs:"
	assert_line "LENDFS_BORROWER=nodeD"
}

@test "NVMe: LENDFS_SERIAL from the controller serial, borrower by serial" {
	run props add 0000:b4:00.0
	assert_line "LENDFS_SERIAL=S4EWNX0R123456"
	assert_line "TAGS=:lendfs:"
	assert_line "LENDFS_BORROWER=vm:nodeB/db1"
}

@test "a site rule's LENDFS_DENY after tagging is kept for the daemon" {
	run props add 0000:b3:00.0
	assert_line "TAGS=:lendfs:"
	assert_line "LENDFS_DENY=1"
	assert_line "LENDFS_DENY_REASON=scratch disk of this host"
}

@test "the NVMe holding the root file system is not tagged" {
	[ ! -e "$BATS_FILE_TMPDIR/root-check" ] ||
		skip "the root file system has no block device here"
	run props add 0000:b5:00.0
	assert_line "LENDFS_DENY=1"
	assert_line "LENDFS_DENY_REASON=holds the root file system (/dev/nvme5n1)"
	assert_line "LENDFS_SERIAL=PHKS750500ZZ375AGN"
	refute_line --partial "TAGS="
	refute_line --partial "LENDFS_LENDABLE"
}

@test "the NIC carrying the default route is not tagged" {
	[ ! -e "$BATS_FILE_TMPDIR/route-check" ] || skip "this machine has no default route"
	run props add 0000:19:00.0
	assert_line "LENDFS_DENY=1"
	assert_line "LENDFS_DENY_REASON=carries the default route ($(cat "$BATS_FILE_TMPDIR/iface"))"
	refute_line --partial "TAGS="
}

@test "a device in the config's [policy] deny is not tagged" {
	run props add 0000:1a:00.0
	assert_line "LENDFS_DENY=1"
	assert_line "LENDFS_DENY_REASON=is listed in [policy] deny"
	refute_line --partial "TAGS="
	refute_line --partial "LENDFS_LENDABLE"
}

@test "a USB controller is not a lendable class: nothing is set" {
	run props add 0000:00:14.0
	assert_line "ACTION=add"
	refute_line --partial "TAGS="
	refute_line --partial "LENDFS_LENDABLE"
	refute_line --partial "LENDFS_SERIAL"
	refute_line --partial "LENDFS_DENY"
	run grep -c "lendfs-udev-helper" "$BATS_FILE_TMPDIR/add/0000:00:14.0.log"
	assert_output 0 # not even probed
}

@test "change keeps the tag and the borrower; remove does not tag" {
	run props change 0000:65:00.0
	assert_line "ACTION=change"
	assert_line "TAGS=:lendfs:"
	assert_line "LENDFS_BORROWER=nodeB"
	run props remove 0000:65:00.0
	assert_line "ACTION=remove"
	refute_line --partial "TAGS="
	refute_line --partial "LENDFS_BORROWER"
}

@test "lendfs-udev-helper: usage, and no path tricks" {
	run "$RULES_SRC/lendfs-udev-helper"
	assert_failure 2
	assert_output --partial "usage: lendfs-udev-helper probe"
	run "$RULES_SRC/lendfs-udev-helper" probe ../../../etc
	assert_success
	assert_output ""
	run "$RULES_SRC/lendfs-udev-helper" probe 0000:ff:1f.7
	assert_success
	assert_output ""
}

@test "lendfs-udev-helper passes shellcheck" {
	command -v shellcheck >/dev/null || skip "shellcheck is not installed"
	run shellcheck "$RULES_SRC/lendfs-udev-helper" "$UDEV_DIR/udevadm-test.sh"
	assert_success
}
