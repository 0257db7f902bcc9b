#!/usr/bin/env bats
# A crash at every step (issue 17): the daemon ends itself with _exit()
# at a named fault point (LENDFS_FAULT=point:N:crash, exit status 86, no
# cleanup), is started again on the same store and run directory, and
# each row of "Recovery on start" (docs/STATE.md) and of "Daemon restart"
# (docs/VM.md) is checked where it is promised: the store (SQLite read
# with python3, ZooKeeper with zkctl), the tree (state, borrower,
# last_error) and the sim's registers (a CPU read through every LUT
# window with lendfs-dma, and `lendfs --check --run-dir`, which lists
# every translation no stored lend owns).
#
# Intent rows (`lending`, `returning`) exist only where an intent is
# written (core/lend.c, intent_needed()): a VM borrower (a [vm] section,
# and a real QEMU guest for docs/VM.md) and distributed mode (a real
# ZooKeeper, tests/zk/zk.sh).

load helpers
load guest
load cluster_helpers

CRASH=86 # FAULT_CRASH_STATUS, core/fault.h
GUEST="$ROOT/tests/vm/qemu-guest.sh"
QDEV=lendfs-nodeA-0000-65-00-0 # $GPU in the guest: $QDEV-barN per memory BAR

setup_file() {
	# the demo cluster with a VM of nodeC that is only a [vm] section
	# (no QEMU): a lend to it writes an intent all the same; and a short
	# unplug timeout for the QEMU guests (docs/VM.md)
	VMCONF="$BATS_FILE_TMPDIR/vm.ini"
	{
		sed '/^\[cluster\]/a vm_unplug_timeout_ms = 1500' "$DEMO"
		printf '\n[vm nodeC/g1]\nram = 0x0-0x3fffffff\n'
	} >"$VMCONF"
	export VMCONF
}

teardown() {
	[ -z "${GDIR:-}" ] || { sh "$GUEST" stop "$GDIR" 2>/dev/null || true; rm -rf "$GDIR"; }
	lendfs_unmount
	cluster_down
	zk_stop
}

DMA() {
	"$BUILD_DIR/lendfs-dma" "$@"
}

# write_crashes ID VALUE POINT: the write to borrower fails because the
# daemon ended under it, with status 86 at POINT; its mount is detached.
write_crashes() {
	run bash -c 'printf "%s\n" "$1" >"$2"' _ "$2" "$(dev "$1")/borrower"
	assert_failure
	lendfs_wait_exit
	if [ "$LENDFS_STATUS" -ne "$CRASH" ]; then
		echo "lendfs exited with $LENDFS_STATUS, not $CRASH:" >&2
		cat "$TMP/lendfs.log" >&2
		return 1
	fi
	grep -q "^lendfs: injected crash at $3 #" "$TMP/lendfs.log"
	fusermount3 -uz "$MNT"
}

# restart [CONFIG]: the daemon again, on the same state and run directory.
restart() {
	lendfs_remount "${1:-$VMCONF}"
}

# stored ID: "STATE BORROWER" of its SQLite row, nothing without one.
stored() {
	python3 - "$TMP/state.db" "$1" <<'EOF'
import sqlite3, sys
names = {0: "lending", 1: "lent", 2: "returning"}
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for state, borrower in db.execute(
        "SELECT state, borrower FROM lends WHERE device = ?", (sys.argv[2],)):
    print(names.get(state, state), borrower)
EOF
}

# stored_windows ID: the windows of its SQLite row, one per line.
stored_windows() {
	python3 - "$TMP/state.db" "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for (windows,) in db.execute("SELECT windows FROM lends WHERE device = ?",
                             (sys.argv[2],)):
    print(windows)
EOF
}

# lut_probe RUN WINDOWS: "HOST ADDR ok|fault" for every LUT window of
# WINDOWS (text of devices/ID/windows) whose next hop is the lender: a
# CPU read through it in the registers of RUN.
lut_probe() {
	local run="$1" kind host idx n addr size target next rest
	while read -r kind host idx n addr size target next rest; do
		[ "$kind" = lut ] || continue
		[ -z "${LENDER:-}" ] || [ "$next" = "$LENDER" ] || continue
		if DMA -r "$run" cpu-read "$host" "$addr" 1 >/dev/null 2>&1; then
			echo "$host $addr ok"
		else
			echo "$host $addr fault"
		fi
	done <<<"$2"
}

