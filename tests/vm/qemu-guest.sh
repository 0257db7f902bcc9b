#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# qemu-guest.sh - a throw-away QEMU guest for VM-borrower tests and demos,
# and a way to play that guest from a shell (it runs no OS); or a real
# Linux guest (boot, sh) for tests/guest/guest.bats.
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
#   qemu-guest.sh boot DIR INITRAMFS [MEM [QEMU-ARGS...]]
#         a real guest: start (-machine pc) as above with Debian's kernel
#         ($LENDFS_GUEST_KERNEL, default the newest /boot/vmlinuz-*) and
#         INITRAMFS (tests/guest/mkinitramfs.sh), the serial console on
#         DIR/console.sock (everything it printed in DIR/console.log), no
#         network, and wait until the guest's init says it is ready.
#         Exits 77 only if $QEMU is not installed; a guest that does not
#         boot within LENDFS_GUEST_BOOT_S (240; x2 when SANITIZE=1) s,
#         or a QEMU that exits, is killed and exits 1 with the console log
#         and QEMU's log.  DIR/boot.time: the seconds it took.  TCG
#         unless LENDFS_GUEST_ACCEL=kvm.
#   qemu-guest.sh sh DIR 'COMMAND' [TIMEOUT]
#         run COMMAND in the booted guest's shell (tests/guest/console.py,
#         TIMEOUT s, default 60), print its output, exit with its status
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
#   qemu-guest.sh eject-pending DIR    play the OS on -machine pc: eject
#                                      every slot QEMU asks to (the "down"
#                                      bitmap at 0xae04; one write of 0xae08
#                                      ejects one slot); print those slots
#   qemu-guest.sh eject-q35 DIR BSEL SLOT   same on q35 (0xcd0, 0xcc8)
#   qemu-guest.sh xp DIR ADDR LEN      LEN bytes of guest-physical memory, hex
#
# DIR must be short: unix socket paths are limited to 107 bytes.
# Needs perl with IO::Socket::UNIX and JSON::PP (Debian: perl).
set -eu

QEMU=${QEMU:-qemu-system-x86_64}
here=$(cd "$(dirname "$0")" && pwd)

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

# start_qemu MACHINE MEM [QEMU-ARGS...]: QEMU in $dir with its two QMP
# sockets up (see "start"), or exit 77 / 1.
start_qemu() {
	machine=$1
	mem=$2
	shift 2
	if ! command -v "$QEMU" >/dev/null; then
		echo "qemu-guest: $QEMU is not installed (Debian package qemu-system-x86)" >&2
		exit 77
	fi
	mkdir -p "$dir"
	rm -f "$dir/qmp.sock" "$dir/qmp-test.sock"
	# TCG even where /dev/kvm works: this guest runs no OS, so a
	# hot-added device's 64-bit BAR stays unassigned, and QEMU 7.2 under
	# KVM aborts when it maps such a BAR ("KVM_SET_USER_MEMORY_REGION
	# failed, start=0xffffffff00000000"), which TCG ignores.  A real
	# guest assigns its BARs; the tests play that part by hand.  A real
	# guest (boot) may ask for KVM with LENDFS_GUEST_ACCEL=kvm.
	"$QEMU" -accel "${accel:-tcg}" -machine "$machine" -m "$mem" -nodefaults \
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
			return 0
		fi
		if [ $(($(date +%s) - start)) -ge "$limit" ]; then
			kill -9 "$(cat "$dir/qemu.pid")" 2>/dev/null || true
			wait "$(cat "$dir/qemu.pid")" 2>/dev/null || true
			start_failed "made no qmp socket in $limit s; killed"
		fi
		sleep 0.02
	done
}

