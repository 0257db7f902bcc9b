#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# qemu-guest.sh - a throw-away QEMU guest for VM-borrower tests and demos,
# and a way to play that guest from a shell (it runs no OS).
#
#   qemu-guest.sh start DIR [MACHINE [MEM [QEMU-ARGS...]]]
#         start qemu-system-x86_64 (-machine pc -m 512 by default, TCG)
#         in DIR with two QMP sockets:
#           DIR/qmp.sock       give this one to lendfs (hosts/H/vms/V/qmp)
#           DIR/qmp-test.sock  the test's own (the commands below)
#         and DIR/qemu.pid, DIR/qemu.log.  Exits 77 only if $QEMU is not
#         installed (not on PATH); a QEMU that exits, or makes no QMP
#         socket within LENDFS_QEMU_START_S (30; x2 when SANITIZE=1)
#         seconds, is killed and exits 1 with the reason and its log.
#   qemu-guest.sh stop DIR             kill it (SIGKILL) and reap it
#   qemu-guest.sh qmp DIR JSON         run {"execute":...}; print "return"
#   qemu-guest.sh hmp DIR 'CMDLINE'    human-monitor-command; print output
#   qemu-guest.sh pci DIR QDEV-ID      "bus slot function bar2-size bar2-addr"
#                                      (hex, -1 when unassigned), exit 1 if absent
#   qemu-guest.sh program-bar DIR SLOT BAR ADDR
#         play the BIOS: program 64-bit memory BAR BAR of the device in
#         SLOT of bus 0 with ADDR and enable memory decoding (0xcf8/0xcfc)
#   qemu-guest.sh eject DIR SLOT       play the OS: ACPI eject on -machine pc
#                                      (0xae10 <- bsel 0, 0xae08 <- 1<<SLOT)
#   qemu-guest.sh eject-q35 DIR BSEL SLOT   same on q35 (0xcd0, 0xcc8)
#   qemu-guest.sh xp DIR ADDR LEN      LEN bytes of guest-physical memory, hex
#
# DIR must be short: unix socket paths are limited to 107 bytes.
# Needs perl with IO::Socket::UNIX and JSON::PP (Debian: perl).
set -eu

QEMU=${QEMU:-qemu-system-x86_64}

die() {
	echo "qemu-guest: $*" >&2
	exit 1
}

# start_failed REASON: QEMU did not start; say why, show its log, exit 1.
start_failed() {
	echo "qemu-guest: $QEMU $1" >&2
	echo "---- $dir/qemu.log (stdout and stderr of $QEMU) ----" >&2
	if [ -s "$dir/qemu.log" ]; then
		tail -c 4000 "$dir/qemu.log" >&2
	else
		echo "(empty)" >&2
	fi
	exit 1
}

# qmp_client SOCKET MODE ARG: one connection, capabilities, one command.
# MODE json: ARG is the command; print its "return" as JSON.
# MODE hmp:  ARG is an HMP command line; print its output.
qmp_client() {
	perl -MIO::Socket::UNIX -MJSON::PP -e '
		my ($path, $mode, $arg) = @ARGV;
		my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)
			or die "qemu-guest: connect $path: $!\n";
		my $json = JSON::PP->new->canonical;
		local $SIG{ALRM} = sub { die "qemu-guest: no answer from $path\n" };
		alarm 10;
		sub reply {
			while (defined(my $l = <$s>)) {
				my $m = $json->decode($l);
				next if exists $m->{event};
				return $m;
			}
			die "qemu-guest: $path closed the connection\n";
		}
		reply();	# greeting
		print $s qq({"execute":"qmp_capabilities"}\n);
		reply();
		my $cmd = $mode eq "hmp" ?
			$json->encode({ execute => "human-monitor-command",
					arguments => { "command-line" => $arg } }) : $arg;
		print $s "$cmd\n";
		my $r = reply();
		if ($r->{error}) {
			print STDERR "qemu-guest: $r->{error}{desc}\n";
			exit 1;
		}
		if ($mode eq "hmp") {
			print $r->{return};
		} else {
			print $json->allow_nonref->encode($r->{return}), "\n";
		}
	' "$@"
}

test_sock() {
	[ -S "$1/qmp-test.sock" ] || die "no guest in $1 (qemu-guest.sh start $1)"
	echo "$1/qmp-test.sock"
}

hmp() {
	qmp_client "$(test_sock "$1")" hmp "$2"
}