# assert_probe RUN WINDOWS ok|fault: every LUT window answers so.
assert_probe() {
	local out
	out=$(lut_probe "$1" "$2")
	[ -n "$out" ] || { echo "no LUT window in: $2" >&2; return 1; }
	if grep -v " $3\$" <<<"$out"; then
		echo "expected every LUT window to be '$3'" >&2
		return 1
	fi
}

# registers_owned CONFIG [ARGS]: `lendfs --check` finds the store and
# the sim's registers agree (no translation without a stored lend).
registers_owned() {
	local conf="$1"
	shift
	run "$LENDFS" --check -c "$conf" --run-dir "$TMP/run" --state "$TMP/state.db" "$@"
	assert_output ""
	assert_success
}

# ---- docs/STATE.md, "Recovery on start" (one daemon, SQLite) -----------

@test "lent: a crash after the commit, before the write returns, restores the lend" {
	LENDFS_FAULT=lend.done:1:crash lendfs_mount "$VMCONF"
	write_crashes "$GPU" nodeC lend.done
	run stored "$GPU"
	assert_output "lent nodeC"
	restart
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower" "$(dev "$GPU")/last_error"
	assert_output "$(printf 'lent\nnodeC\n')"
	# re-programmed into the fresh fabric: nodeC's CPU reaches the BAR
	assert_probe "$TMP/run" "$(cat "$(dev "$GPU")/windows")" ok
	registers_owned "$VMCONF"
}

@test "lending: a crash with the intent stored and the windows programmed rolls back" {
	LENDFS_FAULT=lend.plug:1:crash lendfs_mount "$VMCONF"
	write_crashes "$GPU" vm:nodeC/g1 lend.plug
	run stored "$GPU"
	assert_output "lending vm:nodeC/g1"
	win=$(stored_windows "$GPU")
	# the crash left translations in the registers
	assert_probe "$TMP/run" "$win" ok
	restart
	run stored "$GPU"
	assert_output ""
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower" "$(dev "$GPU")/windows"
	assert_output available
	grep -q "unacknowledged lend of $GPU to vm:nodeC/g1 rolled back" "$TMP/lendfs.log"
	assert_probe "$TMP/run" "$win" fault
	registers_owned "$VMCONF"
	# and it lends again
	lend "$GPU" vm:nodeC/g1
	run cat "$(dev "$GPU")/state"
	assert_output lent
}

@test "returning: a crash with the return's intent stored finishes the return" {
	LENDFS_FAULT=return.stored:1:crash lendfs_mount "$VMCONF"
	lend "$GPU" vm:nodeC/g1
	win=$(cat "$(dev "$GPU")/windows")
	write_crashes "$GPU" "" return.stored
	run stored "$GPU"
	assert_output "returning vm:nodeC/g1"
	assert_probe "$TMP/run" "$win" ok # not cleared yet
	restart
	run stored "$GPU"
	assert_output ""
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower"
	assert_output available
	grep -q "interrupted return of $GPU from vm:nodeC/g1 finished" "$TMP/lendfs.log"
	assert_probe "$TMP/run" "$win" fault
	registers_owned "$VMCONF"
}

@test "returning: a crash after clearing, before the removal, finishes the return" {
	LENDFS_FAULT=return.cleared:1:crash lendfs_mount "$VMCONF"
	lend "$GPU" vm:nodeC/g1
	win=$(cat "$(dev "$GPU")/windows")
	write_crashes "$GPU" "" return.cleared
	run stored "$GPU"
	assert_output "returning vm:nodeC/g1"
	assert_probe "$TMP/run" "$win" fault
	restart
	run stored "$GPU"
	assert_output ""
	run cat "$(dev "$GPU")/state"
	assert_output available
	registers_owned "$VMCONF"
}

