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

# guest_eject_slots SLOT...: play the guest's OS on -machine pc until each
# SLOT has been ejected (qemu-guest.sh eject-pending: the slots QEMU asks
# to eject; a lend's BARs are several devices whose removals are asked
# one after the other), at most 3 s.
guest_eject_slots() {
	local got="" i s all
	for ((i = 0; i < 150; i++)); do
		for s in $(guest eject-pending); do
			got="$got $s"
		done
		all=1
		for s in "$@"; do
			[[ " $got " == *" $s "* ]] || all=0
		done
		[ "$all" = 1 ] && return 0
		sleep 0.02
	done
	echo "guest_eject_slots: ejected${got:- nothing}, not all of $*" >&2
	return 1
}
