#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# mkinitramfs.sh OUT GUESTMEM: build the test guest's initramfs OUT (gzip'd
# newc cpio) from Debian packages only: busybox-static's /bin/busybox, the
# init script next to this file and GUESTMEM (tests/guest/guestmem.c built
# -static).  Debian 12's kernel has what the guest needs built in (8250
# console, devtmpfs, ACPI PCI hot-plug: CONFIG_HOTPLUG_PCI_ACPI=y), so no
# module goes in.  Exit 1 with the reason if something is missing.
set -eu

[ $# -eq 2 ] || { echo "usage: mkinitramfs.sh OUT GUESTMEM" >&2; exit 2; }
out=$1
helper=$2
here=$(cd "$(dirname "$0")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}

# static: no program interpreter (readelf: binutils, via build-essential)
if [ ! -x "$busybox" ] || readelf -l "$busybox" 2>/dev/null | grep -q INTERP; then
	echo "mkinitramfs: $busybox is not a static busybox (Debian package busybox-static)" >&2
	exit 1
fi
[ -x "$helper" ] || { echo "mkinitramfs: no $helper" >&2; exit 1; }

tree=$(mktemp -d "${TMPDIR:-/tmp}/lendfs-initramfs-XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/bin" "$tree/proc" "$tree/sys" "$tree/dev" "$tree/tmp"
cp "$busybox" "$tree/bin/busybox"
cp "$helper" "$tree/bin/guestmem"
cp "$here/init" "$tree/init"
chmod 755 "$tree/init" "$tree/bin/busybox" "$tree/bin/guestmem"
(cd "$tree" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) |
	gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
