#!/usr/bin/env bats
# MOUNT/metrics: Prometheus text exposition format, checked by a strict
# parser (tests/tools/promcheck.py, and `promtool check metrics`: the
# prometheus package is in contrib/deps.sh), with values that follow the
# requests made.

load helpers

PROMCHECK="$ROOT/tests/tools/promcheck.py"

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

# snapshot: read MOUNT/metrics once; fails when it does not parse.
snapshot() {
	cat "$MNT/metrics" >"$TMP/metrics.txt"
	python3 "$PROMCHECK" --prefix lendfs_ --print "$TMP/metrics.txt" \
		>"$TMP/series.txt"
}

# metric SERIES: the value of SERIES (canonical form, labels sorted) in
# the last snapshot; fails when there is no such series.
metric() {
	awk -v s="$1" '$1 == s { print $2; found = 1 } END { exit !found }' \
		"$TMP/series.txt"
}

@test "a fresh mount's metrics parse strictly, with every family the SPEC names" {
	run python3 "$PROMCHECK" --prefix lendfs_ "$MNT/metrics"
	assert_success
	assert_output ""
	run grep -E '^# TYPE ' "$MNT/metrics"
	assert_line "# TYPE lendfs_lends_total counter"
	assert_line "# TYPE lendfs_request_failures_total counter"
	assert_line "# TYPE lendfs_active_lends gauge"
	assert_line "# TYPE lendfs_lut_entries gauge"
	assert_line "# TYPE lendfs_lut_entries_used gauge"
	assert_line "# TYPE lendfs_request_duration_seconds histogram"
	snapshot
	run metric lendfs_lends_total
	assert_output 0
	run metric 'lendfs_request_duration_seconds_bucket{le="+Inf"}'
	assert_output 0
	run metric 'lendfs_lut_entries{adapter="ntb0",host="nodeD"}'
	assert_output 16
}

@test "lends, returns and failures by errno are counted; the histogram adds up" {
	lend $GPU nodeB
	lend $NIC nodeC
	echo >"$(dev $GPU)/borrower"
	assert_lend_fails $NIC nodeD EBUSY "Device or resource busy"
	assert_lend_fails $GPU nodeZ EINVAL "Invalid argument"
	assert_lend_fails $ROOTFS nodeB EPERM "Operation not permitted"
	assert_lend_fails $ROOTFS nodeC EPERM "Operation not permitted"

	snapshot
	run metric lendfs_lends_total
	assert_output 2
	run metric lendfs_returns_total
	assert_output 1
	run metric 'lendfs_request_failures_total{errno="EBUSY"}'
	assert_output 1
	run metric 'lendfs_request_failures_total{errno="EINVAL"}'
	assert_output 1
	run metric 'lendfs_request_failures_total{errno="EPERM"}'
	assert_output 2
	run metric 'lendfs_request_failures_total{errno="ENOSPC"}'
	assert_failure # never happened: no series
	run metric lendfs_active_lends
	assert_output 1
	run metric 'lendfs_devices{state="lent"}'
	assert_output 1
	run metric 'lendfs_devices{state="available"}'
	assert_output 6
	# every request is one observation of the latency histogram
	run metric lendfs_request_duration_seconds_count
	assert_output 7
	run metric 'lendfs_request_duration_seconds_bucket{le="+Inf"}'
	assert_output 7
	run metric lendfs_request_duration_seconds_sum
	assert_output --regexp '^[0-9.e+-]+$'
	[ "$output" != 0 ]
}

@test "LUT usage per adapter matches the windows of the lends" {
	lend $NIC nodeC
	# windows fields: kind host first_entry entries ...
	local want
	want=$(awk '$1 == "lut" && $2 == "nodeC" { n += $4 } END { print n + 0 }' \
		"$(dev $NIC)/windows")
	[ "$want" -gt 0 ]
	snapshot
	run metric 'lendfs_lut_entries_used{adapter="ntb0",host="nodeC"}'
	assert_output "$want"
	run metric 'lendfs_lut_entries_used{adapter="ntb0",host="nodeA"}'
	assert_output 0
	# a second device for nodeC: its own windows, plus P2P entries
	lend nodeD:0000:3b:00.0 nodeC
	want=$(cat "$(dev $NIC)/windows" "$(dev nodeD:0000:3b:00.0)/windows" |
		awk '$1 == "lut" && $2 == "nodeC" { n += $4 } END { print n + 0 }')
	snapshot
	run metric 'lendfs_lut_entries_used{adapter="ntb0",host="nodeC"}'
	[ "$output" -ge "$want" ]
	echo >"$(dev $NIC)/borrower"
	echo >"$(dev nodeD:0000:3b:00.0)/borrower"
	snapshot
	run metric 'lendfs_lut_entries_used{adapter="ntb0",host="nodeC"}'
	assert_output 0
	run metric lendfs_active_lends
	assert_output 0
}

@test "offline hosts and IOMMU faults are exposed" {
	echo offline >"$MNT/hosts/nodeD/state"
	snapshot
	run metric 'lendfs_host_online{host="nodeD"}'
	assert_output 0
	run metric 'lendfs_host_online{host="nodeA"}'
	assert_output 1
	run metric 'lendfs_devices{state="offline"}'
	assert_output 1
	run metric 'lendfs_iommu_faults_total{host="nodeA"}'
	assert_output 0
}

@test "promtool check metrics accepts the file" {
	lend $GPU nodeB
	assert_lend_fails $GPU nodeC EBUSY "Device or resource busy"
	run promtool check metrics <"$MNT/metrics"
	assert_success
}

