#!/bin/bash
# tests/stress/soak.sh BUILD - a million lends (make soak, issue 17).
#
# SOAK_CYCLES (1000000) lend/return cycles (a lend and its return are one
# cycle) by SOAK_WRITERS (8) writers over SOAK_DEVICES (64) devices on
# SOAK_HOSTS (4) hosts (tests/bench/genconf.sh: one switch, IOMMU on the
# even hosts), through a real mount with the SQLite store, by
# tests/stress/soak.c.  Each device is lent to every other host in turn.
#
# At SOAK_SAMPLES (50) equal steps, the last one after the last return,
# the daemon is sampled while it works: its resident memory (VmRSS of
# /proc/PID/status), its open file descriptors (/proc/PID/fd), the size of
# state.db-wal, the LUT entries, DMA windows and lends in use as the
# mount's metrics file says, and the LUT entries, DMA windows and IOMMU
# mappings programmed in the sim's register files (sim_hw_regs(), the walk
# of lendfs-dma regs).  The table is printed, then the bounds are checked
# (exit 1 if one is not met):
#
#   * memory: from the 10% sample on, no VmRSS is more than SOAK_RSS_KIB
#     (5120) above the 10% sample's (warm-up: SQLite's page cache, malloc
#     arenas of the FUSE threads);
#   * descriptors: from the 10% sample on, every sample has as many as the
#     10% sample;
#   * WAL: never larger than the size it is given at open, 32 + (256 + 64)
#     frames of 24 + page_size bytes, rounded up to 64 KiB
#     (core/store_sqlite.c wal_presize(): a checkpoint every 256 pages);
#   * after the last return: nothing in use in the metrics and nothing
#     programmed in the registers, lendfs --check --run-dir passes (the
#     registers hold exactly the stored lends: none), lendfs_lends_total
#     and lendfs_returns_total are both SOAK_CYCLES, every write succeeded.
#
# SOAK_DOC (default docs/PERFORMANCE.md for a run of 1,000,000 cycles,
# none otherwise) gets the figures as its "## Soak" section.
set -euo pipefail

BUILD="${1:?usage: soak.sh BUILD}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
LENDFS="$BUILD/lendfs"
SOAK="$BUILD/stress/soak"

CYCLES="${SOAK_CYCLES:-1000000}"
WRITERS="${SOAK_WRITERS:-8}"
DEVICES="${SOAK_DEVICES:-64}"
HOSTS="${SOAK_HOSTS:-4}"
SAMPLES="${SOAK_SAMPLES:-50}"
RSS_KIB="${SOAK_RSS_KIB:-5120}"
if [ "$CYCLES" = 1000000 ]; then
	DOC="${SOAK_DOC:-$ROOT/docs/PERFORMANCE.md}"
else
	DOC="${SOAK_DOC:-none}"
fi

# State (SQLite) on the build's disk, the sim fabric in tmpfs (as
# /run/lendfs on a real system), as make bench does.
WORK="$(mktemp -d "$BUILD/soak-work.XXXXXX")"
SHM="$(mktemp -d /dev/shm/lendfs-soak.XXXXXX)"
MNT="$WORK/mnt"
PID=

log() { printf 'soak: %s\n' "$*" >&2; }

unmount() {
	if [ -n "$PID" ]; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill "$PID" 2>/dev/null || true
		PID=
	fi
}

cleanup() {
	unmount
	rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT

mkdir -p "$MNT"
sh "$ROOT/tests/bench/genconf.sh" "$DEVICES" "$HOSTS" >"$WORK/soak.ini"

# ---- the daemon ---------------------------------------------------------------

# Its log is a line per request: keep the end of it (shown if it fails).
"$LENDFS" -f -c "$WORK/soak.ini" --state "$WORK/state.db" --run-dir "$SHM/run" "$MNT" \
	</dev/null >/dev/null 2> >(tail -n 200 >"$WORK/lendfs.log") &
PID=$!
for _ in $(seq 100); do
	[ -e "$MNT/version" ] && break
	kill -0 "$PID" 2>/dev/null || { log "the daemon exited at start"; exit 1; }
	sleep 0.1
done
[ -e "$MNT/version" ] || { log "no mount within 10 s"; exit 1; }

# Every device, lent to each other host in turn.
TARGETS=()
for d in "$MNT"/devices/*; do
	dev=${d##*/}
	lender=${dev%%:*}
	b=""
	for ((h = 0; h < HOSTS; h++)); do
		[ "node$h" = "$lender" ] || b="${b:+$b,}node$h"
	done
	TARGETS+=("$dev=$b")
