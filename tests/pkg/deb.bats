#!/usr/bin/env bats
# The Debian package (issue 21, docs/ADMIN.md "The Debian package"), run by
# `make check-deb` as root: it installs into this machine.
#
# The tests run in order and build on one another: a copy of the tree is
# built with dpkg-buildpackage (the worktree stays as it was), lintian
# checks the result, apt-get installs it, the installed daemon mounts the
# installed example configuration, and apt-get purge removes it all.
# teardown_file purges the package and removes the group if a test stopped
# half-way, so the machine is left as it was found.

load ../bats/helpers

PKG="$BATS_FILE_TMPDIR/pkg"	# the copy of the tree is $PKG/lendfs
MARK="$BATS_FILE_TMPDIR/marks"	# what the machine had before the tests
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=120)

# Nothing runs on a machine where the tests would change what they did
# not make: not as a user, not over an installed lendfs (make install or a
# package), not outside a git work tree (the copy is git's file list).
setup_file() {
	mkdir -p "$MARK"
	[ "$(id -u)" -eq 0 ] || fail "make check-deb installs the package: run it as root"
	local st p
	st="$(dpkg-query -W -f='${db:Status-Status}' lendfs 2>/dev/null || true)"
	[ -z "$st" ] || [ "$st" = not-installed ] ||
		fail "a lendfs package is on this machine ($st): the tests would replace and purge it"
	for p in /etc/lendfs /var/lib/lendfs /run/lendfs /usr/sbin/lendfs \
		/usr/local/sbin/lendfs; do
		[ ! -e "$p" ] ||
			fail "$p exists (make install?): the tests would overwrite or remove it"
	done
	git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
		fail "$ROOT is not a git work tree: the copy is made of git's file list"
	if getent group lendfs >/dev/null; then
		touch "$MARK/group-existed"
	fi
}

# Undo what the tests did if one stopped half-way (marks in $MARK).
teardown_file() {
	[ -e "$MARK/installed" ] || return 0
	local st
	st="$(dpkg-query -W -f='${db:Status-Status}' lendfs 2>/dev/null || true)"
	if [ -n "$st" ] && [ "$st" != not-installed ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge "${APT_OPTS[@]}" lendfs \
			>/dev/null 2>&1 || true
	fi
	# what the purge test made, if a broken postrm left it
	if [ -e "$MARK/made-state" ]; then
		rm -rf /var/lib/lendfs /run/lendfs
	fi
	if [ -e "$MARK/made-lend" ] && [ -d /lend ] && ! mountpoint -q /lend; then
		rmdir /lend 2>/dev/null || true
	fi
	if [ ! -e "$MARK/group-existed" ] && getent group lendfs >/dev/null; then
		groupdel lendfs
	fi
	return 0
}

teardown() {
	lendfs_unmount
}

# deb: the path of the built lendfs_*.deb (exactly one).
deb() {
	local debs=("$PKG"/lendfs_*_*.deb)
	if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
		echo "no single lendfs_*.deb in $PKG: ${debs[*]}" >&2
		return 1
	fi
	echo "${debs[0]}"
}

# fortified LOG: every source of the package is compiled in the build
# log LOG, and every compile has dpkg-buildflags' CPPFLAGS
# (-D_FORTIFY_SOURCE=2: each compile rule of the Makefile passes
# $(CPPFLAGS); debian/rules adds nothing to CFLAGS).
fortified() {
	local f srcs compiles
	srcs="$(git -C "$ROOT" ls-files 'core/*.c' 'lendfs/*.c' 'contrib/slurm/*.c')"
	[ -n "$srcs" ] || fail "no sources listed by git in $ROOT"
	compiles="$(grep -E '^\S*(cc|gcc|clang)(-[0-9]+)? .*\.c( |$)' "$1" || true)"
	for f in $srcs; do
		grep -qE " $f( |\$)" <<<"$compiles" || fail "the build log has no compile of $f"
	done
	run grep -v -e -D_FORTIFY_SOURCE=2 <<<"$compiles"
	assert_output ""
}

# The section of docs/ADMIN.md about the package.
admin_section() {
	awk '/^## The Debian package/ { p = 1; print; next }
	     /^## / { p = 0 } p' "$ROOT/docs/ADMIN.md"
}

@test "dpkg-buildpackage builds lendfs_*.deb from a copy; the worktree stays as it was" {
	local before
	before="$(git -C "$ROOT" status --porcelain --ignored)"
	mkdir -p "$PKG/lendfs"
	# tracked files as they are now, and new ones not ignored (git add -N
	# or not): what `git diff` and `git status` would show
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$f" ] && printf '%s\0' "$f"
		done | tar --null -T - -cf -) | tar -xf - -C "$PKG/lendfs"
	run env -C "$PKG/lendfs" DEB_BUILD_OPTIONS="parallel=2" \
		timeout 600 dpkg-buildpackage -us -uc -b
	echo "$output" >"$PKG/build.log"
	[ "$status" -eq 0 ] || { tail -n 40 "$PKG/build.log"; fail "dpkg-buildpackage failed"; }
	# debian/rules ran every unit test binary (make check-unit)
	local units ran
	units="$(find "$ROOT/tests/unit" -maxdepth 1 -name 'test_*.c' | wc -l)"
	ran="$(grep -c '^== build/tests/test_' "$PKG/build.log" || true)"
	[ "$ran" -eq "$units" ] || fail "the build ran $ran of $units unit test binaries"
	fortified "$PKG/build.log"
	run deb
	assert_success
	assert_output --regexp "/lendfs_[0-9.]+_[a-z0-9]+\.deb$"
	local changes=("$PKG"/lendfs_*.changes)
	[ -f "${changes[0]}" ] || fail "no lendfs_*.changes in $PKG"
	run git -C "$ROOT" status --porcelain --ignored
	assert_output "$before"
}