@test "lent, device gone from the config: the row is removed and logged" {
	LENDFS_FAULT=lend.done:1:crash lendfs_mount "$VMCONF"
	write_crashes "$GPU" nodeC lend.done
	win=$(stored_windows "$GPU")
	# the same cluster without the GPU's section
	conf="$BATS_TEST_TMPDIR/nogpu.ini"
	awk -v s="[device $GPU]" '/^\[/ { skip = ($0 == s) } !skip' "$VMCONF" >"$conf"
	! grep -qF "$GPU" "$conf"
	restart "$conf"
	run stored "$GPU"
	assert_output ""
	[ ! -e "$(dev "$GPU")" ]
	grep -q "lend of $GPU to nodeC dropped: the device is no longer in the config" "$TMP/lendfs.log"
	assert_probe "$TMP/run" "$win" fault
	registers_owned "$conf"
}

@test "lent, windows no longer fit: the device is failed with the reason, the row removed" {
	LENDFS_FAULT=lend.done:1:crash lendfs_mount "$VMCONF"
	write_crashes "$GPU" nodeC lend.done
	win=$(stored_windows "$GPU")
	# nodeC's adapter now has one LUT entry: the GPU's two BARs need more
	conf="$BATS_TEST_TMPDIR/small.ini"
	awk '/^\[/ { h = ($0 == "[host nodeC]") } h && /^lut_entries/ { next } { print } h && /^\[host nodeC\]/ { print "lut_entries = 1" }' \
		"$VMCONF" >"$conf"
	restart "$conf"
	run stored "$GPU"
	assert_output ""
	run cat "$(dev "$GPU")/state"
	assert_output failed
	run cat "$(dev "$GPU")/last_error"
	assert_output --regexp "^[A-Z]+: .+"
	grep -q "cannot restore lend to nodeC" "$TMP/lendfs.log"
	assert_probe "$TMP/run" "$win" fault
	registers_owned "$conf"
	# clearing the failure makes it available again
	echo >"$(dev "$GPU")/borrower"
	run cat "$(dev "$GPU")/state"
	assert_output available
}

@test "host renamed in the config: the old host's lends are dropped" {
	LENDFS_FAULT=lend.done:1:crash lendfs_mount "$VMCONF"
	write_crashes "$GPU" nodeC lend.done
	win=$(stored_windows "$GPU")
	# nodeC is called nodeX now (its section, links, devices and vm)
	conf="$BATS_TEST_TMPDIR/renamed.ini"
	sed 's/nodeC/nodeX/g' "$VMCONF" >"$conf"
	restart "$conf"
	run stored "$GPU"
	assert_output ""
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower"
	assert_output failed
	run cat "$(dev "$GPU")/last_error"
	assert_output --partial "nodeC"
	grep -q "cannot restore lend to nodeC" "$TMP/lendfs.log"
	[ ! -e "$MNT/hosts/nodeC" ]
	LENDER=nodeA assert_probe "$TMP/run" "$win" fault
	registers_owned "$conf"
}

# ---- docs/STATE.md, intents in distributed mode (ZooKeeper) -------------

# zk_cluster POINT: ZooKeeper, then nodeA (lender, LENDFS_FAULT=POINT),
# nodeC and nodeD: the GPU's route to nodeD crosses nodeC, so the peers
# acknowledge and only the lender commits (docs/STATE.md).
zk_cluster() {
	zk_start 1
	CTMP="$(mktemp -d)"
	CHROOT="/crash$$.$RANDOM"
	CLUSTER_HOSTS=(nodeA nodeC nodeD)
	LENDFS_FAULT="$1" node_up nodeA
	node_up nodeC
	node_up nodeD
	for h in nodeA nodeC nodeD; do
		eventually 20 node_online $h
	done
}

# node_crashed HOST POINT: HOST's daemon ended with status 86 at POINT.
node_crashed() {
	local pid status=0
	pid="$(cat "$CTMP/pid.$1")"
	timeout 15 tail --pid="$pid" -f /dev/null || true
	wait "$pid" || status=$?
	rm -f "$CTMP/pid.$1"
	fusermount3 -uz "$(mnt "$1")"
	if [ "$status" -ne "$CRASH" ]; then
		echo "lendfs --host $1 exited with $status, not $CRASH:" >&2
		cat "$CTMP/log.$1" >&2
		return 1
	fi
	grep -q "^lendfs: injected crash at $2 #" "$CTMP/log.$1"
}

zk_record() {
	"$ZKCTL" "$ZK" get "$CHROOT/lends/$1"
}

zk_no_record() {
	! "$ZKCTL" "$ZK" exists "$CHROOT/lends/$1"
}

