#!/bin/bash
# crash-loop.sh ITERATIONS: kill -9 lendfs at random moments while lends
# and returns run, restart it on the same state, and check after each
# restart that every acknowledged request survived, nothing is lent twice,
# the windows of every lend still move bytes, and `lendfs --check` passes.
#
# Env: LENDFS_BUILD (default build).  Prints a summary line:
#   crash-loop: N iterations, A acknowledged requests, lost 0, leaked windows 0
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${LENDFS_BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
LENDFS="$BUILD/lendfs"
DMA="$BUILD/lendfs-dma"
CONF="$ROOT/conf/demo.ini"
N="${1:-50}"

TMP="$(mktemp -d)"
MNT="$TMP/mnt"
mkdir -p "$MNT" "$TMP/log"
PID=
cleanup() {
	[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
	fusermount3 -uz "$MNT" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

# Devices and the borrowers each one cycles through.
DEVS=(nodeA:0000:65:00.0 nodeB:0000:17:00.0 nodeC:0000:5e:00.0 nodeD:0000:3b:00.0)
BORROWERS=("nodeB nodeC" "nodeA nodeD" "nodeB nodeD" "nodeA nodeB")

die() {
	echo "crash-loop: iteration $iter: $*" >&2
	echo "--- daemon log:" >&2
	tail -20 "$TMP/lendfs.log" >&2
	exit 1
}

start() {
	"$LENDFS" -f -c "$CONF" --state "$TMP/state.db" --run-dir "$TMP/run" \
		"$MNT" </dev/null >/dev/null 2>>"$TMP/lendfs.log" &
	PID=$!
	for _ in $(seq 100); do
		[ -e "$MNT/version" ] && return 0
		kill -0 "$PID" 2>/dev/null || die "daemon exited at start"
		sleep 0.05
	done
	die "no mount within 5 s"
}

# writer K: cycles its device through lend/return, logging each request
# as "TRY v", then "ACK v" or "ERR v" (v = borrower, "" for a return).
writer() {
	local k=$1 dev=${DEVS[$1]} log="$TMP/log/$1"
	local -a b=(${BORROWERS[$1]})
	local i=0 v
	while :; do
		case $((i % 4)) in
		0) v=${b[0]} ;; 2) v=${b[1]} ;; *) v= ;;
		esac
		echo "TRY $v" >>"$log"
		if echo "$v" >"$MNT/devices/$dev/borrower" 2>/dev/null; then
			echo "ACK $v" >>"$log"
		else
			# the daemon is gone (or refused): this request is the last
			echo "ERR $v" >>"$log"
			return
		fi
		i=$((i + 1))
	done
}

acked=0
for iter in $(seq "$N"); do
	rm -f "$TMP"/log/*
	start
	# start each device from what the store says, as the writer expects
	for k in "${!DEVS[@]}"; do
		echo >"$MNT/devices/${DEVS[$k]}/borrower" 2>/dev/null
	done
	wpids=()
	for k in "${!DEVS[@]}"; do
		writer "$k" &
		wpids+=($!)
	done
	sleep "0.$(printf '%03d' $((RANDOM % 400 + 20)))"
	kill -KILL "$PID"
	wait "$PID" 2>/dev/null
	PID=
	kill "${wpids[@]}" 2>/dev/null
	wait "${wpids[@]}" 2>/dev/null
	fusermount3 -uz "$MNT" 2>/dev/null

	start
	for k in "${!DEVS[@]}"; do
		dev=${DEVS[$k]} log="$TMP/log/$k"
		[ -s "$log" ] || continue
		acked=$((acked + $(grep -c '^ACK' "$log")))
		# the last acknowledged value, and the one in flight (if any)
		last_ack=$(grep '^ACK' "$log" | tail -1 | cut -c5-)
		last_try=$(grep '^TRY' "$log" | tail -1 | cut -c5-)
		last_line=$(tail -1 "$log")
		got=$(cat "$MNT/devices/$dev/borrower")
		state=$(cat "$MNT/devices/$dev/state")
		if [ "${last_line:0:3}" = ACK ]; then
			[ "$got" = "$last_ack" ] ||
				die "$dev: acknowledged '$last_ack' but found '$got' ($state)"
		else
			[ "$got" = "$last_ack" ] || [ "$got" = "$last_try" ] ||
				die "$dev: found '$got', neither acknowledged '$last_ack' nor in-flight '$last_try'"
		fi
		case "$state" in
		lent) [ -n "$got" ] || die "$dev: lent without borrower" ;;
		available) [ -z "$got" ] || die "$dev: available with borrower $got" ;;
		*) die "$dev: state $state after recovery" ;;
		esac
		# a restored lend still moves bytes: borrower CPU -> BAR 0
		if [ "$state" = lent ]; then
			addr=$(awk '$1=="lut" && $2=="'"$got"'" && $NF=="bar0" {print $5}' \
				"$MNT/devices/$dev/windows")
			[ -n "$addr" ] || die "$dev: no bar0 window on $got"
			"$DMA" -r "$TMP/run" cpu-write "$got" "$addr" "it$iter" >/dev/null ||
				die "$dev: lendfs-dma cannot write through the restored lend"
			got_bytes=$(dd if="$TMP/run/devices/$dev/bar0" bs=1 count=${#iter} skip=2 2>/dev/null)
			[ "$got_bytes" = "$iter" ] ||
				die "$dev: bytes did not reach the BAR (read '$got_bytes' at 0x$addr" \
					"on $got; windows: $(cat "$MNT/devices/$dev/windows"))"
		fi
	done
	# nothing lent twice, windows consistent
	[ "$(wc -l <"$MNT/lends")" -le "${#DEVS[@]}" ] || die "too many lends"
	out=$("$LENDFS" --check -c "$CONF" --state "$TMP/state.db" 2>&1) ||
		die "lendfs --check: $out"
	# return everything: no window may stay in use afterwards
	for k in "${!DEVS[@]}"; do
		echo >"$MNT/devices/${DEVS[$k]}/borrower" || die "return failed"
	done
	used=$(awk '/^lendfs_lut_entries_used|^lendfs_dma_windows_used/ {s += $2} END {print s + 0}' \
		"$MNT/metrics")
	[ "$used" -eq 0 ] || die "$used windows leaked"
	fusermount3 -u "$MNT" || die "unmount failed"
	wait "$PID" || die "daemon exited with $?"
	PID=
done
echo "crash-loop: $N iterations, $acked acknowledged requests, lost 0, leaked windows 0"