@test "lintian: no error; every warning is listed in docs/ADMIN.md" {
	run deb
	assert_success
	run lintian --fail-on error "$PKG"/lendfs_*.changes
	echo "$output"
	assert_success
	refute_line --regexp '^E: '
	# an info tag, not shown by default: every binary uses fortified calls
	run lintian --tags hardening-no-fortify-functions "$PKG"/lendfs_*.changes
	echo "$output"
	assert_success
	refute_output --partial hardening-no-fortify-functions
	local section tag
	section="$(admin_section)"
	[ -n "$section" ] || fail "docs/ADMIN.md has no section 'The Debian package'"
	for tag in $(printf '%s\n' "$output" | sed -n 's/^W: [^:]*: \([a-z0-9+.-]*\).*/\1/p' | sort -u); do
		grep -qF -- "$tag" <<<"$section" ||
			fail "lintian warning $tag is not listed in docs/ADMIN.md"
	done
}

@test "the package holds every file in its place; /etc/lendfs/lendfs.conf is a conffile" {
	local d
	d="$(deb)"
	run bash -c "dpkg-deb -c '$d' | awk '{ print substr(\$1, 1, 10), \$6 }'"
	assert_success
	assert_line "-rwxr-xr-x ./usr/sbin/lendfs"
	assert_line "-rwxr-xr-x ./usr/bin/lendctl"
	assert_line "-rwxr-xr-x ./usr/bin/lendfs-dma"
	assert_line "-rwxr-xr-x ./usr/bin/lendfs-wait"
	assert_line "-rw-r--r-- ./lib/systemd/system/lendfs.service"
	assert_line "-rw-r--r-- ./lib/udev/rules.d/60-lendfs.rules"
	assert_line "-rwxr-xr-x ./lib/udev/lendfs-udev-helper"
	assert_line "-rw-r--r-- ./etc/lendfs/lendfs.conf"
	assert_line "-rw-r--r-- ./usr/share/man/man8/lendfs.8.gz"
	assert_line "-rw-r--r-- ./usr/share/man/man5/lendfs.conf.5.gz"
	assert_line "-rw-r--r-- ./usr/share/man/man7/lendfs.7.gz"
	assert_line "-rw-r--r-- ./usr/share/man/man1/lendctl.1.gz"
	assert_line "-rw-r--r-- ./usr/share/man/man1/lendfs-dma.1.gz"
	assert_line "-rw-r--r-- ./usr/share/man/man1/lendfs-wait.1.gz"
	assert_line "-rw-r--r-- ./usr/share/bash-completion/completions/lendfs"
	assert_line "-rw-r--r-- ./usr/share/bash-completion/completions/lendctl"
	assert_line "-rw-r--r-- ./usr/share/doc/lendfs/ABI/devices-ID-borrower"
	assert_line "-rw-r--r-- ./usr/share/doc/lendfs/examples/demo.ini"
	assert_line "-rw-r--r-- ./usr/share/doc/lendfs/copyright"
	# nothing the Makefile's default PREFIX would put elsewhere
	refute_output --partial "usr/local"
	# the ABI entries keep their names (not compressed)
	refute_line --regexp '/ABI/.*\.gz$'
	run dpkg-deb -f "$d" Depends
	assert_output --regexp '(^|, )adduser(,|$)'
	assert_output --regexp '(^|, )fuse3(,|$)'
	assert_output --partial "libfuse3-3"
	run dpkg-deb -I "$d" conffiles
	assert_output "/etc/lendfs/lendfs.conf"
	# the shipped config is the example, byte for byte
	run bash -c "dpkg-deb --fsys-tarfile '$d' | tar -xOf - ./etc/lendfs/lendfs.conf |
		cmp - '$ROOT/conf/lendfs.conf.example'"
	assert_success
}

