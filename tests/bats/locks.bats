#!/usr/bin/env bats
# No lock of the model is held while the engine waits on the outside world
# (a disk sync, QEMU, ZooKeeper): a slow guest must not stall the rest of
# the cluster.  Device 1 is in a guest and its return waits for the
# guest's acknowledgement; meanwhile a uevent hot-adds a device (the
# engine adds it under the model's write lock) and device 2 is lent to a
# host.  Both must be done within BOUND_MS while the return still waits.
#
# One daemon, under the umockdev preload like udev.bats: nodeA is the
# local host and its devices come from a umockdev test bed
# (tests/udev/devices.umockdev), which also sends the hot-plug uevents.
# The VM borrower is a real QEMU guest (tests/vm/qemu-guest.sh, as in
# vm.bats) registered as vm:nodeB/vm1: the lender is nodeA and the guest
# runs on another host, as in vm.bats.  Without --store zk one daemon
# serves every host of the config, so the udev inventory of nodeA and a
# VM on the config-only host nodeB coexist in one mount.
#
# The guest runs no OS, so it never acknowledges a hot-remove by itself:
# the test plays the ACPI eject when it wants the return to finish, and
# until then the return waits up to [cluster] vm_unplug_timeout_ms
# (UNPLUG_MS here).

load helpers
load testbed
load guest

UDEV_DIR="$ROOT/tests/udev"
GUEST="$ROOT/tests/vm/qemu-guest.sh"
VMDEV=nodeA:0000:b3:00.0		# NVMe of the test bed: lent to the guest
QDEV=lendfs-nodeA-0000-b3-00-0-bar0	# ... its bar0 (its only memory BAR) in the guest
HOSTDEV=nodeA:0000:17:00.0	# NIC of the test bed: lent to nodeC meanwhile
HOT_NIC=nodeA:0000:67:00.0	# hot-added meanwhile (tests/udev/hotadd-nic.umockdev)

UNPLUG_MS=8000	# vm_unplug_timeout_ms: how long the return may wait
BOUND_MS=2000	# the hot-add and the other lend, well under UNPLUG_MS
TB_WAIT_TENTHS=100	# 10 s for the test bed to answer

setup_file() {
	testbed_build || return 1
	# the udev cluster (nodeA local; nodeB, nodeC borrowers), slow unplugs
	sed "/^\[cluster\]/a vm_unplug_timeout_ms = $UNPLUG_MS" "$UDEV_DIR/udev.ini" \
		>"$BATS_FILE_TMPDIR/locks.ini"
	export UCONF="$BATS_FILE_TMPDIR/locks.ini" # udev_mount (testbed.bash)
}

setup() {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	GDIR="$(mktemp -d /tmp/lendfs-vmg-XXXXXX)" # socket paths must be short
	VMD="$MNT/hosts/nodeB/vms/vm1"
	TB_PID=
	TB_FD=
	LENDFS_PID=
	BG_PIDS=()
}

teardown() {
	local status=0 pid i
	# QEMU gone ends any unplug wait at once (the lend is released)
	sh "$GUEST" stop "$GDIR" 2>/dev/null || true
	for pid in "${BG_PIDS[@]}"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	udev_unmount || status=1
	testbed_stop
	rm -rf "$TMP" "$GDIR"
	return $status
}

# ---- time and background writes -----------------------------------------

