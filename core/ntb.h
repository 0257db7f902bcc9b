/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ntb.h - one NTB adapter's address-translation resources.
 *
 * An adapter exposes an aperture in its host's physical address space,
 * cut into `lut_entries` slots of `window_max` bytes each.  LUT entry i
 * maps aperture [base + i * window_max, + size) to an address in the next
 * host's space; size is at most window_max and a multiple of the adapter's
 * alignment, and the target is aligned to it.  A BAR larger than
 * window_max needs several entries, and they must be contiguous so the
 * borrower sees one linear window: a 16 MiB BAR with 8 MiB windows takes
 * two adjacent entries.  Allocation is first fit over contiguous runs.
 *
 * The adapter also has `dma_windows` large reverse windows (the direction
 * a device's DMA takes back to the borrower's RAM): slot j sits at
 * dma_base + j * NTB_DMA_SLOT, size up to NTB_DMA_SLOT.
 *
 * This module only does book-keeping (who owns which entry); writing the
 * entries into hardware is the fabric back-end's job (fabric.h).
 */
#ifndef LENDFS_NTB_H
#define LENDFS_NTB_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define NTB_APERTURE_BASE 0x200000000000ULL /* LUT aperture, each host */
#define NTB_DMA_BASE 0x280000000000ULL	    /* reverse windows */
#define NTB_DMA_SLOT (1ULL << 40)

struct ntb_slot {
	uint64_t owner; /* 0 = free */
	uint64_t target;
	uint64_t size;
};

struct ntb_table {
	char host[HOST_NAME_MAX_LEN + 1];
	char adapter[32];
	uint32_t nentries;
	uint64_t window_max;
	uint64_t align;
	uint32_t used;
	struct ntb_slot *lut;
	uint32_t ndma;
	uint32_t dma_used;
	struct ntb_slot *dma;
};

int ntb_table_init(struct ntb_table *t, const struct cfg_host *h);
void ntb_table_release(struct ntb_table *t);

/* Number of LUT entries a window of @size needs on this adapter. */
uint32_t ntb_entries_needed(const struct ntb_table *t, uint64_t size);

/*
 * Reserve @count contiguous free LUT entries for @owner (nonzero).
 * -ENOSPC with a reason naming the adapter, the entries needed, the free
 * count and the table size when no run is free.
 */
int ntb_lut_alloc(struct ntb_table *t, uint64_t owner, uint32_t count,
		  uint32_t *first, char *reason);
/* Claim specific entries (recovery from the store); -EBUSY if taken. */
int ntb_lut_claim(struct ntb_table *t, uint64_t owner, uint32_t first,
		  uint32_t count, char *reason);
void ntb_lut_free(struct ntb_table *t, uint32_t first, uint32_t count);
uint64_t ntb_lut_addr(const struct ntb_table *t, uint32_t entry);

int ntb_dma_alloc(struct ntb_table *t, uint64_t owner, uint32_t *slot,
		  char *reason);
int ntb_dma_claim(struct ntb_table *t, uint64_t owner, uint32_t slot,
		  char *reason);
void ntb_dma_free(struct ntb_table *t, uint32_t slot);
uint64_t ntb_dma_addr(const struct ntb_table *t, uint32_t slot);

/* The address a window must be aligned to / rounded up to on this adapter. */
uint64_t ntb_window_size(const struct ntb_table *t, uint64_t size);

#endif
