# Shared by the bats files that start a QEMU guest with
# tests/vm/qemu-guest.sh: vm.bats, locks.bats.  They set GUEST and GDIR.

guest() {
	sh "$GUEST" "$1" "$GDIR" "${@:2}"
}

# guest_start [MACHINE [MEM [QEMU ARGS]]]: a guest, or skip if
# qemu-system-x86_64 ($QEMU) is not installed.  A QEMU that is installed
# but exits or makes no QMP socket in time fails the test: qemu-guest.sh
# prints the reason and QEMU's log (docs/TESTING.md, "Skips").
guest_start() {
	command -v "${QEMU:-qemu-system-x86_64}" >/dev/null ||
		skip "${QEMU:-qemu-system-x86_64} is not installed (Debian package qemu-system-x86)"
	sh "$GUEST" start "$GDIR" "$@" || {
		echo "guest_start: $GUEST start $GDIR $* failed (status $?)" >&2
		return 1
	}
}
