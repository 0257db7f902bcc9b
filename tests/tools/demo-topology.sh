#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# demo-topology.sh LENDFS OUT.svg [OUT.dot]
#
# Mount the demo cluster (conf/demo.ini) with LENDFS in a temporary
# directory, make the lends of the picture in README.md, and render
# fabric/topology.dot with Graphviz: docs/topology.svg is
#
#   tests/tools/demo-topology.sh build/lendfs docs/topology.svg
#
# Fails (exit 1) when dot prints anything on stderr (a warning).
set -eu

LENDFS=$1
OUT=$2
DOT=${3:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
MNT=$TMP/mnt
PID=

cleanup() {
	if [ -n "$PID" ]; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
		i=0
		while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

mkdir -p "$MNT"
"$LENDFS" -f -c "$ROOT/conf/demo.ini" --state none --run-dir "$TMP/run" "$MNT" \
	</dev/null >"$TMP/log" 2>&1 &
PID=$!
i=0
until [ -e "$MNT/version" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$PID" 2>/dev/null; then
		echo "demo-topology: lendfs did not mount:" >&2
		cat "$TMP/log" >&2
		exit 1
	fi
	sleep 0.1
done

# a GPU and an NVMe of two hosts composed on nodeB, a GPU for nodeC
echo nodeB >"$MNT/devices/nodeA:0000:65:00.0/borrower"
echo nodeB >"$MNT/devices/nodeC:0000:5e:00.0/borrower"
echo nodeC >"$MNT/devices/nodeD:0000:3b:00.0/borrower"

cp "$MNT/fabric/topology.dot" "$TMP/topology.dot"
[ -z "$DOT" ] || cp "$TMP/topology.dot" "$DOT"
dot -Tsvg -o "$TMP/topology.svg" "$TMP/topology.dot" 2>"$TMP/dot.err"
if [ -s "$TMP/dot.err" ]; then
	echo "demo-topology: dot warned:" >&2
	cat "$TMP/dot.err" >&2
	exit 1
fi
mv "$TMP/topology.svg" "$OUT"
