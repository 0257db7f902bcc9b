// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * replica.c - distributed mode: this daemon's mirror of the lends of
 * other lenders' devices, kept from the store's records (cluster.c calls
 * in), and the recovery of this host's own records with each new session
 * (engine_internal.h, docs/STATE.md).  The lend state of another
 * lender's device is its record's: replica_state().
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"


/* The host whose fabric side maps a borrower ("H" or "vm:H/VM"). */
static struct lhost *borrower_host(struct engine *e, const char *borrower)
{
	struct bname n;

	return bname_parse(borrower, &n) == 0 ? engine_host(e, n.host) : NULL;
}

static bool has_local(const struct engine *e, const struct window *w,
		      unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (lend_window_here(e, &w[i]))
			return true;
	return false;
}

bool lend_sole_peer(const char *lender, const struct window *w, unsigned n,
		    const char *host)
{
	bool found = false;

	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(w[i].host, lender))
			continue;
		if (strcmp(w[i].host, host))
			return false;
		found = true;
	}
	return found;
}

static bool rec_mapped(int rec_state)
{
	return rec_state == REC_LENDING || rec_state == REC_LENT;
}

/* Are @a and @b (@n each) the same windows?  A reroute keeps the epoch. */
static bool windows_same(const struct window *a, const struct window *b,
			 unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!window_equal(&a[i], &b[i]))
			return false;
	return true;
}


static const char *domain_of(const struct window *w, const char *devid)
{
	return w->domain[0] ? w->domain : devid;
}

/* Does one of @d's mirrored windows own a resource one of @w (@n) owns? */
static bool mirror_overlaps(struct ldevice *d, const char *devid,
			    const struct window *w, unsigned n)
{
	bool hit = false;

	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nwindows && !hit; i++)
		for (unsigned j = 0; j < n && !hit; j++)
			hit = window_overlap(&d->windows[i],
					     domain_of(&d->windows[i], d->id),
					     &w[j], domain_of(&w[j], devid));
	pthread_mutex_unlock(&d->lock);
	return hit;
}

/*
 * The record just read of @devid owns resources that the mirror of other
 * lenders' devices still holds: those mirrors are stale (their records
 * changed or went, and that is yet to be read: a resync reads records in
 * name order, and the lender that reserved @w had read the release).
 * Forget them (books and registers, as for a removed record) before @w
 * is programmed, so that applying their change later cannot clear what
 * @w programmed; *@dirty: read them again.  Returns how many it forgot.
 */
static unsigned forget_stale(struct engine *e, const char *devid,
			     const struct window *w, unsigned n, bool *dirty)
{
	char (*ids)[DEVICE_ID_MAX] = NULL;
	struct ldevice **devs;
	unsigned ndevs, nids = 0;

	if (model_pin_all(e, &devs, &ndevs) < 0)
		return 0;
	ids = malloc((ndevs ? ndevs : 1) * sizeof(*ids));
	for (unsigned i = 0; ids && i < ndevs; i++)
		if (lend_remote(e, devs[i]) && strcmp(devs[i]->id, devid) &&
		    mirror_overlaps(devs[i], devid, w, n))
			snprintf(ids[nids++], DEVICE_ID_MAX, "%s", devs[i]->id);
	model_put_all(e, devs, ndevs);
	for (unsigned i = 0; i < nids; i++) {
		struct lend_ack ack;

		lend_apply_record(e, ids[i], NULL, &ack, dirty);
	}
	free(ids);
	if (nids)
		*dirty = true;
	return nids;
}

/* The books: @devid's reservations are its record's (@nw, @nnew) now. */
static void books_move(struct engine *e, const char *devid,
		       const struct window *old, unsigned nold,
		       const struct window *nw, unsigned nnew, uint64_t owner,
		       bool *dirty)
{
	bool claimed;

	pthread_mutex_lock(&e->fabric_lock);
	plan_release(e, old, nold);
	claimed = !nnew || plan_claim(e, owner, nw, nnew, NULL) == 0;
	pthread_mutex_unlock(&e->fabric_lock);
	if (!claimed && forget_stale(e, devid, nw, nnew, dirty)) {
		pthread_mutex_lock(&e->fabric_lock);
		claimed = plan_claim(e, owner, nw, nnew, NULL) == 0;
		pthread_mutex_unlock(&e->fabric_lock);
	}
	if (!claimed)
		*dirty = true; /* one of ours in flight overlaps: resync */
}

