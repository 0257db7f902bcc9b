#!/usr/bin/env bats
# make install / make uninstall into a DESTDIR: every file in its place
# with its mode, PREFIX and the directory variables honoured, the unit
# rewritten to the installed daemon, a changed config kept, nothing left
# behind.  The installed daemon, lendctl and config work together.

load helpers

setup() {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	LENDFS_PID=
	D="$BATS_TEST_TMPDIR/root" # survives lendfs_unmount
}

teardown() {
	lendfs_unmount
}

# mk TARGET [VAR=VALUE...]: make in the source tree, this test's build,
# without the variables of a `make check` we may be running under.
mk() {
	local target=$1
	shift
	timeout 300 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u PREFIX -u DESTDIR \
		make -C "$ROOT" --no-print-directory BUILD="$BUILD_DIR" \
		DESTDIR="$D" "$@" "$target"
}

# installed: every file under DESTDIR with its mode, sorted.
installed() {
	(cd "$D" && find . -type f -printf '%m %P\n' | sort -k2)
}

@test "install with PREFIX=/usr puts every file in its Debian place" {
	run mk install PREFIX=/usr
	assert_success
	run installed
	assert_line "755 usr/sbin/lendfs"
	assert_line "755 usr/bin/lendctl"
	assert_line "755 usr/bin/lendfs-dma"
	assert_line "755 usr/bin/lendfs-wait"
	assert_line "644 usr/lib/systemd/system/lendfs.service"
	assert_line "644 usr/lib/$(cc -print-multiarch)/slurm-wlm/lendfs_spank.so"
	assert_line "644 etc/lendfs/lendfs.conf"
	assert_line "644 usr/share/man/man8/lendfs.8"
	assert_line "644 usr/share/man/man5/lendfs.conf.5"
	assert_line "644 usr/share/man/man7/lendfs.7"
	assert_line "644 usr/share/man/man1/lendctl.1"
	assert_line "644 usr/share/man/man1/lendfs-dma.1"
	assert_line "644 usr/share/man/man1/lendfs-wait.1"
	assert_line "644 usr/share/bash-completion/completions/lendfs"
	assert_line "644 usr/share/bash-completion/completions/lendctl"
	assert_line "644 usr/share/doc/lendfs/ABI/devices-ID-borrower"
	assert_line "644 usr/share/doc/lendfs/examples/ansible/lend.yml"
	local rule
	for rule in "$ROOT"/udev-rules/*.rules; do
		assert_line "644 usr/lib/udev/rules.d/${rule##*/}"
	done
	if [ -e "$ROOT/udev-rules/lendfs-udev-helper" ]; then
		assert_line "755 usr/lib/udev/lendfs-udev-helper"
	fi
	refute_output --partial "usr/local"
	run cmp "$ROOT/conf/lendfs.conf.example" "$D/etc/lendfs/lendfs.conf"
	assert_success
	run grep '^ExecStart=' "$D/usr/lib/systemd/system/lendfs.service"
	assert_output --regexp '^ExecStart=/usr/sbin/lendfs -f -c /etc/lendfs/lendfs.conf .* /lend$'
	run "$D/usr/sbin/lendfs" --version
	assert_success
	assert_output --regexp '^lendfs [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "the default PREFIX is /usr/local; system paths stay where the system looks" {
	run mk install
	assert_success
	run installed
	assert_line "755 usr/local/sbin/lendfs"
	assert_line "755 usr/local/bin/lendctl"
	assert_line "644 usr/local/share/man/man8/lendfs.8"
	assert_line "644 usr/local/share/bash-completion/completions/lendctl"
	assert_line "644 usr/lib/systemd/system/lendfs.service"
	assert_line "644 usr/local/lib/$(cc -print-multiarch)/slurm-wlm/lendfs_spank.so"
	assert_line "644 etc/lendfs/lendfs.conf"
	assert_line --regexp "^644 usr/lib/udev/rules.d/"
	run grep '^ExecStart=' "$D/usr/lib/systemd/system/lendfs.service"
	assert_output --regexp '^ExecStart=/usr/local/sbin/lendfs '
}

@test "every directory variable can be overridden" {
	run mk install PREFIX=/opt/lendfs SBINDIR=/opt/sbin BINDIR=/opt/bin \
		SYSCONFDIR=/opt/etc UDEVDIR=/lib/udev SYSTEMDUNITDIR=/lib/systemd/system \
		MANDIR=/opt/man BASHCOMPDIR=/opt/compl DOCDIR=/opt/doc
	assert_success
	run installed
	assert_line "755 opt/sbin/lendfs"
	assert_line "755 opt/bin/lendctl"
	assert_line "644 opt/etc/lendfs/lendfs.conf"
	assert_line --regexp "^644 lib/udev/rules.d/60-lendfs.rules$"
	assert_line "644 lib/systemd/system/lendfs.service"
	assert_line "644 opt/man/man8/lendfs.8"
	assert_line "644 opt/compl/lendfs"
	assert_line "644 opt/doc/ABI/README"
	refute_output --regexp ' usr/'
	run grep -E '^ExecStart=' "$D/lib/systemd/system/lendfs.service"
	assert_output --regexp '^ExecStart=/opt/sbin/lendfs -f -c /opt/etc/lendfs/lendfs.conf '
}