done
[ "${#TARGETS[@]}" -eq "$DEVICES" ] || { log "${#TARGETS[@]} devices mounted, not $DEVICES"; exit 1; }

# The WAL's size at open (wal_presize()): its bound.
PAGE=$(od -An -tu1 -j16 -N2 "$WORK/state.db" | awk '{ p = $1 * 256 + $2; print (p == 1 ? 65536 : p) }')
WAL_BOUND=$(( (32 + (256 + 64) * (24 + PAGE) + 65535) / 65536 * 65536 ))

# ---- the load, sampled ------------------------------------------------------------

# metric NAME: the sum of its samples in the metrics file.
metric() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }' "$WORK/metrics"; }

log "$CYCLES cycles, $WRITERS writers, $DEVICES devices on $HOSTS hosts, $SAMPLES samples"
status=0
"$SOAK" -n "$CYCLES" -w "$WRITERS" -m "$SAMPLES" -p "$PID" -s "$WORK/state.db" \
	-r "$SHM/run" "$MNT" "${TARGETS[@]}" | sed -n 's/^sample //p' >"$WORK/samples" || status=1
cat "$MNT/metrics" >"$WORK/metrics"
LENDS=$(metric lendfs_lends_total)
RETURNS=$(metric lendfs_returns_total)
FAILURES=$(metric lendfs_request_failures_total)
CHECK_OUT=$("$LENDFS" --check -c "$WORK/soak.ini" --state "$WORK/state.db" --run-dir "$SHM/run" 2>&1) &&
	CHECK=0 || CHECK=$?

# ---- the table and the bounds ----------------------------------------------------------

table() {
	echo "| done | cycles | s | cycles/s | VmRSS KiB | fds | WAL bytes | LUT used | DMA used | lent | LUT regs | DMA regs | IOMMU regs |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -v total="$CYCLES" '{
		rate = $2 > 0 ? sprintf("%.0f", $1 / $2) : "-"
		printf "| %d%% | %d | %.1f | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n",
			100 * $1 / total, $1, $2, rate, $3, $4, $5, $6, $7, $8, $9, $10, $11
	}' "$WORK/samples"
}
table | tee "$WORK/table.md"
if [ "$status" -ne 0 ]; then
	log "FAILED: the load stopped (its error is above)"
	exit 1
fi

# The first sample at or past 10% is the reference.
read -r REF_N _ REF_RSS REF_FDS _ < <(awk -v t="$CYCLES" '$1 * 10 >= t { print; exit }' "$WORK/samples")
read -r END_N _ END_RSS END_FDS _ END_LUT END_DMA END_LENDS END_RLUT END_RDMA END_RIOMMU \
	< <(tail -n 1 "$WORK/samples")
