// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * plan.c - which windows a lend needs, and their reservation.
 *
 * For a device D on lender L lent to borrower B over the route
 * L = n0, n1, ..., nk = B:
 *
 *  - BAR side (the borrower's CPU reaching D's BARs): every host on the
 *    route except L translates, so each gets LUT entries for each BAR.
 *    Walking from L toward B, the first host's entries target D's BAR in
 *    L's space, each further host's entries target the previous host's
 *    aperture; the borrower's own entries are where its driver sees the
 *    BAR.
 *  - DMA side (D writing the borrower's RAM): every host except B
 *    translates, each with one reverse window per borrower RAM range,
 *    chained the same way from B back toward L.
 *  - IOMMU: when L's IOMMU is on, one mapping per RAM range turns the
 *    borrower's physical address (the IOVA its driver hands the device)
 *    into L's reverse window.  With it off, D must use L's window
 *    addresses directly.
 *
 * Switches on the route are transparent and translate nothing.
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"
#include "fault.h"

struct wvec {
	struct window *w;
	unsigned n, cap;
};

static struct window *wvec_add(struct wvec *v)
{
	if (v->n == v->cap) {
		unsigned cap = v->cap ? v->cap * 2 : 8;
		struct window *nw = realloc(v->w, cap * sizeof(*nw));

		if (!nw)
			return NULL;
		v->w = nw;
		v->cap = cap;
	}
	memset(&v->w[v->n], 0, sizeof(v->w[0]));
	return &v->w[v->n++];
}

static struct lhost *host_of_node(struct engine *e, unsigned node)
{
	if (topo_node_is_switch(e->topo, node))
		return NULL;
	return engine_host(e, topo_node_name(e->topo, node));
}

void plan_release(struct engine *e, const struct window *w, unsigned n)
{
	for (unsigned i = n; i-- > 0;) {
		struct lhost *h = engine_host(e, w[i].host);

		if (!h)
			continue;
		switch (w[i].kind) {
		case WIN_LUT:
			ntb_lut_free(&h->ntb, w[i].index, w[i].count);
			break;
		case WIN_DMA:
			ntb_dma_free(&h->ntb, w[i].index);
			break;
		case WIN_IOMMU: {
			struct ldevice *d = engine_dev(e, w[i].domain);

			if (d)
				iommu_unmap(&d->iommu, w[i].local, w[i].size);
			break;
		}
		}
	}
}

int plan_claim(struct engine *e, uint64_t owner, const struct window *w,
	       unsigned n, char *reason)
{
	for (unsigned i = 0; i < n; i++) {
		struct lhost *h = engine_host(e, w[i].host);
		int r;

		if (!h) {
			r = reason_set(reason, -ENOENT, "window on unknown host %s",
				       w[i].host);
		} else if (w[i].kind == WIN_LUT) {
			r = ntb_lut_claim(&h->ntb, owner, w[i].index, w[i].count,
					  reason);
		} else if (w[i].kind == WIN_DMA) {
			r = ntb_dma_claim(&h->ntb, owner, w[i].index, reason);
		} else {
			struct ldevice *d = engine_dev(e, w[i].domain);

			r = d ? iommu_map(&d->iommu, owner, w[i].local, w[i].size,
					  w[i].target, reason) :
				reason_set(reason, -ENOENT,
					   "iommu window for unknown device %s",
					   w[i].domain);
		}
		if (r < 0) {
			plan_release(e, w, i);
			return r;
		}
	}
	return 0;
}

/* Hosts of the route that translate, in route order from @from's side. */
static unsigned route_hosts(struct engine *e, const struct route *r,
			    bool include_src, bool include_dst,
			    struct lhost **out)
{
	unsigned n = 0;

	if (include_src)
		out[n++] = host_of_node(e, r->src);
	for (unsigned i = 0; i < r->nhops; i++) {
		struct lhost *h = host_of_node(e, r->hops[i].node);

		if (!h)
			continue;
		if (i == r->nhops - 1 && !include_dst)
			break;
		out[n++] = h;
	}
	return n;
}

/*
 * A fault point of planning (fault.h): a dry run (@dry) passes none, so
 * reading a plan never moves the count of an injected fault.
 */
static int plan_fault(bool dry, const char *point, char *reason)
{
	return dry ? 0 : fault_check(point, reason);
}

static int plan_bars(struct engine *e, struct ldevice *d,
		     const struct route *r, uint64_t owner, const char *prefix,
		     bool dry, struct wvec *v, char *reason)
{
	struct lhost *hosts[ROUTE_MAX_HOPS + 1];
	unsigned nh = route_hosts(e, r, false, true, hosts);

	for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
		const char *space = d->lender->name;
		uint64_t addr = d->bar_addr[bar];

		if (!d->bar_size[bar])
			continue;
		for (unsigned i = 0; i < nh; i++) {
			struct lhost *h = hosts[i];
			uint32_t count = ntb_entries_needed(&h->ntb, d->bar_size[bar]);
			uint32_t first;
			struct window *w;
			int rr = plan_fault(dry, "ntb_alloc", reason);

			if (rr == 0)
				rr = ntb_lut_alloc(&h->ntb, owner, count, &first, reason);
			if (rr < 0)
				return rr;
			w = wvec_add(v);
			if (!w) {
				ntb_lut_free(&h->ntb, first, count);
				return reason_set(reason, -ENOMEM, "out of memory");
			}
			*w = (struct window){
				.kind = WIN_LUT,
				.index = first,
				.count = count,
				.local = ntb_lut_addr(&h->ntb, first),
				.size = ntb_window_size(&h->ntb, d->bar_size[bar]),
				.target = addr,
			};
			snprintf(w->host, sizeof(w->host), "%s", h->name);
			snprintf(w->next, sizeof(w->next), "%.*s", WINDOW_NEXT_MAX - 1, space);
			snprintf(w->tag, sizeof(w->tag), "%.100sbar%u", prefix, bar);
			space = h->name;
			addr = w->local;
		}
	}
	return 0;
}

