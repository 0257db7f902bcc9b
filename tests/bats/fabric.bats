#!/usr/bin/env bats
# The fabric engine (issue 4) through the mount: compositions with P2P
# routes for IOMMU on and off, bytes moved with lendfs-dma, topology.dot,
# and rollback at every fault-injection point.

load helpers

NVME_C=nodeC:0000:5e:00.0	# nodeC, IOMMU off
GPU_D=nodeD:0000:3b:00.0	# nodeD, IOMMU on

setup() {
	[ -n "${NO_MOUNT:-}" ] || lendfs_mount
}

teardown() {
	lendfs_unmount
}

DMA() {
	"$BUILD_DIR/lendfs-dma" -r "$TMP/run" "$@"
}

window() { # DEV KIND HOST TAG -> the window's local address
	awk -v k="$2" -v h="$3" -v t="$4" '$1 == k && $2 == h && $NF == t { print $5 }' \
		"$(dev "$1")/windows"
}

@test "a 3-host composition: P2P through the root complex when the IOMMU is on" {
	lend "$GPU" nodeD	# nodeA, IOMMU on
	lend "$NIC" nodeD	# nodeB, IOMMU off
	lend "$NVME_C" nodeD	# nodeC, IOMMU off
	run ls "$(dev "$GPU")/peers"
	assert_output "$(printf '%s\n' "$NIC" "$NVME_C" | sort)"

	# from nodeA (IOMMU on): through nodeA's root complex, then nodeA -> nodeB
	run cat "$(dev "$GPU")/peers/$NIC"
	assert_line --index 0 "via root-complex nodeA"
	assert_line "nodeA -> nodeB latency_ns 370 ntb"
	assert_line "root_complex_ns 150"
	assert_line "hops 1"
	assert_line "latency_ns 520"
	# from nodeB (IOMMU off): peer-to-peer over the shortest path, no detour
	run cat "$(dev "$NIC")/peers/$GPU"
	refute_line --partial "via root-complex"
	assert_line "nodeB -> nodeA latency_ns 370 ntb"
	assert_line "latency_ns 370"
	# nodeB -> nodeC is one hop; nodeA -> nodeC is the 40 ns direct link
	run cat "$(dev "$NIC")/peers/$NVME_C"
	assert_line "nodeB -> nodeC latency_ns 370 ntb"
	run cat "$(dev "$GPU")/peers/$NVME_C"
	assert_line "nodeA -> nodeC latency_ns 400 ntb"
	assert_line "latency_ns 550"

	# the borrower's path to each device
	run cat "$(dev "$GPU")/path"
	assert_line --index 0 "nodeA -> nodeC latency_ns 400 ntb"
	assert_line "nodeC -> sw0 latency_ns 105"
	assert_line "sw0 -> nodeD latency_ns 365 ntb"
	assert_line "latency_ns 870"

	# returning one member removes it from the others' peers
	echo >"$(dev "$NIC")/borrower"
	run ls "$(dev "$GPU")/peers"
	assert_output "$NVME_C"
	echo >"$(dev "$GPU")/borrower"
	echo >"$(dev "$NVME_C")/borrower"
}

@test "lendfs-dma: borrower CPU writes land in the lender's BAR, and back" {
	lend "$GPU" nodeB
	addr=$(window "$GPU" lut nodeB bar1)
	[ -n "$addr" ]
	# 16 MiB into bar1 (the third 8 MiB entry of its window)
	run DMA cpu-write nodeB $((addr + 16 * 1024 * 1024 + 5)) "through-the-ntb"
	assert_success
	run dd if="$TMP/run/devices/$GPU/bar1" bs=1 skip=$((16 * 1024 * 1024 + 5)) count=15 status=none
	assert_output "through-the-ntb"
	# the device writes its BAR; the borrower reads it
	printf 'from-device' | dd of="$TMP/run/devices/$GPU/bar1" bs=1 seek=64 conv=notrunc status=none
	run DMA cpu-read nodeB $((addr + 64)) 11
	assert_output "from-device"
}

@test "lendfs-dma: device DMA reaches the borrower's RAM through the lender IOMMU" {
	lend "$GPU" nodeB	# nodeA's IOMMU is on; nodeB has two RAM ranges
	run DMA dma-write "$GPU" 0x100000100 "dma-into-ram1"
	assert_success
	run DMA cpu-read nodeB 0x100000100 13
	assert_output "dma-into-ram1"
	run dd if="$TMP/run/ram/nodeB" bs=1 skip=$((0x100000100)) count=13 status=none
	assert_output "dma-into-ram1"
	# nodeB has no RAM at 0x90000000: the IOMMU refuses and counts it
	run DMA dma-write "$GPU" 0x90000000 "x"
	assert_failure
	assert_output --partial "iommu fault"
	run grep '^lendfs_iommu_faults_total{host="nodeA"}' "$MNT/metrics"
	assert_output 'lendfs_iommu_faults_total{host="nodeA"} 1'
	# after the return nothing is mapped
	echo >"$(dev "$GPU")/borrower"
	run DMA dma-write "$GPU" 0x100000100 "late"
	assert_failure
}