MAX_RSS=$(awk -v r="$REF_N" '$1 >= r && $3 > m { m = $3 } END { print m + 0 }' "$WORK/samples")
BAD_FDS=$(awk -v r="$REF_N" -v f="$REF_FDS" '$1 >= r && $4 != f && ++n <= 3 { printf "%s%d at %d", s, $4, $1; s = ", " }
	END { if (n > 3) printf " and %d samples more", n - 3 }' "$WORK/samples")
MAX_WAL=$(awk '$5 > m { m = $5 } END { print m + 0 }' "$WORK/samples")

BOUNDS=()
bound() { # bound OK TEXT
	local verdict=ok
	[ "$1" = 1 ] || { verdict=EXCEEDED; status=1; }
	BOUNDS+=("| $2 | $verdict |")
}
bound "$([ "$END_N" = "$CYCLES" ] && [ "$LENDS" = "$CYCLES" ] && [ "$RETURNS" = "$CYCLES" ] && [ "$FAILURES" = 0 ] && echo 1)" \
	"cycles: $END_N of $CYCLES done; lendfs_lends_total $LENDS, lendfs_returns_total $RETURNS, failed requests $FAILURES"
bound "$([ $((MAX_RSS - REF_RSS)) -lt "$RSS_KIB" ] && echo 1)" \
	"VmRSS from the ${REF_N}-cycle sample on: at most $MAX_RSS KiB, $((MAX_RSS - REF_RSS)) KiB above its $REF_RSS (bound: < $RSS_KIB KiB); at the end $END_RSS"
bound "$([ -z "$BAD_FDS" ] && echo 1)" \
	"open descriptors from the ${REF_N}-cycle sample on: all $REF_FDS${BAD_FDS:+; but $BAD_FDS}; at the end $END_FDS"
bound "$([ "$MAX_WAL" -le "$WAL_BOUND" ] && echo 1)" \
	"state.db-wal: at most $MAX_WAL bytes (bound: its size at open, $WAL_BOUND = 32 + 320 frames of $((24 + PAGE)) bytes, in 64 KiB)"
bound "$([ "$END_LUT$END_DMA$END_LENDS" = 000 ] && echo 1)" \
	"after the last return, metrics: $END_LUT LUT entries, $END_DMA DMA windows, $END_LENDS devices lent (bound: 0)"
bound "$([ "$END_RLUT$END_RDMA$END_RIOMMU" = 000 ] && [ "$CHECK" = 0 ] && echo 1)" \
	"after the last return, registers: $END_RLUT LUT entries, $END_RDMA DMA windows, $END_RIOMMU IOMMU mappings programmed (bound: 0); lendfs --check --run-dir: exit $CHECK${CHECK_OUT:+: $(printf '%s\n' "$CHECK_OUT" | awk 'NR == 1 { f = $0 } { l = $0 } END { print (NR > 1 ? f " ... " l : f) }')}"

{
	echo
	echo "| bound | |"
	echo "|---|---|"
	printf '%s\n' "${BOUNDS[@]}"
} | tee -a "$WORK/table.md"

# the load's own clock: from its first write to its last sample
ELAPSED=$(tail -n 1 "$WORK/samples" | awk '{ printf "%.1f", $2 }')
RATE=$(awk -v n="$END_N" -v s="$ELAPSED" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
log "$END_N cycles in ${ELAPSED} s ($RATE cycles/s)"
if [ "$status" -ne 0 ]; then
	log "FAILED: a bound is exceeded (above)"
	[ -z "$CHECK_OUT" ] || printf -- '--- lendfs --check --run-dir:\n%s\n' "$CHECK_OUT" >&2
	unmount
	sleep 0.5 # the log's tail writes when the daemon is gone
	echo "--- the end of the daemon's log:" >&2
	tail -n 20 "$WORK/lendfs.log" >&2 || true
	exit 1
fi
log "passed: every bound holds"

# ---- docs/PERFORMANCE.md --------------------------------------------------------

[ "$DOC" != none ] || exit 0
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
	cat <<EOF
## Soak

Written by \`make soak\` (tests/stress/soak.sh) after a run that passed;
\`make bench\` keeps this section.

* date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs, ${CPU}; kernel $(uname -r)
* $END_N lend/return cycles (a lend and its return), $WRITERS writers, $DEVICES devices on $HOSTS hosts (tests/bench/genconf.sh), SQLite store, each device lent to the other hosts in turn
* time: ${ELAPSED} s, $RATE cycles/s ($((2 * RATE)) requests/s); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)

Samples, taken while the writers run (the last after the last return);
"cycles/s" is the mean since the first write.  "LUT used", "DMA used" and
"lent" (devices in state lent, not lending or returning) are the mount's
metrics; "... regs" are what the sim's register files hold
(\`sim_hw_regs()\`, as \`lendfs-dma regs\`), read a moment later: while
the writers run the two need not agree, and LUT entries beyond two per
writer are P2P entries between devices lent to one borrower.  The bounds
below are checked by the script (exit 1 if one is exceeded; how each was
seen to fail: docs/TESTING.md, "Soak").

EOF
	cat "$WORK/table.md"
} >"$WORK/soak.md"
# replace the "## Soak" section (up to the next "## " heading), or append it
awk -v f="$WORK/soak.md" '
	/^## / && in_soak { in_soak = 0 }
	/^## Soak$/ { in_soak = 1; while ((getline l < f) > 0) print l; print ""; done = 1; next }
	!in_soak { print }
	END { if (!done) { print ""; while ((getline l < f) > 0) print l } }
' "$DOC" >"$WORK/doc.md"
mv "$WORK/doc.md" "$DOC"
log "wrote the Soak section of $DOC"
