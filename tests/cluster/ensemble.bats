#!/usr/bin/env bats
# Distributed mode on a 3-node ZooKeeper ensemble (issue 7), run by
# `make check-cluster`: kill -9 the leader during a stream of lends and
# returns.  No acknowledged request is lost, no device is lent twice, and
# writes resume once a new leader is elected.

load ../bats/helpers
load ../bats/cluster_helpers

setup_file() {
	zk_start 3
}

teardown_file() {
	zk_stop
}

teardown() {
	cluster_down
}

# stream N: N requests on nodeC's mount, round robin over the devices,
# each lending or returning; one line per request: "T_MS DEV VALUE RC".
stream() {
	local n="$1" i=0 dev value
	local devs=("${!TO[@]}")
	declare -A lent=()
	while [ "$i" -lt "$n" ]; do
		dev=${devs[$((i % ${#devs[@]}))]}
		if [ -n "${lent[$dev]:-}" ]; then value=""; else value=${TO[$dev]}; fi
		if echo "$value" >"$(cdev nodeC "$dev")/borrower" 2>/dev/null; then
			echo "$(date +%s%3N) $dev ${value:--} 0"
			if [ -n "$value" ]; then lent[$dev]=1; else unset "lent[$dev]"; fi
		else
			echo "$(date +%s%3N) $dev ${value:--} 1"
		fi
		i=$((i + 1))
	done
}

@test "kill -9 of the ZooKeeper leader during a stream of lends" {
	# device -> the borrower the stream lends it to (stream() sees it)
	declare -A TO=(
		[nodeA:0000:65:00.0]=nodeB
		[nodeB:0000:17:00.0]=nodeC
		[nodeB:0000:65:00.0]=nodeA
		[nodeC:0000:5e:00.0]=nodeA
	)
	cluster_up nodeA nodeB nodeC
	stream 200 >"$CTMP/stream" &
	local spid=$!
	eventually 60 bash -c "[ \$(wc -l <'$CTMP/stream') -ge 40 ]"
	leader=$("$ZKSH" leader "$ZKDIR/zk")
	kill_ms=$(date +%s%3N)
	"$ZKSH" kill "$ZKDIR/zk" "$leader"
	wait "$spid"
	echo "# leader node$leader killed at $kill_ms" >&3

	# writes resumed: requests after the kill succeeded
	run awk -v k="$kill_ms" '$1 > k && $4 == 0 { n++ } END { print n + 0 }' "$CTMP/stream"
	[ "$output" -gt 20 ]
	# how long writes failed (reported, not asserted: it is timing)
	awk -v k="$kill_ms" '
		$1 > k && $4 != 0 { if (!f) f = $1; l = $1; n++ }
		$1 > k && p && $1 - p > gap { gap = $1 - p }
		$1 > k { m++ } $1 <= k { b++ } { p = $1 }
		END { printf "# %d requests before, %d after the kill; %d failed, over %d ms; longest stall %d ms\n", b, m, n, n ? l - f : 0, gap }' \
		"$CTMP/stream" >&3

	# no acknowledged request lost: each device is as its last acknowledged
	# request left it (a failed one was rolled back), on every mount
	for dev in "${!TO[@]}"; do
		want=$(awk -v d="$dev" '$2 == d && $4 == 0 { v = $3 } END { print v }' "$CTMP/stream")
		[ "$want" = - ] && want=""
		for h in nodeA nodeB nodeC; do
			if [ -n "$want" ]; then
				eventually 10 state_is $h "$dev" lent "$want"
			else
				eventually 10 state_is $h "$dev" available ""
			fi
		done
	done
	# no device lent twice, no window reserved twice
	run "$LENDFS" --check -c "$ZKCONF" --store "zk://$ZK$CHROOT"
	assert_success
	"$ZKSH" restart "$ZKDIR/zk" "$leader" >/dev/null
}