@test "IOMMU off: DMA goes through the lender-side window address" {
	lend "$NIC" nodeC	# nodeB, IOMMU off
	addr=$(window "$NIC" dma nodeB ram0)
	run DMA dma-write "$NIC" $((addr + 32)) "no-iommu"
	assert_success
	run DMA cpu-read nodeC 32 8
	assert_output "no-iommu"
}

@test "ENOSPC names the adapter and the counts, and leaves nothing behind" {
	# nodeD has 16 LUT entries: the GPU takes 10, the T4 6 more is 16,
	# the NIC's 4 no longer fit
	lend "$GPU" nodeD
	lend nodeB:0000:65:00.0 nodeD
	assert_lend_fails "$NIC" nodeD ENOSPC "No space left on device"
	run cat "$(dev "$NIC")/last_error"
	assert_output --partial "adapter nodeD/ntb0: need 4 contiguous, 0 free of 16"
	run grep '^lendfs_lut_entries_used{host="nodeD"' "$MNT/metrics"
	assert_output --partial "} 16"
}

@test "topology.dot renders with Graphviz and shows active lends" {
	lend "$GPU" nodeB
	run grep -c 'color="#d62728"' "$MNT/fabric/topology.dot"
	assert_output 1
	run dot -Tsvg -o "$TMP/topo.svg" "$MNT/fabric/topology.dot"
	assert_success
	assert_output ""
	run grep -c "<svg" "$TMP/topo.svg"
	assert_output 1
}

@test "a host going down reroutes a lend when another route exists" {
	lendfs_unmount
	lendfs_mount "$CONF/ring.ini"
	D=w:0000:01:00.0
	lend $D y
	run cat "$(dev $D)/path"
	assert_line --index 0 "w -> x latency_ns 370 ntb"
	echo offline >"$MNT/hosts/x/state"
	run cat "$(dev $D)/state"
	assert_output lent
	run cat "$(dev $D)/path"
	assert_line --index 0 "w -> z latency_ns 410 ntb"
	assert_line --index 1 "z -> y latency_ns 410 ntb"
	run grep -c "rerouted" "$TMP/lendfs.log"
	assert_output 1
	# no window is left on the host that went down
	run awk '$2 == "x"' "$(dev $D)/windows"
	assert_output ""
	echo online >"$MNT/hosts/x/state"
}

@test "a lend whose route breaks with no way around fails with the reason" {
	lend "$NIC" nodeD	# nodeB -> nodeC -> sw0 -> nodeD: nodeC is the only way
	echo offline >"$MNT/hosts/nodeC/state"
	run cat "$(dev "$NIC")/state"
	assert_output failed
	run cat "$(dev "$NIC")/last_error"
	assert_output "EHOSTDOWN: route lost: host nodeC went offline"
	run awk '/^lendfs_(lut_entries|dma_windows)_used/ { s += $2 } END { print s }' "$MNT/metrics"
	assert_output 0
	echo online >"$MNT/hosts/nodeC/state"
	echo >"$(dev "$NIC")/borrower"
	run cat "$(dev "$NIC")/state"
	assert_output available
}

@test "rollback at every fault-injection point leaves every table as before" {
	lendfs_unmount
	# the sim resets at start: a lend to a host writes no intent (docs/STATE.md)
	for point in route ntb_alloc iommu_alloc ntb_map iommu_map lend_commit store_commit; do
		LENDFS_FAULT="$point:1" lendfs_mount
		run bash -c "echo nodeC > '$(dev "$GPU")/borrower'"
		assert_failure
		assert_output --partial "Input/output error"
		run cat "$(dev "$GPU")/last_error"
		assert_output --partial "injected fault at $point #1"
		run cat "$(dev "$GPU")/state"
		assert_output available
		run awk '/^lendfs_(lut_entries|dma_windows)_used/ { s += $2 } END { print s }' "$MNT/metrics"
		assert_output 0
		run cat "$MNT/lends"
		assert_output ""
		# the next request goes through
		lend "$GPU" nodeC
		echo >"$(dev "$GPU")/borrower"
		lendfs_unmount
	done
	for point in store_commit:2 ntb_unmap:1 iommu_unmap:1; do
		LENDFS_FAULT="$point" lendfs_mount
		lend "$GPU" nodeC
		before=$(cat "$(dev "$GPU")/windows")
		run bash -c "echo > '$(dev "$GPU")/borrower'"
		assert_failure
		run cat "$(dev "$GPU")/state"
		assert_output lent
		assert_equal "$(cat "$(dev "$GPU")/windows")" "$before"
		echo >"$(dev "$GPU")/borrower"
		run "$LENDFS" --check -c "$DEMO" --state "$TMP/state.db"
		assert_success
		lendfs_unmount
	done
}
