#!/usr/bin/env bats
# The FUSE loop is multi-threaded: writers racing on one device must end
# with exactly one lend, and every writer naming the loser gets EBUSY.

load helpers

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

WRITERS=16 # per host

@test "32 concurrent writers, half nodeB and half nodeC: exactly one lend" {
	local b="$(dev $GPU)/borrower" i host pids=()
	mkdir "$TMP/res"
	# every writer waits for the same start signal, then writes once
	for ((i = 0; i < 2 * WRITERS; i++)); do
		if ((i % 2)); then host=nodeC; else host=nodeB; fi
		(
			for ((t = 0; t < 1000; t++)); do
				[ -e "$TMP/go" ] && break
				sleep 0.01
			done
			if echo "$host" >"$b" 2>"$TMP/res/$i.err"; then
				echo "$host 0" >"$TMP/res/$i"
			else
				echo "$host 1" >"$TMP/res/$i"
			fi
		) &
		pids+=($!)
	done
	touch "$TMP/go"
	for pid in "${pids[@]}"; do
		wait "$pid"
	done

	run cat "$(dev $GPU)/state"
	assert_output lent
	winner="$(cat "$(dev $GPU)/borrower")"
	[[ "$winner" == nodeB || "$winner" == nodeC ]]
	loser=nodeB
	[ "$winner" = nodeB ] && loser=nodeC

	local ok_winner=0 ok_loser=0 fail_loser=0
	for ((i = 0; i < 2 * WRITERS; i++)); do
		read -r host status <"$TMP/res/$i"
		if [ "$host" = "$loser" ]; then
			if [ "$status" = 0 ]; then
				ok_loser=$((ok_loser + 1))
			else
				fail_loser=$((fail_loser + 1))
				run cat "$TMP/res/$i.err"
				assert_output --partial "Device or resource busy"
			fi
		else
			if [ "$status" = 0 ]; then
				ok_winner=$((ok_winner + 1))
			else
				# only EBUSY, while the winning lend was in flight
				run cat "$TMP/res/$i.err"
				assert_output --partial "Device or resource busy"
			fi
		fi
	done
	assert_equal "$ok_loser" 0
	assert_equal "$fail_loser" "$WRITERS"
	[ "$ok_winner" -ge 1 ]

	run grep -c "^$GPU " "$MNT/lends"
	assert_output 1
	run cat "$MNT/lends"
	assert_equal "${#lines[@]}" 1
	run ls "$MNT/hosts/$winner/borrowed"
	assert_output "$GPU"
	run ls "$MNT/hosts/$loser/borrowed"
	assert_output ""
	run cat "$(dev $GPU)/last_error"
	assert_output --regexp "^EBUSY: "
}

@test "concurrent lends of different devices all succeed" {
	local pids=() id
	for id in $GPU $NIC nodeB:0000:65:00.0 nodeC:0000:5e:00.0 \
		nodeC:0000:af:00.0 nodeD:0000:3b:00.0; do
		(echo nodeA >"$(dev $id)/borrower" 2>/dev/null ||
			echo nodeB >"$(dev $id)/borrower") &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid"
	done
	run cat "$MNT/lends"
	assert_equal "${#lines[@]}" 6
}
