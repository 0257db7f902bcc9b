/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * window.h - one piece of fabric state a lend programs.
 *
 * A lend is a list of windows: LUT entries on the NTB adapters of the
 * route (the borrower's view of the device's BARs), reverse DMA windows
 * (the device's view of the borrower's RAM), and IOMMU mappings on the
 * lender.  The list is what the store records before the fabric is
 * touched, so everything the fabric holds can be rebuilt from it.
 */
#ifndef LENDFS_WINDOW_H
#define LENDFS_WINDOW_H

#include <stdint.h>

#include "util.h"

enum window_kind {
	WIN_LUT,   /* NTB LUT entries: aperture -> next hop (BAR side) */
	WIN_DMA,   /* NTB reverse window: DMA aperture -> next hop (RAM) */
	WIN_IOMMU, /* lender IOMMU: IOVA -> lender physical */
};

#define WINDOW_TAG_MAX 112
#define WINDOW_DOMAIN_MAX 96 /* a device id */
/* "HOST" or "vm:HOST/VM", NUL included */
#define WINDOW_NEXT_MAX (HOST_NAME_MAX_LEN + VM_NAME_MAX_LEN + 5)

struct window {
	enum window_kind kind;
	char host[HOST_NAME_MAX_LEN + 1]; /* whose adapter / IOMMU */
	uint32_t index;			  /* first LUT entry, or DMA slot */
	uint32_t count;			  /* LUT entries (1 otherwise) */
	uint64_t local;			  /* aperture address or IOVA */
	uint64_t size;
	uint64_t target; /* address in the next host's space */
	char next[WINDOW_NEXT_MAX];	  /* whose space target is in */
	/*
	 * WIN_IOMMU only: the device whose IOMMU domain holds the mapping.
	 * Every lent device gets a domain of its own on its lender (as VFIO
	 * gives each IOMMU group one), so two devices of one lender lent to
	 * one borrower can both map the borrower's RAM at the same IOVAs.
	 */
	char domain[WINDOW_DOMAIN_MAX];
	char tag[WINDOW_TAG_MAX];	  /* "bar0", "ram1", "p2p:DEV:bar0" */
};

const char *window_kind_name(enum window_kind k);
int window_kind_parse(const char *s, enum window_kind *out);

/*
 * Text form, one window per line, used by the `windows` attribute, the
 * store and lendfs-dma:
 *   KIND HOST INDEX COUNT LOCAL SIZE TARGET NEXT DOMAIN TAG
 *   lut nodeB 0 2 0x200000000000 0x1000000 0x380000000000 nodeA - bar0
 * NEXT is the host (or "vm:HOST/VM") whose address space TARGET is in;
 * for an IOMMU window it is HOST itself.  An empty tag, next or domain
 * is "-".
 */
#define WINDOW_TEXT_MAX 512 /* one line of it, NUL included */

int window_format(const struct window *w, char *buf, size_t len);
int window_parse(const char *line, struct window *out);

/* Are @a and @b the same window, field for field? */
bool window_equal(const struct window *a, const struct window *b);

/*
 * The half-open range of its host's resource that @w owns: LUT entries
 * [index, index + count), DMA slot [index, index + 1), or IOVAs [local,
 * local + size) of its IOMMU domain.  Returns false when it owns nothing
 * (an unknown kind, no entries, no bytes).
 */
bool window_span(const struct window *w, uint64_t *start, uint64_t *end);

/*
 * Do @a and @b own a resource in common: the same kind on the same host
 * (IOMMU: in the same domain, @a_dom and @b_dom: the window's domain or,
 * when it names none, its lend's device) with intersecting spans?
 */
bool window_overlap(const struct window *a, const char *a_dom,
		    const struct window *b, const char *b_dom);

#endif
