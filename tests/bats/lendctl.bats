#!/usr/bin/env bats
# contrib/lendctl (a CLI that only reads and writes the mount) and the bash
# completion of lendctl and lendfs (contrib/completion/).

load helpers

LENDCTL="$ROOT/contrib/lendctl"
COMPLETION="$ROOT/contrib/completion"

setup() {
	lendfs_mount
	export LENDFS_MOUNT="$MNT"
}

teardown() {
	lendfs_unmount
}

@test "ls: one row per device with state, borrower and lender" {
	lend $GPU nodeB
	run "$LENDCTL" ls
	assert_success
	assert_line --index 0 --regexp '^DEVICE +STATE +BORROWER +LENDER$'
	assert_line --regexp "^$GPU +lent +nodeB +nodeA$"
	assert_line --regexp "^$NIC +available +- +nodeB$"
	[ "${#lines[@]}" -eq $((1 + $(ls "$MNT/devices" | wc -l))) ]
}

@test "lend and return write borrower; state follows" {
	run "$LENDCTL" lend $GPU nodeC
	assert_success
	assert_output ""
	run cat "$(dev $GPU)/borrower"
	assert_output nodeC
	run cat "$(dev $GPU)/state"
	assert_output lent
	run "$LENDCTL" return $GPU
	assert_success
	run cat "$(dev $GPU)/state"
	assert_output available
	run cat "$(dev $GPU)/borrower"
	assert_output ""
}

@test "a failed lend prints the errno text and last_error, exit 1" {
	lend $GPU nodeB
	run "$LENDCTL" lend $GPU nodeC
	assert_failure 1
	assert_line --index 0 "lendctl: cannot lend $GPU to nodeC: Device or resource busy"
	assert_line --index 1 "lendctl: last_error: EBUSY: lent to nodeB; return it first"
	run "$LENDCTL" lend $NIC nodeZ
	assert_failure 1
	assert_line --index 0 "lendctl: cannot lend $NIC to nodeZ: Invalid argument"
	assert_line --index 1 --regexp "^lendctl: last_error: EINVAL: .*nodeZ"
	run "$LENDCTL" lend $ROOTFS nodeB
	assert_failure 1
	assert_line --index 0 "lendctl: cannot lend $ROOTFS to nodeB: Operation not permitted"
	assert_line --index 1 --regexp "^lendctl: last_error: EPERM: "
	run cat "$(dev $GPU)/borrower"
	assert_output nodeB
}

@test "show prints every attribute, multi-line ones indented, and peers" {
	lend $GPU nodeB
	lend nodeC:0000:5e:00.0 nodeB
	run "$LENDCTL" show $GPU
	assert_success
	assert_line --index 0 "device: $GPU"
	assert_line --index 1 "state: lent"
	assert_line --index 2 "borrower: nodeB"
	assert_line --index 3 "lender: nodeA"
	assert_line "vendor: 0x10de"
	assert_line "class: 0x030200"
	assert_line "path:"
	assert_line "    nodeA -> nodeB latency_ns 370 ntb"
	assert_line "windows:"
	assert_line --regexp '^    lut nodeB '
	assert_line "resource:"
	assert_line "peer nodeC:0000:5e:00.0:"
	local attr
	for attr in "$(dev $GPU)"/*; do
		[ -f "$attr" ] || continue
		assert_line --regexp "^${attr##*/}:( |$)"
	done
}

@test "show, lend and return refuse unknown devices and bad usage" {
	run "$LENDCTL" show nodeA:0000:99:00.0
	assert_failure 1
	assert_output "lendctl: no device nodeA:0000:99:00.0 in $MNT/devices"
	run "$LENDCTL" lend ../../version nodeB
	assert_failure 1
	assert_output --partial "malformed device id"
	run "$LENDCTL" lend $GPU
	assert_failure 2
	run "$LENDCTL" frobnicate
	assert_failure 2
	assert_output --partial "unknown command 'frobnicate'"
	run "$LENDCTL"
	assert_failure 2
}

@test "-m MOUNT beats LENDFS_MOUNT; a path that is not a mount is an error" {
	run env LENDFS_MOUNT=/nonexistent "$LENDCTL" -m "$MNT" ls
	assert_success
	assert_line --regexp "^$GPU "
	run env LENDFS_MOUNT=/nonexistent "$LENDCTL" ls
	assert_failure 1
	assert_output "lendctl: /nonexistent is not a lendfs mount (no /nonexistent/version)"
}

@test "hosts lists every host and its state" {
	echo offline >"$MNT/hosts/nodeD/state"
	run "$LENDCTL" hosts
	assert_success
	assert_line --regexp '^nodeA +online$'
	assert_line --regexp '^nodeD +offline$'
}

@test "topology prints the dot file, --svg renders it with Graphviz" {
	command -v dot >/dev/null || skip "graphviz not installed"
	lend $GPU nodeB
	run "$LENDCTL" topology
	assert_success
	assert_output "$(cat "$MNT/fabric/topology.dot")"
	run "$LENDCTL" topology --svg "$TMP/t.svg"
	assert_success
	run grep -c "<svg" "$TMP/t.svg"
	assert_output 1
	grep -q "$GPU" "$TMP/t.svg"
	run "$LENDCTL" topology --svg
	assert_failure 2
}

