# Shared by the bats files that start a QEMU guest with
# tests/vm/qemu-guest.sh: vm.bats, locks.bats.  They set GUEST and GDIR.

guest() {
	sh "$GUEST" "$1" "$GDIR" "${@:2}"
}

# guest_start [MACHINE [MEM [QEMU ARGS]]]: or skip if QEMU cannot start.
guest_start() {
	local out status=0
	out=$(sh "$GUEST" start "$GDIR" "$@" 2>&1) || status=$?
	if [ "$status" -eq 77 ]; then
		skip "qemu-system-x86_64 cannot start: $out"
	fi
	[ "$status" -eq 0 ] || { echo "$out" >&2; return 1; }
}
