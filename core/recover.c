// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * recover.c - the stored lends brought back when the engine starts (one
 * daemon: coord_local_ops start) or, in distributed mode, with each new
 * session (replica.c: this host's own records).  The rules are in
 * docs/STATE.md; every decision is reported to the daemon's log.
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"

/*
 * Bring one stored record back.  Rules (docs/STATE.md):
 *   lent       re-claim and re-program its windows; if the device or a
 *              host is gone from the config, or the windows no longer fit,
 *              the record is dropped and the device (if any) is `failed`
 *              with the reason;
 *   lending    never acknowledged: rolled back (record removed);
 *   returning  the admin asked for it: finished (record removed).
 */
/* What recovery did to @rec, as an event with cause=recovery. */
static void recover_event(struct engine *e, const struct lend_record *rec,
			  enum event_kind k, int err, const char *why)
{
	struct notes nt = { 0 };

	notes_event(&nt, k, rec->device, "borrower", rec->borrower, "errno",
		    err ? errno_name(err) : NULL, "reason", why, "cause", "recovery",
		    NULL);
	notes_flush(e, &nt, NULL);
}

static int recover_one(struct engine *e, struct ldevice *d,
		       const struct lend_record *rec, char *out_reason)
{
	char reason[REASON_MAX] = "";
	struct borrower b;
	struct route route;
	uint64_t owner;
	int r;

	/* the borrower's kind first (a VM: ask its guest) */
	r = borrower_kind(e, rec->borrower)->recover(e, d, rec, reason);
	if (r > 0) {
		recover_event(e, rec, EV_RETURNED, 0, "released by its borrower");
		return e->store->remove(e->store_ctx, rec->device, NULL, out_reason);
	}
	if (rec->state != REC_LENT || !d) {
		if (rec->state == REC_LENT)
			engine_report(e, "lend of %s to %s dropped: the device is no longer in the config",
			       rec->device, rec->borrower);
		else if (rec->state == REC_LENDING)
			engine_report(e, "unacknowledged lend of %s to %s rolled back",
			       rec->device, rec->borrower);
		else
			engine_report(e, "interrupted return of %s from %s finished",
			       rec->device, rec->borrower);
		recover_event(e, rec, rec->state == REC_RETURNING ? EV_RETURNED : EV_FAILED,
			      rec->state == REC_RETURNING ? 0 : rec->state == REC_LENT ? ENODEV : EINTR,
			      rec->state == REC_LENT ? "device no longer in the config" :
			      rec->state == REC_LENDING ? "unacknowledged lend rolled back" :
			      "interrupted return finished");
		return e->store->remove(e->store_ctx, rec->device, NULL, out_reason);
	}
	if (r == 0)
		r = borrower_resolve(e, d, rec->borrower, &b, reason);
	pthread_mutex_lock(&e->fabric_lock);
	owner = ++e->next_owner;
	if (rec->epoch > e->next_epoch)
		e->next_epoch = rec->epoch;
	if (r == 0)
		r = plan_claim(e, owner, rec->windows, rec->nwindows, reason);
	if (r == 0) {
		r = topo_route(e->topo, d->lender->node, b.host->node, &route, NULL);
		if (r < 0)
			memset(&route, 0, sizeof(route));
		r = 0;
	}
	pthread_mutex_unlock(&e->fabric_lock);
	if (r == 0) {
		r = windows_program(e, rec->windows, rec->nwindows, UINT64_MAX,
				    reason);
		if (r < 0)
			plan_release_locked(e, rec->windows, rec->nwindows);
	}
	if (r < 0) {
		lend_restore_failed(e, d, rec->borrower, r, reason);
		engine_report(e, "%s: cannot restore lend to %.64s: %.160s",
			      errno_name(r), rec->borrower, reason);
		recover_event(e, rec, EV_FAILED, -r, reason);
		return e->store->remove(e->store_ctx, rec->device, NULL, out_reason);
	}
	r = lend_restored(e, d, rec, owner, &route, out_reason);
	if (r == 0)
		recover_event(e, rec, EV_LENT, 0, NULL);
	return r;
}

int recover_record(struct engine *e, const struct lend_record *rec,
		   char *out_reason)
{
	struct ldevice *d = model_get(e, rec->device);
	int r = recover_one(e, d, rec, out_reason);

	model_put(e, d);
	return r;
}

/* A host an admin set offline stays offline. */
static int recover_host(void *arg, const char *host, int online)
{
	struct engine *e = arg;
	struct lhost *h = engine_host(e, host);
	struct notes nt = { 0 };

	if (h && !online) {
		pthread_mutex_lock(&e->fabric_lock);
		h->admin = false;
		pthread_mutex_unlock(&e->fabric_lock);
		lend_host_refresh(e, h, false, &nt);
		free(nt.ids); /* nobody watches yet */
	}
	return 0;
}

struct recover_ctx {
	struct engine *e;
	char *reason;
};

static int recover_cb(void *arg, const struct lend_record *rec)
{
	struct recover_ctx *rc = arg;

	return recover_record(rc->e, rec, rc->reason);
}

int engine_recover(struct engine *e, char *reason)
{
	struct recover_ctx rc = { e, reason };
	struct notes nt = { 0 };
	int r = e->store->host_load(e->store_ctx, recover_host, e, reason);

	if (r == 0)
		r = e->store->load(e->store_ctx, recover_cb, &rc, reason);
	if (r < 0)
		return r;
	/* P2P links are derived from the lends: rebuild them */
	for (unsigned i = 0; i < e->ndevs; i++)
		if (e->devs[i]->state == DEV_LENT)
			p2p_compose(e, e->devs[i], &nt);
	free(nt.ids); /* nobody watches yet */

	/*
	 * the compositions: an unfinished lend or return settled, so that a
	 * composition whose lease ran out is returned whole, next
	 */
	r = compose_load(e, reason);
	if (r < 0)
		return r;
	/* leases that ran out while the daemon was down (SPEC section 9) */
	lease_expire_due(e, "recovery");

	/* autolend: devices not already lent from the store */
	for (unsigned i = 0; i < e->cfg->nautolends; i++) {
		struct ldevice *d = engine_dev(e, e->cfg->autolends[i].device);
		char why[REASON_MAX];

		if (d && d->state == DEV_AVAILABLE)
			lend_autolend(e, d->id, e->cfg->autolends[i].borrower, why);
	}
	return 0;
}

