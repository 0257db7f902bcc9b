// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ntb.c - book-keeping of one NTB adapter's LUT entries and DMA windows.
 *
 * A slot is free when its owner is 0.  `used` and `dma_used` count the
 * owned slots and are kept exact: freeing a slot that is already free
 * changes nothing, so a double free cannot corrupt the counts.
 */
#include "ntb.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* Room for the LUT aperture before the DMA windows begin. */
#define NTB_APERTURE_SPAN (NTB_DMA_BASE - NTB_APERTURE_BASE)
/* Most DMA slots that fit between NTB_DMA_BASE and the top of 64 bits. */
#define NTB_DMA_MAX_SLOTS ((UINT64_MAX - NTB_DMA_BASE) / NTB_DMA_SLOT + 1)

int ntb_table_init(struct ntb_table *t, const struct cfg_host *h)
{
	memset(t, 0, sizeof(*t));
	if (!h)
		return -EINVAL;
	if (!is_power_of_2(h->window_max) || !is_power_of_2(h->window_align) ||
	    h->window_align > h->window_max)
		return -EINVAL;
	/* The LUT aperture must not run into the DMA windows. */
	if (h->lut_entries > NTB_APERTURE_SPAN / h->window_max)
		return -EINVAL;
	if (h->dma_windows > NTB_DMA_MAX_SLOTS)
		return -EINVAL;

	snprintf(t->host, sizeof(t->host), "%s", h->name);
	snprintf(t->adapter, sizeof(t->adapter), "%s", h->adapter);
	t->window_max = h->window_max;
	t->align = h->window_align;
	if (h->lut_entries) {
		t->lut = calloc(h->lut_entries, sizeof(*t->lut));
		if (!t->lut)
			return -ENOMEM;
	}
	if (h->dma_windows) {
		t->dma = calloc(h->dma_windows, sizeof(*t->dma));
		if (!t->dma) {
			ntb_table_release(t);
			return -ENOMEM;
		}
	}
	t->nentries = h->lut_entries;
	t->ndma = h->dma_windows;
	return 0;
}

void ntb_table_release(struct ntb_table *t)
{
	if (!t)
		return;
	free(t->lut);
	free(t->dma);
	memset(t, 0, sizeof(*t));
}

