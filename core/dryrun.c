// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dryrun.c - plans: what writing a borrower to a device would do now,
 * computed without changing or reserving anything (devices/ID/plans/HOST,
 * docs/ABI/devices-ID-plans-HOST).
 *
 * A plan runs the checks of the lend's first steps with the very
 * functions the lend calls, so the two cannot disagree:
 *
 *   run_request()    the device is still there; coord->writable()
 *   step_validate()  borrower_resolve(), lend_check(), a request slot:
 *                    lend_admit()
 *   step_plan()      plan_lend()'s route and reservations:
 *                    plan_dry_run(), which releases them again before
 *                    it drops fabric_lock
 *
 * What comes after planning (the store's intent and commit, programming
 * the fabric, the peers' acknowledgements, a VM guest's hot-add) only
 * fails on I/O and is not tried.  Nothing here touches the device's
 * state, last_error, the store, the fabric, the metrics or the event log.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "engine_internal.h"

/* The lend @d has now, counted as a plan counts (a write of it: a no-op). */
static void plan_current(struct engine *e, struct ldevice *d,
			 struct plan_summary *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&d->lock);
	pthread_mutex_lock(&e->fabric_lock); /* nests inside d->lock */
	if (d->has_route && d->route)
		s->route = *d->route;
	plan_summarize(e, &s->route, d->windows, d->nwindows, s);
	pthread_mutex_unlock(&e->fabric_lock);
	pthread_mutex_unlock(&d->lock);
}

static int plan_device(struct engine *e, struct ldevice *d, const char *value,
		       struct plan_summary *s, bool *noop, char *reason)
{
	struct borrower b;
	int r;

	if (__atomic_load_n(&d->unlinked, __ATOMIC_ACQUIRE))
		return reason_set(reason, -ENODEV, "no device %s", d->id);
	if (e->coord->writable && (r = e->coord->writable(e->coord_ctx, reason)) < 0)
		return r;
	r = lend_admit(e, d, value, &b, reason);
	if (r == 1) {
		*noop = true;
		plan_current(e, d, s);
		return 0;
	}
	if (r < 0)
		return r;
	return plan_dry_run(e, d, &b, s, reason);
}

static void render_route(struct engine *e, const struct route *r, FILE *out)
{
	fprintf(out, "route %s", topo_node_name(e->topo, r->src));
	for (unsigned i = 0; i < r->nhops; i++)
		fprintf(out, " -> %s", topo_node_name(e->topo, r->hops[i].node));
	fprintf(out, "\nlatency_ns %" PRIu64 "\n", r->latency_ns);
}

static void render_plan(struct engine *e, int r, const char *value,
			const char *reason, bool noop,
			const struct plan_summary *s, FILE *out)
{
	char line[LAST_ERROR_MAX];

	if (r < 0) {
		last_error_format(line, sizeof(line), r, reason);
		fprintf(out, "%s\n", line);
	} else {
		fprintf(out, "ok\n");
	}
	if (noop)
		fprintf(out, "noop already lent to %s\n", value);
	if (s->route.nhops)
		render_route(e, &s->route, out);
	if (r < 0)
		return; /* the route, when one was found: nothing is counted */
	for (unsigned i = 0; i < s->nad; i++)
		fprintf(out, "lut_entries %s/%s %" PRIu32 "\n", s->ad[i].host,
			s->ad[i].adapter, s->ad[i].lut_entries);
	fprintf(out, "dma_windows %u\niommu_mappings %u\n", s->dma_windows,
		s->iommu_mappings);
	for (unsigned i = 0; i < s->nad; i++)
		fprintf(out, "lut_free %s/%s %" PRIu32 "\n", s->ad[i].host,
			s->ad[i].adapter, s->ad[i].lut_free);
}

int engine_plan(struct engine *e, const char *devid, const char *borrower,
		FILE *out, char *reason)
{
	struct plan_summary s;
	char buf[REASON_MAX];
	struct ldevice *d;
	bool noop = false;
	int r;

	if (!reason)
		reason = buf;
	reason[0] = '\0';
	memset(&s, 0, sizeof(s));
	d = model_get(e, devid);
	if (!d) {
		r = reason_set(reason, -ENODEV, "no device %s", devid);
	} else {
		r = plan_device(e, d, borrower, &s, &noop, reason);
		model_put(e, d);
	}
	render_plan(e, r, borrower, reason, noop, &s, out);
	return r;
}

