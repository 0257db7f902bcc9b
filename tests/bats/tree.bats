#!/usr/bin/env bats
# The shape of the tree (SPEC section 3) and the content of every
# attribute of every device of conf/demo.ini.

load helpers

setup() {
	lendfs_mount
}

teardown() {
	lendfs_unmount
}

# Value of KEY in [device ID] of conf/demo.ini ("" if absent).
demo_key() {
	awk -v sec="[device $1]" -v key="$2" '
		/^\[/ { in_sec = ($0 == sec) }
		in_sec && $1 == key && $2 == "=" { print $3 }
	' "$DEMO"
}

demo_devices() {
	sed -n 's/^\[device \(.*\)\]$/\1/p' "$DEMO" | sort
}

@test "the top level has version, lends, events, metrics, devices, hosts, fabric, compositions" {
	run ls "$MNT"
	assert_success
	assert_output "$(printf '%s\n' compositions devices events fabric hosts lends metrics version)"
	run cat "$MNT/version"
	assert_output "$("$LENDFS" --version | cut -d' ' -f2)"
	run stat -c '%a %U %G %F' "$MNT/devices" "$MNT/version"
	assert_line --index 0 "755 root root directory"
	assert_line --index 1 "444 root root regular file"
}

@test "devices/ lists exactly the devices of the config" {
	run ls "$MNT/devices"
	assert_success
	assert_output "$(demo_devices)"
}

@test "cat every attribute of every device" {
	local id attr
	for id in $(demo_devices); do
		d="$(dev "$id")"
		for attr in vendor device class subsystem_vendor \
			subsystem_device lender borrower state last_error \
			lease resource windows path; do
			run cat "$d/$attr"
			assert_success
		done
		for attr in vendor device subsystem_vendor subsystem_device; do
			run cat "$d/$attr"
			assert_output "$(printf '0x%04x' "$(demo_key "$id" "$attr")")"
		done
		run cat "$d/class"
		assert_output "$(printf '0x%06x' "$(demo_key "$id" class)")"
		run cat "$d/lender"
		assert_output "${id%%:*}"
		run cat "$d/state"
		assert_output available
		# exactly "\n": config tools compare checksums
		run od -An -c "$d/borrower"
		assert_output "  \\n"
		run od -An -c "$d/last_error"
		assert_output "  \\n"
		run cat "$d/resource"
		assert_equal "${#lines[@]}" 6
		for line in "${lines[@]}"; do
			assert_regex "$line" '^0x[0-9a-f]{16} 0x[0-9a-f]{16} 0x[0-9a-f]{16}$'
		done
		run cat "$d/windows"
		assert_output ""
		run cat "$d/path"
		assert_output ""
		run stat -c %s "$d/lease" # not lent: no lease, no bytes
		assert_output 0
		run ls "$d/peers"
		assert_success
		assert_output ""
	done
}

@test "resource shows each BAR as start end flags, like sysfs" {
	# GPU: bar0 = 16M, bar1 = 64M, the others unused
	run cat "$(dev $GPU)/resource"
	local start end
	read -r start end _ <<<"${lines[0]}"
	assert_equal "$((end - start + 1))" "$((16 << 20))"
	read -r start end _ <<<"${lines[1]}"
	assert_equal "$((end - start + 1))" "$((64 << 20))"
	assert_equal "${lines[2]}" "0x0000000000000000 0x0000000000000000 0x0000000000000000"
}

@test "attribute modes: borrower 0664, the rest 0444, owned by root:lendfs" {
	# docs/PERMISSIONS.md: without a `lendfs` group, 0644 and root:root
	local rw=664 gid
	gid="$(getent group lendfs | cut -d: -f3)"
	[ -n "$gid" ] || { rw=644; gid=0; }
	d="$(dev $GPU)"
	run stat -c '%a %u %g' "$d/borrower" "$d/state" "$d/vendor" \
		"$MNT/hosts/nodeA/state" "$MNT/fabric/links"
	assert_line --index 0 "$rw 0 $gid"
	assert_line --index 1 "444 0 $gid"
	assert_line --index 2 "444 0 $gid"
	assert_line --index 3 "$rw 0 $gid"
	assert_line --index 4 "444 0 $gid"
}

@test "st_size is the length of the content" {
	run stat -c %s "$(dev $GPU)/vendor" "$(dev $GPU)/borrower"
	assert_line --index 0 7
	assert_line --index 1 1
}

@test "hosts/ has one directory per host with state, lent/, borrowed/, vms/" {
	run ls "$MNT/hosts"
	assert_output "$(printf '%s\n' nodeA nodeB nodeC nodeD)"
	run ls "$MNT/hosts/nodeA"
	assert_output "$(printf '%s\n' borrowed lent state vms)"
	run cat "$MNT/hosts/nodeA/state"
	assert_output online
	for sub in lent borrowed vms; do
		run ls "$MNT/hosts/nodeA/$sub"
		assert_success
		assert_output ""
	done
}

@test "fabric/ renders links and a Graphviz topology" {
	run cat "$MNT/fabric/links"
	assert_success
	assert_line --partial "nodeA"
	assert_equal "${#lines[@]}" 5
	run cat "$MNT/fabric/topology.dot"
	assert_success
	assert_line --index 0 --partial "graph"
}

@test "metrics is Prometheus text" {
	run cat "$MNT/metrics"
	assert_success
	assert_line --regexp '^# (HELP|TYPE) '
}

@test "unknown names are ENOENT, and lookups do not invent devices" {
	run cat "$MNT/devices/nodeA:0000:99:00.0/state"
	assert_failure
	assert_output --partial "No such file or directory"
	run cat "$MNT/hosts/nodeZ/state"
	assert_output --partial "No such file or directory"
	run cat "$MNT/nonexistent"
	assert_output --partial "No such file or directory"
	run cat "$(dev $GPU)/peers/$NIC"
	assert_output --partial "No such file or directory"
}

@test "read-only files refuse writes with EACCES" {
	run bash -c "echo x > '$(dev $GPU)/state'"
	assert_failure
	assert_output --partial "Permission denied"
	run bash -c "echo x > '$MNT/version'"
	assert_output --partial "Permission denied"
	run cat "$(dev $GPU)/state"
	assert_output available
}

@test "files cannot be created outside device directories, nor deleted" {
	run touch "$MNT/hosts/newfile"
	assert_failure
	assert_output --partial "Permission denied"
	run rm -f "$(dev $GPU)/state"
	assert_failure
	assert_output --partial "Operation not permitted"
	run mkdir "$(dev $GPU)/sub"
	assert_failure
	assert_output --partial "Operation not permitted"
}