void lend_apply_record(struct engine *e, const char *devid,
		       const struct lend_record *rec, struct lend_ack *ack,
		       bool *dirty)
{
	struct window *nw = NULL, *old;
	unsigned nnew = rec ? rec->nwindows : 0, nold;
	int new_state = rec ? (int)rec->state : -1, old_state;
	uint64_t old_epoch, owner;
	struct lhost *bh = rec ? borrower_host(e, rec->borrower) : NULL;
	struct route route;
	bool routed = false, same, moved;
	struct ldevice *d;
	struct notes nt = { 0 };

	memset(ack, 0, sizeof(*ack));
	d = model_get(e, devid);
	if (!d || !lend_remote(e, d)) {
		model_put(e, d);
		return; /* not in our config, or ours: we are its writer */
	}
	if (nnew) {
		nw = malloc(nnew * sizeof(*nw));
		if (!nw) {
			*dirty = true;
			model_put(e, d);
			return;
		}
		memcpy(nw, rec->windows, nnew * sizeof(*nw));
	}
	pthread_mutex_lock(&e->fabric_lock);
	if (bh)
		routed = topo_route(e->topo, d->lender->node, bh->node, &route,
				    NULL) == 0;
	owner = ++e->next_owner;
	if (rec && rec->epoch > e->next_epoch)
		e->next_epoch = rec->epoch;
	pthread_mutex_unlock(&e->fabric_lock);

	pthread_mutex_lock(&d->lock);
	old_state = d->rec_state;
	old_epoch = d->epoch;
	moved = d->nwindows != nnew || !windows_same(d->windows, nw, nnew);
	same = old_state == new_state && (!rec || old_epoch == rec->epoch) &&
	       (!rec || !strcmp(d->borrower, rec->borrower)) && !moved;
	if (same) {
		/* a lease set, renewed or removed: the record's deadline */
		bool renewed = d->lease != (rec ? rec->expires : 0);

		if (renewed) {
			d->lease = rec ? rec->expires : 0;
			dev_touch(d);
		}
		pthread_mutex_unlock(&d->lock);
		free(nw);
		if (renewed) {
			notes_add(&nt, devid);
			notes_flush(e, &nt, NULL);
		}
		if (rec && rec->state != REC_LENT &&
		    has_local(e, rec->windows, rec->nwindows))
			*ack = (struct lend_ack){
				true, rec_mapped(new_state),
				lend_sole_peer(d->lender->name, rec->windows,
					       rec->nwindows, e->self->name),
				rec->epoch };
		model_put(e, d);
		return;
	}
	old = d->windows;
	nold = d->nwindows;
	lend_mirror(e, d, rec, nw, nnew, owner, routed ? &route : NULL, dirty);
	pthread_mutex_unlock(&d->lock);
	notes_add(&nt, devid);

	books_move(e, devid, old, nold, nw, nnew, owner, dirty);

	/* this host's registers: mapped while lending or lent */
	if (rec_mapped(old_state) &&
	    (!rec_mapped(new_state) || old_epoch != d->epoch || moved))
		windows_clear_all(e, old, nold);
	if (rec_mapped(new_state) &&
	    (!rec_mapped(old_state) || old_epoch != rec->epoch || moved))
		windows_program(e, nw, nnew, UINT64_MAX, NULL);
	/* the lender waits for these two; `lent` needs no answer */
	if (rec && rec->state != REC_LENT && has_local(e, nw, nnew))
		*ack = (struct lend_ack){
			true, rec_mapped(new_state),
			lend_sole_peer(d->lender->name, nw, nnew, e->self->name),
			rec->epoch };
	free(old);
	model_put(e, d);
	notes_flush(e, &nt, NULL);
}

/*
 * Does this daemon log that @h's daemon came (@live) or went?  One daemon
 * per change, so that the shared log has it once: the host's own daemon
 * logs its coming; its going, the live daemon of the first host in
 * config order (fabric_lock held).
 */
static bool logs_liveness(struct engine *e, const struct lhost *h, bool live)
{
	if (live)
		return h == e->self;
	for (unsigned i = 0; i < e->nhosts; i++)
		if (e->hosts[i].live && &e->hosts[i] != h)
			return &e->hosts[i] == e->self;
	return false;
}

void lend_host_state(struct engine *e, const char *host, bool live,
		     bool admin, bool act)
{
	struct notes nt = { 0 };
	struct lhost *h;
	bool changed, logged = false;

	h = engine_host(e, host);
	if (!h)
		return;
	pthread_mutex_lock(&e->fabric_lock);
	changed = h->live != live || h->admin != admin;
	/* a going-away seen while connected (@act), not our own session's loss */
	if (h->live != live && (live || act))
		logged = logs_liveness(e, h, live);
	h->live = live;
	h->admin = admin;
	pthread_mutex_unlock(&e->fabric_lock);
	if (logged) {
		char subject[HOST_NAME_MAX_LEN + 8];

		snprintf(subject, sizeof(subject), "host:%s", host);
		notes_event(&nt, live ? EV_HOST_ONLINE : EV_HOST_OFFLINE, subject,
			    "cause", "session", NULL);
	}
	if (changed)
		lend_host_refresh(e, h, act, &nt);
	notes_flush(e, &nt, NULL);
}

struct own_ctx {
	struct engine *e;
	char *reason;
};

static bool device_of(const char *devid, const char *host)
{
	size_t n = strlen(host);

	return !strncmp(devid, host, n) && devid[n] == ':';
}

static int recover_own_one(void *arg, const struct lend_record *rec)
{
	struct own_ctx *o = arg;

	if (!device_of(rec->device, o->e->self->name))
		return 0; /* another lender's: the replica has it */
	return recover_record(o->e, rec, o->reason);
}

int lend_recover_own(struct engine *e, char *reason)
{
	struct own_ctx o = { e, reason };
	struct notes nt = { .all = true };
	int r = e->store->load(e->store_ctx, recover_own_one, &o, reason);

	notes_flush(e, &nt, NULL);
	return r;
}

void lend_autolend_own(struct engine *e)
{
	for (unsigned i = 0; i < e->cfg->nautolends; i++) {
		const char *id = e->cfg->autolends[i].device;
		struct ldevice *d;
		bool free_;
		char why[REASON_MAX];

		d = model_get(e, id);
		free_ = d && !lend_remote(e, d);
		if (free_) {
			pthread_mutex_lock(&d->lock);
			free_ = d->state == DEV_AVAILABLE;
			pthread_mutex_unlock(&d->lock);
		}
		model_put(e, d);
		if (free_)
			lend_autolend(e, id, e->cfg->autolends[i].borrower, why);
	}
}
