#!/usr/bin/env bats
# Compositions in distributed mode (SPEC section 10, issue 19 section 2,
# docs/STATE.md "Compositions in distributed mode"): three daemons, one
# real ZooKeeper.  The list is ZooKeeper's (ROOT/compositions/NAME),
# mirrored by every daemon through its watches: a mkdir, rmdir or
# devices write on one mount shows on every mount, with the validation
# and errnos of one-daemon mode, decided on what ZooKeeper holds at the
# write.  A composition's borrower and lease are refused with ENOTSUP,
# and its plans say so.  cluster_down checks every daemon's registers
# against the records.

load helpers
load cluster_helpers

A1=nodeA:0000:65:00.0
A2=nodeA:0000:b3:00.0
B1=nodeB:0000:17:00.0
C1=nodeC:0000:5e:00.0

setup_file() {
	zk_start 1
}

teardown_file() {
	zk_stop
}

teardown() {
	pollers_stop
	cluster_down
	if [ -n "${DOWN_DIR:-}" ]; then # the ZooKeeper of the EHOSTDOWN test
		"$ZKSH" stop "$DOWN_DIR/zk" || true
		rm -rf "$DOWN_DIR"
	fi
}

# comp HOST NAME: the composition's directory on HOST's mount.
comp() {
	echo "$CTMP/mnt.$1/compositions/$2"
}

# put FILE VALUE: VALUE (printf %b) in ONE write(2).
put() {
	printf '%b' "$2" >"$CTMP/value"
	cat "$CTMP/value" >"$1"
}

# write_fails FILE VALUE MESSAGE: one write of VALUE (printf %b) fails.
write_fails() {
	printf '%b' "$2" >"$CTMP/value"
	run bash -c 'cat "$1" > "$2"' _ "$CTMP/value" "$1"
	assert_failure
	assert_output --partial "write error: $3"
}

# listed HOST NAMES...: HOST's compositions/ lists exactly NAMES.
listed() {
	local h="$1"
	shift
	[ "$(ls "$(mnt "$h")/compositions" | tr '\n' ' ')" = "$(printf '%s ' "$@" | sed 's/^ $//')" ]
}

# count_is HOST N: HOST's compositions/ lists N.
count_is() {
	[ "$(ls "$(mnt "$1")/compositions" | wc -l)" = "$2" ]
}

# devices_are HOST NAME LIST: the composition's devices on HOST's mount.
devices_are() {
	[ "$(cat "$(comp "$1" "$2")/devices" 2>/dev/null)" = "$(printf '%b' "$3")" ]
}

@test "mkdir, devices and rmdir on one mount show on every mount" {
	cluster_up nodeA nodeB nodeC
	local h
	mkdir "$(comp nodeA job)"
	for h in nodeB nodeC; do
		eventually 5 listed $h job
		run cat "$(comp $h job)/state"
		assert_output available
	done
	put "$(comp nodeB job)/devices" "$A1\n$B1\n$C1\n"
	for h in nodeA nodeC; do
		eventually 5 devices_are $h job "$A1\n$B1\n$C1"
	done
	# a new list replaces the whole one, on every mount
	put "$(comp nodeC job)/devices" "$A2\n"
	for h in nodeA nodeB; do
		eventually 5 devices_are $h job "$A2"
	done
	rmdir "$(comp nodeC job)"
	for h in nodeA nodeB nodeC; do
		eventually 5 listed $h
	done
	# a daemon that starts later reads the stored list
	mkdir "$(comp nodeB later)"
	put "$(comp nodeB later)/devices" "$B1\n$C1\n"
	node_kill nodeA
	node_up nodeA
	eventually 20 node_online nodeA
	eventually 5 devices_are nodeA later "$B1\n$C1"
	run cat "$(comp nodeA later)/state"
	assert_output available
}

