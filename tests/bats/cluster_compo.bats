#!/usr/bin/env bats
# Compositions in distributed mode (SPEC section 10, issue 19 section 2,
# docs/STATE.md "Compositions in distributed mode"): three daemons, one
# real ZooKeeper.  The list is ZooKeeper's (ROOT/compositions/NAME),
# mirrored by every daemon through its watches: a mkdir, rmdir or
# devices write on one mount shows on every mount, with the validation
# and errnos of one-daemon mode, decided on what ZooKeeper holds at the
# write.  A composition is lent from any mount: that daemon writes its
# intent in ZooKeeper, forwards each member's lend to its lender as a
# step of the composition, and commits; a crash of that daemon is settled
# by it on restart or by the others once it is not live.  cluster_down
# checks every daemon's registers against the records.

load helpers
load cluster_helpers

A1=nodeA:0000:65:00.0
A2=nodeA:0000:b3:00.0
B1=nodeB:0000:17:00.0
C1=nodeC:0000:5e:00.0

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

# comp_is HOST NAME STATE BORROWER: the composition as HOST's mount shows it.
comp_is() {
	[ "$(cat "$(comp "$1" "$2")/state" 2>/dev/null)" = "$3" ] &&
		[ "$(cat "$(comp "$1" "$2")/borrower" 2>/dev/null)" = "$4" ]
}

