/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fabric.h - the fabric back-end: what a lend does to the hardware.
 *
 * The engine decides which windows a lend needs (routing, LUT and IOMMU
 * book-keeping); a back-end programs them.  Back-ends:
 *
 *   sim  a software NTB fabric.  Its "hardware" lives in files under the
 *        run directory: each device BAR and each host's RAM is a sparse
 *        shared-memory file, and each host's adapter LUT, DMA windows and
 *        IOMMU mappings are register files that lendfs-dma (another
 *        process) reads to translate accesses hop by hop, like a CPU or a
 *        device would.  Opening it resets the registers (power-on);
 *        BAR and RAM files keep their bytes (memory survives a restart).
 *   ntb  real NTB hardware (future work): open() fails with -ENOTSUP on a
 *        machine without it.
 */
#ifndef LENDFS_FABRIC_H
#define LENDFS_FABRIC_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "window.h"

struct fabric_ops {
	const char *name;
	/*
	 * open() resets the hardware, as a power-on does: nothing programmed
	 * before survives a restart of the daemon, so the engine need not
	 * store a lend's intent to undo it after a crash (core/lend.c,
	 * intent_needed()).  False for hardware that keeps its registers.
	 */
	bool resets_at_open;
	int (*open)(const struct cluster_config *cfg, const char *run_dir,
		    void **ctx, char *reason);
	void (*close)(void *ctx);
	/* A device appears: create its BAR backing at the given addresses. */
	int (*device_attach)(void *ctx, const char *devid, const char *host,
			     const uint64_t bar_size[PCI_NUM_BARS],
			     const uint64_t bar_addr[PCI_NUM_BARS],
			     char *reason);
	void (*device_detach)(void *ctx, const char *devid);
	/*
	 * A borrower's RAM appears (host or VM).  @backing: NULL, or a file
	 * whose offset G is guest-physical address G of every range (a VM's
	 * shared memory-backend-file, docs/VM.md): the fabric's DMA into that
	 * RAM then reaches the file itself, not a copy of the fabric's own.
	 */
	int (*ram_attach)(void *ctx, const char *owner, const struct range *ram,
			  unsigned nram, const char *backing, char *reason);
	/* Program / clear one window in the hardware. */
	int (*program)(void *ctx, const struct window *w, char *reason);
	int (*clear)(void *ctx, const struct window *w, char *reason);
	/* Counters the hardware keeps (IOMMU faults, refused accesses). */
	int (*host_stats)(void *ctx, const char *host, uint64_t *iommu_faults,
			  uint64_t *bad_accesses);
};

extern const struct fabric_ops fabric_sim_ops;
extern const struct fabric_ops fabric_ntb_ops;
/* By name: fabric_find() of core/backend.h. */

#endif
