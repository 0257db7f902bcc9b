#!/usr/bin/env bats
# Plans (SPEC section 11, docs/ABI/devices-ID-plans-HOST): reading
# devices/ID/plans/HOST says what writing HOST to the device's borrower
# would do now, without changing or reserving anything.  Each error plan
# is compared, byte for byte, with the last_error the write then leaves,
# and the write's errno is the plan's; an ok plan's windows are the
# windows the lend then takes.

load helpers

T4=nodeB:0000:65:00.0	# Tesla T4 on nodeB: 6 LUT entries on nodeD

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

plan() {
	cat "$(dev "$1")/plans/$2"
}

# write_errno ID VALUE: one write of VALUE to ID's borrower; prints the
# errno name write(2) failed with, or "ok".
write_errno() {
	python3 - "$(dev "$1")/borrower" "$2" <<'EOF'
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

# assert_plan_is_write ID HOST ERRNO: the plan's first line is "ERRNO: ...",
# the write of HOST then fails with ERRNO, and last_error is exactly the
# plan's first line.
assert_plan_is_write() {
	local first
	first="$(plan "$1" "$2" | head -n 1)"
	assert_regex "$first" "^$3: .+"
	run write_errno "$1" "$2"
	assert_output "$3"
	run cat "$(dev "$1")/last_error"
	assert_output "$first"
}

# metric NAME HOST: its value for HOST's adapter.
metric() {
	awk -v m="$1{host=\"$2\"," 'index($0, m) == 1 { print $NF }' "$MNT/metrics"
}

# The windows of ID as a plan counts them: "lut_entries H/ntb0 N" for each
# host H of the plan's lut_entries lines, then dma_windows, iommu_mappings.
windows_as_plan() {
	local id="$1" planned="$2" h
	for h in $(awk '$1 == "lut_entries" { sub(/\/.*/, "", $2); print $2 }' <<<"$planned"); do
		awk -v h="$h" '$1 == "lut" && $2 == h { n += $4 }
			END { printf "lut_entries %s/ntb0 %d\n", h, n }' "$(dev "$id")/windows"
	done
	echo "dma_windows $(grep -c '^dma ' "$(dev "$id")/windows")"
	echo "iommu_mappings $(grep -c '^iommu ' "$(dev "$id")/windows")"
}

@test "plans/ has one read-only file per host but the lender" {
	run ls "$(dev $GPU)/plans"
	assert_output "$(printf 'nodeB\nnodeC\nnodeD')"
	run ls "$(dev $NIC)/plans"
	assert_output "$(printf 'nodeA\nnodeC\nnodeD')"
	run stat -c %a "$(dev $GPU)/plans/nodeB"
	assert_output 444
	run cat "$(dev $GPU)/plans/nodeA"
	assert_failure
	assert_output --partial "No such file or directory"
	run cat "$(dev $GPU)/plans/nodeZ"
	assert_failure
	run bash -c "echo nodeB > '$(dev $GPU)/plans/nodeB'"
	assert_failure
	assert_output --partial "Permission denied"
	run cat "$(dev $GPU)/state"
	assert_output available
}

@test "an ok plan: the write then succeeds and takes the windows the plan listed" {
	local planned
	planned="$(plan $GPU nodeD)"
	run echo "$planned"
	assert_line --index 0 ok
	assert_line --index 1 "route nodeA -> nodeC -> sw0 -> nodeD"
	assert_line "lut_entries nodeA/ntb0 0"
	assert_line "lut_entries nodeD/ntb0 10"
	assert_line "lut_free nodeD/ntb0 6"
	run write_errno $GPU nodeD
	assert_output ok
	# the same counts in the lend's windows, the same latency in its path
	run windows_as_plan $GPU "$planned"
	assert_output "$(grep -E '^(lut_entries|dma_windows|iommu_mappings) ' <<<"$planned")"
	run grep '^latency_ns ' "$(dev $GPU)/path"
	assert_output "$(grep '^latency_ns ' <<<"$planned")"
	# what each adapter has left is what the plan said it would have
	local line h n
	while read -r _ h n; do
		h=${h%/*}
		assert_equal "$(($(metric lendfs_lut_entries "$h") - $(metric lendfs_lut_entries_used "$h")))" "$n"
	done < <(grep '^lut_free ' <<<"$planned")
	# and writing it again is a no-op the plan knows
	run plan $GPU nodeD
	assert_line --index 0 ok
	assert_line --index 1 "noop already lent to nodeD"
	assert_line "lut_free nodeD/ntb0 6"
}

@test "EHOSTDOWN: an offline borrower, then an offline lender, as the write says" {
	echo offline >"$MNT/hosts/nodeC/state"
	run plan $NIC nodeC
	assert_output "EHOSTDOWN: borrower nodeC is offline"
	assert_plan_is_write $NIC nodeC EHOSTDOWN
	echo offline >"$MNT/hosts/nodeA/state"
	run plan $GPU nodeB
	assert_output "EHOSTDOWN: lender nodeA is offline"
	assert_plan_is_write $GPU nodeB EHOSTDOWN
}

@test "EBUSY: a lent device, as the write says" {
	lend $GPU nodeB
	run plan $GPU nodeC
	assert_output "EBUSY: lent to nodeB; return it first"
	assert_plan_is_write $GPU nodeC EBUSY
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
}

@test "ENOSPC: a full adapter, as the write says, with the route it tried" {
	# nodeD has 16 LUT entries: the GPU takes 10 and the T4 6
	run plan $NIC nodeD
	assert_line --index 0 ok
	lend $GPU nodeD
	lend $T4 nodeD
	# the same file read again: computed now, not the earlier ok
	run plan $NIC nodeD
	assert_line --index 0 "ENOSPC: no free NTB translation entry on adapter nodeD/ntb0: need 4 contiguous, 0 free of 16"
	assert_line --index 1 "route nodeB -> nodeC -> sw0 -> nodeD"
	assert_line --index 2 --regexp '^latency_ns [0-9]+$'
	assert_equal "${#lines[@]}" 3
	assert_plan_is_write $NIC nodeD ENOSPC
}

@test "EPERM: a device the policy denies, as the write says" {
	run plan $ROOTFS nodeB
	assert_output "EPERM: policy refuses to lend $ROOTFS: listed in [policy] deny"
	assert_plan_is_write $ROOTFS nodeB EPERM
}

@test "one open descriptor reads a new plan at offset 0 after a change" {
	run python3 - "$(dev $GPU)/plans/nodeC" "$(dev $GPU)/borrower" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.pread(fd, 4096, 0).decode().splitlines()[0])
w = os.open(sys.argv[2], os.O_WRONLY)
os.write(w, b"nodeB\n")
os.close(w)
print(os.pread(fd, 4096, 0).decode().splitlines()[0])
os.close(fd)
EOF
	assert_line --index 0 ok
	assert_line --index 1 "EBUSY: lent to nodeB; return it first"
	# and stat(2) has the new size at once
	run stat -c %s "$(dev $GPU)/plans/nodeC"
	assert_output "$(plan $GPU nodeC | wc -c)"
}

@test "1,000 plan reads reserve nothing, change neither events nor last_error" {
	local before_windows before_events before_used i
	# a failed write first, so that last_error has something to keep
	run write_errno $GPU nodeZ
	assert_output EINVAL
	run cat "$(dev $GPU)/last_error"
	local before_error="$output"
	# the windows a lend of the GPU to nodeD takes, then given back
	lend $GPU nodeD
	before_windows="$(cat "$(dev $GPU)/windows")"
	lend $GPU ""
	# nodeD keeps 6 of its 16 entries free: the GPU's plan for nodeD
	# reserves on nodeC, then fails on nodeD and releases
	lend $T4 nodeD
	lend $NIC nodeD
	before_events="$(cat "$MNT/events")"
	before_used="$(grep -E '^lendfs_(lut_entries|dma_windows)_used' "$MNT/metrics")"
	for ((i = 0; i < 250; i++)); do
		plan $GPU nodeD >/dev/null	# ENOSPC, after reserving
		plan $GPU nodeB >/dev/null	# ok: reserves, counts, releases
		plan $ROOTFS nodeD >/dev/null	# EPERM
		plan $T4 nodeC >/dev/null	# EBUSY
	done
	run plan $GPU nodeD
	assert_line --index 0 --partial "ENOSPC: no free NTB translation entry on adapter nodeD/ntb0"
	run plan $GPU nodeB
	assert_line --index 0 ok
	assert_line "lut_free nodeB/ntb0 22"
	# nothing held: every adapter has what the lends hold, no more
	run grep -E '^lendfs_(lut_entries|dma_windows)_used' "$MNT/metrics"
	assert_output "$before_used"
	run cat "$(dev $GPU)/last_error"
	assert_output "$before_error"
	run cat "$MNT/events"
	assert_output "$before_events"
	run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db" --run-dir "$TMP/run"
	assert_success
	# and the GPU's lend still gets the very windows it got before
	lend $T4 ""
	lend $NIC ""
	lend $GPU nodeD
	run cat "$(dev $GPU)/windows"
	assert_output "$before_windows"
}