@test "a changed config survives install and uninstall; the rest goes" {
	run mk install PREFIX=/usr
	assert_success
	echo "; mine" >>"$D/etc/lendfs/lendfs.conf"
	run mk install PREFIX=/usr
	assert_success
	assert_output --partial "keeping $D/etc/lendfs/lendfs.conf"
	run tail -n 1 "$D/etc/lendfs/lendfs.conf"
	assert_output "; mine"
	run mk uninstall PREFIX=/usr
	assert_success
	run installed
	assert_output "644 etc/lendfs/lendfs.conf"
}

@test "uninstall removes everything install put there, the example config too" {
	run mk install PREFIX=/usr
	assert_success
	run mk uninstall PREFIX=/usr
	assert_success
	run installed
	assert_output ""
	[ ! -e "$D/etc/lendfs" ]
}

@test "every C compile of the Makefile passes CPPFLAGS (Debian's -D_FORTIFY_SOURCE)" {
	# every rule, printed (make -n -B) for every target that compiles
	run mk all CPPFLAGS=-DLENDFS_CPPFLAGS_PROBE -n -B check-unit fuzz-build bench \
		"$BUILD_DIR/guest/guestmem"
	assert_success
	local f compiles missing=0
	compiles="$(grep -E '^\S*(cc|gcc|clang)(-[0-9]+)? .*\.c( |$)' <<<"$output")"
	for f in $(git -C "$ROOT" ls-files '*.c'); do
		# built by tests/bats/testbed.bash for the udev tests, not by make
		[ "$f" != tests/udev/testbed.c ] || continue
		grep -qE " $f( |\$)" <<<"$compiles" || {
			echo "no rule compiles $f" >&2
			missing=$((missing + 1))
		}
	done
	[ "$missing" -eq 0 ]
	run grep -v -e -DLENDFS_CPPFLAGS_PROBE <<<"$compiles"
	assert_output ""
}

@test "the installed unit passes systemd-analyze verify" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed"
	run mk install PREFIX=/usr
	assert_success
	# verify wants ExecStart= to exist here: point it into DESTDIR
	sed "s#=/usr/sbin/lendfs #=$D/usr/sbin/lendfs #" \
		"$D/usr/lib/systemd/system/lendfs.service" >"$TMP/lendfs.service"
	run env MANPATH="$D/usr/share/man" systemd-analyze verify "$TMP/lendfs.service"
	assert_success
	assert_output ""
	run grep -E '^(Type|StateDirectory|RuntimeDirectory|NoNewPrivileges|DeviceAllow)=' \
		"$TMP/lendfs.service"
	assert_line Type=notify
	assert_line StateDirectory=lendfs
	assert_line RuntimeDirectory=lendfs
	assert_line NoNewPrivileges=yes
	assert_line "DeviceAllow=/dev/fuse rw"
	# nothing that would give the service a mount namespace of its own:
	# the FUSE mount would not propagate to the host
	run grep -E '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc|ProcSubset|PrivateNetwork|PrivateIPC|PrivateUsers|RootDirectory|RootImage|MountFlags)=' \
		"$TMP/lendfs.service"
	assert_failure
}

@test "the installed daemon, config, lendctl and man pages work together" {
	run mk install PREFIX=/usr
	assert_success
	LENDFS="$D/usr/sbin/lendfs"
	lendfs_unmount
	lendfs_mount "$D/etc/lendfs/lendfs.conf"
	run "$D/usr/bin/lendctl" -m "$MNT" lend $GPU nodeB
	assert_success
	run "$D/usr/bin/lendctl" -m "$MNT" ls
	assert_line --regexp "^$GPU +lent +nodeB +nodeA$"
	run env MANWIDTH=80 man -l "$D/usr/share/man/man8/lendfs.8"
	assert_success
	assert_output --partial "lendfs - PCIe device lending"
	run env MANWIDTH=80 man -l "$D/usr/share/man/man1/lendfs-dma.1"
	assert_success
	assert_output --partial "lendfs-dma - move bytes through the simulated fabric"
	run env MANWIDTH=80 man -l "$D/usr/share/man/man1/lendfs-wait.1"
	assert_success
	assert_output --partial "lendfs-wait - wait with poll(2)"
	run bash -c "source '$D/usr/share/bash-completion/completions/lendctl'; complete -p lendctl"
	assert_output "complete -F _lendctl lendctl"
}
