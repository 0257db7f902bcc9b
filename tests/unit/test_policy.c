// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for core/policy.c: the PCI devices behind the root file
 * system and the default route, found in a fake sysfs / procfs tree built
 * in a temporary directory (SATA partition, dm over md over two NVMe
 * partitions, NVMe multipath, virtio NIC, bridge over a bond, symlink
 * loops), and the deny reasons they produce.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cmocka.h>

#include "policy.h"

struct tree {
	char dir[64];
	char sys[96];
	char proc[96];
};

static void put(const struct tree *t, const char *rel, const char *text)
{
	char path[512], dir[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", t->dir, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	assert_int_equal(mkdir_p(dir, 0755), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* A link at @rel pointing to the absolute path of @target_rel. */
static void link_to(const struct tree *t, const char *rel, const char *target_rel)
{
	char path[512], target[512], dir[512];

	snprintf(path, sizeof(path), "%s/%s", t->dir, rel);
	snprintf(target, sizeof(target), "%s/%s", t->dir, target_rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	assert_int_equal(mkdir_p(dir, 0755), 0);
	assert_int_equal(symlink(target, path), 0);
}

/* A device directory sys/devices/@rel of @subsystem. */
static void dev(const struct tree *t, const char *rel, const char *subsystem)
{
	char path[512], link[600], target[128];

	snprintf(path, sizeof(path), "%s/devices/%s", t->sys, rel);
	assert_int_equal(mkdir_p(path, 0755), 0);
	snprintf(link, sizeof(link), "%s/subsystem", path);
	snprintf(target, sizeof(target), "../../../../bus/%s", subsystem);
	assert_int_equal(symlink(target, link), 0);
}

#define PCI "sys/devices/pci0000:00"

static int setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));

	snprintf(t->dir, sizeof(t->dir), "/tmp/lendfs-policy-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->sys, sizeof(t->sys), "%s/sys", t->dir);
	snprintf(t->proc, sizeof(t->proc), "%s/proc", t->dir);

	/* SATA: sda2 on the AHCI controller 00:1f.2 */
	dev(t, "pci0000:00/0000:00:1f.2", "pci");
	dev(t, "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0", "scsi");
	dev(t, "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "block");
	dev(t, "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2",
	    "block");
	put(t, PCI "/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2/partition",
	    "2\n");
	put(t, PCI "/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2/dev",
	    "8:2\n");
	link_to(t, "sys/dev/block/8:2",
		PCI "/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2");
	link_to(t, "sys/class/block/sda2",
		PCI "/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2");

	/* two NVMe behind root ports, a RAID1 md0 of their partitions, dm on md0 */
	dev(t, "pci0000:00/0000:00:1d.0", "pci");
	dev(t, "pci0000:00/0000:00:1d.0/0000:3d:00.0", "pci");
	dev(t, "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0", "nvme");
	dev(t, "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", "block");
	dev(t, "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1/nvme0n1p1", "block");
	put(t, PCI "/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1/nvme0n1p1/partition", "1\n");
	dev(t, "pci0000:00/0000:00:1e.0", "pci");
	dev(t, "pci0000:00/0000:00:1e.0/0000:3e:00.0", "pci");
	dev(t, "pci0000:00/0000:00:1e.0/0000:3e:00.0/nvme/nvme1", "nvme");
	dev(t, "pci0000:00/0000:00:1e.0/0000:3e:00.0/nvme/nvme1/nvme1n1", "block");
	dev(t, "pci0000:00/0000:00:1e.0/0000:3e:00.0/nvme/nvme1/nvme1n1/nvme1n1p1", "block");
	dev(t, "virtual/block/md0", "block");
	link_to(t, "sys/devices/virtual/block/md0/slaves/nvme0n1p1",
		PCI "/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1/nvme0n1p1");
	link_to(t, "sys/devices/virtual/block/md0/slaves/nvme1n1p1",
		PCI "/0000:00:1e.0/0000:3e:00.0/nvme/nvme1/nvme1n1/nvme1n1p1");
	dev(t, "virtual/block/dm-0", "block");
	put(t, "sys/devices/virtual/block/dm-0/dev", "253:0\n");
	put(t, "sys/devices/virtual/block/dm-0/dm/name", "vg-root\n");
	link_to(t, "sys/devices/virtual/block/dm-0/slaves/md0", "sys/devices/virtual/block/md0");
	/* no sys/dev/block/253:0: found through class/block */
	link_to(t, "sys/class/block/dm-0", "sys/devices/virtual/block/dm-0");

	/* a loop of slaves must end */
	dev(t, "virtual/block/dm-1", "block");
	dev(t, "virtual/block/dm-2", "block");
	put(t, "sys/devices/virtual/block/dm-1/dev", "253:1\n");
	link_to(t, "sys/class/block/dm-1", "sys/devices/virtual/block/dm-1");
	link_to(t, "sys/devices/virtual/block/dm-1/slaves/dm-2", "sys/devices/virtual/block/dm-2");
	link_to(t, "sys/devices/virtual/block/dm-2/slaves/dm-1", "sys/devices/virtual/block/dm-1");

	/* NVMe multipath: the namespace head under the virtual subsystem */
	dev(t, "pci0000:00/0000:00:1c.0", "pci");
	dev(t, "pci0000:00/0000:00:1c.0/0000:5e:00.0", "pci");
	dev(t, "pci0000:00/0000:00:1c.0/0000:5e:00.0/nvme/nvme2", "nvme");
	dev(t, "virtual/nvme-subsystem/nvme-subsys2", "nvme-subsystem");
	dev(t, "virtual/nvme-subsystem/nvme-subsys2/nvme2n1", "block");
	link_to(t, "sys/devices/virtual/nvme-subsystem/nvme-subsys2/nvme2",
		PCI "/0000:00:1c.0/0000:5e:00.0/nvme/nvme2");
	link_to(t, "sys/dev/block/259:0",
		"sys/devices/virtual/nvme-subsystem/nvme-subsys2/nvme2n1");

	/* eth0 on a virtio NIC; br0 over eth1 and bond0 (eth2 + eth3) */
	dev(t, "pci0000:00/0000:00:03.0", "pci");
	dev(t, "pci0000:00/0000:00:03.0/virtio0", "virtio");
	dev(t, "pci0000:00/0000:00:03.0/virtio0/net/eth0", "net");
	link_to(t, "sys/class/net/eth0", PCI "/0000:00:03.0/virtio0/net/eth0");
	dev(t, "pci0000:00/0000:17:00.0", "pci");
	dev(t, "pci0000:00/0000:17:00.0/net/eth1", "net");
	dev(t, "pci0000:00/0000:18:00.0", "pci");
	dev(t, "pci0000:00/0000:18:00.0/net/eth2", "net");
	dev(t, "pci0000:00/0000:18:00.1", "pci");
	dev(t, "pci0000:00/0000:18:00.1/net/eth3", "net");
	dev(t, "virtual/net/bond0", "net");
	link_to(t, "sys/devices/virtual/net/bond0/lower_eth2", PCI "/0000:18:00.0/net/eth2");
	link_to(t, "sys/devices/virtual/net/bond0/lower_eth3", PCI "/0000:18:00.1/net/eth3");
	dev(t, "virtual/net/br0", "net");
	link_to(t, "sys/devices/virtual/net/br0/lower_eth1", PCI "/0000:17:00.0/net/eth1");
	link_to(t, "sys/devices/virtual/net/br0/lower_bond0", "sys/devices/virtual/net/bond0");
	link_to(t, "sys/class/net/br0", "sys/devices/virtual/net/br0");
	dev(t, "virtual/net/lo", "net");
	link_to(t, "sys/class/net/lo", "sys/devices/virtual/net/lo");

	put(t, "proc/net/route",
	    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	    "eth9\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n");
	put(t, "proc/net/ipv6_route",
	    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
	    "fe800000000000000000000000000001 00000400 00000001 00000000 00000003     br0\n"
	    "20010db8000000000000000000000000 40 00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1\n"
	    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n");
	/* the test's "root" is /proc: an anonymous device, so mountinfo is asked */
	put(t, "proc/self/mountinfo",
	    "21 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	    "22 21 0:5 / /proc rw,nosuid shared:2 - proc proc rw\n"
	    "23 22 0:40 / /proc rw - btrfs /dev/sda2 rw,space_cache\n");
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tree *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

static void assert_addr(const struct pci_addr *a, const char *want)
{
	char buf[16];

	pci_addr_format(a, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static bool has_addr(const struct pci_addr *a, int n, const char *want)
{
	char buf[16];

	for (int i = 0; i < n; i++) {
		pci_addr_format(&a[i], buf, sizeof(buf));
		if (!strcmp(buf, want))
			return true;
	}
	return false;
}

static void test_partition_on_sata(void **state)
{
	struct tree *t = *state;
	struct pci_addr a[4];
	char name[64];

	assert_int_equal(policy_block_pci(t->sys, 8, 2, a, 4, name, sizeof(name)), 1);
	assert_addr(&a[0], "0000:00:1f.2");
	assert_string_equal(name, "/dev/sda2");
	assert_int_equal(policy_block_pci(t->sys, 8, 99, a, 4, name, sizeof(name)),
			 -ENOENT);
}

static void test_dm_over_md_over_nvme(void **state)
{
	struct tree *t = *state;
	struct pci_addr a[4];
	char name[64];
	int n = policy_block_pci(t->sys, 253, 0, a, 4, name, sizeof(name));

	/* both RAID members, not their root ports */
	assert_int_equal(n, 2);
	assert_true(has_addr(a, n, "0000:3d:00.0"));
	assert_true(has_addr(a, n, "0000:3e:00.0"));
	assert_false(has_addr(a, n, "0000:00:1d.0"));
	assert_string_equal(name, "/dev/mapper/vg-root");
	/* a bounded result array is respected */
	assert_int_equal(policy_block_pci(t->sys, 253, 0, a, 1, NULL, 0), 1);
}

static void test_slave_loop_ends(void **state)
{
	struct tree *t = *state;
	struct pci_addr a[4];

	assert_int_equal(policy_block_pci(t->sys, 253, 1, a, 4, NULL, 0), 0);
}

static void test_nvme_multipath(void **state)
{
	struct tree *t = *state;
	struct pci_addr a[4];
	char name[64];

	assert_int_equal(policy_block_pci(t->sys, 259, 0, a, 4, name, sizeof(name)), 1);
	assert_addr(&a[0], "0000:5e:00.0");
	assert_string_equal(name, "/dev/nvme2n1");
}

static void test_net(void **state)
{
	struct tree *t = *state;
	struct pci_addr a[8];
	int n;

	/* through the virtio device to the PCI function */
	assert_int_equal(policy_net_pci(t->sys, "eth0", a, 8), 1);
	assert_addr(&a[0], "0000:00:03.0");
	/* a bridge over a NIC and a bond of two more */
	n = policy_net_pci(t->sys, "br0", a, 8);
	assert_int_equal(n, 3);
	assert_true(has_addr(a, n, "0000:17:00.0"));
	assert_true(has_addr(a, n, "0000:18:00.0"));
	assert_true(has_addr(a, n, "0000:18:00.1"));
	assert_int_equal(policy_net_pci(t->sys, "lo", a, 8), 0);
	assert_int_equal(policy_net_pci(t->sys, "nope", a, 8), -ENOENT);
	assert_int_equal(policy_net_pci(t->sys, "../x", a, 8), -EINVAL);
	assert_int_equal(policy_net_pci(t->sys, "..", a, 8), -EINVAL);
}

static void test_default_routes(void **state)
{
	struct tree *t = *state;
	char ifs[4][32];

	/* eth0 (IPv4, up), br0 (IPv6); not eth9 (down), eth1 (not default), lo */
	assert_int_equal(policy_default_route_ifaces(t->proc, ifs, 4), 2);
	assert_string_equal(ifs[0], "eth0");
	assert_string_equal(ifs[1], "br0");
	assert_int_equal(policy_default_route_ifaces(t->proc, ifs, 1), 1);
	assert_int_equal(policy_default_route_ifaces("/nonexistent", ifs, 4), 0);
}

static void test_root_dev(void **state)
{
	struct tree *t = *state;
	struct policy_paths p = { t->sys, t->proc, "/proc" };
	struct policy_paths none = { t->sys, t->proc, "/nonexistent" };
	unsigned maj = 0, min = 0;
	struct stat st;

	/* /proc has an anonymous st_dev: the last mount of /proc names sda2 */
	assert_int_equal(policy_root_dev(&p, &maj, &min), 0);
	assert_int_equal(maj, 8);
	assert_int_equal(min, 2);
	assert_int_equal(policy_root_dev(&none, &maj, &min), -ENOENT);
	/* a real block-backed directory answers from stat() directly */
	p.root = t->dir;
	assert_int_equal(stat(t->dir, &st), 0);
	if (major(st.st_dev) != 0) {
		assert_int_equal(policy_root_dev(&p, &maj, &min), 0);
		assert_int_equal(maj, major(st.st_dev));
		assert_int_equal(min, minor(st.st_dev));
	}
}

static void test_scan_and_apply(void **state)
{
	struct tree *t = *state;
	struct policy_paths p = { t->sys, t->proc, "/proc" };
	struct policy pol;
	struct cfg_device d = { 0 };

	policy_scan(&p, &pol);
	/* sda2's controller, eth0's NIC, br0's three */
	assert_int_equal(pol.n, 5);
	assert_addr(&pol.entries[0].addr, "0000:00:1f.2");
	assert_string_equal(pol.entries[0].reason, "holds the root file system (/dev/sda2)");
	assert_addr(&pol.entries[1].addr, "0000:00:03.0");
	assert_string_equal(pol.entries[1].reason, "carries the default route (eth0)");
	assert_string_equal(pol.entries[2].reason, "carries the default route (br0)");

	assert_int_equal(pci_addr_parse("0000:00:1f.2", &d.addr), 0);
	d.class = 0x010601;
	policy_apply(&pol, &d);
	assert_string_equal(d.deny_reason, "holds the root file system (/dev/sda2)");

	memset(&d, 0, sizeof(d));
	assert_int_equal(pci_addr_parse("0000:18:00.1", &d.addr), 0);
	policy_apply(&pol, &d);
	assert_string_equal(d.deny_reason, "carries the default route (br0)");

	/* bridges are never lendable; other devices are */
	memset(&d, 0, sizeof(d));
	assert_int_equal(pci_addr_parse("0000:00:1d.0", &d.addr), 0);
	d.class = 0x060400;
	policy_apply(&pol, &d);
	assert_string_equal(d.deny_reason, "is a bridge (class 0x060400)");
	memset(&d, 0, sizeof(d));
	assert_int_equal(pci_addr_parse("0000:65:00.0", &d.addr), 0);
	d.class = 0x030200;
	policy_apply(&pol, &d);
	assert_string_equal(d.deny_reason, "");
	policy_apply(NULL, &d);
	assert_string_equal(d.deny_reason, "");
}

static void test_empty_system(void **state)
{
	struct policy_paths p = { "/nonexistent/sys", "/nonexistent/proc", "/" };
	struct policy pol;

	/* a container without /sys: nothing found, nothing fails */
	policy_scan(&p, &pol);
	assert_int_equal(pol.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_partition_on_sata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dm_over_md_over_nvme, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slave_loop_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nvme_multipath, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_dev, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_and_apply, setup, teardown),
		cmocka_unit_test(test_empty_system),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