# comp SCRIPT FUNC LINE: what completing LINE (cursor at its end) offers,
# one reply per line, in a fresh bash with only that completion loaded.
comp() {
	bash -c '
		source "$1"
		COMP_WORDBREAKS=$'"'"'"\x27><=;|&(:'"'"'
		COMP_LINE=$3
		COMP_POINT=${#COMP_LINE}
		read -ra COMP_WORDS <<<"$COMP_LINE"
		COMP_CWORD=${#COMP_WORDS[@]}
		[[ $COMP_LINE == *" " ]] || COMP_CWORD=$((COMP_CWORD - 1))
		COMPREPLY=()
		"$2"
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$@"
}

@test "completion: lendctl is registered and completes subcommands" {
	run bash -c "source '$COMPLETION/lendctl'; complete -p lendctl"
	assert_success
	assert_output "complete -F _lendctl lendctl"
	run comp "$COMPLETION/lendctl" _lendctl "lendctl "
	assert_output "$(printf '%s\n' ls lend return show hosts topology wait events help)"
	run comp "$COMPLETION/lendctl" _lendctl "lendctl re"
	assert_output return
	run comp "$COMPLETION/lendctl" _lendctl "lendctl -"
	assert_output "$(printf '%s\n' -m -h --help)"
}

@test "completion: lendctl completes device ids and host names from the mount" {
	run comp "$COMPLETION/lendctl" _lendctl "lendctl lend "
	assert_output "$(ls "$MNT/devices")"
	run comp "$COMPLETION/lendctl" _lendctl "lendctl show nodeB"
	assert_output "$(printf '%s\n' nodeB:0000:17:00.0 nodeB:0000:65:00.0)"
	# bash splits words at ':': the reply is what follows the last one
	run comp "$COMPLETION/lendctl" _lendctl "lendctl show nodeA:0000:6"
	assert_output "65:00.0"
	run comp "$COMPLETION/lendctl" _lendctl "lendctl lend $GPU "
	assert_output "$(printf '%s\n' nodeA nodeB nodeC nodeD)"
	run comp "$COMPLETION/lendctl" _lendctl "lendctl lend $GPU nodeC "
	assert_output ""
	# VM borrowers: vm:HOST/VM, cut after the ':' bash splits at
	mkdir "$MNT/hosts/nodeB/vms/g1"
	run comp "$COMPLETION/lendctl" _lendctl "lendctl lend $GPU "
	assert_line vm:nodeB/g1
	run comp "$COMPLETION/lendctl" _lendctl "lendctl lend $GPU vm:n"
	assert_output nodeB/g1
	run comp "$COMPLETION/lendctl" _lendctl "lendctl topology "
	assert_output --svg
}

@test "completion: lendctl -m MOUNT reads that mount" {
	run env LENDFS_MOUNT=/nonexistent bash -c '
		source "$1"
		COMP_LINE="lendctl -m $2 return nodeD"; COMP_POINT=${#COMP_LINE}
		_lendctl; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPLETION/lendctl" "$MNT"
	assert_output nodeD:0000:3b:00.0
}

@test "completion: lendfs options, values, and hosts of the config" {
	run bash -c "source '$COMPLETION/lendfs'; complete -p lendfs"
	assert_output "complete -F _lendfs lendfs"
	run comp "$COMPLETION/lendfs" _lendfs "lendfs --ch"
	assert_output --check
	run comp "$COMPLETION/lendfs" _lendfs "lendfs --inventory "
	assert_output "$(printf '%s\n' config udev)"
	run comp "$COMPLETION/lendfs" _lendfs "lendfs --inventory=u"
	assert_output udev
	run comp "$COMPLETION/lendfs" _lendfs "lendfs -c $DEMO --host "
	assert_output "$(printf '%s\n' nodeA nodeB nodeC nodeD)"
	run comp "$COMPLETION/lendfs" _lendfs "lendfs --config=$DEMO --host=nodeC"
	assert_output nodeC
	run comp "$COMPLETION/lendfs" _lendfs "lendfs --state no"
	assert_output none
	run comp "$COMPLETION/lendfs" _lendfs "lendfs --group=roo"
	assert_output root
	run comp "$COMPLETION/lendfs" _lendfs "lendfs -"
	assert_line --check
	assert_line --version
	assert_line --run-dir=
	assert_line --group=
	assert_line -f
	# every long option of lendfs --help is offered
	local opt
	for opt in $("$LENDFS" --help | grep -oE -- '--[a-z-]+' | sort -u); do
		assert_line --regexp "^$opt=?$"
	done
}

@test "completion: wait offers devices, then states, then --timeout" {
	run comp "$COMPLETION/lendctl" _lendctl "lendctl wait nodeD"
	assert_output nodeD:0000:3b:00.0
	run comp "$COMPLETION/lendctl" _lendctl "lendctl wait $GPU "
	assert_output "$(printf '%s\n' available lending lent returning failed offline)"
	run comp "$COMPLETION/lendctl" _lendctl "lendctl wait $GPU lent --"
	assert_output --timeout
}

@test "completion: events offers --follow" {
	run comp "$COMPLETION/lendctl" _lendctl "lendctl events "
	assert_output --follow
	run comp "$COMPLETION/lendctl" _lendctl "lendctl ev"
	assert_output events
}

@test "lendctl events prints the log; a bad argument is a usage error" {
	"$LENDCTL" lend $GPU nodeB
	run "$LENDCTL" events
	assert_success
	assert_line --regexp "^[0-9]+ [0-9]{19} $GPU lent borrower=nodeB uid=$(id -u) pid=[0-9]+ comm=[a-z]+\$"
	run "$LENDCTL" events --tail
	assert_failure 2
	assert_output --partial "events: unknown argument '--tail'"
}
