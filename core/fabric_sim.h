/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fabric_sim.h - the sim fabric's hardware, seen from another process.
 *
 * fabric_sim_ops (fabric.h) keeps the simulated hardware in files under
 * the run directory, so that lendfs-dma and tests can move real bytes
 * through the translation windows the daemon programmed:
 *
 *   RUN/hosts/OWNER.hw        registers of one address-space owner: the
 *                             adapter's LUT entries and DMA windows, the
 *                             IOMMU mappings, the RAM ranges and the
 *                             counters (fixed-size binary records, mmap'd)
 *   RUN/ram/OWNER             the owner's RAM: sparse, file offset ==
 *                             physical address
 *   RUN/devices.tab           one record per attached device: its lender
 *                             and BAR addresses (mmap'd by the daemon)
 *   RUN/devices/DEVID/barN    BAR N, exactly its size, created by the
 *                             first write that reaches it (reads of a
 *                             BAR never written return zeros)
 *
 * OWNER is a host name, or for a VM borrower "vm:HOST/VM" written as
 * "vm.HOST.VM" ('.' cannot occur in a name, so this is unambiguous).
 * fabric_sim_ops.open() is a power-on of the registers: it recreates
 * hosts/ and devices.tab from scratch.  Memory is kept (issue 20): BAR
 * files stay (same inode, same bytes) unless the BAR's size changed when
 * the device is attached again, RAM files stay and are re-attached, so a
 * guest that maps a BAR file across a daemon restart keeps seeing the
 * fabric's writes.  Files of devices or owners that are gone are left.
 *
 * An access is resolved the way the hardware would, hop by hop (at most
 * SIM_MAX_HOPS, else -ELOOP): an address in one of the host's RAM ranges
 * is RAM; inside a BAR of a device the host lends, that BAR; inside a
 * programmed LUT entry or DMA window of the host's adapter, it is
 * translated into the next host's space and resolved there.  Anything
 * else is -EFAULT and counts a bad access on the host where it ended.
 * A device's DMA first goes through its lender's IOMMU when that is on
 * (outside every mapping: -EFAULT and an IOMMU fault on the lender).
 * An access that spans several entries is split at their ends.  The whole
 * access is resolved before any byte moves, so a failed access moves
 * nothing (unless the windows change underneath it).
 */
#ifndef LENDFS_FABRIC_SIM_H
#define LENDFS_FABRIC_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "window.h"

#define SIM_MAX_HOPS 64
#define SIM_IOMMU_MAX 4096	 /* IOMMU mappings per host */
#define SIM_IOMMU_PAGE 4096ULL	 /* IOMMU mapping granularity */
#define SIM_ACCESS_MAX (1u << 30) /* bytes in one access */

struct sim_hw;

/* Attach to the hardware of the sim fabric in @run_dir (read/write). */
int sim_hw_open(const char *run_dir, struct sim_hw **out, char *reason);
void sim_hw_close(struct sim_hw *hw);

/*
 * A CPU on @host ("HOST" or "vm:HOST/VM") reads or writes @len bytes at
 * physical address @addr.  Returns @len, or -errno with a reason:
 * -ENOENT unknown host, -EFAULT unmapped address, -ELOOP translation
 * loop, -EINVAL bad length.
 */
int sim_cpu_access(struct sim_hw *hw, const char *host, uint64_t addr,
		   void *buf, size_t len, bool write, char *reason);

/*
 * Device @devid does DMA of @len bytes at bus address @addr.  Same
 * returns; -ENOENT for an unknown device.
 */
int sim_dma_access(struct sim_hw *hw, const char *devid, uint64_t addr,
		   void *buf, size_t len, bool write, char *reason);

/*
 * One translation programmed in an owner's registers, as the hardware
 * holds it: a LUT entry (count 1, local = its aperture address), a DMA
 * window or an IOMMU mapping (local = IOVA, target = physical address,
 * next = the host itself, domain = the device).  No tag: the hardware
 * does not know what a window was for.  dest is where the first byte of
 * the target resolves, hop by hop: a BAR of device dest (dest_bar), the
 * RAM of owner dest, or dest_err (-EFAULT: nothing there).
 */
struct sim_reg {
	struct window w;
	int dest_err;
	bool dest_bar;
	char dest[WINDOW_DOMAIN_MAX + WINDOW_NEXT_MAX];
};

typedef int (*sim_reg_fn)(void *arg, const struct sim_reg *reg);

/*
 * Call @fn for every valid register of @host (NULL: of every owner in the
 * run directory), in table order.  A nonzero return of @fn stops the walk
 * and is returned.  Reading changes nothing (no bad-access counts).
 */
int sim_hw_regs(struct sim_hw *hw, const char *host, sim_reg_fn fn, void *arg,
		char *reason);

/*
 * A fault for tests: LUT entry @index of @host's adapter loses its
 * translation behind the daemons' back (cleared in the register file).
 * -ENOENT when it holds none, -ERANGE past the table.
 */
int sim_hw_lose_lut(struct sim_hw *hw, const char *host, uint32_t index,
		    char *reason);

#endif
