/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.h - the lender's own safety policy: which local PCI devices the
 * host itself depends on, so that they are never lent (EPERM).
 *
 *   - the device(s) behind the root file system: stat("/") -> st_dev ->
 *     /sys/dev/block/MAJ:MIN (or the mount source in mountinfo when st_dev
 *     is anonymous, as on btrfs) -> through device-mapper / md `slaves/`,
 *     partitions and NVMe multipath subsystems -> the nearest PCI device;
 *   - the device(s) behind every interface carrying a default route
 *     (/proc/net/route and /proc/net/ipv6_route), through bridges, bonds
 *     and VLANs (`lower_*` links) -> the nearest PCI device;
 *   - bridges (PCI class 0x06xxxx): host bridges and ports are never
 *     lendable.
 *
 * [policy] deny from the config is the engine's business, not this file's.
 * Everything here only reads /sys and /proc; nothing is ever written.
 * Paths are parameters so that tests can point them at a fake tree.
 */
#ifndef LENDFS_POLICY_H
#define LENDFS_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define POLICY_MAX_ENTRIES 32
#define POLICY_REASON_MAX 128 /* == sizeof(cfg_device.deny_reason) */

struct policy_paths {
	const char *sys;  /* "/sys" */
	const char *proc; /* "/proc" */
	const char *root; /* "/": the file system whose device is protected */
};

struct policy_entry {
	struct pci_addr addr;
	char reason[POLICY_REASON_MAX]; /* "holds the root file system (/dev/vda1)" */
};

struct policy {
	struct policy_entry entries[POLICY_MAX_ENTRIES];
	unsigned n;
};

/* The paths of the running system. */
extern const struct policy_paths policy_system_paths;

/*
 * Find the PCI devices the local host depends on.  Missing information
 * (no /sys, no default route, a root file system without a block device,
 * as in a container) simply yields fewer entries; this never fails.
 */
void policy_scan(const struct policy_paths *p, struct policy *out);

/*
 * The PCI devices behind block device @maj:@min.  Fills @name with the
 * device node it is known by ("/dev/vda1", "/dev/mapper/root").  Returns
 * the number of addresses (0 if none) or -errno (-ENOENT: no such block
 * device).
 */
int policy_block_pci(const char *sys, unsigned maj, unsigned min,
		     struct pci_addr *out, unsigned max, char *name,
		     size_t namelen);

/* The PCI devices behind network interface @ifname; count or -errno. */
int policy_net_pci(const char *sys, const char *ifname, struct pci_addr *out,
		   unsigned max);

/*
 * Interfaces carrying a default route (IPv4 and IPv6, up, not lo, not
 * reject routes), without duplicates.  Returns the count.
 */
unsigned policy_default_route_ifaces(const char *proc, char (*out)[32],
				     unsigned max);

/*
 * The block device the file system at @root lives on; -ENODEV when it has
 * none (tmpfs, overlayfs, NFS, ZFS datasets).
 */
int policy_root_dev(const struct policy_paths *p, unsigned *maj,
		    unsigned *min);

/*
 * Fill @dev->deny_reason (it stays as it is when nothing applies): the
 * first matching entry of @p, else "is a bridge (class 0x060400)" for
 * class 0x06xxxx.
 */
void policy_apply(const struct policy *p, struct cfg_device *dev);

#endif