@test "apt-get install ./lendfs_*.deb installs it and creates the lendfs system group" {
	local d
	d="$(deb)"
	touch "$MARK/installed"
	run env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "$d"
	echo "$output"
	assert_success
	run dpkg-query -W -f='${db:Status-Status} ${Version}' lendfs
	assert_output --regexp '^installed [0-9]'
	# for the purge test
	dpkg -L lendfs >"$PKG/files"
	grep -qx /usr/sbin/lendfs "$PKG/files"
	run getent group lendfs
	assert_success
	local gid
	gid="$(getent group lendfs | cut -d: -f3)"
	# a system group: below FIRST_GID (adduser.conf(5), 1000)
	[ "$gid" -lt 1000 ] || fail "group lendfs has gid $gid: not a system group"
	# not enabled, so not started (the config is an example)
	[ ! -e /etc/systemd/system/multi-user.target.wants/lendfs.service ] ||
		fail "the package enabled lendfs.service"
}

@test "the installed lendfs --version, lendctl, unit and man page" {
	local version
	version="$(dpkg-query -W -f='${Version}' lendfs)"
	run /usr/sbin/lendfs --version
	assert_success
	# the package's version is the program's (upstream part of it)
	assert_output "lendfs ${version%%-*}"
	run lendctl
	assert_failure 2
	assert_output --partial "no command given"
	run lendctl --help
	assert_success
	assert_line --regexp '^usage: lendctl '
	run command -v lendfs-wait
	assert_output /usr/bin/lendfs-wait
	run systemd-analyze verify /lib/systemd/system/lendfs.service
	assert_success
	assert_output ""
	run grep '^ExecStart=' /lib/systemd/system/lendfs.service
	assert_output --regexp '^ExecStart=/usr/sbin/lendfs -f -c /etc/lendfs/lendfs.conf '
	run env MANWIDTH=80 man 8 lendfs
	assert_success
	assert_output --partial "lendfs - PCIe device lending"
	run env MANWIDTH=80 man 1 lendfs-dma
	assert_success
	assert_output --partial "lendfs-dma - move bytes through the simulated fabric"
	run env MANWIDTH=80 man 1 lendfs-wait
	assert_success
	assert_output --partial "lendfs-wait - wait with poll(2)"
	run bash -c "source /usr/share/bash-completion/completions/lendctl; complete -p lendctl"
	assert_output "complete -F _lendctl lendctl"
}