cmd=${1:-}
[ $# -ge 2 ] ||
	die "usage: qemu-guest.sh start|stop|qmp|hmp|pci|program-bar|eject|eject-q35|xp DIR ..."
dir=$2
shift 2

case $cmd in
start)
	if ! command -v "$QEMU" >/dev/null; then
		echo "qemu-guest: $QEMU is not installed (Debian package qemu-system-x86)" >&2
		exit 77
	fi
	machine=${1:-pc}
	mem=${2:-512}
	[ $# -ge 2 ] && shift 2 || shift $#
	mkdir -p "$dir"
	rm -f "$dir/qmp.sock" "$dir/qmp-test.sock"
	# TCG even where /dev/kvm works: this guest runs no OS, so a
	# hot-added device's 64-bit BAR stays unassigned, and QEMU 7.2 under
	# KVM aborts when it maps such a BAR ("KVM_SET_USER_MEMORY_REGION
	# failed, start=0xffffffff00000000"), which TCG ignores.  A real
	# guest assigns its BARs; the tests play that part by hand.
	"$QEMU" -accel tcg -machine "$machine" -m "$mem" -nodefaults \
		-display none \
		-qmp "unix:$dir/qmp.sock,server=on,wait=off" \
		-qmp "unix:$dir/qmp-test.sock,server=on,wait=off" "$@" \
		</dev/null >"$dir/qemu.log" 2>&1 &
	echo $! >"$dir/qemu.pid"
	limit=${LENDFS_QEMU_START_S:-30}
	[ "${SANITIZE:-}" = 1 ] && limit=$((limit * 2))
	start=$(date +%s)
	while :; do
		if ! kill -0 "$(cat "$dir/qemu.pid")" 2>/dev/null; then
			status=0
			wait "$(cat "$dir/qemu.pid")" || status=$?
			start_failed "exited with status $status after $(($(date +%s) - start)) s, before its qmp sockets were up"
		fi
		if [ -S "$dir/qmp-test.sock" ] &&
		   qmp_client "$dir/qmp-test.sock" json '{"execute":"query-status"}' \
			   >/dev/null 2>&1; then
			exit 0
		fi
		if [ $(($(date +%s) - start)) -ge "$limit" ]; then
			kill -9 "$(cat "$dir/qemu.pid")" 2>/dev/null || true
			wait "$(cat "$dir/qemu.pid")" 2>/dev/null || true
			start_failed "made no qmp socket in $limit s; killed"
		fi
		sleep 0.02
	done
	;;
stop)
	if [ -f "$dir/qemu.pid" ]; then
		pid=$(cat "$dir/qemu.pid")
		kill -9 "$pid" 2>/dev/null || true
		# not our child any more: wait for it to go
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 250 ]; do
			sleep 0.02
			i=$((i + 1))
		done
		rm -f "$dir/qemu.pid"
	fi
	;;
qmp)
	qmp_client "$(test_sock "$dir")" json "$1"
	;;
hmp)
	hmp "$dir" "$1"
	;;
pci)
	qmp_client "$(test_sock "$dir")" json '{"execute":"query-pci"}' |
	perl -MJSON::PP -e '
		my $id = shift;
		my $buses = JSON::PP->new->decode(join("", <STDIN>));
		sub walk {
			for my $d (@{$_[0]}) {
				if ($d->{qdev_id} eq $id) {
					my ($b2) = grep { $_->{bar} == 2 } @{$d->{regions}};
					printf "%d %d %d 0x%x %s\n", $d->{bus}, $d->{slot},
						$d->{function}, $b2 ? $b2->{size} : 0,
						!$b2 || $b2->{address} < 0 ? "-1" :
						sprintf("0x%x", $b2->{address});
					exit 0;
				}
				walk($d->{pci_bridge}{devices}) if $d->{pci_bridge};
			}
		}
		walk($_->{devices}) for @$buses;
		exit 1;
	' "$1"
	;;
program-bar)
	[ $# -eq 3 ] || die "usage: program-bar DIR SLOT BAR ADDR"
	slot=$1 bar=$2 addr=$(printf '%d' "$3")
	base=$((0x80000000 | (slot << 11)))
	reg=$((0x10 + 4 * bar))
	hmp "$dir" "$(printf 'o /w 0xcf8 0x%x' $((base | reg)))" >/dev/null
	hmp "$dir" "$(printf 'o /w 0xcfc 0x%x' $((addr & 0xffffffff)))" >/dev/null
	hmp "$dir" "$(printf 'o /w 0xcf8 0x%x' $((base | (reg + 4))))" >/dev/null
	hmp "$dir" "$(printf 'o /w 0xcfc 0x%x' $((addr >> 32)))" >/dev/null
	hmp "$dir" "$(printf 'o /w 0xcf8 0x%x' $((base | 4)))" >/dev/null
	hmp "$dir" 'o /h 0xcfc 0x2' >/dev/null
	;;
eject)
	[ $# -eq 1 ] || die "usage: eject DIR SLOT"
	hmp "$dir" 'o /w 0xae10 0' >/dev/null
	hmp "$dir" "$(printf 'o /w 0xae08 0x%x' $((1 << $1)))" >/dev/null
	;;
eject-q35)
	[ $# -eq 2 ] || die "usage: eject-q35 DIR BSEL SLOT"
	hmp "$dir" "$(printf 'o /w 0xcd0 %d' "$1")" >/dev/null
	hmp "$dir" "$(printf 'o /w 0xcc8 0x%x' $((1 << $2)))" >/dev/null
	;;
xp)
	[ $# -eq 2 ] || die "usage: xp DIR ADDR LEN"
	hmp "$dir" "xp /$2xb $1" | sed -e 's/^[0-9a-f]*: //' -e 's/0x//g' | tr -d '\r' |
		tr '\n' ' ' | sed -e 's/  */ /g' -e 's/ $//'
	echo
	;;
*)
	die "unknown command '$cmd'"
	;;
esac