# nodeC's LUT windows of WINDOWS (those to the lender) in nodeC's registers
nodec_probe() {
	LENDER=nodeA assert_probe "$CTMP/run.nodeC" "$(grep '^lut nodeC ' <<<"$1")" "$2"
}

zk_registers_owned() {
	local h
	for h in "${CLUSTER_HOSTS[@]}"; do
		run "$LENDFS" --check -c "$ZKCONF" --store "zk://$ZK$CHROOT" \
			--run-dir "$CTMP/run.$h" --host "$h"
		assert_output ""
		assert_success
	done
}

@test "zk lending: a lender crash after the intent's zoo_multi rolls the lend back" {
	zk_cluster zk.intent.done:1:crash
	run bash -c "echo nodeD >'$(cdev nodeA "$GPU")/borrower'"
	assert_failure
	node_crashed nodeA zk.intent.done
	run zk_record "$GPU"
	assert_output --regexp "^state lending"
	win=$(grep '^window ' <<<"$output" | cut -d' ' -f2-)
	# the peers programmed theirs on seeing the intent, and wait
	eventually 5 nodec_probe "$win" ok
	node_up nodeA
	eventually 10 zk_no_record "$GPU"
	for h in nodeA nodeC nodeD; do
		eventually 10 state_is $h "$GPU" available ""
	done
	grep -q "unacknowledged lend of $GPU to nodeD rolled back" "$CTMP/log.nodeA"
	eventually 5 nodec_probe "$win" fault
	zk_registers_owned
}

@test "zk returning: a lender crash after the return's intent finishes the return" {
	zk_cluster zk.intent.done:2:crash
	echo nodeD >"$(cdev nodeA "$GPU")/borrower"
	win=$(cat "$(cdev nodeA "$GPU")/windows")
	eventually 5 nodec_probe "$win" ok
	run bash -c "echo >'$(cdev nodeA "$GPU")/borrower'"
	assert_failure
	node_crashed nodeA zk.intent.done
	run zk_record "$GPU"
	assert_output --regexp "^state returning"
	node_up nodeA
	eventually 10 zk_no_record "$GPU"
	for h in nodeA nodeC nodeD; do
		eventually 10 state_is $h "$GPU" available ""
	done
	grep -q "interrupted return of $GPU from nodeD finished" "$CTMP/log.nodeA"
	eventually 5 nodec_probe "$win" fault
	zk_registers_owned
}

# ---- docs/VM.md, "Daemon restart" (a real QEMU guest) -------------------

# vm_up: a QEMU guest (tests/vm/qemu-guest.sh), attached as vm:nodeB/vm1
# and stored in the registry; the daemon runs with LENDFS_FAULT=$1.
vm_up() {
	GDIR="$(mktemp -d /tmp/lendfs-crg-XXXXXX)" # socket paths must be short
	LENDFS_FAULT="$1" lendfs_mount "$VMCONF"
	VMD="$MNT/hosts/nodeB/vms/vm1"
	guest_start pc 512
	mkdir "$VMD"
	echo "$GDIR/qmp.sock" >"$VMD/qmp"
}

# How many guest devices of $GPU (one per memory BAR: bar0 in slot 2,
# bar1 in slot 3) query-pci lists.
pci_count() {
	guest qmp '{"execute":"query-pci"}' | grep -oE "\"$QDEV-bar[0-5]\"" | wc -l
}

pci_gone() {
	[ "$(pci_count)" -eq 0 ]
}

@test "vm lent, device still in the guest: restored, not added twice" {
	vm_up lend.done:1:crash
	write_crashes "$GPU" vm:nodeB/vm1 lend.done
	run stored "$GPU"
	assert_output "lent vm:nodeB/vm1"
	[ "$(pci_count)" -eq 2 ]
	restart
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower" "$VMD/state"
	assert_output "$(printf 'lent\nvm:nodeB/vm1\nconnected')"
	[ "$(pci_count)" -eq 2 ]
	grep -q "lend of $GPU to vm:nodeB/vm1 restored: the device is still in the guest" "$TMP/lendfs.log"
	assert_probe "$TMP/run" "$(cat "$(dev "$GPU")/windows")" ok
	registers_owned "$VMCONF"
}