static int plan_dma(struct engine *e, struct ldevice *d,
		    const struct borrower *b, const struct route *r,
		    uint64_t owner, bool dry, struct wvec *v, char *reason)
{
	struct lhost *hosts[ROUTE_MAX_HOPS + 1];
	unsigned nh = route_hosts(e, r, true, false, hosts);
	struct lhost *lender = d->lender;

	for (unsigned j = 0; j < b->nram; j++) {
		const struct range *ram = &b->ram[j];
		const char *space = b->value;
		uint64_t addr = ram->start;
		uint64_t size = ram->end - ram->start + 1;

		/* from the borrower's side back toward the lender */
		for (unsigned i = nh; i-- > 0;) {
			struct lhost *h = hosts[i];
			uint32_t slot;
			struct window *w;
			int rr = ntb_dma_alloc(&h->ntb, owner, &slot, reason);

			if (rr < 0)
				return rr;
			w = wvec_add(v);
			if (!w) {
				ntb_dma_free(&h->ntb, slot);
				return reason_set(reason, -ENOMEM, "out of memory");
			}
			*w = (struct window){
				.kind = WIN_DMA,
				.index = slot,
				.count = 1,
				.local = ntb_dma_addr(&h->ntb, slot),
				.size = ntb_window_size(&h->ntb, size),
				.target = addr,
			};
			snprintf(w->host, sizeof(w->host), "%s", h->name);
			snprintf(w->next, sizeof(w->next), "%.*s", WINDOW_NEXT_MAX - 1, space);
			snprintf(w->tag, sizeof(w->tag), "ram%u", j);
			space = h->name;
			addr = w->local;
		}
		if (lender->iommu) {
			struct window *w;
			int rr = plan_fault(dry, "iommu_alloc", reason);

			if (rr == 0)
				rr = iommu_map(&d->iommu, owner, ram->start, size,
					       addr, reason);
			if (rr < 0)
				return rr;
			w = wvec_add(v);
			if (!w) {
				iommu_unmap(&d->iommu, ram->start, size);
				return reason_set(reason, -ENOMEM, "out of memory");
			}
			*w = (struct window){
				.kind = WIN_IOMMU,
				.count = 1,
				.local = ram->start,
				.size = size,
				.target = addr,
			};
			snprintf(w->host, sizeof(w->host), "%s", lender->name);
			snprintf(w->next, sizeof(w->next), "%s", lender->name);
			snprintf(w->domain, sizeof(w->domain), "%s", d->id);
			snprintf(w->tag, sizeof(w->tag), "ram%u", j);
		}
	}
	return 0;
}