uint32_t ntb_entries_needed(const struct ntb_table *t, uint64_t size)
{
	uint64_t n;

	if (!t->window_max)
		return UINT32_MAX;
	/*
	 * ceil(align_up(size, align) / window_max).  window_max is a multiple
	 * of align, so rounding to align never adds an entry: dividing @size
	 * directly gives the same count and cannot overflow.
	 */
	n = size / t->window_max + (size % t->window_max != 0);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

uint64_t ntb_window_size(const struct ntb_table *t, uint64_t size)
{
	if (!t->align)
		return size;
	if (size > UINT64_MAX - (t->align - 1))
		return UINT64_MAX; /* cannot be rounded; no table can take it */
	return align_up(size, t->align);
}

static uint32_t lut_free_count(const struct ntb_table *t)
{
	return t->nentries - t->used;
}

static void lut_take(struct ntb_table *t, uint64_t owner, uint32_t first,
		     uint32_t count)
{
	for (uint32_t i = first; i < first + count; i++)
		t->lut[i] = (struct ntb_slot){ .owner = owner };
	t->used += count;
}

int ntb_lut_alloc(struct ntb_table *t, uint64_t owner, uint32_t count,
		  uint32_t *first, char *reason)
{
	uint32_t run = 0;

	if (owner == 0)
		return reason_set(reason, -EINVAL,
				  "owner 0 cannot hold NTB translation entries on adapter %s/%s",
				  t->host, t->adapter);
	if (count == 0)
		return reason_set(reason, -EINVAL,
				  "zero NTB translation entries requested on adapter %s/%s",
				  t->host, t->adapter);

	/* First fit: the lowest run of @count free entries. */
	for (uint32_t i = 0; count <= t->nentries && i < t->nentries; i++) {
		if (t->lut[i].owner) {
			run = 0;
			continue;
		}
		if (++run == count) {
			uint32_t start = i + 1 - count;

			lut_take(t, owner, start, count);
			if (first)
				*first = start;
			return 0;
		}
	}
	return reason_set(reason, -ENOSPC,
			  "no free NTB translation entry on adapter %s/%s: "
			  "need %" PRIu32 " contiguous, %" PRIu32 " free of %" PRIu32,
			  t->host, t->adapter, count, lut_free_count(t), t->nentries);
}

int ntb_lut_claim(struct ntb_table *t, uint64_t owner, uint32_t first,
		  uint32_t count, char *reason)
{
	if (owner == 0)
		return reason_set(reason, -EINVAL,
				  "owner 0 cannot hold NTB translation entries on adapter %s/%s",
				  t->host, t->adapter);
	if (count == 0 || first >= t->nentries || count > t->nentries - first)
		return reason_set(reason, -EINVAL,
				  "translation entries %" PRIu32 "+%" PRIu32
				  " are outside adapter %s/%s (%" PRIu32 " entries)",
				  first, count, t->host, t->adapter, t->nentries);
	for (uint32_t i = first; i < first + count; i++) {
		if (t->lut[i].owner)
			return reason_set(reason, -EBUSY,
					  "translation entry %" PRIu32
					  " on adapter %s/%s is already owned by 0x%" PRIx64,
					  i, t->host, t->adapter, t->lut[i].owner);
	}
	lut_take(t, owner, first, count);
	return 0;
}

void ntb_lut_free(struct ntb_table *t, uint32_t first, uint32_t count)
{
	if (first >= t->nentries)
		return;
	if (count > t->nentries - first)
		count = t->nentries - first;
	for (uint32_t i = first; i < first + count; i++) {
		if (!t->lut[i].owner)
			continue;
		t->lut[i] = (struct ntb_slot){ 0 };
		t->used--;
	}
}

uint64_t ntb_lut_addr(const struct ntb_table *t, uint32_t entry)
{
	return NTB_APERTURE_BASE + (uint64_t)entry * t->window_max;
}

int ntb_dma_alloc(struct ntb_table *t, uint64_t owner, uint32_t *slot,
		  char *reason)
{
	if (owner == 0)
		return reason_set(reason, -EINVAL,
				  "owner 0 cannot hold NTB DMA windows on adapter %s/%s",
				  t->host, t->adapter);
	for (uint32_t i = 0; i < t->ndma; i++) {
		if (t->dma[i].owner)
			continue;
		t->dma[i] = (struct ntb_slot){ .owner = owner };
		t->dma_used++;
		if (slot)
			*slot = i;
		return 0;
	}
	return reason_set(reason, -ENOSPC,
			  "no free NTB DMA window on adapter %s/%s: "
			  "%" PRIu32 " of %" PRIu32 " in use",
			  t->host, t->adapter, t->dma_used, t->ndma);
}

int ntb_dma_claim(struct ntb_table *t, uint64_t owner, uint32_t slot,
		  char *reason)
{
	if (owner == 0)
		return reason_set(reason, -EINVAL,
				  "owner 0 cannot hold NTB DMA windows on adapter %s/%s",
				  t->host, t->adapter);
	if (slot >= t->ndma)
		return reason_set(reason, -EINVAL,
				  "DMA window %" PRIu32 " is outside adapter %s/%s "
				  "(%" PRIu32 " windows)",
				  slot, t->host, t->adapter, t->ndma);
	if (t->dma[slot].owner)
		return reason_set(reason, -EBUSY,
				  "DMA window %" PRIu32
				  " on adapter %s/%s is already owned by 0x%" PRIx64,
				  slot, t->host, t->adapter, t->dma[slot].owner);
	t->dma[slot] = (struct ntb_slot){ .owner = owner };
	t->dma_used++;
	return 0;
}

void ntb_dma_free(struct ntb_table *t, uint32_t slot)
{
	if (slot >= t->ndma || !t->dma[slot].owner)
		return;
	t->dma[slot] = (struct ntb_slot){ 0 };
	t->dma_used--;
}

uint64_t ntb_dma_addr(const struct ntb_table *t, uint32_t slot)
{
	return NTB_DMA_BASE + (uint64_t)slot * NTB_DMA_SLOT;
}
