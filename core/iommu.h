/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iommu.h - a lender's IOMMU domain: the DMA windows its devices may use.
 *
 * When a host has `iommu = on`, a lent device's DMA addresses (IOVAs, the
 * borrower's own physical addresses) are translated by mappings that
 * cover exactly the borrower's DMA windows; anything else faults and is
 * counted.  With the IOMMU off, addresses pass through untranslated.
 * Book-keeping only: the fabric back-end programs the hardware.
 */
#ifndef LENDFS_IOMMU_H
#define LENDFS_IOMMU_H

#include <stdbool.h>
#include <stdint.h>

struct iommu_mapping {
	uint64_t owner;
	uint64_t iova;
	uint64_t size;
	uint64_t phys;
};

struct iommu_domain {
	bool enabled;
	struct iommu_mapping *maps; /* sorted by iova, non-overlapping */
	unsigned n, cap;
	uint64_t faults;
};

void iommu_domain_init(struct iommu_domain *d, bool enabled);
void iommu_domain_release(struct iommu_domain *d);

/* -EEXIST (with reason) when the range overlaps an existing mapping. */
int iommu_map(struct iommu_domain *d, uint64_t owner, uint64_t iova,
	      uint64_t size, uint64_t phys, char *reason);
/* -ENOENT if no mapping starts at @iova with @size. */
int iommu_unmap(struct iommu_domain *d, uint64_t iova, uint64_t size);

/*
 * Translate an access of @len bytes at @iova.  A disabled IOMMU passes the
 * address through.  An access not wholly inside one mapping counts a fault
 * and returns -EFAULT.
 */
int iommu_translate(struct iommu_domain *d, uint64_t iova, uint64_t len,
		    uint64_t *phys);

#endif
