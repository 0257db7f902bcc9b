// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * iommu.c - a lender's IOMMU domain: sorted, non-overlapping mappings.
 *
 * Ranges are handled by their inclusive last byte so a mapping may end at
 * the very top of the 64-bit space without overflowing.
 */
#include "iommu.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "util.h"

#define IOMMU_MIN_CAP 8

static uint64_t map_last(const struct iommu_mapping *m)
{
	return m->iova + (m->size - 1);
}

/* Index of the first mapping whose iova is greater than @iova (0..n). */
static unsigned upper_bound(const struct iommu_domain *d, uint64_t iova)
{
	unsigned lo = 0, hi = d->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (d->maps[mid].iova <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void iommu_domain_init(struct iommu_domain *d, bool enabled)
{
	memset(d, 0, sizeof(*d));
	d->enabled = enabled;
}

void iommu_domain_release(struct iommu_domain *d)
{
	if (!d)
		return;
	free(d->maps);
	memset(d, 0, sizeof(*d));
}

static int grow(struct iommu_domain *d)
{
	struct iommu_mapping *m;
	unsigned cap;

	if (d->n < d->cap)
		return 0;
	if (d->cap > UINT32_MAX / 2)
		return -ENOMEM;
	cap = d->cap ? d->cap * 2 : IOMMU_MIN_CAP;
	m = reallocarray(d->maps, cap, sizeof(*m));
	if (!m)
		return -ENOMEM;
	d->maps = m;
	d->cap = cap;
	return 0;
}

int iommu_map(struct iommu_domain *d, uint64_t owner, uint64_t iova,
	      uint64_t size, uint64_t phys, char *reason)
{
	uint64_t last;
	unsigned pos;
	int hit = -1;

	if (size == 0)
		return reason_set(reason, -EINVAL,
				  "empty iommu mapping at iova 0x%" PRIx64, iova);
	if (size - 1 > UINT64_MAX - iova || size - 1 > UINT64_MAX - phys)
		return reason_set(reason, -EINVAL,
				  "iommu mapping of 0x%" PRIx64 " bytes at iova 0x%" PRIx64
				  " (phys 0x%" PRIx64 ") runs past the address space",
				  size, iova, phys);
	last = iova + (size - 1);

	/* Only the neighbours of the insertion point can overlap. */
	pos = upper_bound(d, iova);
	if (pos > 0 && map_last(&d->maps[pos - 1]) >= iova)
		hit = (int)pos - 1;
	else if (pos < d->n && d->maps[pos].iova <= last)
		hit = (int)pos;
	if (hit >= 0)
		return reason_set(reason, -EEXIST,
				  "iova 0x%" PRIx64 "-0x%" PRIx64 " overlaps the mapping 0x%" PRIx64
				  "-0x%" PRIx64 " of owner 0x%" PRIx64,
				  iova, last, d->maps[hit].iova, map_last(&d->maps[hit]),
				  d->maps[hit].owner);

	if (grow(d) < 0)
		return reason_set(reason, -ENOMEM,
				  "out of memory for iommu mapping at iova 0x%" PRIx64, iova);
	memmove(&d->maps[pos + 1], &d->maps[pos], (d->n - pos) * sizeof(*d->maps));
	d->maps[pos] = (struct iommu_mapping){
		.owner = owner,
		.iova = iova,
		.size = size,
		.phys = phys,
	};
	d->n++;
	return 0;
}

int iommu_unmap(struct iommu_domain *d, uint64_t iova, uint64_t size)
{
	unsigned pos = upper_bound(d, iova);

	if (pos == 0)
		return -ENOENT;
	pos--;
	if (d->maps[pos].iova != iova || d->maps[pos].size != size)
		return -ENOENT;
	memmove(&d->maps[pos], &d->maps[pos + 1], (d->n - pos - 1) * sizeof(*d->maps));
	d->n--;
	return 0;
}

int iommu_translate(struct iommu_domain *d, uint64_t iova, uint64_t len,
		    uint64_t *phys)
{
	const struct iommu_mapping *m;
	unsigned pos;

	if (!d->enabled) {
		if (phys)
			*phys = iova;
		return 0;
	}
	/* A zero-length access is checked as a one-byte access at @iova. */
	if (len == 0)
		len = 1;
	pos = upper_bound(d, iova);
	if (pos == 0)
		goto fault;
	m = &d->maps[pos - 1];
	if (len - 1 > UINT64_MAX - iova || iova + (len - 1) > map_last(m))
		goto fault;
	if (phys)
		*phys = m->phys + (iova - m->iova);
	return 0;

fault:
	d->faults++;
	return -EFAULT;
}