/* plan_lend(), or with @dry its dry run (no fault point passed). */
static int plan_windows(struct engine *e, struct ldevice *d,
			const struct borrower *b, uint64_t owner, bool dry,
			struct route *route, struct window **windows,
			unsigned *nwindows, char *reason)
{
	struct wvec v = { 0 };
	int r;

	if (!d->lender->online)
		return reason_set(reason, -EHOSTDOWN, "lender %s is offline",
				  d->lender->name);
	if (!b->host->online)
		return reason_set(reason, -EHOSTDOWN, "borrower %s is offline",
				  b->host->name);
	r = plan_fault(dry, "route", reason);
	if (r == 0)
		r = topo_route(e->topo, d->lender->node, b->host->node, route,
			       reason);
	if (r < 0)
		return r;
	r = plan_bars(e, d, route, owner, "", dry, &v, reason);
	if (r == 0)
		r = plan_dma(e, d, b, route, owner, dry, &v, reason);
	if (r < 0) {
		plan_release(e, v.w, v.n);
		free(v.w);
		return r;
	}
	*windows = v.w;
	*nwindows = v.n;
	return 0;
}

int plan_lend(struct engine *e, struct ldevice *d, const struct borrower *b,
	      uint64_t owner, struct route *route, struct window **windows,
	      unsigned *nwindows, char *reason)
{
	return plan_windows(e, d, b, owner, false, route, windows, nwindows,
			    reason);
}

void plan_summarize(struct engine *e, const struct route *r,
		    const struct window *w, unsigned n, struct plan_summary *s)
{
	struct lhost *hosts[ROUTE_MAX_HOPS + 1];
	unsigned nh = r->nhops ? route_hosts(e, r, true, true, hosts) : 0;

	s->nad = 0;
	s->dma_windows = s->iommu_mappings = 0;
	for (unsigned i = 0; i < nh; i++) {
		struct plan_adapter *a = &s->ad[s->nad++];

		*a = (struct plan_adapter){
			.lut_free = hosts[i]->ntb.nentries - hosts[i]->ntb.used,
		};
		snprintf(a->host, sizeof(a->host), "%s", hosts[i]->name);
		snprintf(a->adapter, sizeof(a->adapter), "%s", hosts[i]->ntb.adapter);
	}
	for (unsigned i = 0; i < n; i++) {
		if (w[i].kind == WIN_DMA)
			s->dma_windows++;
		else if (w[i].kind == WIN_IOMMU)
			s->iommu_mappings++;
		for (unsigned j = 0; w[i].kind == WIN_LUT && j < s->nad; j++)
			if (!strcmp(s->ad[j].host, w[i].host))
				s->ad[j].lut_entries += w[i].count;
	}
}

/*
 * The dry run holds fabric_lock from the first reservation to the last
 * release: nobody, not even lendfs --check or a request of another
 * device, can see what it took.  Its tag is no lend's (owners count up
 * from 1).
 */
#define PLAN_DRY_OWNER UINT64_MAX

int plan_dry_run(struct engine *e, struct ldevice *d, const struct borrower *b,
		 struct plan_summary *s, char *reason)
{
	struct window *w = NULL;
	unsigned nw = 0;
	int r;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&e->fabric_lock);
	r = plan_windows(e, d, b, PLAN_DRY_OWNER, true, &s->route, &w, &nw,
			 reason);
	if (r == 0) {
		plan_summarize(e, &s->route, w, nw, s);
		plan_release(e, w, nw);
	}
	pthread_mutex_unlock(&e->fabric_lock);
	free(w);
	return r;
}

