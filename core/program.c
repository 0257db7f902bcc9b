// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * program.c - windows onto the fabric and off it again, with fault
 * injection points (engine_internal.h).
 */
#include <errno.h>

#include "engine_internal.h"
#include "fault.h"

/*
 * Program @n windows; in distributed mode only those on this daemon's
 * host (the others' daemons program theirs: coord_ops.wait_peers).
 */
int windows_program(struct engine *e, const struct window *w, unsigned n,
		    uint64_t deadline, char *reason)
{
	for (unsigned i = 0; i < n; i++) {
		int r;

		if (!lend_window_here(e, &w[i]))
			continue;
		r = fault_check(w[i].kind == WIN_IOMMU ? "iommu_map" : "ntb_map",
				reason);

		if (r == 0)
			r = e->fabric->program(e->fabric_ctx, &w[i], reason);
		if (r == 0 && now_ns() > deadline)
			r = reason_set(reason, -ETIMEDOUT,
				       "engine timeout (%u ms) while programming windows",
				       e->cfg->timeout_ms);
		if (r < 0) {
			/* undo this one too if it went in, then the rest */
			unsigned done = r == -ETIMEDOUT ? i + 1 : i;

			for (unsigned j = done; j-- > 0;)
				if (lend_window_here(e, &w[j]))
					e->fabric->clear(e->fabric_ctx, &w[j], NULL);
			return r;
		}
	}
	return 0;
}

/* Clear in reverse; on failure re-program what was cleared. */
int windows_clear(struct engine *e, const struct window *w, unsigned n,
		  char *reason)
{
	for (unsigned i = n; i-- > 0;) {
		int r;

		if (!lend_window_here(e, &w[i]))
			continue;
		r = fault_check(w[i].kind == WIN_IOMMU ? "iommu_unmap" : "ntb_unmap",
				reason);
		if (r == 0)
			r = e->fabric->clear(e->fabric_ctx, &w[i], reason);
		if (r < 0) {
			for (unsigned j = i + 1; j < n; j++)
				if (lend_window_here(e, &w[j]))
					e->fabric->program(e->fabric_ctx, &w[j], NULL);
			return r;
		}
	}
	return 0;
}


/*
 * A window of several LUT entries that could not be cleared whole (one of
 * them holds nothing any more): each of its entries on its own.
 */
static void clear_entries(struct engine *e, const struct window *w)
{
	struct lhost *h = engine_host(e, w->host);
	uint64_t stride = h && h->cfg ? h->cfg->window_max : 0;

	for (uint32_t k = 0; stride && k < w->count; k++) {
		struct window one = *w;

		one.index = w->index + k;
		one.count = 1;
		one.local = w->local + k * stride;
		one.size = MIN(stride, w->size - MIN(w->size, k * stride));
		e->fabric->clear(e->fabric_ctx, &one, NULL);
	}
}

void windows_clear_all(struct engine *e, const struct window *w, unsigned n)
{
	for (unsigned i = n; i-- > 0;) {
		if (!lend_window_here(e, &w[i]) ||
		    e->fabric->clear(e->fabric_ctx, &w[i], NULL) == 0)
			continue;
		if (w[i].kind == WIN_LUT && w[i].count > 1)
			clear_entries(e, &w[i]);
	}
}
