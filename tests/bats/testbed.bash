# Shared by the bats files that drive a umockdev test bed
# (tests/udev/testbed.c): udev.bats, locks.bats.  They set TMP, MNT,
# TB_PID=, TB_FD=, TB_WAIT_TENTHS, UCONF (the config udev_mount uses) and
# build $BATS_FILE_TMPDIR/testbed and lendfs-umockdev first.

# testbed_build (setup_file): the test bed program, and lendfs under the
# umockdev preload ($UDEV_DIR: tests/udev).
testbed_build() {
	for tool in umockdev-wrapper pkg-config cc; do
		command -v "$tool" >/dev/null ||
			{ echo "$tool is missing (make deps)" >&2; return 1; }
	done
	# shellcheck disable=SC2046
	cc -std=c11 -D_GNU_SOURCE -O1 -o "$BATS_FILE_TMPDIR/testbed" "$UDEV_DIR/testbed.c" \
		$(pkg-config --cflags --libs umockdev-1.0)
	# lendfs under the umockdev preload, which ASan must let come first;
	# ASan's log_path crashes at start under the preload, so reports go to
	# stderr ($TMP/lendfs.log) and fail the test through the exit status
	cat >"$BATS_FILE_TMPDIR/lendfs-umockdev" <<-EOF
		#!/bin/sh
		ASAN_OPTIONS=\$(printf %s "\${ASAN_OPTIONS:-}" | tr : '\\n' | grep -v '^log_path=' | tr '\\n' :)
		export ASAN_OPTIONS="\${ASAN_OPTIONS}verify_asan_link_order=0"
		exec umockdev-wrapper "$LENDFS" "\$@"
	EOF
	chmod +x "$BATS_FILE_TMPDIR/lendfs-umockdev"
}

# testbed_start FIXTURE...: a test bed with these devices; exports
# UMOCKDEV_DIR for the lendfs started next.
testbed_start() {
	mkfifo "$TMP/tb.in"
	umockdev-wrapper "$BATS_FILE_TMPDIR/testbed" "$@" <"$TMP/tb.in" \
		>"$TMP/tb.out" 2>"$TMP/tb.err" 3>&- &
	TB_PID=$!
	exec {TB_FD}>"$TMP/tb.in"
	local i
	for ((i = 0; i < TB_WAIT_TENTHS; i++)); do
		grep -q '^ready ' "$TMP/tb.out" 2>/dev/null && break
		sleep 0.1
	done
	UMOCKDEV_DIR=$(sed -n 's/^ready //p' "$TMP/tb.out")
	[ -n "$UMOCKDEV_DIR" ] || { cat "$TMP/tb.out" "$TMP/tb.err" >&2; return 1; }
	export UMOCKDEV_DIR
}

# tb COMMAND...: one command to the test bed (see testbed.c); waits for "ok".
tb() {
	local n i
	n=$(wc -l <"$TMP/tb.out")
	echo "$*" >&"$TB_FD"
	for ((i = 0; i < TB_WAIT_TENTHS * 10; i++)); do
		[ "$(wc -l <"$TMP/tb.out")" -gt "$n" ] && break
		sleep 0.01
	done
	[ "$(tail -n 1 "$TMP/tb.out")" = ok ] ||
		{ echo "test bed: $* -> $(tail -n 1 "$TMP/tb.out")" >&2; return 1; }
}

testbed_stop() {
	[ -n "$TB_PID" ] || return 0
	{ echo quit >&"$TB_FD"; } 2>/dev/null || true
	exec {TB_FD}>&-
	local i
	for ((i = 0; i < TB_WAIT_TENTHS; i++)); do
		kill -0 "$TB_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$TB_PID" 2>/dev/null || true
	wait "$TB_PID" 2>/dev/null || true
	TB_PID=
	unset UMOCKDEV_DIR
}

# udev_mount [ARGS...]: lendfs with the udev inventory as host nodeA,
# under the umockdev preload unless LENDFS_REAL=1.
udev_mount() {
	local cmd="$BATS_FILE_TMPDIR/lendfs-umockdev"
	[ "${LENDFS_REAL:-0}" = 1 ] && cmd="$LENDFS"
	$LENDFS_PREFIX "$cmd" -f -c "$UCONF" --host nodeA --inventory udev \
		--state "$TMP/state.db" --run-dir "$TMP/run" "$@" "$MNT" \
		</dev/null >"$TMP/lendfs.out" 2>>"$TMP/lendfs.log" 3>&- &
	LENDFS_PID=$!
	local i
	for ((i = 0; i < MOUNT_WAIT_TENTHS; i++)); do
		[ -e "$MNT/version" ] && return 0
		if ! kill -0 "$LENDFS_PID" 2>/dev/null; then
			echo "lendfs exited before mounting:" >&2
			cat "$TMP/lendfs.log" >&2
			LENDFS_PID=
			return 1
		fi
		sleep 0.1
	done
	echo "lendfs did not mount within 10 s:" >&2
	cat "$TMP/lendfs.log" >&2
	return 1
}

# Unmount and reap; fails if the daemon exited non-zero.  Keeps $TMP.
udev_unmount() {
	[ -n "${LENDFS_PID:-}" ] || return 0
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	lendfs_wait_exit
	if [ "$LENDFS_STATUS" -ne 0 ]; then
		echo "lendfs exited with status $LENDFS_STATUS:" >&2
		cat "$TMP/lendfs.log" >&2
		return 1
	fi
}
