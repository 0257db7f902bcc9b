#!/bin/bash
# tests/bench/compo.sh BUILD - the composition rows of make bench (issue
# 19), also runnable alone (make bench-compo): a composition of 4 devices
# on 2 lenders lent to one borrower, against one device lent alone plus
# one fdatasync per extra lender, the target being at most 1.5 x that.
#
# One daemon (SQLite store on the build's disk, the sim fabric in tmpfs)
# serves tests/bench/genconf.sh 9 3: node0 and node2 lend two devices
# each to node1 (the composition), node0 a fifth one alone.
# tests/bench/compoloop lends and returns the composition, then the single
# device, then times one fdatasync of a small file beside the database,
# in turns; COMPO_ROUNDS rounds of COMPO_ITERS turns, the figure being the
# median round.  Daemon and loop share one CPU (BENCH_CPU), as the lend
# rows of run.sh do.  Prints the table rows on stdout.
set -euo pipefail

BUILD="${1:?usage: compo.sh BUILD}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bench"
LENDFS="$BUILD/lendfs"
COMPO_ROUNDS="${COMPO_ROUNDS:-11}"
COMPO_ITERS="${COMPO_ITERS:-20}"
BENCH_CPU="${BENCH_CPU:-$(($(nproc) - 1))}"
WORK="$BUILD/bench-compo"
SHM="$(mktemp -d /dev/shm/lendfs-compo.XXXXXX)"
MNT="$WORK/mnt"
PID=

log() { printf '%s\n' "$*" >&2; }
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}'; }
median() { sort -g | awk '{v[NR] = $1} END {
	if (NR == 0) { print "nan"; exit }
	if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
us() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; }

cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	if [ -n "$PID" ]; then
		for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill "$PID" 2>/dev/null || true
	fi
	rm -rf "$SHM" "$WORK"
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$MNT"
"$ROOT/tests/bench/genconf.sh" 9 3 >"$WORK/compo.ini"
out=$("$BIN/mounttime" "$MNT/version" 60 "$LENDFS" -f -c "$WORK/compo.ini" \
	--state "$WORK/compo.db" --run-dir "$SHM/run" "$MNT" 2>"$WORK/lendfs.log" </dev/null)
PID=$(echo "$out" | field pid)
taskset -a -p -c "$BENCH_CPU" "$PID" >/dev/null 2>&1 || true

mkdir "$MNT/compositions/job"
printf '%s\n' node0:0000:00:00.0 node0:0000:00:00.1 node2:0000:00:00.0 \
	node2:0000:00:00.1 >"$WORK/list"
cat "$WORK/list" >"$MNT/compositions/job/devices"

log "bench: a composition of 4 devices on 2 lenders ($COMPO_ROUNDS rounds of $COMPO_ITERS, in turns with one lend and one fdatasync)"
cl=() cr=() dl=() dr=() fs=() fl=()
for _ in $(seq "$COMPO_ROUNDS"); do
	out=$(taskset -c "$BENCH_CPU" "$BIN/compoloop" -n "$COMPO_ITERS" -l 2 -s "$WORK" \
		"$MNT/compositions/job/borrower=node1" \
		"$MNT/devices/node0:0000:00:00.2/borrower=node1")
	cl+=("$(echo "$out" | field compo_lend_ns)")
	cr+=("$(echo "$out" | field compo_return_ns)")
	dl+=("$(echo "$out" | field lend_ns)")
	dr+=("$(echo "$out" | field return_ns)")
	fs+=("$(echo "$out" | field fdatasync_ns)")
	fl+=("$(echo "$out" | field floor_ns)")
done
# nothing left lent: the loop returned all of it
[ -z "$(cat "$MNT/lends")" ] || { log "bench: lends left behind"; exit 1; }
a=$(printf '%s\n' "${cl[@]}" | median)
b=$(printf '%s\n' "${fl[@]}" | median)
c=$(printf '%s\n' "${dl[@]}" | median)
e=$(printf '%s\n' "${fs[@]}" | median)
r=$(ratio "$a" "$b")
log "bench: composition lend $(us "$a") µs, floor $(us "$b") µs (lend $(us "$c") + fdatasync $(us "$e")): ratio $r (target ≤ 1.5)"
echo "| composition of 4 devices on 2 lenders: write(2) of its borrower until all are lent, SQLite store (µs) | $(us "$a") | $(us "$b") | one device lent alone ($(us "$c") µs) + one fdatasync of a small file in the state directory ($(us "$e") µs) per extra lender, in turns | $r | ≤ 1.5 |"
a=$(printf '%s\n' "${cr[@]}" | median)
b=$(printf '%s\n' "${dr[@]}" | median)
echo "| composition of 4 devices on 2 lenders: its return (µs) | $(us "$a") | $(us "$b") | one device returned alone, in turns | $(ratio "$a" "$b") | - |"
