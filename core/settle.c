// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * settle.c - distributed mode: a request of this lender's that failed
 * without knowing what the store holds (its connection was lost under a
 * write: the reply, not necessarily the write) leaves its device
 * `unsure`; once connected, the books are settled with the record, as
 * recovery would settle them after a restart (engine_internal.h,
 * docs/STATE.md "Partitions").
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"
#include "fault.h"

struct settle {
	struct engine *e;
	struct ldevice *d;
	bool found;
	int r;
	char reason[REASON_MAX];
};

/*
 * The record is there: a lent record whose lend the books dropped is
 * restored (the peer committed it), a `lending` one rolled back, a
 * `returning` one finished, as at a start (recover.c).
 */
static int settle_record(void *arg, const struct lend_record *rec)
{
	struct settle *s = arg;
	struct ldevice *d = s->d;
	enum dev_state st;
	uint64_t epoch;

	if (strcmp(rec->device, d->id))
		return 0;
	s->found = true;
	pthread_mutex_lock(&d->lock);
	st = d->state;
	epoch = d->epoch;
	pthread_mutex_unlock(&d->lock);
	if (st == DEV_LENT && rec->state == REC_LENT && rec->epoch == epoch)
		return 0; /* the books say so already */
	if (st == DEV_LENT) {
		s->r = reason_set(s->reason, -EIO,
				  "lent at epoch %llu, but the record says %s at %llu",
				  (unsigned long long)epoch, rec_state_name(rec->state),
				  (unsigned long long)rec->epoch);
		return 0;
	}
	s->r = recover_record(s->e, rec, s->reason);
	return 0;
}

/* No record: a return went in although its reply was lost. */
static void settle_returned(struct engine *e, struct ldevice *d)
{
	struct notes nt = { 0 };

	p2p_decompose(e, d, &nt);
	windows_clear_all(e, d->windows, d->nwindows);
	plan_release_locked(e, d->windows, d->nwindows);
	notes_event(&nt, EV_RETURNED, d->id, "borrower", d->borrower, "cause",
		    "recovery", NULL);
	pthread_mutex_lock(&d->lock);
	lend_forget_windows(d);
	d->state = lender_online(e, d) ? DEV_AVAILABLE : DEV_OFFLINE;
	dev_clear_borrower(d);
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	notes_add(&nt, d->id);
	notes_flush(e, &nt, NULL);
	engine_report(e, "%s: its return went in although the answer was lost: returned",
		      d->id);
}

/* One unsure device, under its request lock: 0, or -errno (still unsure). */
static int settle_one(struct engine *e, struct ldevice *d)
{
	struct settle s = { .e = e, .d = d };
	bool lent;
	int r;

	pthread_mutex_lock(&d->lock);
	lent = d->state == DEV_LENT;
	pthread_mutex_unlock(&d->lock);
	r = e->store->load(e->store_ctx, settle_record, &s, s.reason);
	if (r == 0)
		r = s.r;
	if (r == 0 && !s.found && lent)
		settle_returned(e, d);
	if (r < 0)
		engine_report(e, "%s: cannot settle a request whose outcome was lost: %s",
			      d->id, s.reason);
	return r;
}

void lend_settle_all(struct engine *e,
		     int (*close)(void *arg, const char *devid, uint64_t epoch),
		     void *arg)
{
	struct ldevice **devs;
	unsigned n;

	if (!__atomic_load_n(&e->unsure, __ATOMIC_RELAXED) ||
	    model_pin_all(e, &devs, &n) < 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct ldevice *d = devs[i];
		uint64_t epoch;
		bool unsure;

		pthread_mutex_lock(&d->lock);
		unsure = d->unsure;
		pthread_mutex_unlock(&d->lock);
		if (unsure)
			fault_pass("settle");
		/*
		 * a request running may wait for the session thread, ours:
		 * settle the device at a later tick
		 */
		if (!unsure || !dev_request_try(e, d))
			continue;
		pthread_mutex_lock(&d->lock);
		unsure = d->unsure; /* the request before may have settled it */
		epoch = d->unsure_epoch;
		pthread_mutex_unlock(&d->lock);
		/* no peer may commit the lend tried once its marker is gone */
		if (unsure && close(arg, d->id, epoch) == 0 &&
		    settle_one(e, d) == 0) {
			pthread_mutex_lock(&d->lock);
			d->unsure = false;
			pthread_mutex_unlock(&d->lock);
			__atomic_sub_fetch(&e->unsure, 1, __ATOMIC_RELAXED);
		}
		dev_request_end(e, d);
	}
	model_put_all(e, devs, n);
}
