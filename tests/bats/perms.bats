#!/usr/bin/env bats
# Permissions (docs/PERMISSIONS.md): everyone reads; root and members of
# the write group lend (borrower, hosts/HOST/state, temp files); everyone
# else gets EACCES.  The test creates a group and a member of it (both
# removed in teardown_file) and acts as them and as nobody via setpriv.

load helpers

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (creates a group and a user)"
	export LFS_GROUP="lfsg$$" LFS_USER="lfsu$$"
	groupadd "$LFS_GROUP"
	useradd -M -N -g nogroup -G "$LFS_GROUP" -d / -s /usr/sbin/nologin \
		"$LFS_USER"
	LFS_GID="$(getent group "$LFS_GROUP" | cut -d: -f3)"
	export LFS_GID
}

teardown_file() {
	[ -n "${LFS_USER:-}" ] && userdel "$LFS_USER" 2>/dev/null
	[ -n "${LFS_GROUP:-}" ] && groupdel "$LFS_GROUP" 2>/dev/null
	return 0
}

teardown() {
	lendfs_unmount
}

# mount with the test group; other users need allow_other to see it, and
# a way through $TMP (mktemp -d is 0700)
mount_shared() {
	lendfs_mount "${1:-$DEMO}" --group "$LFS_GROUP" -o allow_other
	chmod 0755 "$TMP"
}

# as_nobody CMD: a shell command as nobody:nogroup, no other group
as_nobody() {
	setpriv --reuid nobody --regid nogroup --clear-groups -- \
		bash -c "cd / && $1"
}

# as_member CMD: a shell command as the test user, a member of the group
as_member() {
	setpriv --reuid "$LFS_USER" --regid nogroup --init-groups -- \
		bash -c "cd / && $1"
}

@test "owner root, group the write group: borrower and host state 0664, device dirs 0775" {
	mount_shared
	d="$(dev $GPU)"
	run stat -c '%a %u %g' "$d/borrower" "$MNT/hosts/nodeA/state" "$d/state" \
		"$d" "$MNT/devices" "$MNT/hosts/nodeA" "$MNT/fabric/links" "$MNT"
	assert_line --index 0 "664 0 $LFS_GID"
	assert_line --index 1 "664 0 $LFS_GID"
	assert_line --index 2 "444 0 $LFS_GID"
	assert_line --index 3 "775 0 $LFS_GID"
	assert_line --index 4 "755 0 $LFS_GID"
	assert_line --index 5 "755 0 $LFS_GID"
	assert_line --index 6 "444 0 $LFS_GID"
	assert_line --index 7 "755 0 $LFS_GID"
}

@test "an unprivileged user reads everything and gets EACCES for every write" {
	mount_shared
	d="$(dev $GPU)"
	run as_nobody "cat '$d/state' '$d/borrower' '$d/vendor' '$MNT/lends' \
		'$MNT/hosts/nodeB/state' '$MNT/fabric/topology.dot' >/dev/null && ls '$d'"
	assert_success
	assert_output --partial borrower
	run as_nobody "echo nodeB > '$d/borrower'"
	assert_failure
	assert_output --partial "Permission denied"
	run as_nobody "echo > '$d/borrower'"
	assert_output --partial "Permission denied"
	run as_nobody "echo offline > '$MNT/hosts/nodeB/state'"
	assert_output --partial "Permission denied"
	run as_nobody "echo 5 > '$d/lease'"
	assert_output --partial "Permission denied"
	# no temp files, so no rename either
	run as_nobody "echo nodeB > '$d/.tmp1'"
	assert_output --partial "Permission denied"
	run as_nobody "truncate -s 0 '$d/borrower'"
	assert_output --partial "Permission denied"
	run as_nobody "chmod 666 '$d/borrower'"
	assert_output --partial "Operation not permitted"
	run cat "$d/state" "$MNT/hosts/nodeB/state"
	assert_output "$(printf 'available\nonline')"
	run ls -A "$d"
	refute_output --partial .tmp1
}