# Milliseconds since the epoch (EPOCHREALTIME, whatever the decimal point).
now_ms() {
	local us=${EPOCHREALTIME//[!0-9]/}
	echo $((10#$us / 1000))
}

# bg_write NAME VALUE FILE: write VALUE to FILE in the background, one
# write(2); $TMP/NAME.start, then $TMP/NAME.done "STATUS END_MS" when the
# write has returned, and $TMP/NAME.err its message.  Sets BG_PID.
bg_write() {
	local name="$1" value="$2" file="$3"
	(
		now_ms >"$TMP/$name.start"
		status=0
		printf '%s\n' "$value" >"$file" 2>"$TMP/$name.err" || status=$?
		echo "$status $(now_ms)" >"$TMP/$name.done"
	) </dev/null >/dev/null 2>&1 3>&- &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# done_ms NAME: how long the write NAME took, once it has returned.
done_ms() {
	local status end
	read -r status end <"$TMP/$1.done"
	echo $((end - $(<"$TMP/$1.start")))
}

# wait_for FILE VALUE SECS: poll until FILE reads VALUE, at most SECS.
wait_for() {
	local i
	for ((i = 0; i < $3 * 50; i++)); do
		[ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.02
	done
	echo "$1 is '$(cat "$1" 2>/dev/null)', not '$2' after $3 s" >&2
	return 1
}

# wait_file FILE SECS: poll until FILE exists, at most SECS.
wait_file() {
	local i
	for ((i = 0; i < $2 * 50; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.02
	done
	echo "no $1 after $2 s" >&2
	return 1
}

@test "a return waiting for the guest holds up neither a hot-add nor another lend" {
	local slot t0 now add_ms=- lend_ms=- lend_status=- ret_running ret_status
	testbed_start "$UDEV_DIR/devices.umockdev"
	udev_mount
	guest_start pc 512
	mkdir "$VMD"
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
	wait_for "$VMD/state" connected 10

	# device 1 into the guest
	lend $VMDEV vm:nodeB/vm1
	run cat "$(dev $VMDEV)/state"
	assert_output lent
	run guest pci "$QDEV"
	assert_success
	slot=$(echo "$output" | cut -d' ' -f2)
	run cat "$(dev $HOSTDEV)/state"
	assert_output available
	run ls "$(dev $HOT_NIC)"
	assert_failure

	# take it back: the guest does not acknowledge, the write waits
	bg_write ret "" "$(dev $VMDEV)/borrower"
	RET_PID=$BG_PID
	wait_for "$(dev $VMDEV)/state" returning 5

	# meanwhile: device 2 to a host, and a uevent adds a device
	t0=$(now_ms)
	bg_write lend nodeC "$(dev $HOSTDEV)/borrower"
	tb load "$UDEV_DIR/hotadd-nic.umockdev"
	while :; do
		now=$(now_ms)
		if [ "$add_ms" = - ] && [ -d "$(dev $HOT_NIC)" ]; then
			add_ms=$((now - t0))
		fi
		[ "$add_ms" != - ] && [ -e "$TMP/lend.done" ] && break
		((now - t0 < BOUND_MS)) || break
		sleep 0.01
	done
	# the return must still be waiting for the guest: they overlapped
	ret_running=no
	if kill -0 "$RET_PID" 2>/dev/null && [ ! -e "$TMP/ret.done" ] &&
	   [ "$(cat "$(dev $VMDEV)/state")" = returning ]; then
		ret_running=yes
	fi
	# what did not make it in time: when it does (for the message)
	while [ "$add_ms" = - ] || [ ! -e "$TMP/lend.done" ]; do
		now=$(now_ms)
		if [ "$add_ms" = - ] && [ -d "$(dev $HOT_NIC)" ]; then
			add_ms=$((now - t0))
		fi
		((now - t0 < UNPLUG_MS + 5000)) || break
		sleep 0.02
	done
	if [ -e "$TMP/lend.done" ]; then
		read -r lend_status _ <"$TMP/lend.done"
		lend_ms=$(done_ms lend)
	fi
	echo "while the return waited (unplug timeout $UNPLUG_MS ms):" \
		"hot-add of $HOT_NIC seen after $add_ms ms;" \
		"lend of $HOSTDEV to nodeC returned $lend_status after $lend_ms ms;" \
		"return still waiting at the $BOUND_MS ms mark: $ret_running"
	assert_equal "$ret_running" yes
	assert [ "$add_ms" != - ]
	assert [ "$add_ms" -lt "$BOUND_MS" ]
	assert_equal "$lend_status" 0
	assert [ "$lend_ms" -lt "$BOUND_MS" ]
	run cat "$(dev $HOSTDEV)/state" "$(dev $HOT_NIC)/state"
	assert_output "$(printf 'lent\navailable')"

	# now the guest acknowledges: the return completes
	guest eject "$slot"
	wait_file "$TMP/ret.done" 5
	read -r ret_status _ <"$TMP/ret.done"
	[ "$ret_status" = 0 ] || fail "the return failed: $(cat "$TMP/ret.err")"
	run cat "$(dev $VMDEV)/state"
	assert_output available
	run guest pci "$QDEV"
	assert_failure
	run cat "$(dev $VMDEV)/windows"
	assert_output ""
	run cat "$(dev $HOSTDEV)/state"
	assert_output lent
}
