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