@test "nobody cannot return a device lent by root, nor take a host down" {
	mount_shared
	lend $GPU nodeB
	run as_nobody "echo > '$(dev $GPU)/borrower'"
	assert_output --partial "Permission denied"
	run as_nobody "echo nodeC > '$(dev $GPU)/borrower'"
	assert_output --partial "Permission denied"
	run as_nobody "echo offline > '$MNT/hosts/nodeA/state'"
	assert_output --partial "Permission denied"
	run cat "$(dev $GPU)/borrower" "$(dev $GPU)/state"
	assert_output "$(printf 'nodeB\nlent')"
}

@test "a member of the group lends, returns, and renames temp files over borrower" {
	mount_shared
	d="$(dev $GPU)"
	run as_member "echo nodeB > '$d/borrower' && cat '$d/state'"
	assert_success
	assert_output lent
	run as_member "echo > '$d/borrower' && cat '$d/state'"
	assert_output available
	# the Ansible way: a temp file, then rename(2) over borrower
	run as_member "echo nodeC > '$d/.ansible_tmp' && stat -c '%U' '$d/.ansible_tmp' &&
		mv '$d/.ansible_tmp' '$d/borrower' && cat '$d/borrower'"
	assert_success
	assert_line --index 0 "$LFS_USER"
	assert_line --index 1 nodeC
	run as_member "echo offline > '$MNT/hosts/nodeD/state' && cat '$MNT/hosts/nodeD/state'"
	assert_output offline
	run as_member "echo online > '$MNT/hosts/nodeD/state'"
	assert_success
	# errors reach the member like anyone else
	run as_member "echo nodeZ > '$(dev $NIC)/borrower'"
	assert_failure
	assert_output --partial "Invalid argument"
}

@test "a member's temp file is its own: nobody cannot read a 0600 one" {
	mount_shared
	d="$(dev $GPU)"
	run as_member "umask 077 && echo nodeB > '$d/.secret'"
	assert_success
	run as_nobody "cat '$d/.secret'"
	assert_failure
	assert_output --partial "Permission denied"
	run as_nobody "rm -f '$d/.secret'"
	assert_output --partial "Permission denied"
	rm -f "$d/.secret"
}

@test "[cluster] group in the config sets the write group" {
	sed "s/^name = demo$/name = demo\ngroup = $LFS_GROUP/" "$DEMO" >"$BATS_TEST_TMPDIR/g.ini"
	lendfs_mount "$BATS_TEST_TMPDIR/g.ini" -o allow_other
	chmod 0755 "$TMP"
	run stat -c '%a %g' "$(dev $GPU)/borrower"
	assert_output "664 $LFS_GID"
	run as_member "echo nodeB > '$(dev $GPU)/borrower'"
	assert_success
}

@test "a group that does not exist: logged, and only root writes (0644)" {
	lendfs_mount "$DEMO" --group "nosuchgroup$$" -o allow_other
	chmod 0755 "$TMP"
	run cat "$TMP/lendfs.log"
	assert_output --partial "group nosuchgroup$$ does not exist: only root can write"
	run stat -c '%a %u %g' "$(dev $GPU)/borrower" "$(dev $GPU)"
	assert_line --index 0 "644 0 0"
	assert_line --index 1 "755 0 0"
	run as_member "echo nodeB > '$(dev $GPU)/borrower'"
	assert_output --partial "Permission denied"
	lend $GPU nodeB
	run cat "$(dev $GPU)/state"
	assert_output lent
}

@test "without allow_other, other users cannot even look at the mount" {
	lendfs_mount "$DEMO" --group "$LFS_GROUP"
	chmod 0755 "$TMP"
	run as_member "cat '$(dev $GPU)/state'"
	assert_failure
	assert_output --partial "Permission denied"
	run cat "$(dev $GPU)/state"
	assert_output available
}