# regs HOST: a digest of HOST's sim registers: the register files of its
# run directory (hosts/*.hw: NTB tables, DMA windows, IOMMU mappings; not
# the BAR and RAM files, whose bytes are memory).
regs() {
	(cd "$CTMP/run.$1" && md5sum hosts/*.hw)
}

# member_guarded HOST ID: ID's own borrower and lease writes on HOST's
# mount fail with EBUSY "part of composition job".
member_guarded() {
	write_fails "$(cdev "$1" "$2")/borrower" "\n" "Device or resource busy"
	run cat "$(cdev "$1" "$2")/last_error"
	assert_output "EBUSY: part of composition job"
	write_fails "$(cdev "$1" "$2")/lease" "60\n" "Device or resource busy"
}

@test "a composition on two lenders, lent from a third mount: all lent, members guarded everywhere, one lease, all returned" {
	local h d
	cluster_up nodeA nodeB nodeC
	mkdir "$(comp nodeA job)"
	put "$(comp nodeA job)/devices" "$A1\n$B1\n"
	eventually 5 devices_are nodeC job "$A1\n$B1"
	run cat "$(comp nodeC job)/plans/nodeC"
	assert_line --index 0 ok
	echo nodeC >"$(comp nodeC job)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 comp_is $h job lent nodeC
		for d in $A1 $B1; do
			eventually 5 state_is $h $d lent nodeC
			member_guarded $h $d
		done
	done
	run cat "$(comp nodeC job)/last_error"
	assert_output ""
	eventually 5 grep -qE " composition:job composition-lent .*borrower=nodeC" \
		"$(mnt nodeA)/events"
	# one lease for both, set on a lender's mount, seen on every mount
	echo 60 >"$(comp nodeA job)/lease"
	for h in nodeA nodeB nodeC; do
		eventually 5 bash -c "[ \"\$(cat '$(comp $h job)/lease')\" -ge 58 ]"
		for d in $A1 $B1; do
			eventually 5 bash -c "[ \"\$(cat '$(cdev $h $d)/lease')\" -ge 58 ]"
		done
	done
	# returned from the other lender's mount
	echo >"$(comp nodeB job)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 comp_is $h job available ""
		eventually 5 state_is $h $A1 available ""
		eventually 5 state_is $h $B1 available ""
	done
	eventually 5 grep -qE " composition:job composition-returned .*borrower=nodeC" \
		"$(mnt nodeC)/events"
	# its members go on alone once it is returned
	echo nodeC >"$(cdev nodeA $A1)/borrower"
	eventually 5 state_is nodeB $A1 lent nodeC
	echo >"$(cdev nodeB $A1)/borrower"
	eventually 5 state_is nodeA $A1 available ""
}

@test "a composition on two lenders fails as a whole when one member is busy, and leaves both lenders' registers untouched" {
	local h
	cluster_up nodeA nodeB nodeC
	echo nodeA >"$(cdev nodeC $B1)/borrower"
	eventually 5 state_is nodeA $B1 lent nodeA
	mkdir "$(comp nodeC job)"
	put "$(comp nodeC job)/devices" "$A1\n$B1\n"
	eventually 5 devices_are nodeA job "$A1\n$B1"
	sleep 0.5 # every daemon's registers settled
	for h in nodeA nodeB nodeC; do
		regs $h >"$CTMP/regs.$h.before"
	done
	[ -s "$CTMP/regs.nodeA.before" ]
	run cat "$(comp nodeC job)/plans/nodeC"
	assert_line --index 0 "EBUSY: $B1: lent to nodeA; return it first"
	# A1 (first in the list) is lent, then B1 fails: A1 is returned
	write_fails "$(comp nodeC job)/borrower" "nodeC\n" "Device or resource busy"
	run cat "$(comp nodeC job)/last_error"
	assert_output "EBUSY: $B1: lent to nodeA; return it first"
	eventually 5 grep -qE " $A1 lent .*borrower=nodeC" "$(mnt nodeA)/events"
	eventually 5 grep -qE " $A1 returned .*borrower=nodeC" "$(mnt nodeA)/events"
	for h in nodeA nodeB nodeC; do
		eventually 5 comp_is $h job available ""
		eventually 5 state_is $h $A1 available ""
		eventually 5 state_is $h $B1 lent nodeA
	done
	sleep 0.5
	for h in nodeA nodeB nodeC; do
		regs $h >"$CTMP/regs.$h.after"
		diff "$CTMP/regs.$h.before" "$CTMP/regs.$h.after"
	done
	echo >"$(cdev nodeA $B1)/borrower"
	eventually 5 state_is nodeC $B1 available ""
	echo nodeC >"$(comp nodeA job)/borrower"
	eventually 5 comp_is nodeB job lent nodeC
	echo >"$(comp nodeA job)/borrower"
}

@test "the lender refuses a member's request from another mount unless it is a step of the composition's own lend" {
	cluster_up nodeA nodeB nodeC
	mkdir "$(comp nodeA job)"
	put "$(comp nodeA job)/devices" "$A1\n$B1\n"
	echo nodeC >"$(comp nodeB job)/borrower"
	eventually 5 comp_is nodeA job lent nodeC
	# a mount whose mirror lags forwards the member's own return: refused
	"$ZKCTL" "$ZK$CHROOT" create "/requests/$A1" "? "
	eventually 5 bash -c "'$ZKCTL' '$ZK$CHROOT' get '/requests/$A1' | grep -q '^= '"
	run "$ZKCTL" "$ZK$CHROOT" get "/requests/$A1"
	assert_output "= EBUSY part of composition job"
	"$ZKCTL" "$ZK$CHROOT" rmr "/requests/$A1"
	# a late step of a lend to another borrower: refused
	"$ZKCTL" "$ZK$CHROOT" create "/requests/$A1" "$(printf '? nodeB\ncompo job')"
	eventually 5 bash -c "'$ZKCTL' '$ZK$CHROOT' get '/requests/$A1' | grep -q '^= '"
	run "$ZKCTL" "$ZK$CHROOT" get "/requests/$A1"
	assert_output "= EBUSY composition job is lent to nodeC: a late step of its lend"
	"$ZKCTL" "$ZK$CHROOT" rmr "/requests/$A1"
	state_is nodeA $A1 lent nodeC
	echo >"$(comp nodeC job)/borrower"
	eventually 5 comp_is nodeA job available ""
	state_is nodeA $A1 available ""
}

@test "two mounts lend one composition at once: one lends it, the other gets EBUSY" {
	local round a b
	cluster_up nodeA nodeB nodeC nodeD
	job_a1_c1 nodeC
	for round in 1 2 3 4 5 6 7 8 9 10; do
		(echo nodeB >"$(comp nodeA job)/borrower") 2>"$CTMP/err.a" &
		a=$!
		(echo nodeD >"$(comp nodeC job)/borrower") 2>"$CTMP/err.b" &
		b=$!
		wait $a && a=0 || a=1
		wait $b && b=0 || b=1
		echo "# round $round: nodeA's $a, nodeC's $b: $(cat "$CTMP/err.a" "$CTMP/err.b")" >&3
		[ $((a + b)) -eq 1 ]
		echo >"$(comp nodeB job)/borrower"
		eventually 5 comp_is nodeA job available ""
	done
}

@test "a 2 s lease of a composition on two lenders returns all of it within 2.5 s on every mount" {
	local t0 t1 h i all
	cluster_up nodeA nodeB nodeC
	mkdir "$(comp nodeC job)"
	put "$(comp nodeC job)/devices" "$A1\n$B1\n"
	echo nodeC >"$(comp nodeC job)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 comp_is $h job lent nodeC
	done
	t0=$(date +%s%N)
	echo 2 >"$(comp nodeC job)/lease"
	for ((i = 0; i < 60; i++)); do
		all=1
		for h in nodeA nodeB nodeC; do
			comp_is $h job available "" && state_is $h $A1 available "" &&
				state_is $h $B1 available "" || all=0
		done
		[ $all = 1 ] && break
		sleep 0.05
	done
	t1=$(date +%s%N)
	echo "# all available on all mounts $(((t1 - t0) / 1000000)) ms after the lease was set" >&3
	[ $all = 1 ]
	[ $(((t1 - t0) / 1000000)) -le 2500 ]
	# the composition's expiry, once, and both members returned
	eventually 5 grep -qE " composition:job expired borrower=nodeC .*cause=lease" "$(mnt nodeB)/events"
	eventually 5 grep -qE " composition:job composition-returned borrower=nodeC cause=lease" "$(mnt nodeC)/events"
	run grep -cE " composition:job composition-returned " "$(mnt nodeA)/events"
	assert_output 1
	for d in $A1 $B1; do
		eventually 5 grep -qE " $d returned borrower=nodeC" "$(mnt nodeC)/events"
	done
}

# faulty_up HOST POINT: HOST's daemon joins the cluster, to crash at POINT
# (LENDFS_FAULT=POINT:crash).
faulty_up() {
	LENDFS_FAULT="$2:crash" node_up "$1"
	CLUSTER_HOSTS+=("$1")
	eventually 20 node_online "$1"
}

# job_a1_c1 HOST: composition job of A1 and C1, made on HOST's mount and
# seen on nodeA's.
job_a1_c1() {
	mkdir "$(comp "$1" job)"
	put "$(comp "$1" job)/devices" "$A1\n$C1\n"
	eventually 5 devices_are nodeA job "$A1\n$C1"
}

# crash_lender POINT: nodeC's daemon crashes at POINT of its member's
# lend, a step of composition job (A1 of nodeA, C1 of nodeC) lent to
# nodeB from nodeB's mount; the write's status in $status; nodeC is
# killed and started again.
crash_lender() {
	cluster_up nodeA nodeB
	faulty_up nodeC "$1"
	job_a1_c1 nodeB
	run bash -c "echo nodeB > '$(comp nodeB job)/borrower'"
	grep -q "injected crash at ${1%%:*} #" "$CTMP/log.nodeC"
	node_kill nodeC
	node_up nodeC
	eventually 20 node_online nodeC
}

@test "a lender that crashes before its member's intent: the composition's write fails, none of it lent" {
	local h
	crash_lender lend.intent:1
	assert_failure
	for h in nodeA nodeB nodeC; do
		eventually 10 comp_is $h job available ""
		eventually 10 state_is $h $A1 available ""
		eventually 10 state_is $h $C1 available ""
	done
	echo nodeB >"$(comp nodeC job)/borrower"
	eventually 5 comp_is nodeA job lent nodeB
	echo >"$(comp nodeA job)/borrower"
}

@test "a lender that crashes after its member's intent: the borrower commits it, all of it lent" {
	local h
	crash_lender lend.commit:1
	assert_success # acknowledged: nodeB committed C1's lend itself
	for h in nodeA nodeB nodeC; do
		eventually 10 comp_is $h job lent nodeB
		eventually 10 state_is $h $A1 lent nodeB
		eventually 10 state_is $h $C1 lent nodeB
	done
	echo >"$(comp nodeA job)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 comp_is $h job available ""
	done
}

# crash_coordinator POINT: nodeD's daemon lends composition job (A1 of
# nodeA, C1 of nodeC) to nodeB and crashes at POINT.
crash_coordinator() {
	cluster_up nodeA nodeB nodeC
	faulty_up nodeD "$1"
	job_a1_c1 nodeD
	run bash -c "echo nodeB > '$(comp nodeD job)/borrower'"
	assert_failure
	eventually 10 bash -c "! kill -0 $(cat "$CTMP/pid.nodeD") 2>/dev/null"
	grep -q "injected crash at ${1%%:*} #" "$CTMP/log.nodeD"
	node_kill nodeD
}

@test "a coordinator that crashes before its composition's lend is committed: rolled back by the others, none lent" {
	local h
	crash_coordinator compose.commit:1
	# both members were lent before the crash; nodeD's session expires
	for h in nodeA nodeB nodeC; do
		eventually 10 comp_is $h job available ""
		eventually 5 state_is $h $A1 available ""
		eventually 5 state_is $h $C1 available ""
	done
	grep -q "composition job: the unfinished lend to nodeB rolled back for nodeD" \
		"$CTMP/log.nodeA" "$CTMP/log.nodeB" "$CTMP/log.nodeC"
	# and nodeD comes back to nothing to do
	node_up nodeD
	eventually 20 node_online nodeD
	comp_is nodeD job available ""
}

@test "a coordinator that crashes and restarts at once: its lend is rolled back, none lent" {
	local h
	crash_coordinator compose.commit:1
	node_up nodeD # within the session timeout: the others saw it live
	eventually 20 node_online nodeD
	for h in nodeA nodeB nodeC nodeD; do
		eventually 10 comp_is $h job available ""
		eventually 5 state_is $h $A1 available ""
		eventually 5 state_is $h $C1 available ""
	done
}

@test "a coordinator that crashes after its composition's lend is committed: all of it stays lent" {
	local h
	crash_coordinator compose.done:1
	sleep $((SESSION_S + 2)) # nodeD is not live: nothing to settle
	for h in nodeA nodeB nodeC; do
		comp_is $h job lent nodeB
		state_is $h $A1 lent nodeB
		state_is $h $C1 lent nodeB
	done
	write_fails "$(cdev nodeA $A1)/borrower" "\n" "Device or resource busy"
	echo >"$(comp nodeA job)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 comp_is $h job available ""
		eventually 5 state_is $h $C1 available ""
	done
}

@test "the borrower's daemon dies: its members are taken back and the composition is returned, once, on every mount" {
	local h
	cluster_up nodeA nodeB nodeC
	job_a1_c1 nodeA
	echo nodeB >"$(comp nodeC job)/borrower"
	for h in nodeA nodeC; do
		eventually 5 comp_is $h job lent nodeB
	done
	node_kill nodeB
	# each lender takes its member back after the session timeout (2 s);
	# then the composition, stored as lent, is returned
	for h in nodeA nodeC; do
		eventually $((SESSION_S * 5)) comp_is $h job available ""
		state_is $h $A1 available ""
		state_is $h $C1 available ""
		eventually 5 grep -qE " composition:job composition-returned borrower=nodeB devices=$A1,$C1 cause=take-back( |\$)" "$(mnt $h)/events"
		run grep -cE " composition:job composition-returned " "$(mnt $h)/events"
		assert_output 1
		run cat "$(comp $h job)/last_error"
		assert_output ""
	done
	grep -q "composition job: members of its lend to nodeB were taken back: the rest returned" \
		"$CTMP/log.nodeA" "$CTMP/log.nodeC"
	# the borrower comes back to it available, and it can be lent again
	node_up nodeB
	eventually 20 node_online nodeB
	comp_is nodeB job available ""
	echo nodeB >"$(comp nodeA job)/borrower"
	eventually 5 comp_is nodeB job lent nodeB
	echo >"$(comp nodeB job)/borrower"
	for h in nodeA nodeB nodeC; do
		eventually 5 comp_is $h job available ""
	done
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