@test "the errnos of one-daemon mode, decided on what ZooKeeper holds" {
	# every daemon's watches act 2 s late: a write must read ZooKeeper
	LENDFS_DELAY=compose.sync:2000 cluster_up nodeA nodeB nodeC
	mkdir "$(comp nodeA one)"
	# at once on another mount, without waiting for its watch
	run mkdir "$(comp nodeB one)"
	assert_failure
	assert_output --partial "File exists"
	run mkdir "$(comp nodeC 'bad name')"
	assert_failure
	assert_output --partial "Invalid argument"
	put "$(comp nodeA one)/devices" "$A1\n$B1\n"
	mkdir "$(comp nodeC two)"
	# a device of another composition, written at once on a third mount
	write_fails "$(comp nodeC two)/devices" "$C1\n$B1\n" "Device or resource busy"
	run cat "$(comp nodeC two)/last_error"
	assert_output "EBUSY: $B1 is in composition one"
	eventually 5 test -e "$(comp nodeB two)"
	write_fails "$(comp nodeB two)/devices" "nodeZ:0000:00:00.0\n" "Invalid argument"
	run cat "$(comp nodeB two)/last_error"
	assert_output "EINVAL: unknown device nodeZ:0000:00:00.0"
	# refused writes changed nothing, on any mount
	local h
	for h in nodeA nodeB nodeC; do
		eventually 5 devices_are $h one "$A1\n$B1"
		devices_are $h two ""
	done
	# removed on one mount: gone for a write on another at once (its
	# file opened before, once its mirror shows it)
	eventually 5 devices_are nodeB one "$A1\n$B1"
	exec 5<>"$(comp nodeB one)/devices"
	rmdir "$(comp nodeA one)"
	run bash -c 'printf "%s\n" "$1" >&5' _ "$A1"
	exec 5>&-
	assert_failure
	assert_output --partial "No such file or directory"
	put "$(comp nodeB two)/devices" "$B1\n"
	for h in nodeA nodeC; do
		eventually 5 devices_are $h two "$B1"
	done
}

@test "malformed devices writes are refused on every mount and change nothing" {
	cluster_up nodeA nodeB nodeC
	mkdir "$(comp nodeA m)"
	put "$(comp nodeA m)/devices" "$A1\n"
	local v h
	for v in '\0' "$B1\0$C1" "$B1\n\n$C1" "$B1 x" "\n\n" \
		"$(head -c 300 /dev/zero | tr '\0' x)" "$B1\n$B1" "\x01"; do
		for h in nodeB nodeC; do
			write_fails "$(comp $h m)/devices" "$v" "Invalid argument"
			run cat "$(comp $h m)/last_error"
			assert_output --regexp "^EINVAL: "
		done
	done
	for h in nodeA nodeB nodeC; do
		devices_are $h m "$A1"
	done
}

@test "many mkdirs of the same names on two mounts at once: each made once" {
	cluster_up nodeA nodeB
	local i h pids=()
	for h in nodeA nodeB; do
		(for ((i = 0; i < 20; i++)); do
			mkdir "$(comp $h c$i)" 2>/dev/null && echo "c$i"
		done >"$CTMP/made.$h"
		true) &
		pids+=($!)
	done
	wait "${pids[@]}" # not the daemons
	run sort "$CTMP/made.nodeA" "$CTMP/made.nodeB"
	assert_output "$(for ((i = 0; i < 20; i++)); do echo "c$i"; done | sort)"
	eventually 5 count_is nodeA 20
	eventually 5 count_is nodeB 20
}