/*
 * Identity IOMMU mappings in @d's domain for every LUT window @from.. of
 * @v on @d's lender, or (with @size) for [addr, addr + size).
 */
static int p2p_iommu(struct ldevice *d, uint64_t owner, struct wvec *v,
		     unsigned from, const char *tag, uint64_t addr,
		     uint64_t size, char *reason)
{
	struct lhost *h = d->lender;
	unsigned end = v->n;

	if (!h->iommu)
		return 0;
	for (unsigned i = from; i <= end; i++) {
		uint64_t a = i < end ? v->w[i].local : addr;
		uint64_t sz = i < end ? v->w[i].size : size;
		struct window *w;
		int r;

		if (i < end && (v->w[i].kind != WIN_LUT || strcmp(v->w[i].host, h->name)))
			continue;
		if (i == end && !sz)
			continue;
		r = iommu_map(&d->iommu, owner, a, sz, a, reason);
		if (r < 0)
			return r;
		w = wvec_add(v);
		if (!w) {
			iommu_unmap(&d->iommu, a, sz);
			return reason_set(reason, -ENOMEM, "out of memory");
		}
		*w = (struct window){ .kind = WIN_IOMMU, .count = 1, .local = a,
				      .size = sz, .target = a };
		snprintf(w->host, sizeof(w->host), "%s", h->name);
		snprintf(w->domain, sizeof(w->domain), "%s", d->id);
		snprintf(w->next, sizeof(w->next), "%s", h->name);
		snprintf(w->tag, sizeof(w->tag), "%.*s", WINDOW_TAG_MAX - 1, tag);
	}
	return 0;
}

/* Windows letting @src reach every BAR of @dst. */
static int p2p_direction(struct engine *e, struct ldevice *src,
			 struct ldevice *dst, const struct route *dst_to_src,
			 uint64_t owner, bool dry, struct wvec *v, char *reason)
{
	char prefix[104];
	unsigned first = v->n;
	int r;

	snprintf(prefix, sizeof(prefix), "p2p:%.95s:", dst->id);
	if (src->lender == dst->lender) {
		/* same host: through its PCIe fabric; the IOMMU needs mappings */
		for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
			char tag[WINDOW_TAG_MAX + 8];

			if (!dst->bar_size[bar])
				continue;
			snprintf(tag, sizeof(tag), "%.100sbar%u", prefix, bar);
			r = p2p_iommu(src, owner, v, v->n, tag,
				      dst->bar_addr[bar],
				      ntb_window_size(&src->lender->ntb, dst->bar_size[bar]),
				      reason);
			if (r < 0)
				return r;
		}
		return 0;
	}
	r = plan_bars(e, dst, dst_to_src, owner, prefix, dry, v, reason);
	if (r < 0)
		return r;
	return p2p_iommu(src, owner, v, first, prefix, 0, 0, reason);
}

/* plan_p2p(), or with @dry its dry run (no fault point passed). */
static int p2p_windows(struct engine *e, struct p2p_link *l, bool dry,
		       char *reason)
{
	struct wvec v = { 0 };
	struct ldevice *a = l->a, *b = l->b;
	int r = 0;

	memset(&l->ab, 0, sizeof(l->ab));
	memset(&l->ba, 0, sizeof(l->ba));
	l->ab.src = l->ab.dst = l->ba.src = l->ba.dst = a->lender->node;
	if (a->lender != b->lender) {
		r = topo_route(e->topo, a->lender->node, b->lender->node, &l->ab, reason);
		if (r == 0)
			r = topo_route(e->topo, b->lender->node, a->lender->node, &l->ba,
				       reason);
	}
	l->rc_a = a->lender->iommu;
	l->rc_b = b->lender->iommu;
	if (r == 0)
		r = plan_fault(dry, "p2p_alloc", reason);
	if (r == 0)
		r = p2p_direction(e, a, b, &l->ba, l->owner, dry, &v, reason);
	if (r == 0)
		r = p2p_direction(e, b, a, &l->ab, l->owner, dry, &v, reason);
	if (r < 0) {
		plan_release(e, v.w, v.n);
		free(v.w);
		return r;
	}
	l->w = v.w;
	l->nw = v.n;
	return 0;
}

