// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * check_hw.c - the sim fabric's registers against the stored lends
 * (check.h, lendfs_check_regs()).
 *
 * Every stored window is expanded into the registers it programs (one
 * per LUT entry, one per DMA slot, one per IOMMU mapping) and put in a
 * map by the register's place; the register walk of fabric_sim.h then
 * ticks them off.  What is left on either side is a violation, except a
 * peer-to-peer translation: P2P links are derived from the set of lends,
 * not stored, so a register no stored window owns is accepted when it
 * leads into a BAR of a lent device whose borrower holds another lent
 * device (and, for an IOMMU mapping, when its domain is such a device).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "check.h"
#include "fabric_sim.h"
#include "hashmap.h"
#include "ntb.h"

#define REG_KEY_MAX (32 + HOST_NAME_MAX_LEN + WINDOW_DOMAIN_MAX + 24)

/* One register a stored window says is programmed. */
struct expect {
	char key[REG_KEY_MAX];
	struct window w; /* one entry's worth */
	char device[DEVICE_ID_MAX];
	bool required; /* the record is `lent`: it must be there */
	bool seen;
};

/* A stored lend, for the P2P rule. */
struct lent {
	char device[DEVICE_ID_MAX];
	char borrower[REASON_MAX];
	unsigned held; /* the borrower's first lend: how many it holds */
};

struct hw_ctx {
	const struct cluster_config *cfg;
	const char *host; /* only this owner, or NULL */
	FILE *out;
	unsigned bad, p2p;
	struct hashmap *expect; /* key -> struct expect */
	struct hashmap *lent;	/* device -> struct lent */
	struct hashmap *holds;	/* borrower -> its first struct lent */
	struct expect **all;
	unsigned nall;
	struct lent **lents;
	unsigned nlents;
};

static void reg_key(const struct window *w, char *buf, size_t len)
{
	if (w->kind == WIN_IOMMU)
		snprintf(buf, len, "iommu %s %s 0x%" PRIx64, w->host, w->domain,
			 w->local);
	else
		snprintf(buf, len, "%s %s %" PRIu32, window_kind_name(w->kind),
			 w->host, w->index);
}

_printf_(2, 3) static void hw_violation(struct hw_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	c->bad++;
}

static int expect_add(struct hw_ctx *c, const struct lend_record *rec,
		      const struct window *w)
{
	struct expect *x = calloc(1, sizeof(*x)), **v;
	int r;

	if (!x)
		return -ENOMEM;
	x->w = *w;
	x->w.count = 1;
	snprintf(x->device, sizeof(x->device), "%s", rec->device);
	x->required = rec->state == REC_LENT;
	reg_key(&x->w, x->key, sizeof(x->key));
	v = realloc(c->all, (c->nall + 1) * sizeof(*v));
	if (!v) {
		free(x);
		return -ENOMEM;
	}
	c->all = v;
	r = hashmap_put(c->expect, x->key, x);
	if (r == -EEXIST)
		hw_violation(c, "%s: %s is owned by a second stored window too",
			     rec->device, x->key);
	if (r < 0) {
		free(x);
		return r == -EEXIST ? 0 : r;
	}
	c->all[c->nall++] = x;
	return 0;
}