# bad TEXT MESSAGE: queue a case the checker must refute, saying MESSAGE.
# check_bad runs the checker once over every queued case.
bad() {
	NBAD=$((${NBAD:-0} + 1))
	mkdir -p "$TMP/bad"
	printf '%s\n' "$1" >"$TMP/bad/$NBAD.prom"
	printf '%s\n' "$2" >"$TMP/bad/$NBAD.want"
}

check_bad() {
	local i
	run python3 "$PROMCHECK" --prefix lendfs_ "$TMP"/bad/*.prom
	assert_failure 1
	for ((i = 1; i <= NBAD; i++)); do
		assert_line --partial "$TMP/bad/$i.prom:" # every case refuted
		grep -F "$TMP/bad/$i.prom:" <<<"$output" |
			grep -qF -- "$(cat "$TMP/bad/$i.want")" || {
			echo "case $i: expected '$(cat "$TMP/bad/$i.want")' in:" >&2
			cat "$TMP/bad/$i.prom" >&2
			grep -F "$TMP/bad/$i.prom:" <<<"$output" >&2
			return 1
		}
	done
}

H='# HELP lendfs_x_total Things.
# TYPE lendfs_x_total counter'
HIST='# HELP lendfs_d_seconds Durations.
# TYPE lendfs_d_seconds histogram'

@test "the checker is strict: it refutes each kind of malformed exposition" {
	# a valid input first, so the refutations below mean something
	run python3 "$PROMCHECK" --prefix lendfs_ <<<"$H
lendfs_x_total{errno=\"EBUSY\",host=\"a\\\"b\"} 3
$HIST
lendfs_d_seconds_bucket{le=\"0.1\"} 1
lendfs_d_seconds_bucket{le=\"+Inf\"} 2
lendfs_d_seconds_sum 0.3
lendfs_d_seconds_count 2"
	assert_success
	assert_output ""

	bad 'lendfs_x_total 1' 'before (or without) its TYPE line'
	bad '# TYPE lendfs_x_total counter
lendfs_x_total 1' 'before (or without) its HELP line'
	bad "lendfs_x_total 1
$H" 'before (or without) its TYPE line'
	bad '# HELP lendfs_x Things.
# TYPE lendfs_x counter
lendfs_x 1' 'does not end in _total'
	bad "$H
lendfs_x_total 1
lendfs_x_total 2" 'duplicate series lendfs_x_total'
	bad "$H
lendfs_x_total{a=\"1\",b=\"2\"} 1
lendfs_x_total{b=\"2\",a=\"1\"} 1" 'duplicate series'
	bad "$H
lendfs_x_total{a=\"1\",a=\"2\"} 1" "label 'a' given twice"
	bad "$H
lendfs_x_total{__a=\"1\"} 1" 'reserved'
	bad "$H
lendfs_x_total{1a=\"1\"} 1" 'malformed label name'
	bad "$H
lendfs_x_total{a=\"x\\ty\"} 1" 'bad escape'
	bad "$H
lendfs_x_total{a=\"x} 1" 'unterminated value'
	bad "$H
lendfs_x_total{a=1} 1" "expected =\""
	bad "$H
lendfs_x_total -1" 'counter lendfs_x_total has value -1'
	bad "$H
lendfs_x_total one" 'not a number'
	bad "$H
lendfs_x_total  1" "expected 'value [timestamp]'"
	bad '# HELP 0lendfs_x Things.' 'malformed metric name'
	bad '# HELP other_total Things.
# TYPE other_total counter' 'does not start with lendfs_'
	bad '# HELP lendfs_g A.
# TYPE lendfs_g gauge
# TYPE lendfs_g gauge' 'second TYPE line'
	bad '# HELP lendfs_g A.
# TYPE lendfs_g gauges' "unknown TYPE 'gauges'"
	bad '# HELP lendfs_g
# TYPE lendfs_g gauge' 'empty HELP'
	bad "$H
# HELP lendfs_g A.
# TYPE lendfs_g gauge
lendfs_g 1
lendfs_x_total 1" "after its family's block ended"
	bad "$HIST
lendfs_d_seconds_bucket{le=\"0.1\"} 3
lendfs_d_seconds_bucket{le=\"1\"} 2
lendfs_d_seconds_bucket{le=\"+Inf\"} 3
lendfs_d_seconds_sum 1
lendfs_d_seconds_count 3" 'not cumulative'
	bad "$HIST
lendfs_d_seconds_bucket{le=\"0.1\"} 1
lendfs_d_seconds_bucket{le=\"+Inf\"} 2
lendfs_d_seconds_sum 1
lendfs_d_seconds_count 3" 'bucket 2 != _count 3'
	bad "$HIST
lendfs_d_seconds_bucket{le=\"0.1\"} 1
lendfs_d_seconds_sum 1
lendfs_d_seconds_count 1" 'no le="+Inf" bucket'
	bad "$HIST
lendfs_d_seconds_bucket{le=\"1\"} 1
lendfs_d_seconds_bucket{le=\"0.1\"} 1
lendfs_d_seconds_bucket{le=\"+Inf\"} 1
lendfs_d_seconds_sum 1
lendfs_d_seconds_count 1" 'not distinct and increasing'
	bad "$HIST
lendfs_d_seconds_bucket 1" 'without an le label'
	bad "$HIST
lendfs_d_seconds_bucket{le=\"+Inf\"} 1
lendfs_d_seconds_count 1" 'no _sum'
	check_bad
	run python3 "$PROMCHECK" < <(printf '%s' "$H")
	assert_failure
	assert_output --partial 'does not end with a newline'
}