@test "vm lent, a new QEMU on the same socket: the device is added again" {
	vm_up lend.done:1:crash
	write_crashes "$GPU" vm:nodeB/vm1 lend.done
	guest stop
	guest_start pc 512 # same directory, same socket path
	pci_gone
	restart
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower"
	assert_output "$(printf 'lent\nvm:nodeB/vm1')"
	[ "$(pci_count)" -eq 2 ]
	grep -q "lend of $GPU to vm:nodeB/vm1 restored: the device was not in the guest any more and was added again" "$TMP/lendfs.log"
	run stored "$GPU"
	assert_output "lent vm:nodeB/vm1"
	assert_probe "$TMP/run" "$(cat "$(dev "$GPU")/windows")" ok
	registers_owned "$VMCONF"
}

@test "vm lent, QEMU gone: released, the record removed" {
	vm_up lend.done:1:crash
	write_crashes "$GPU" vm:nodeB/vm1 lend.done
	win=$(stored_windows "$GPU")
	guest stop
	restart
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower" "$VMD/state"
	assert_output "$(printf 'available\n\ndisconnected')"
	run stored "$GPU"
	assert_output ""
	grep -q "lend of $GPU to vm:nodeB/vm1 released: the vm is not connected" "$TMP/lendfs.log"
	assert_probe "$TMP/run" "$win" fault
	registers_owned "$VMCONF"
}

@test "vm lending, device in the guest: removed from the guest, the record dropped" {
	vm_up vm.plug.done:1:crash
	write_crashes "$GPU" vm:nodeB/vm1 vm.plug.done
	run stored "$GPU"
	assert_output "lending vm:nodeB/vm1"
	[ "$(pci_count)" -eq 2 ]
	win=$(stored_windows "$GPU")
	assert_probe "$TMP/run" "$win" ok
	restart # the guest does not acknowledge in time (1.5 s): pending
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower"
	assert_output "$(printf 'available\n')"
	run stored "$GPU"
	assert_output ""
	grep -q "$GPU removed from vm:nodeB/vm1 after an interrupted lending" "$TMP/lendfs.log"
	grep -q "unacknowledged lend of $GPU to vm:nodeB/vm1 rolled back" "$TMP/lendfs.log"
	# QEMU asked the guest to eject slots 2 and 3 (the ACPI hot-plug
	# "down" bitmap of bus 0, what the guest's OS reads), and the guest
	# does
	guest hmp 'o /w 0xae10 0'
	run guest hmp 'i /w 0xae04'
	assert_output --partial "= 0x0000000c"
	run guest eject-pending
	assert_output "2 3"
	eventually 5 pci_gone
	assert_probe "$TMP/run" "$win" fault
	registers_owned "$VMCONF"
}

@test "vm returning, after the guest acknowledged: the return is finished" {
	vm_up return.stored:1:crash
	lend "$GPU" vm:nodeB/vm1
	win=$(cat "$(dev "$GPU")/windows")
	(sleep 0.2; guest_eject_slots 2 3) &
	write_crashes "$GPU" "" return.stored
	wait $!
	run stored "$GPU"
	assert_output "returning vm:nodeB/vm1"
	pci_gone
	restart
	run cat "$(dev "$GPU")/state" "$(dev "$GPU")/borrower"
	assert_output "$(printf 'available\n')"
	run stored "$GPU"
	assert_output ""
	grep -q "interrupted return of $GPU from vm:nodeB/vm1 finished" "$TMP/lendfs.log"
	pci_gone
	assert_probe "$TMP/run" "$win" fault
	registers_owned "$VMCONF"
}

@test "vm return interrupted before the hot-remove: still lent, returns again" {
	vm_up vm.unplug:1:crash
	lend "$GPU" vm:nodeB/vm1
	write_crashes "$GPU" "" vm.unplug
	run stored "$GPU"
	assert_output "lent vm:nodeB/vm1"
	restart
	run cat "$(dev "$GPU")/state"
	assert_output lent
	[ "$(pci_count)" -eq 2 ]
	(sleep 0.2; guest_eject_slots 2 3) &
	echo >"$(dev "$GPU")/borrower"
	wait $!
	pci_gone
	run stored "$GPU"
	assert_output ""
	registers_owned "$VMCONF"
}