/* The registers of one stored LUT window: one per entry. */
static int expect_lut(struct hw_ctx *c, const struct lend_record *rec,
		      const struct window *w)
{
	const struct cfg_host *h = config_find_host(c->cfg, w->host);
	uint64_t wm = h ? h->window_max : 0;

	if (!wm) {
		hw_violation(c, "%s: lut window on %s, which has no ntb lut in "
			     "the config", rec->device, w->host);
		return 0;
	}
	for (uint32_t k = 0; k < w->count; k++) {
		struct window e = *w;
		int r;

		e.index = w->index + k;
		e.local = NTB_APERTURE_BASE + e.index * wm;
		e.target = w->target + k * wm;
		e.size = MIN(wm, w->size - k * wm);
		r = expect_add(c, rec, &e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int lent_add(struct hw_ctx *c, const struct lend_record *rec)
{
	struct lent *l = calloc(1, sizeof(*l)), *first, **v;

	v = l ? realloc(c->lents, (c->nlents + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(l);
		return -ENOMEM;
	}
	c->lents = v;
	snprintf(l->device, sizeof(l->device), "%s", rec->device);
	snprintf(l->borrower, sizeof(l->borrower), "%s", rec->borrower);
	if (hashmap_put(c->lent, l->device, l) < 0) {
		free(l);
		return -ENOMEM;
	}
	c->lents[c->nlents++] = l;
	first = hashmap_get(c->holds, l->borrower);
	if (!first) {
		l->held = 1;
		return hashmap_put(c->holds, l->borrower, l) < 0 ? -ENOMEM : 0;
	}
	first->held++;
	return 0;
}

static int load_record(void *arg, const struct lend_record *rec)
{
	struct hw_ctx *c = arg;
	int r = 0;

	if (rec->state == REC_LENT)
		r = lent_add(c, rec);
	for (unsigned i = 0; r == 0 && i < rec->nwindows; i++) {
		const struct window *w = &rec->windows[i];

		if (c->host && strcmp(w->host, c->host) != 0)
			continue;
		r = w->kind == WIN_LUT ? expect_lut(c, rec, w)
				       : expect_add(c, rec, w);
	}
	return r;
}

/* A lent device whose borrower holds another lent device. */
static bool has_peer(const struct hw_ctx *c, const char *devid)
{
	const struct lent *l = hashmap_get(c->lent, devid), *first;

	if (!l)
		return false;
	first = hashmap_get(c->holds, l->borrower);
	return first && first->held > 1;
}

static bool p2p_owned(const struct hw_ctx *c, const struct sim_reg *g)
{
	if (g->dest_err || !g->dest_bar || !has_peer(c, g->dest))
		return false;
	if (g->w.kind != WIN_IOMMU)
		return true;
	return has_peer(c, g->w.domain) &&
	       !strcmp(((const struct lent *)hashmap_get(c->lent, g->w.domain))->borrower,
		       ((const struct lent *)hashmap_get(c->lent, g->dest))->borrower);
}

static void reg_text(const struct sim_reg *g, char *buf, size_t len)
{
	if (g->w.kind == WIN_IOMMU)
		snprintf(buf, len, "iommu mapping 0x%" PRIx64 "+0x%" PRIx64
			 " -> 0x%" PRIx64 " in the domain of %s", g->w.local,
			 g->w.size, g->w.target, g->w.domain);
	else
		snprintf(buf, len, "%s %s %" PRIu32 " -> %s 0x%" PRIx64
			 " (0x%" PRIx64 " bytes)",
			 window_kind_name(g->w.kind),
			 g->w.kind == WIN_LUT ? "entry" : "window", g->w.index,
			 g->w.next, g->w.target, g->w.size);
}

static int check_reg(void *arg, const struct sim_reg *g)
{
	struct hw_ctx *c = arg;
	char key[REG_KEY_MAX], text[REASON_MAX];
	struct expect *x;

	reg_key(&g->w, key, sizeof(key));
	reg_text(g, text, sizeof(text));
	x = hashmap_get(c->expect, key);
	if (x && !x->seen) {
		x->seen = true;
		if (x->w.size != g->w.size || x->w.target != g->w.target ||
		    strcmp(x->w.next, g->w.next) != 0)
			hw_violation(c, "%s: %s: %s, but its stored window says "
				     "-> %s 0x%" PRIx64 " (0x%" PRIx64 " bytes)",
				     x->device, g->w.host, text, x->w.next,
				     x->w.target, x->w.size);
		return 0;
	}
	if (p2p_owned(c, g)) {
		c->p2p++;
		return 0;
	}
	hw_violation(c, "%s: %s (%s%s) is programmed, but no stored lend "
		     "owns it", g->w.host, text,
		     g->dest_err ? "leads nowhere" :
		     g->dest_bar ? "into a BAR of " : "into the RAM of ",
		     g->dest_err ? "" : g->dest);
	return 0;
}

static void report_missing(struct hw_ctx *c)
{
	for (unsigned i = 0; i < c->nall; i++) {
		const struct expect *x = c->all[i];

		if (x->seen || !x->required)
			continue;
		hw_violation(c, "%s: %s %s %" PRIu32 " on %s (0x%" PRIx64
			     " -> %s 0x%" PRIx64 ") is stored but not programmed",
			     x->device, window_kind_name(x->w.kind),
			     x->w.kind == WIN_LUT ? "entry" : "slot", x->w.index,
			     x->w.host, x->w.local, x->w.next, x->w.target);
	}
}

static void hw_ctx_free(struct hw_ctx *c)
{
	for (unsigned i = 0; i < c->nall; i++)
		free(c->all[i]);
	free(c->all);
	hashmap_free(c->expect);
	hashmap_free(c->holds);
	hashmap_free(c->lent);
	for (unsigned i = 0; i < c->nlents; i++)
		free(c->lents[i]);
	free(c->lents);
}

int lendfs_check_regs(const struct cluster_config *cfg,
		      const struct store_ops *ops, const char *where,
		      const char *run_dir, const char *host, FILE *out,
		      char *reason)
{
	struct hw_ctx c = { .cfg = cfg, .host = host, .out = out };
	struct sim_hw *hw = NULL;
	void *ctx = NULL;
	int r;

	c.expect = hashmap_new(64);
	c.lent = hashmap_new(64);
	c.holds = hashmap_new(16);
	if (!c.expect || !c.lent || !c.holds) {
		hw_ctx_free(&c);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	r = ops->open(where, &ctx, reason);
	if (r == 0) {
		r = ops->load(ctx, load_record, &c, reason);
		if (r == -ENOMEM)
			reason_set(reason, r, "out of memory");
		ops->close(ctx);
	}
	if (r == 0)
		r = sim_hw_open(run_dir, &hw, reason);
	if (r == 0) {
		r = sim_hw_regs(hw, host, check_reg, &c, reason);
		sim_hw_close(hw);
	}
	if (r == 0)
		report_missing(&c);
	hw_ctx_free(&c);
	return r < 0 ? r : (int)c.bad;
}
