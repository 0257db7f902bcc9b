#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# udevadm-test.sh SRC FIXTURE OUTDIR ACTION SYSPATH...
#
# Run `udevadm test --action=ACTION SYSPATH` for each SYSPATH of the
# umockdev FIXTURE with only lendfs's rules installed: SRC/60-lendfs.rules
# in /usr/lib/udev/rules.d, SRC/61-lendfs-local.rules.example as
# /etc/udev/rules.d/61-lendfs-local.rules and SRC/lendfs-udev-helper in
# /usr/lib/udev.  The log of each goes to OUTDIR/KERNEL.log.
#
# udevadm writes to /run/udev and has no option for another rules
# directory, so this must run in a private mount namespace, where tmpfs
# hide the system's directories:
#
#   unshare -m sh udevadm-test.sh ...
#
# udev runs programs with the device's properties as their only
# environment; so that lendfs-udev-helper also sees the fake /sys, each
# device gets LD_PRELOAD and UMOCKDEV_DIR as properties (test only).
set -eu

[ $# -ge 5 ] || { echo "usage: $0 SRC FIXTURE OUTDIR ACTION SYSPATH..." >&2; exit 2; }
src=$1 fixture=$2 out=$3
shift 3

# refuse to touch the real system outside a private namespace
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
	echo "udevadm-test.sh: run me with unshare -m" >&2
	exit 2
fi
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc/udev/rules.d
mount -t tmpfs tmpfs /usr/lib/udev
[ -d /usr/local/lib/udev ] && mount -t tmpfs tmpfs /usr/local/lib/udev
mkdir /usr/lib/udev/rules.d
cp "$src/60-lendfs.rules" /usr/lib/udev/rules.d/
cp "$src/61-lendfs-local.rules.example" /etc/udev/rules.d/61-lendfs-local.rules
cp "$src/lendfs-udev-helper" /usr/lib/udev/
chmod 755 /usr/lib/udev/lendfs-udev-helper

# shellcheck disable=SC2016 # expanded by the inner shell
exec umockdev-run --device "$fixture" -- sh -c '
	out=$1 action=$2
	shift 2
	for p in "$@"; do
		printf "LD_PRELOAD=libumockdev-preload.so.0\nUMOCKDEV_DIR=%s\n" \
			"$UMOCKDEV_DIR" >>"$UMOCKDEV_DIR$p/uevent"
	done
	for p in "$@"; do
		timeout 60 udevadm test --action="$action" "$p" >"$out/${p##*/}.log" 2>&1
	done' sh "$out" "$@"
