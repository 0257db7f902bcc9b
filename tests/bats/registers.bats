#!/usr/bin/env bats
# The sim fabric's registers against the stored lends (issue 17):
# `lendfs --check --run-dir DIR` reads the register files themselves (LUT
# entries, DMA windows, IOMMU mappings), not the engine's counters.  Every
# test that mounts lendfs runs this check in its teardown
# (registers_check in helpers.bash); here it is shown to fail.

load helpers

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

check_regs() {
	"$LENDFS" --check -c "$DEMO" --state "$TMP/state.db" --run-dir "$TMP/run"
}

stop_daemon() {
	fusermount3 -u "$MNT"
	lendfs_wait_exit
}

@test "registers match the stored lends, P2P links included, and after returns" {
	lend "$GPU" nodeC
	lend "$NIC" nodeC # a peer of the GPU: P2P windows, derived, not stored
	run check_regs
	assert_success
	assert_output ""
	lend "$GPU" ""
	lend "$NIC" ""
	run check_regs
	assert_success
	assert_output ""
}

@test "a translation that no stored lend owns is reported" {
	lend "$GPU" nodeB
	# the store forgets the lend; the hardware still holds its windows
	sqlite3 "$TMP/state.db" "DELETE FROM lends WHERE device = '$GPU';"
	REGISTERS_CHECK=0
	run check_regs
	assert_failure 1
	assert_line --regexp "^nodeB: lut entry 0 -> nodeA 0x[0-9a-f]+ \(0x[0-9a-f]+ bytes\) \(into a BAR of $GPU\) is programmed, but no stored lend owns it$"
	assert_line --regexp "^nodeA: dma window 0 -> nodeB 0x0 .* \(into the RAM of nodeB\) is programmed, but no stored lend owns it$"
}

@test "a stored window that is not programmed is reported" {
	lend "$GPU" nodeB
	stop_daemon
	# the same store against hardware that was powered on empty
	"$LENDFS" -f -c "$DEMO" --state none --run-dir "$TMP/run2" "$MNT" \
		</dev/null >>"$TMP/lendfs.out" 2>>"$TMP/lendfs.log" 3>&- &
	LENDFS_PID=$!
	for _ in $(seq 100); do [ -e "$MNT/version" ] && break; sleep 0.1; done
	stop_daemon
	run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db" --run-dir "$TMP/run2"
	assert_failure 1
	assert_line --regexp "^$GPU: lut entry 0 on nodeB \(0x200000000000 -> nodeA 0x[0-9a-f]+\) is stored but not programmed$"
	assert_line --regexp "^$GPU: dma slot 0 on nodeA .* is stored but not programmed$"
}

@test "a register that differs from its stored window is reported" {
	lend "$GPU" nodeB
	stop_daemon
	# move the stored bar0 window's target by one window
	python3 - "$TMP/state.db" "$GPU" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(w,) = db.execute("SELECT windows FROM lends WHERE device = ?", (sys.argv[2],)).fetchone()
lines = w.split("\n")
for i, l in enumerate(lines):
    f = l.split()
    if f and f[0] == "lut" and f[-1] == "bar0":
        f[6] = hex(int(f[6], 16) + 0x1000)
        lines[i] = " ".join(f)
db.execute("UPDATE lends SET windows = ? WHERE device = ?", ("\n".join(lines), sys.argv[2]))
db.commit()
PY
	REGISTERS_CHECK=0
	run check_regs
	assert_failure 1
	assert_line --regexp "^$GPU: nodeB: lut entry 0 -> nodeA .* but its stored window says -> nodeA 0x[0-9a-f]+ "
}

@test "lendfs-dma regs lists the programmed translations and where they lead" {
	lend "$GPU" nodeB
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" regs nodeB
	assert_success
	assert_line --regexp "^lut nodeB 0 1 0x200000000000 0x[0-9a-f]+ 0x[0-9a-f]+ nodeA - - bar $GPU$"
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" regs nodeA
	assert_success
	assert_line --regexp "^dma nodeA 0 1 0x280000000000 0x[0-9a-f]+ 0x0 nodeB - - ram nodeB$"
	lend "$GPU" ""
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" regs
	assert_success
	assert_output ""
	run "$BUILD_DIR/lendfs-dma" -r "$TMP/run" regs nodeZ
	assert_failure 1
	assert_output "lendfs-dma: regs: no host nodeZ in the sim fabric"
}

@test "--check --run-dir on a directory that is no sim fabric fails with the reason" {
	run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db" --run-dir "$TMP"
	assert_failure 1
	assert_output --partial "is not the run directory of a sim fabric"
}
