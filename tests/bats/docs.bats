#!/usr/bin/env bats
# The documentation keeps up with the code: the man pages (scdoc) build and
# render without warnings, lendfs.conf(5) documents every key the parser
# knows, lendfs(8) every option, lendfs(7) every file of docs/ABI and the
# errno table of SPEC section 4; the configuration examples start a daemon;
# lendfs-dma(1) and lendfs-wait(1) document exactly the options and
# commands of their --help, and their examples print what they show.

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
	[ "$n" -eq 7 ]
}

@test "make man builds every page into BUILD/man" {
	command -v scdoc >/dev/null || skip "scdoc not installed"
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$ROOT" --no-print-directory BUILD="$TMP/build" man
	assert_success
	run ls "$TMP/build/man"
	assert_output "$(printf '%s\n' lendctl.1 lendfs-dma.1 lendfs-wait.1 lendfs.7 \
		lendfs.8 lendfs.conf.5 lendfs_spank.8)"
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

# entries PAGE SECTION: the "*...*" entry lines of SECTION of docs/man/PAGE.scd
entries() {
	awk -v s="# $2" '$0 == s { on = 1; next } /^# / { on = 0 }
		on && /^\*/' "$MAN/$1.scd"
}

# help_words TOOL: the options (-x, --long) and, after "commands:", the
# command names of TOOL --help, one a line.
help_words() {
	"$BUILD_DIR/$1" --help | awk '
		/^[a-z]+:$/ { cmds = $0 == "commands:"; next }
		cmds && /^  [a-z]/ { print $1 }
		/^  -/ { for (i = 1; i <= NF && $i ~ /^-/; i++) { sub(/,$/, "", $i); print $i } }' |
		sort -u
}

# man_words PAGE: the same, from the OPTIONS and COMMANDS entries of PAGE.
man_words() {
	{
		entries "$1" OPTIONS | grep -oE -- '\*-[-a-z]+\*' | tr -d '*'
		entries "$1" COMMANDS | sed -E 's/^\*([a-z-]+)\*.*/\1/'
	} | sort -u
}

@test "lendfs-dma(1) and lendfs-wait(1) document every option and command of --help, and no other" {
	local tool
	for tool in lendfs-dma lendfs-wait; do
		run help_words "$tool"
		assert_success
		[ "${#lines[@]}" -ge 3 ] # -h, --help and more: the parse found them
		run diff <(help_words "$tool") <(man_words "$tool.1")
		assert_success
	done
	run help_words lendfs-dma
	assert_line regs
	assert_line lose-lut
	assert_line --run-dir
}

# examples PAGE: each command shown after a "$ " or "# " prompt in the
# literal blocks of docs/man/PAGE.scd, then the output shown under it, in
# the daemon's paths: CMD<TAB>command, OUT<TAB>line ("..." ends what is
# shown); a block with no prompt is one command with no output (SCRIPT).
examples() {
	awk '/^```/ { if (inb && !prompt && n) { gsub(/\n/, "\\n", body); print "SCRIPT\t" body }
			inb = !inb; prompt = 0; n = 0; body = ""; next }
		!inb { next }
		/^[$#] / { prompt = 1; print "CMD\t" substr($0, 3); next }
		prompt { print "OUT\t" $0; next }
		{ body = body $0 "\n"; n++ }' "$MAN/$1.scd" |
		sed -e "s#/run/lendfs#$TMP/run#g" -e "s#build/run/fabric#$TMP/run#g" \
		    -e "s#build/lendfs-#lendfs-#g" -e "s#/lend/#$MNT/#g"
}

# Event times and pids differ from run to run.
normalize() {
	sed -E 's/(^| )[0-9]{16,}( |$)/\1T\2/g; s/pid=[0-9]+/pid=P/g; s/uid=[0-9]+/uid=U/g'
}

# run_examples PAGE: run every example of PAGE in order (each under
# timeout 3, $? of the one before kept), compare its output with the shown
# one; the differences on stderr, their count as status.
run_examples() {
	local kind text cmd="" shown="" cut=0 last=0 out bad=0 n=0
	check_one() {
		[ -n "$cmd" ] || return 0
		out="$(PATH="$BUILD_DIR:$PATH" timeout 3 bash -c "(exit $last); $cmd" 2>&1)"
		last=$?
		n=$((n + 1))
		out="$(normalize <<<"$out")"
		shown="$(normalize <<<"$shown")"
		if [ "$cut" -eq 1 ]; then
			out="$(head -n "$(grep -c '' <<<"$shown")" <<<"$out")"
		fi
		if [ "$out" != "$shown" ]; then
			printf '%s: $ %s\n--- shown:\n%s\n--- printed:\n%s\n' "$1" "$cmd" "$shown" "$out" >&2
			bad=$((bad + 1))
		fi
	}
	while IFS=$'\t' read -r kind text; do
		case "$kind" in
		CMD | SCRIPT)
			check_one "$1"
			cmd="$text" shown="" cut=0
			[ "$kind" = CMD ] || cmd="$(printf '%b' "$text")"
			;;
		OUT)
			if [ "$text" = ... ]; then
				cut=1
			elif [ "$cut" -eq 0 ]; then
				shown="${shown:+$shown$'\n'}$text"
			fi
			;;
		esac
	done < <(examples "$1")
	check_one "$1"
	[ "$n" -ge 5 ] || { echo "$1: only $n examples found" >&2; bad=$((bad + 1)); }
	return "$bad"
}

@test "the examples of lendfs-dma(1) and lendfs-wait(1) print what they show" {
	lendfs_mount
	run run_examples lendfs-dma.1
	assert_success
	lendfs_unmount
	lendfs_mount
	# the lend the first example of lendfs-wait(1) waits for
	local lender
	(sleep 0.5 && lend "$GPU" nodeB) &
	lender=$!
	run run_examples lendfs-wait.1
	wait "$lender"
	assert_success
	run cat "$(dev "$GPU")/state"
	assert_output lent
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