@test "the installed daemon mounts the installed example config; lendctl lends" {
	LENDFS=/usr/sbin/lendfs
	lendfs_mount /etc/lendfs/lendfs.conf
	run cat "$MNT/devices/nodeA:0000:65:00.0/state"
	assert_output available
	# the write group is the package's lendfs group (docs/PERMISSIONS.md)
	run stat -c '%G %a' "$MNT/devices/nodeA:0000:65:00.0/borrower"
	assert_output "lendfs 664"
	run lendctl -m "$MNT" lend nodeA:0000:65:00.0 nodeB
	assert_success
	run cat "$MNT/devices/nodeA:0000:65:00.0/state"
	assert_output lent
	run lendctl -m "$MNT" ls
	assert_line --regexp '^nodeA:0000:65:00\.0 +lent +nodeB +nodeA$'
	assert_line --regexp '^nodeB:0000:17:00\.0 +available '
	run lendctl -m "$MNT" return nodeA:0000:65:00.0
	assert_success
	run cat "$MNT/devices/nodeA:0000:65:00.0/state"
	assert_output available
}

@test "apt-get remove keeps the config and the state; purge leaves no file; the group is kept" {
	[ -s "$PKG/files" ] || fail "no file list: the install test did not run"
	# what the unit and the admin leave: a state database (StateDirectory=),
	# the sim fabric's files (RuntimeDirectory=), the mount point
	# (ExecStartPre=), a changed conffile
	touch "$MARK/made-state"
	mkdir -p /var/lib/lendfs /run/lendfs/hosts
	/usr/sbin/lendfs --check -c /etc/lendfs/lendfs.conf --state /var/lib/lendfs/state.db
	[ -s /var/lib/lendfs/state.db ] || fail "lendfs --check made no state database"
	touch /run/lendfs/hosts/nodeA
	if [ ! -e /lend ]; then
		touch "$MARK/made-lend"
		mkdir /lend
	fi
	echo "; changed by the admin" >>/etc/lendfs/lendfs.conf
	run env DEBIAN_FRONTEND=noninteractive apt-get remove "${APT_OPTS[@]}" lendfs
	echo "$output"
	assert_success
	run dpkg-query -W -f='${db:Status-Status}' lendfs
	assert_output config-files
	if [ -e /usr/sbin/lendfs ] || [ -e /lib/systemd/system/lendfs.service ]; then
		fail "apt-get remove left the programs or the unit"
	fi
	run tail -n 1 /etc/lendfs/lendfs.conf
	assert_output "; changed by the admin"
	[ -s /var/lib/lendfs/state.db ] || fail "apt-get remove removed the state database"
	run env DEBIAN_FRONTEND=noninteractive apt-get purge "${APT_OPTS[@]}" lendfs
	echo "$output"
	assert_success
	local st
	st="$(dpkg-query -W -f='${db:Status-Status}' lendfs 2>/dev/null || true)"
	[ -z "$st" ] || [ "$st" = not-installed ] || fail "after purge, lendfs is '$st'"
	local f left=()
	while IFS= read -r f; do
		[ "$f" != /. ] || continue
		[ -e "$f" ] || [ -L "$f" ] || continue
		# a directory (or /lib, a link to one) may stay if another package owns it too
		if [ -d "$f" ] && dpkg -S "$f" >/dev/null 2>&1; then
			continue
		fi
		left+=("$f")
	done <"$PKG/files"
	[ ${#left[@]} -eq 0 ] || fail "left behind: ${left[*]}"
	[ ! -e /etc/lendfs ]
	[ ! -e /var/lib/lendfs ]
	[ ! -e /run/lendfs ]
	[ ! -e "$MARK/made-lend" ] || [ ! -e /lend ] || fail "purge left /lend"
	run find /etc/systemd /var/lib/systemd /var/lib/dpkg/info -name '*lendfs*'
	assert_output ""
	# kept, as documented (debian/lendfs.postrm, docs/ADMIN.md)
	run getent group lendfs
	assert_success
}