int plan_p2p(struct engine *e, struct p2p_link *l, char *reason)
{
	return p2p_windows(e, l, false, reason);
}

/* Count @l's windows into @p (its route a -> b, and its error if any). */
static void pair_summarize(const struct p2p_link *l, int r,
			   struct plan_pair *p)
{
	p->err = r;
	p->route = l->ab;
	if (r < 0)
		snprintf(p->error, sizeof(p->error), "%s", l->error);
	for (unsigned i = 0; r == 0 && i < l->nw; i++) {
		if (l->w[i].kind == WIN_LUT)
			p->lut_entries += l->w[i].count;
		else if (l->w[i].kind == WIN_IOMMU)
			p->iommu_mappings++;
	}
}

/* Member @i planned, then its P2P link with each member before it. */
static int plan_member(struct engine *e, struct plan_member *m, unsigned i,
		       struct p2p_link *links, struct plan_pair *pairs,
		       unsigned *npairs, char *reason)
{
	int r = plan_windows(e, m[i].d, &m[i].b, PLAN_DRY_OWNER, true,
			     &m[i].s.route, &m[i].w, &m[i].nw, reason);

	if (r < 0)
		return r;
	m[i].planned = true;
	plan_summarize(e, &m[i].s.route, m[i].w, m[i].nw, &m[i].s);
	for (unsigned j = 0; e->coord->p2p && j < i; j++) {
		struct p2p_link *l = &links[*npairs];
		struct plan_pair *p = &pairs[*npairs];

		if (!m[j].planned)
			continue; /* already lent to it: linked by then */
		++*npairs;
		*l = (struct p2p_link){ .a = m[i].d, .b = m[j].d,
					.owner = PLAN_DRY_OWNER };
		*p = (struct plan_pair){ .a = i, .b = j };
		pair_summarize(l, p2p_windows(e, l, true, l->error), p);
	}
	return 0;
}

int plan_dry_run_members(struct engine *e, struct plan_member *m, unsigned n,
			 struct plan_pair *pairs, unsigned *npairs,
			 unsigned *at, char *reason)
{
	_cleanup_free_ struct p2p_link *links =
		calloc(n ? n * (n - 1) / 2 + 1 : 1, sizeof(*links));
	int r = 0;

	*npairs = 0;
	if (!links)
		return reason_set(reason, -ENOMEM, "out of memory");
	pthread_mutex_lock(&e->fabric_lock);
	for (*at = 0; *at < n && r == 0; ++*at)
		if (m[*at].d)
			r = plan_member(e, m, *at, links, pairs, npairs, reason);
	if (r < 0)
		--*at;
	/* with everything held: what each adapter would have left */
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < m[i].s.nad; k++) {
			const struct lhost *h = engine_host(e, m[i].s.ad[k].host);

			m[i].s.ad[k].lut_free = h->ntb.nentries - h->ntb.used;
		}
	for (unsigned k = *npairs; k-- > 0;) {
		plan_release(e, links[k].w, links[k].nw);
		free(links[k].w);
	}
	for (unsigned i = n; i-- > 0;)
		if (m[i].planned)
			plan_release(e, m[i].w, m[i].nw);
	pthread_mutex_unlock(&e->fabric_lock);
	return r;
}

void plan_release_locked(struct engine *e, const struct window *w, unsigned n)
{
	pthread_mutex_lock(&e->fabric_lock);
	plan_release(e, w, n);
	pthread_mutex_unlock(&e->fabric_lock);
}