/* ---- compositions/NAME/plans/HOST ------------------------------------------ */

/*
 * A composition's plan runs the checks of engine_compo_write_borrower()
 * in its order (the composition's own, then each member's lend_admit()
 * as its lend_request() would), then plans every member as the lend's
 * requests would leave the fabric for the next one:
 * plan_dry_run_members().  The first member that would fail, by
 * admission or by planning, is the write's error: "ERRNO: ID: reason".
 */
struct compo_plan {
	char (*ids)[DEVICE_ID_MAX];
	struct ldevice **pins;
	struct plan_member *m;
	struct plan_pair *pairs;
	unsigned n, npairs;
	int err;	 /* the write's errno, 0 */
	unsigned at;	 /* its member (n: none, or the composition's own) */
	char why[REASON_MAX];
};

static void compo_plan_free(struct engine *e, struct compo_plan *p)
{
	for (unsigned i = 0; p->pins && i < p->n; i++)
		if (p->pins[i])
			model_put(e, p->pins[i]);
	for (unsigned i = 0; p->m && i < p->n; i++)
		free(p->m[i].w);
	free(p->ids);
	free(p->pins);
	free(p->m);
	free(p->pairs);
}

/* The members, pinned and admitted in order, up to the first refused. */
static void compo_admit(struct engine *e, struct compo_plan *p,
			const char *value)
{
	for (unsigned i = 0; i < p->n && !p->err; i++) {
		struct ldevice *d = model_get(e, p->ids[i]);
		bool noop = false;
		int r;

		p->pins[i] = d;
		if (!d)
			r = reason_set(p->why, -ENODEV, "no device %s", p->ids[i]);
		else if (__atomic_load_n(&d->unlinked, __ATOMIC_ACQUIRE))
			r = reason_set(p->why, -ENODEV, "no device %s", d->id);
		else if (e->coord->writable &&
			 (r = e->coord->writable(e->coord_ctx, p->why)) < 0)
			;
		else if ((r = lend_admit(e, d, value, &p->m[i].b, p->why)) == 1)
			noop = true; /* lent to it already: lend_all() goes on */
		if (r < 0) {
			p->err = r;
			p->at = i;
		} else {
			p->m[i].d = noop ? NULL : d;
		}
	}
}

/* What each adapter a member's route crosses would have left, once each. */
static void render_compo_free(const struct compo_plan *p, FILE *out)
{
	for (unsigned i = 0; i < p->n; i++)
		for (unsigned k = 0; p->m[i].planned && k < p->m[i].s.nad; k++) {
			const struct plan_adapter *a = &p->m[i].s.ad[k];
			bool seen = false;

			for (unsigned j = 0; j < i && !seen; j++)
				for (unsigned l = 0; p->m[j].planned && l < p->m[j].s.nad; l++)
					seen |= !strcmp(p->m[j].s.ad[l].host, a->host);
			for (unsigned l = 0; l < k && !seen; l++)
				seen |= !strcmp(p->m[i].s.ad[l].host, a->host);
			if (!seen)
				fprintf(out, "lut_free %s/%s %" PRIu32 "\n", a->host,
					a->adapter, a->lut_free);
		}
}

static void render_compo_plan(struct engine *e, const struct compo_plan *p,
			      const char *value, FILE *out)
{
	unsigned last = p->err ? p->at : p->n;

	for (unsigned i = 0; i <= last && i < p->n; i++) {
		const struct plan_summary *s = &p->m[i].s;

		fprintf(out, "device %s\n", p->ids[i]);
		if (!p->m[i].d && !(p->err && i == p->at)) {
			fprintf(out, "noop already lent to %s\n", value);
			continue;
		}
		if (s->route.nhops)
			render_route(e, &s->route, out);
		for (unsigned k = 0; p->m[i].planned && k < s->nad; k++)
			fprintf(out, "lut_entries %s/%s %" PRIu32 "\n", s->ad[k].host,
				s->ad[k].adapter, s->ad[k].lut_entries);
		if (p->m[i].planned)
			fprintf(out, "dma_windows %u\niommu_mappings %u\n",
				s->dma_windows, s->iommu_mappings);
	}
	if (p->err)
		return;
	for (unsigned k = 0; k < p->npairs; k++) {
		const struct plan_pair *q = &p->pairs[k];

		fprintf(out, "p2p %s %s", p->ids[q->a], p->ids[q->b]);
		if (q->err < 0)
			fprintf(out, " %s: %s\n", errno_name(q->err), q->error);
		else
			fprintf(out, " latency_ns %" PRIu64 " lut_entries %" PRIu32
				" iommu_mappings %u\n", q->route.latency_ns,
				q->lut_entries, q->iommu_mappings);
	}
	render_compo_free(p, out);
}

