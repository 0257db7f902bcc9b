#!/bin/sh
# Install the Debian 12 packages lendfs needs to build, run and test.
# Idempotent: does nothing (quickly) when everything is present.
# Every program a test skips without is here (docs/TESTING.md, "Skips"):
# with all of them installed and as root, only a machine without a PCI
# bus, a default route or a block device under / can still skip a test.
set -eu

PACKAGES="
build-essential pkg-config clang libclang-rt-14-dev
libfuse3-dev fuse3 libinih-dev libsqlite3-dev sqlite3 libjson-c-dev
libudev-dev libsystemd-dev libcmocka-dev libmicrohttpd-dev
bats bats-assert bats-support
udev umockdev libumockdev-dev
graphviz scdoc qemu-system-x86 linux-image-amd64 busybox-static ansible-core
zookeeper default-jre-headless libzookeeper-mt-dev iproute2
strace hyperfine util-linux procps psmisc perl shellcheck python3 less
systemd prometheus curl
debhelper devscripts lintian dpkg-dev fakeroot
slurm-wlm slurmctld slurmd slurm-client munge libslurm-dev
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
