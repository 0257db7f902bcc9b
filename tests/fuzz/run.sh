#!/bin/sh
# Run the libFuzzer targets: first replay every regression input of
# tests/fuzz/regressions/TARGET/ (each must pass), then fuzz each target
# for SECONDS, starting from the seed corpus tests/fuzz/corpus/TARGET/
# (never written) and a work corpus in BUILD/corpus/TARGET/.
#
#   tests/fuzz/run.sh BUILD SECONDS [TARGET...]
#
# A crash leaves its input in BUILD/crashes/ and fails the run: turn it
# into a regression with  cp BUILD/crashes/TARGET-crash-* \
#   tests/fuzz/regressions/TARGET/  once it is fixed.
# Prints one line per target with the executions run, and the total.
set -eu

build="$1"
seconds="$2"
shift 2
src="$(cd "$(dirname "$0")" && pwd)"
targets="$*"
if [ -z "$targets" ]; then
	for f in "$src"/fuzz_*.c; do
		targets="$targets $(basename "$f" .c)"
	done
fi

mkdir -p "$build/crashes" "$build/logs"
total=0
failed=""
summary=""
for t in $targets; do
	bin="$build/$t"
	log="$build/logs/$t.log"
	dict=""
	[ -f "$src/dict/$t.dict" ] && dict="-dict=$src/dict/$t.dict"

	# 1. regressions: every saved input, replayed once
	regs="$src/regressions/$t"
	if [ -d "$regs" ] && [ -n "$(ls -A "$regs" 2>/dev/null)" ]; then
		if ! "$bin" -runs=1 "$regs"/* >"$build/logs/$t.replay.log" 2>&1; then
			echo "fuzz: $t: a regression input fails again:" >&2
			tail -n 30 "$build/logs/$t.replay.log" >&2
			failed="$failed $t"
			continue
		fi
	fi

	# 2. fuzzing, bounded in time and memory
	mkdir -p "$build/corpus/$t"
	# shellcheck disable=SC2086
	if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$build/crashes/$t-" \
		$dict "$build/corpus/$t" "$src/corpus/$t" >"$log" 2>&1; then
		echo "fuzz: $t: crash (input in $build/crashes/):" >&2
		grep -v '^#' "$log" | tail -n 40 >&2
		failed="$failed $t"
	fi
	execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
	execs="${execs:-0}"
	total=$((total + execs))
	summary="$summary$(printf '%-16s %10s executions in %ss' "$t" "$execs" "$seconds")
"
done

printf '%s' "$summary"
echo "fuzz: $total executions in total"
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed" >&2
	exit 1
fi