@test "two mounts put one device into two compositions at once: it ends in one" {
	cluster_up nodeA nodeB
	local i h x y pids
	mkdir "$(comp nodeA x)" "$(comp nodeA y)"
	eventually 5 count_is nodeB 2
	printf '%s\n' "$A1" >"$CTMP/list"
	for ((i = 0; i < 20; i++)); do
		pids=()
		for h in nodeA:x nodeB:y; do
			# one write(2) of the list: cat, not echo (SPEC section 10)
			(if cat "$CTMP/list" >"$(comp ${h%%:*} ${h##*:})/devices" \
				2>"$CTMP/err.${h##*:}"; then echo 0; else echo 1; fi \
				>"$CTMP/rc.${h##*:}") &
			pids+=($!)
		done
		wait "${pids[@]}" # not the daemons
		x=$(cat "$CTMP/rc.x") y=$(cat "$CTMP/rc.y")
		# exactly one list took the device; the other got EBUSY
		[ $((x == 0)) -ne $((y == 0)) ] || {
			echo "round $i: x exit $x, y exit $y" >&2
			cat "$CTMP/err.x" "$CTMP/err.y" >&2
			return 1
		}
		grep -q "Device or resource busy" "$CTMP/err.$([ "$x" = 0 ] && echo y || echo x)"
		for h in nodeA nodeB; do
			eventually 5 devices_are $h x "$([ "$x" = 0 ] && echo "$A1")"
			eventually 5 devices_are $h y "$([ "$y" = 0 ] && echo "$A1")"
		done
		# the winner lets it go for the next round
		echo >"$(comp nodeA "$([ "$x" = 0 ] && echo x || echo y)")/devices"
		eventually 5 devices_are nodeB x ""
		eventually 5 devices_are nodeB y ""
	done
}

@test "a composition's borrower and lease: ENOTSUP, and its plans say so" {
	cluster_up nodeA nodeB nodeC
	mkdir "$(comp nodeA job)"
	put "$(comp nodeA job)/devices" "$A1\n$B1\n"
	eventually 5 devices_are nodeC job "$A1\n$B1"
	run cat "$(comp nodeC job)/plans/nodeD"
	assert_line --index 0 "ENOTSUP: lending a composition is not (yet) available in distributed mode"
	write_fails "$(comp nodeC job)/borrower" "nodeD\n" "Operation not supported"
	run cat "$(comp nodeC job)/last_error"
	assert_output "ENOTSUP: lending a composition is not (yet) available in distributed mode"
	write_fails "$(comp nodeC job)/lease" "60\n" "Operation not supported"
	local h
	for h in nodeA nodeB nodeC; do
		run cat "$(comp $h job)/state" "$(comp $h job)/borrower"
		assert_output "$(printf 'available\n')"
		state_is $h $A1 available ""
		state_is $h $B1 available ""
	done
	# its members go on alone
	echo nodeC >"$(cdev nodeA $A1)/borrower"
	eventually 5 state_is nodeB $A1 lent nodeC
	echo >"$(cdev nodeB $A1)/borrower"
	eventually 5 state_is nodeA $A1 available ""
}

@test "without a ZooKeeper session a composition write is EHOSTDOWN, then it works" {
	local zk
	DOWN_DIR="$(mktemp -d)"
	"$ZKSH" start "$DOWN_DIR/zk" 1 >/dev/null
	zk="$(cat "$DOWN_DIR/zk/connect")"
	"$ZKSH" stop "$DOWN_DIR/zk"
	CLUSTER_REGISTERS=0 # checked below, once ZooKeeper is up
	CTMP="$(mktemp -d)"
	CHROOT=/down
	CLUSTER_HOSTS=(nodeA)
	ZK_SAVED="$ZK"
	ZK="$zk"
	node_up nodeA
	run mkdir "$(comp nodeA job)"
	assert_failure
	assert_output --partial "Host is down"
	run grep -c "cannot create composition job: no ZooKeeper session: nodeA is not connected to ZooKeeper yet; nothing was written" \
		"$CTMP/log.nodeA"
	assert_output 1
	"$ZKSH" restart "$DOWN_DIR/zk" 1 >/dev/null
	eventually 30 node_online nodeA
	mkdir "$(comp nodeA job)"
	put "$(comp nodeA job)/devices" "$A1\n"
	devices_are nodeA job "$A1"
	cluster_registers_ok nodeA
	cluster_down
	ZK="$ZK_SAVED"
}