# boot_guest INITRAMFS MEM [QEMU-ARGS...]: see "boot".
boot_guest() {
	initramfs=$1
	mem=$2
	shift 2
	if ! command -v "$QEMU" >/dev/null; then
		echo "qemu-guest: $QEMU is not installed (Debian package qemu-system-x86)" >&2
		exit 77
	fi
	kernel=${LENDFS_GUEST_KERNEL:-$(printf '%s\n' /boot/vmlinuz-* | sort -V | tail -n 1)}
	if [ ! -r "$kernel" ]; then
		die "no guest kernel: no readable /boot/vmlinuz-* (Debian package linux-image-amd64) and no LENDFS_GUEST_KERNEL"
	fi
	if [ ! -r "$initramfs" ]; then
		die "no initramfs $initramfs (make check-vm builds it: tests/guest/mkinitramfs.sh)"
	fi
	mkdir -p "$dir"
	rm -f "$dir/console.sock" "$dir/console.log" "$dir/boot.time"
	t0=$(date +%s.%N)
	# TCG unless LENDFS_GUEST_ACCEL says otherwise: where /dev/kvm is a
	# nested one, this kernel under KVM printed nothing in 30 s.
	accel=${LENDFS_GUEST_ACCEL:-tcg}
	# the kernel prints only what matters (loglevel 1) so the console is
	# the shell's; panic=-1 + -no-reboot: a guest that panics stops QEMU
	start_qemu pc "$mem" -kernel "$kernel" -initrd "$initramfs" \
		-append "console=ttyS0 loglevel=1 panic=-1" -no-reboot \
		-chardev "socket,id=con,path=$dir/console.sock,server=on,wait=off,logfile=$dir/console.log" \
		-serial chardev:con "$@"
	limit=${LENDFS_GUEST_BOOT_S:-240}
	[ "${SANITIZE:-}" = 1 ] && limit=$((limit * 2))
	pid=$(cat "$dir/qemu.pid")
	while ! grep -q '^lendfs-guest-ready' "$dir/console.log" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			boot_failed "exited before the guest booted ($(elapsed "$t0") s)"
		fi
		if [ "$(elapsed "$t0" | cut -d. -f1)" -ge "$limit" ]; then
			kill -9 "$pid" 2>/dev/null || true
			boot_failed "did not boot the guest in $limit s; killed"
		fi
		sleep 0.2
	done
	elapsed "$t0" >"$dir/boot.time"
}

elapsed() {
	echo "$(date +%s.%N) $1" | awk '{ printf "%.1f\n", $1 - $2 }'
}

# boot_failed REASON: the guest did not boot; say why, show both logs.
boot_failed() {
	echo "---- $dir/console.log (the guest's serial console) ----" >&2
	if [ -s "$dir/console.log" ]; then
		tail -c 4000 "$dir/console.log" >&2
		echo >&2
	else
		echo "(empty)" >&2
	fi
	start_failed "$1"
}

cmd=${1:-}
[ $# -ge 2 ] ||
	die "usage: qemu-guest.sh start|boot|sh|stop|qmp|hmp|pci|program-bar|eject|eject-pending|eject-q35|xp DIR ..."
dir=$2
shift 2

case $cmd in
start)
	machine=${1:-pc}
	mem=${2:-512}
	[ $# -ge 2 ] && shift 2 || shift $#
	start_qemu "$machine" "$mem" "$@"
	;;
boot)
	[ $# -ge 1 ] || die "usage: boot DIR INITRAMFS [MEM [QEMU-ARGS...]]"
	initramfs=$1
	mem=${2:-512}
	[ $# -ge 2 ] && shift 2 || shift $#
	boot_guest "$initramfs" "$mem" "$@"
	;;
sh)
	[ $# -ge 1 ] || die "usage: sh DIR COMMAND [TIMEOUT]"
	[ -S "$dir/console.sock" ] || die "no booted guest in $dir (qemu-guest.sh boot $dir ...)"
	python3 "$here/../guest/console.py" run "$dir/console.sock" "${2:-60}" "$1"
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
eject-pending)
	[ $# -eq 0 ] || die "usage: eject-pending DIR"
	hmp "$dir" 'o /w 0xae10 0' >/dev/null
	down=$(hmp "$dir" 'i /w 0xae04' | sed -n 's/.*= *\(0x[0-9a-fA-F]*\).*/\1/p')
	[ -n "$down" ] || die "eject-pending: cannot read the down register 0xae04"
	slots=
	slot=0
	while [ $slot -lt 32 ]; do
		if [ $((down >> slot & 1)) -eq 1 ]; then
			hmp "$dir" "$(printf 'o /w 0xae08 0x%x' $((1 << slot)))" >/dev/null
			slots="$slots${slots:+ }$slot"
		fi
		slot=$((slot + 1))
	done
	echo "$slots"
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
