#!/usr/bin/env bats
# The documentation keeps up with the code: the man pages (scdoc) build and
# render without warnings, lendfs.conf(5) documents every key the parser
# knows, lendfs(8) every option, lendfs(7) every file of docs/ABI and the
# errno table of SPEC section 4; the configuration examples start a daemon.

load helpers

MAN="$ROOT/docs/man"

setup() {
	TMP="$(mktemp -d)"
	MNT="$TMP/mnt"
	mkdir -p "$MNT"
	LENDFS_PID=
}

teardown() {
	lendfs_unmount
}

@test "every man page builds with scdoc and renders without warnings" {
	command -v scdoc >/dev/null || skip "scdoc not installed"
	local src page n=0
	for src in "$MAN"/*.scd; do
		page="$TMP/$(basename "$src" .scd)"
		run scdoc <"$src"
		assert_success
		printf '%s\n' "$output" >"$page"
		run env MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page"
		assert_success
		run bash -c 'MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null' _ "$page"
		assert_output ""
		n=$((n + 1))
	done
	[ "$n" -eq 5 ]
}

@test "make man builds every page into BUILD/man" {
	command -v scdoc >/dev/null || skip "scdoc not installed"
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$ROOT" --no-print-directory BUILD="$TMP/build" man
	assert_success
	run ls "$TMP/build/man"
	assert_output "$(printf '%s\n' lendctl.1 lendfs.7 lendfs.8 lendfs.conf.5 lendfs_spank.8)"
}

@test "lendfs.conf(5) documents every section and key of core/config.c" {
	local key missing=0
	for key in $(grep -oE 'strcmp\(k, "[a-z0-9_]+"\)' "$ROOT/core/config.c" |
		sed 's/.*"\(.*\)".*/\1/' | sort -u) bar0 bar5; do
		grep -qF "*$key*" "$MAN/lendfs.conf.5.scd" || {
			echo "lendfs.conf(5) does not document '$key'" >&2
			missing=$((missing + 1))
		}
	done
	for key in cluster "host NAME" "switch NAME" link \
		"device HOST:DDDD:BB:DD.F" "vm HOST/NAME" policy; do
		grep -qF "# [$key]" "$MAN/lendfs.conf.5.scd" || {
			echo "lendfs.conf(5) has no section [$key]" >&2
			missing=$((missing + 1))
		}
	done
	[ "$missing" -eq 0 ]
}

@test "lendfs(8) documents every option of lendfs --help" {
	local opt missing=0
	for opt in $("$LENDFS" --help | grep -oE -- '(^| )-(-[a-z-]+|[a-zA-Z])' |
		sort -u); do
		grep -qE -- "^\*([^*]*, )?${opt}(, [^*]*)?\*" "$MAN/lendfs.8.scd" || {
			echo "lendfs(8) does not document $opt" >&2
			missing=$((missing + 1))
		}
	done
	[ "$missing" -eq 0 ]
}

@test "lendfs(7) and the borrower ABI entry carry the errno table of SPEC section 4" {
	local e
	for e in EINVAL EBUSY ENODEV EHOSTDOWN ENOSPC ETIMEDOUT EACCES EPERM ENOTSUP; do
		grep -qE "^\|  \*$e\*$" "$MAN/lendfs.7.scd"
		grep -qE "^		$e " "$ROOT/docs/ABI/devices-ID-borrower"
	done
}

@test "lendfs(7) describes every file and directory of docs/ABI" {
	local f name missing=0
	for f in "$ROOT"/docs/ABI/*; do
		name=${f##*/}
		[ "$name" = README ] && continue
		name=${name##*-}
		case "$name" in
		ID | HOST | VM | PEER | TMP | NAME) continue ;; # named by their parents
		esac
		grep -qE "[*/]$name/?\*" "$MAN/lendfs.7.scd" || {
			echo "lendfs(7) does not mention $name (docs/ABI/${f##*/})" >&2
			missing=$((missing + 1))
		}
	done
	[ "$missing" -eq 0 ]
}

# the literal block of the EXAMPLE section of lendfs.conf(5)
conf_example() {
	awk '/^# EXAMPLE/ { on = 1; next } /^# / { on = 0 }
		on && /^```/ { inblock = !inblock; next } on && inblock' \
		"$MAN/lendfs.conf.5.scd"
}

@test "the example of lendfs.conf(5) starts a daemon and autolends" {
	conf_example >"$BATS_TEST_TMPDIR/example.ini"
	run grep -c '^\[' "$BATS_TEST_TMPDIR/example.ini"
	[ "$output" -ge 5 ]
	lendfs_unmount
	lendfs_mount "$BATS_TEST_TMPDIR/example.ini"
	run ls "$MNT/devices"
	assert_output nodeA:0000:65:00.0
	run cat "$(dev $GPU)/state" "$(dev $GPU)/borrower"
	assert_output "$(printf '%s\n' lent nodeB)"
}

@test "conf/lendfs.conf.example (installed as /etc/lendfs/lendfs.conf) starts and lends" {
	lendfs_unmount
	lendfs_mount "$ROOT/conf/lendfs.conf.example"
	run ls "$MNT/hosts"
	assert_output "$(printf '%s\n' nodeA nodeB)"
	lend $GPU nodeB
	run cat "$(dev $GPU)/state"
	assert_output lent
	assert_lend_fails $NIC nodeB EINVAL "Invalid argument" # its own lender
}