/* The checks of engine_compo_write_borrower() before its members'. */
static int compo_check(const struct compo_view *v, const char *value,
		       bool *noop, char *reason)
{
	if (!strcmp(value, v->borrower)) {
		*noop = true;
		return 0;
	}
	if (v->borrower[0])
		return reason_set(reason, -EBUSY, "composition %s is lent to %s; "
				  "return it first", v->name, v->borrower);
	if (!v->devices[0])
		return reason_set(reason, -EINVAL, "composition %s has no devices",
				  v->name);
	return 0;
}

/* The composition's list into @p (one ID a line, validated when written). */
static void compo_split(struct compo_plan *p, const char *devices)
{
	for (const char *c = devices; *c && p->n < COMP_DEVICES_MAX;) {
		size_t len = strcspn(c, "\n");

		snprintf(p->ids[p->n++], DEVICE_ID_MAX, "%.*s", (int)len, c);
		c += len + (c[len] != '\0');
	}
}

/* The members' checks and plans: -ENOMEM, else 0 with p->err the outcome. */
static int compo_plan_run(struct engine *e, struct compo_plan *p,
			  const char *devices, const char *value)
{
	char why[REASON_MAX];
	unsigned at;
	int r;

	p->ids = calloc(COMP_DEVICES_MAX, sizeof(*p->ids));
	p->pins = calloc(COMP_DEVICES_MAX, sizeof(*p->pins));
	p->m = calloc(COMP_DEVICES_MAX, sizeof(*p->m));
	p->pairs = calloc(COMP_DEVICES_MAX * (COMP_DEVICES_MAX - 1) / 2 + 1,
			  sizeof(*p->pairs));
	if (!p->ids || !p->pins || !p->m || !p->pairs)
		return -ENOMEM;
	compo_split(p, devices);
	p->at = p->n;
	compo_admit(e, p, value);
	r = plan_dry_run_members(e, p->m, p->err ? p->at : p->n, p->pairs,
				 &p->npairs, &at, why);
	if (r < 0) { /* a member before the one refused, if any */
		p->err = r;
		p->at = at;
		snprintf(p->why, sizeof(p->why), "%s", why);
	}
	return 0;
}

int engine_compo_plan(struct engine *e, const char *name, const char *host,
		      FILE *out, char *reason)
{
	_cleanup_free_ struct compo_view *v = malloc(sizeof(*v));
	char value[BORROWER_MAX + 1], buf[REASON_MAX];
	char line[REASON_MAX + DEVICE_ID_MAX + 32]; /* as its last_error */
	struct compo_plan p = { 0 };
	bool noop = false;
	int r = v ? 0 : -ENOMEM;

	if (!reason)
		reason = buf;
	reason[0] = '\0';
	if (r == 0 && engine_compo_view(e, name, v) < 0)
		r = reason_set(reason, -ENOENT, "no composition %s", name);
	if (r == 0)
		r = lend_parse_value(host, strlen(host), value, reason);
	if (r == 0)
		r = compo_check(v, value, &noop, reason);
	if (r == 0 && !noop)
		r = compo_plan_run(e, &p, v->devices, value);
	if (r == 0 && p.err) {
		r = p.err;
		snprintf(line, sizeof(line), "%s: %s: %s", errno_name(r), p.ids[p.at],
			 p.why);
		reason_set(reason, r, "%s: %s", p.ids[p.at], p.why);
	} else if (r < 0) {
		snprintf(line, sizeof(line), "%s: %s", errno_name(r), reason);
	}
	fprintf(out, "%s\n", r < 0 ? line : "ok");
	if (noop)
		fprintf(out, "noop already lent to %s\n", value);
	else if (p.ids && p.n)
		render_compo_plan(e, &p, value, out);
	compo_plan_free(e, &p);
	return r;
}
