// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lend.c - the lend state machine, the only code that changes a device's
 * lend state once it is in the model (engine_internal.h): requests, and
 * the entry points for what happens under the engine (a guest's late
 * acknowledgement, QEMU gone, hot-removal, a host going away, recovery,
 * and in distributed mode the mirror of another lender's record).
 *
 * A request is a value, struct lend_req, passed through a short list of
 * steps; each step that leaves something behind has an undo, and a failed
 * step undoes, in reverse, exactly the steps done before it:
 *
 *   lend:    validate (`lending`) -> prepare (borrower kind) -> plan (route,
 *            LUT/DMA/IOMMU reservations) -> intent (store `lending`) ->
 *            program (this host's windows) -> peers (coordination) ->
 *            plug (borrower kind) -> commit (store `lent`) -> publish
 *            (`lent`) -> compose (P2P) -> notify
 *   return:  validate (`returning`) -> decompose -> unplug (borrower kind)
 *            -> teardown (store, windows, peers, record) -> `available`
 *
 * The only lock held across a step that waits (disk sync, QEMU,
 * ZooKeeper) is the device's own request lock (dev_request_begin()):
 * hot-plug, readers and other devices' requests never wait behind it.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"
#include "fault.h"

struct lend_req {
	struct engine *e;
	struct ldevice *d;	/* pinned, its request lock held */
	const char *value;	/* the borrower asked for; "" returns */
	struct lend_txn *txn;	/* what the store is told and tells back */
	char *reason;
	struct notes *notes;	/* changes to announce when done */
	struct borrower b;
	enum dev_state prev;
	uint64_t owner, epoch, deadline;
	int64_t lease;		/* the lease deadline it sets, wall ns; 0 none */
	int64_t old_lease;	/* a lease request: the one it replaces */
	uint32_t lease_s;	/* a lease request: N seconds from now, 0 none */
	int64_t lease_at;	/* ... or this deadline (a composition's), 0 none */
	struct route route;
	struct window *w;
	unsigned nw;
	bool committed;		/* a peer committed the record (coord) */
	bool intent_closed;
	bool stands;		/* committed before a step failed: never undone */
	bool forwarded;		/* handed to the lender's daemon (its events) */
	bool stored;		/* a store write was tried (settle.c) */
	const struct engine_caller *who; /* the writer, or NULL */
	const char *cause;	/* events: cause=, NULL for a write */
	unsigned carried;	/* events its intent asks the commit to carry */
};

static uint64_t deadline_of(struct engine *e)
{
	return now_ns() + (uint64_t)e->cfg->timeout_ms * 1000000ULL;
}

/* ---- borrower kinds ------------------------------------------------------ */

const struct borrower_ops *borrower_kind(struct engine *e, const char *value)
{
	return bname_is_vm(value) ? e->vm_borrower : e->host_borrower;
}

int borrower_resolve(struct engine *e, const struct ldevice *d,
		     const char *value, struct borrower *b, char *reason)
{
	struct bname n;

	memset(b, 0, sizeof(*b));
	if (strlen(value) > BORROWER_MAX)
		return reason_set(reason, -EINVAL, "borrower name too long (max %d bytes)",
				  BORROWER_MAX);
	if (bname_parse(value, &n) < 0)
		return bname_is_vm(value) ?
			reason_set(reason, -EINVAL,
				   "malformed vm borrower '%s' (expected vm:HOST/VM)", value) :
			reason_set(reason, -EINVAL,
				   "malformed host name '%s' (1-63 of A-Z a-z 0-9 _ -)", value);
	b->ops = borrower_kind(e, value);
	snprintf(b->value, sizeof(b->value), "%s", value);
	return b->ops->resolve(e, d, &n, b, reason);
}

static int host_resolve(struct engine *e, const struct ldevice *d,
			const struct bname *n, struct borrower *b, char *reason)
{
	struct lhost *h = engine_host(e, n->host);

	if (!h)
		return reason_set(reason, -EINVAL, "unknown host '%s'", n->host);
	if (h == d->lender)
		return reason_set(reason, -EINVAL,
				  "cannot lend %s to its own lender %s", d->id, n->host);
	b->host = h;
	b->ram = h->cfg->ram;
	b->nram = h->cfg->nram;
	return 0;
}

static int host_nothing(struct engine *e, struct ldevice *d, struct borrower *b,
			struct notes *nt, char *reason)
{
	return 0;
}

static int host_plug(struct engine *e, struct ldevice *d, struct borrower *b,
		     uint64_t deadline, char *reason)
{
	return 0;
}

static void host_unplug_rollback(struct engine *e, struct ldevice *d,
				 struct borrower *b)
{
}

static int host_unplug(struct engine *e, struct ldevice *d, const char *owner,
		       char *reason)
{
	return 0;
}

static bool host_attached(struct engine *e, const char *owner)
{
	return true;
}

static int host_recover(struct engine *e, struct ldevice *d,
			const struct lend_record *rec, char *reason)
{
	return 0;
}

/* A host borrower: its driver sees the device once the windows are in. */
const struct borrower_ops borrower_host_ops = {
	.name = "host",
	.intent_always = false,
	.resolve = host_resolve,
	.prepare = host_nothing,
	.plug = host_plug,
	.unplug_rollback = host_unplug_rollback,
	.unplug = host_unplug,
	.attached = host_attached,
	.recover = host_recover,
};


/* ---- store --------------------------------------------------------------- */

/*
 * Must a request to or from a borrower of kind @ops store its intent
 * (lending, returning) before it touches the fabric?  The intent is there
 * to undo, after a crash, what the request did outside the daemon:
 * registers of hardware that keeps them over a restart, a VM guest (QEMU
 * keeps a hot-added device), and in distributed mode the other daemons,
 * for which the intent is the protocol itself (cluster.h).  With a fabric
 * that resets at open, a host borrower and one daemon, a crash leaves
 * nothing behind that the restart does not reset: a lend then writes only
 * its outcome (lent), after programming, and a return removes the record
 * before clearing; one durable write per request either way.
 */
static bool intent_needed(const struct engine *e, const struct borrower_ops *ops)
{
	return e->coord->intent_always || !e->fabric->resets_at_open ||
	       ops->intent_always;
}

static int store_put(struct engine *e, const struct ldevice *d,
		     const char *borrower, enum rec_state st, uint64_t epoch,
		     int64_t lease, const struct window *w, unsigned n,
		     struct lend_txn *txn, const char *point, char *reason)
{
	struct lend_record rec = {
		.state = st,
		.since = now_wall(),
		.epoch = epoch,
		.expires = lease,
		.windows = (struct window *)w,
		.nwindows = n,
		.txn = txn,
	};
	int r = fault_check(point, reason);

	if (r < 0)
		return r;
	snprintf(rec.device, sizeof(rec.device), "%s", d->id);
	snprintf(rec.borrower, sizeof(rec.borrower), "%s", borrower);
	return e->store->put(e->store_ctx, &rec, reason);
}

static int store_remove(struct engine *e, const struct ldevice *d,
			struct lend_txn *txn, const char *point, char *reason)
{
	int r = fault_check(point, reason);

	if (r < 0)
		return r;
	return e->store->remove(e->store_ctx, d->id, txn, reason);
}

static bool inflight_get(struct engine *e)
{
	unsigned n = __atomic_add_fetch(&e->inflight, 1, __ATOMIC_ACQ_REL);

	if (n > e->cfg->max_requests) {
		__atomic_sub_fetch(&e->inflight, 1, __ATOMIC_ACQ_REL);
		return false;
	}
	return true;
}

static void inflight_put(struct engine *e)
{
	__atomic_sub_fetch(&e->inflight, 1, __ATOMIC_ACQ_REL);
}

/* ---- lend steps ----------------------------------------------------------- */

/*
 * Can @d be lent to @value now?  d->lock held; 1: already lent to this
 * borrower.  The validate step and the dry run (lend_admit()) both ask.
 */
static int lend_check(const struct ldevice *d, const char *value, char *reason)
{
	switch (d->state) {
	case DEV_LENT:
		if (!strcmp(d->borrower, value))
			return 1; /* idempotent: a no-op, not counted */
		return reason_set(reason, -EBUSY, "lent to %s; return it first",
				  d->borrower);
	case DEV_LENDING:
	case DEV_RETURNING:
		return reason_set(reason, -EBUSY, "a request is in flight (%s %s)",
				  dev_state_name(d->state), d->borrower);
	case DEV_OFFLINE:
		return reason_set(reason, -EHOSTDOWN, "lender %s is offline",
				  d->lender->name);
	default:
		break;
	}
	if (d->denied)
		return reason_set(reason, -EPERM,
				  "policy refuses to lend %s: listed in [policy] deny", d->id);
	if (d->deny_reason)
		return reason_set(reason, -EPERM, "policy refuses to lend %s: it %s",
				  d->id, d->deny_reason);
	if (d->gone)
		return reason_set(reason, -ENODEV, "device %s was removed", d->id);
	return 0;
}

static int inflight_refused(struct engine *e, char *reason)
{
	return reason_set(reason, -EBUSY, "too many requests in flight (max %u)",
			  e->cfg->max_requests);
}

/* validate: the borrower resolves and the device is free: `lending`. */
static int step_validate(struct lend_req *q)
{
	struct engine *e = q->e;
	struct ldevice *d = q->d;
	int r = borrower_resolve(e, d, q->value, &q->b, q->reason);

	if (r < 0)
		return r;
	pthread_mutex_lock(&d->lock);
	r = lend_check(d, q->value, q->reason);
	if (r == 0 && !inflight_get(e))
		r = inflight_refused(e, q->reason);
	if (r == 0 && ((!d->route && !(d->route = calloc(1, sizeof(*d->route)))) ||
		       dev_text(d) < 0)) {
		inflight_put(e);
		r = reason_set(q->reason, -ENOMEM, "out of memory");
	}
	if (r == 0) {
		q->prev = d->state;
		q->lease = e->cfg->default_lease ?
			now_wall_ns() + (int64_t)e->cfg->default_lease * 1000000000LL : 0;
		d->state = DEV_LENDING;
		snprintf(d->text->borrower, sizeof(d->text->borrower), "%s", q->value);
		dev_touch(d);
	}
	pthread_mutex_unlock(&d->lock);
	if (r == 0) {
		notes_add(q->notes, d->id);
		notes_event(q->notes, EV_LENDING, d->id, "borrower", q->value,
			    "cause", q->cause, NULL);
	}
	return r;
}

int lend_admit(struct engine *e, struct ldevice *d, const char *value,
	       struct borrower *b, char *reason)
{
	int r = borrower_resolve(e, d, value, b, reason);

	if (r < 0)
		return r;
	pthread_mutex_lock(&d->lock);
	r = lend_check(d, value, reason);
	/* a write to another daemon's device takes a slot of the lender's */
	if (r == 0 && !lend_remote(e, d) &&
	    __atomic_load_n(&e->inflight, __ATOMIC_ACQUIRE) >= e->cfg->max_requests)
		r = inflight_refused(e, reason);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static void undo_validate(struct lend_req *q)
{
	struct ldevice *d = q->d;

	pthread_mutex_lock(&d->lock);
	d->state = q->prev == DEV_FAILED ? DEV_FAILED : DEV_AVAILABLE;
	dev_clear_borrower(d);
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	inflight_put(q->e);
	notes_add(q->notes, d->id);
}

/* prepare: what the borrower's kind needs first (a VM: its memory now). */
static int step_prepare(struct lend_req *q)
{
	return q->b.ops->prepare(q->e, q->d, &q->b, q->notes, q->reason);
}

/* plan: a route and every reservation, tagged with a new owner. */
static int step_plan(struct lend_req *q)
{
	struct engine *e = q->e;
	int r;

	pthread_mutex_lock(&e->fabric_lock);
	q->owner = ++e->next_owner;
	e->next_epoch = MAX(e->next_epoch, e->coord->epoch_floor(e->coord_ctx));
	q->epoch = ++e->next_epoch;
	r = plan_lend(e, q->d, &q->b, q->owner, &q->route, &q->w, &q->nw, q->reason);
	pthread_mutex_unlock(&e->fabric_lock);
	return r;
}

static void undo_plan(struct lend_req *q)
{
	plan_release_locked(q->e, q->w, q->nw);
	free(q->w);
	q->w = NULL;
	q->nw = 0;
}

/* The lend's `lent` event into @nt. */
static void note_lent(struct lend_req *q, struct notes *nt)
{
	notes_event(nt, EV_LENT, q->d->id, "borrower", q->value, "cause",
		    q->cause, NULL);
}

/*
 * The intent, asking whoever commits it to carry the lend's events
 * (`lending`, and the `lent` the commit makes: lend_txn.carry), so that
 * a peer's commit appends them in its own transaction (zk, docs/STATE.md).
 */
static int put_intent(struct lend_req *q)
{
	struct notes lent = { .who = q->notes->who, .host = q->notes->host };
	struct event_rec buf[EVLOG_ATTACH_MAX];
	int r;

	note_lent(q, &lent);
	if (lent.nev)
		evlog_carry(q->notes, &lent.evs[0], q->txn, buf);
	r = store_put(q->e, q->d, q->value, REC_LENDING, q->epoch, q->lease, q->w,
		      q->nw, q->txn, "store_intent", q->reason);
	q->carried = q->txn->ncarry;
	q->txn->carry = NULL;
	q->txn->ncarry = 0;
	free(lent.evs);
	return r;
}

/*
 * intent: the durable `lending` record, where one is needed.  Another
 * daemon may have reserved meanwhile (-EAGAIN): then plan again.
 */
static int step_intent(struct lend_req *q)
{
	struct engine *e = q->e;

	for (unsigned tries = 0;; tries++) {
		int r;

		q->stored = intent_needed(e, q->b.ops);
		r = !q->stored ? 0 : put_intent(q);

		if (r != -EAGAIN)
			return r;
		undo_plan(q);
		if (tries >= 20 || now_ns() > q->deadline)
			r = reason_set(q->reason, -ETIMEDOUT,
				       "engine timeout (%u ms): the cluster kept changing while planning",
				       e->cfg->timeout_ms);
		else
			r = e->coord->resync(e->coord_ctx, q->reason);
		if (r == 0)
			r = step_plan(q);
		if (r < 0)
			return r; /* the plan step's undo finds nothing left */
	}
}

/*
 * The intent, or a failed commit, may be on disk: make sure it is not,
 * unless the borrower committed the lend first.  Its marker is closed
 * before the record is looked at, so that no commit can go in after:
 * then the lend stands (the undo stops here, lend_finish()), a writer
 * on another mount having its answer already.  Not known: the record
 * stays.  Either way the device stays unsure until the settle has
 * looked at the record (run_request(), settle.c): a lend undone cleanly
 * too, as the history check (tests/cluster/history.bats) failed once
 * with this daemon taking writes again at once.
 */
static void undo_intent(struct lend_req *q)
{
	struct engine *e = q->e;
	char why[REASON_MAX] = "";
	int r = q->committed ? 1 :
		e->coord->intent_abort(e->coord_ctx, q->d->id, q->epoch, why);

	q->intent_closed = true;
	if (r > 0)
		q->stands = true;
	else if (r == 0)
		store_remove(e, q->d, NULL, "store_abort", NULL);
	else
		engine_report(e, "%s: the lend to %s failed (%s), and whether its borrower committed it is not known: %s; settled once connected",
			      q->d->id, q->value, q->reason, why);
}

/* program: this host's windows. */
static int step_program(struct lend_req *q)
{
	return windows_program(q->e, q->w, q->nw, q->deadline, q->reason);
}

static void undo_program(struct lend_req *q)
{
	windows_clear(q->e, q->w, q->nw, NULL);
}

/* peers: the other hosts on the route have programmed theirs. */
static int step_peers(struct lend_req *q)
{
	struct engine *e = q->e;
	int r;

	if (q->committed)
		return 0; /* lend_finish(): the borrower committed it already */
	r = e->coord->wait_peers(e->coord_ctx, q->d->id, q->epoch, q->w, q->nw,
				 true, q->txn, q->deadline, q->reason);
	q->committed = r == 1; /* by the borrower (cluster.h) */
	/*
	 * Its commit answered the request the intent named (the record's
	 * "answer" line): no answer of ours may follow, not even "= 0", as
	 * the writer may have gone on to a request of its own at that node.
	 */
	if (q->committed && q->txn && q->txn->answer)
		q->txn->answered = true;
	return r < 0 ? r : 0;
}

static void intent_close(struct lend_req *q)
{
	if (q->committed || q->intent_closed)
		return;
	q->e->coord->intent_close(q->e->coord_ctx, q->d->id, q->epoch);
	q->intent_closed = true;
}

/* plug: the borrower's kind hands the device over (a VM: hot-add). */
static int step_plug(struct lend_req *q)
{
	return q->b.ops->plug(q->e, q->d, &q->b, q->deadline, q->reason);
}

static void undo_plug(struct lend_req *q)
{
	intent_close(q);
	q->b.ops->unplug_rollback(q->e, q->d, &q->b);
}

/*
 * commit: the durable `lent` record, unless a peer wrote it.  The lend's
 * events (`lending`, `lent`) go into the same transaction where the
 * store can (events.h): no write of their own.  A peer's commit carried
 * those its intent named (put_intent()).
 */
static int step_commit(struct lend_req *q)
{
	struct engine *e = q->e;
	struct event_rec evs[EVLOG_ATTACH_MAX];
	int r = fault_check("lend_commit", q->reason);

	if (r == 0 && now_ns() > q->deadline)
		r = reason_set(q->reason, -ETIMEDOUT, "engine timeout (%u ms)",
			       e->cfg->timeout_ms);
	note_lent(q, q->notes);
	if (q->committed)
		evlog_carried(q->notes, q->carried, true);
	if (r == 0 && !q->committed) {
		evlog_attach(q->notes, q->txn, evs);
		r = store_put(e, q->d, q->value, REC_LENT, q->epoch, q->lease, q->w,
			      q->nw, q->txn, "store_commit", q->reason);
		evlog_attached(q->notes, q->txn);
	}
	if (r < 0)
		notes_event_drop(q->notes); /* not lent after all */
	intent_close(q); /* the lend's marker: not needed now */
	return r;
}

/* publish: the device is `lent`; it owns the windows from here on. */
static int step_publish(struct lend_req *q)
{
	struct ldevice *d = q->d;

	pthread_mutex_lock(&d->lock);
	d->state = DEV_LENT;
	d->owner = q->owner;
	d->epoch = q->epoch;
	d->since = now_wall();
	*d->route = q->route;
	d->has_route = true;
	free(d->windows);
	d->windows = q->w;
	d->nwindows = q->nw;
	d->lease = q->lease;
	q->w = NULL;
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	inflight_put(q->e);
	notes_add(q->notes, d->id);
	if (q->lease)
		lease_kick(q->e, q->lease);
	return 0;
}

/* compose: P2P with the other devices of the same borrower. */
static int step_compose(struct lend_req *q)
{
	p2p_compose(q->e, q->d, q->notes);
	return 0;
}

struct lend_step {
	const char *point; /* fault point passed before the step (fault.h) */
	int (*run)(struct lend_req *q);
	void (*undo)(struct lend_req *q);
};

static const struct lend_step lend_steps[] = {
	{ "lend.validate", step_validate, undo_validate },
	{ "lend.prepare", step_prepare, NULL },
	{ "lend.plan", step_plan, undo_plan },
	{ "lend.intent", step_intent, undo_intent },
	{ "lend.program", step_program, undo_program },
	{ "lend.peers", step_peers, NULL },
	{ "lend.plug", step_plug, undo_plug },
	{ "lend.commit", step_commit, NULL },
	{ "lend.publish", step_publish, NULL },
	{ "lend.compose", step_compose, NULL },
};

/*
 * Run @steps in order.  A step returning > 0 ends the request as a no-op;
 * < 0 undoes every step done before it, in reverse, down to a lend that
 * stands (undo_intent()).
 */
static int steps_run(const struct lend_step *steps, size_t n,
		     struct lend_req *q)
{
	for (size_t i = 0; i < n; i++) {
		int r;

		fault_pass(steps[i].point);
		r = steps[i].run(q);
		if (r > 0)
			return r;
		if (r < 0) {
			while (i-- > 0 && !q->stands)
				if (steps[i].undo)
					steps[i].undo(q);
			return r;
		}
	}
	return 0;
}

/*
 * A step after the intent failed (@err), but the borrower had committed
 * the lend (undo_intent()): it stands, and its commit answered a writer
 * on another mount already.  The steps after the intent run again, with
 * a new deadline, the commit being the borrower's: the request succeeds.
 * If they fail again the books are rolled back, and the device, unsure,
 * is settled with the record (settle.c: restored as recovery restores a
 * lend, or failed if its windows cannot be programmed).
 */
static int lend_finish(struct lend_req *q, int err)
{
	size_t i = 0;
	int r;

	while (lend_steps[i].run != step_program)
		i++;
	engine_report(q->e, "%s: the lend to %s was committed by its borrower before this host's step failed (%s %s): finishing it",
		      q->d->id, q->value, errno_name(err), q->reason);
	q->stands = false;
	q->committed = true;
	if (q->txn->answer)
		q->txn->answered = true; /* no answer of ours may follow */
	q->deadline = deadline_of(q->e);
	r = steps_run(lend_steps + i, ARRAY_SIZE(lend_steps) - i, q);
	if (r < 0) {
		undo_plan(q);
		undo_validate(q);
	}
	return r;
}

/* ---- return ---------------------------------------------------------------- */

/*
 * A step of the return of @d after its intent failed (@err, @reason):
 * the peer may have removed the record before, its removal answering a
 * writer on another mount.  Then the return stands: this host's windows
 * are cleared (as recovery clears them: settle_returned()), the events
 * the intent carried are in the log, and it is done: 0.  Else @err: the
 * record is fenced (coord_ops.return_abort), or not known, and the
 * caller restores `lent`.
 */
static int return_stands(struct engine *e, struct ldevice *d,
			 const struct window *w, unsigned nw,
			 struct lend_txn *txn, struct notes *nt,
			 unsigned carried, int err, const char *reason)
{
	char why[REASON_MAX] = "";
	int r = e->coord->return_abort(e->coord_ctx, d->id, d->epoch, why);

	if (!reason)
		reason = "";
	if (r < 0)
		engine_report(e, "%s: the return from %s failed (%s), and whether its borrower removed the record is not known: %s; settled once connected",
			      d->id, d->borrower, reason, why);
	if (r <= 0)
		return err;
	engine_report(e, "%s: the return from %s was removed by its borrower before this host's step failed (%s %s): finishing it",
		      d->id, d->borrower, errno_name(err), reason);
	windows_clear_all(e, w, nw);
	if (txn->answer)
		txn->answered = true; /* no answer of ours may follow */
	evlog_carried(nt, carried, false);
	return 0;
}

/*
 * Tear down a lend whose windows are @w (device in `returning` or being
 * failed).  Returns 0 or the error of the step that failed, with
 * everything re-programmed as it was.
 */
static int teardown(struct engine *e, struct ldevice *d, struct window *w,
		    unsigned nw, struct lend_txn *txn, struct notes *nt,
		    const char *cause, char *reason)
{
	bool intent = intent_needed(e, borrower_kind(e, d->borrower));
	struct event_rec evs[EVLOG_ATTACH_MAX];
	struct lend_txn own = { 0 };
	unsigned carried;
	int r;

	/*
	 * `returned` rides in the transaction that ends the return (the
	 * record's removal), with the events before it (events.h).
	 */
	if (!txn)
		txn = &own;
	notes_event(nt, EV_RETURNED, d->id, "borrower", d->borrower, "cause", cause,
		    NULL);
	if (!intent)
		evlog_attach(nt, txn, evs);
	else /* the peer's removal carries them (put_intent() for a lend) */
		evlog_carry(nt, NULL, txn, evs);

	/*
	 * Without an intent the record goes first: a crash after that finds
	 * the device available and the fabric reset, a return finished.
	 */
	r = intent ? store_put(e, d, d->borrower, REC_RETURNING, d->epoch,
			       d->lease, w, nw, txn, "store_intent", reason)
		   : store_remove(e, d, txn, "store_commit", reason);
	evlog_attached(nt, txn);
	carried = txn->ncarry;
	txn->carry = NULL;
	txn->ncarry = 0;
	if (r < 0) {
		notes_event_drop(nt);
		return r;
	}
	fault_pass("return.stored");
	r = windows_clear(e, w, nw, reason);
	if (r == 0) {
		fault_pass("return.cleared");
		r = e->coord->wait_peers(e->coord_ctx, d->id, d->epoch, w, nw, false,
					 txn, deadline_of(e), reason);
		if (r < 0)
			windows_program(e, w, nw, UINT64_MAX, NULL);
	}
	if (r == 1) { /* the borrower removed the record, and answered */
		if (txn && txn->answer)
			txn->answered = true;
		evlog_carried(nt, carried, false);
		r = 0;
	} else if (r == 0 && intent) {
		evlog_attach(nt, txn, evs);
		r = store_remove(e, d, txn, "store_commit", reason);
		evlog_attached(nt, txn);
		if (r < 0)
			windows_program(e, w, nw, UINT64_MAX, NULL);
		else
			fault_pass("return.removed");
	}
	if (r < 0 && intent) /* unless the peer removed it first */
		r = return_stands(e, d, w, nw, txn, nt, carried, r, reason);
	if (r < 0) {
		/*
		 * Back to lent: the windows are programmed again; if even this
		 * write fails the record stays `returning` (or absent) and
		 * the next start finishes the return.
		 */
		store_put(e, d, d->borrower, REC_LENT, d->epoch, d->lease, w, nw,
			  NULL, "store_restore", NULL);
		if (intent)
			notes_event_drop(nt); /* not returned after all */
		return r;
	}
	plan_release_locked(e, w, nw);
	return 0;
}

void lend_forget_windows(struct ldevice *d)
{
	free(d->windows);
	d->windows = NULL;
	d->nwindows = 0;
	d->has_route = false;
	d->lease = 0;
}

/*
 * @d is `returning` and owned by the caller: with @r 0 tear its lend down
 * (store, windows) and make it available, else (or if that fails) it is
 * lent again.
 */
static int return_finish(struct engine *e, struct ldevice *d, int r,
			 struct lend_txn *txn, struct notes *nt,
			 const char *cause, char *reason)
{
	p2p_decompose(e, d, nt); /* done already by a return, not by a VM that went */
	if (r == 0)
		r = teardown(e, d, d->windows, d->nwindows, txn, nt, cause, reason);
	if (r < 0)
		p2p_compose(e, d, nt); /* still lent: back in its composition */

	pthread_mutex_lock(&d->lock);
	if (r < 0) {
		d->state = DEV_LENT;
	} else {
		d->state = lender_online(e, d) ? DEV_AVAILABLE : DEV_OFFLINE;
		dev_clear_borrower(d);
		lend_forget_windows(d);
		d->owner = 0;
		d->since = now_wall();
	}
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	notes_add(nt, d->id);
	return r;
}

/* Can @d be returned now?  d->lock held; 1: nothing to do. */
static int return_check(struct engine *e, struct ldevice *d, struct notes *nt,
			char *reason)
{
	switch (d->state) {
	case DEV_AVAILABLE:
	case DEV_OFFLINE:
		return 1; /* nothing lent: writing "" is a no-op */
	case DEV_FAILED:
		d->state = lender_online(e, d) ? DEV_AVAILABLE : DEV_OFFLINE;
		notes_event(nt, EV_RETURNED, d->id, "borrower", d->borrower,
			    "cleared", "failed", NULL);
		dev_clear_borrower(d);
		dev_touch(d);
		notes_add(nt, d->id);
		return 2; /* cleared: done, and counted */
	case DEV_LENDING:
	case DEV_RETURNING:
		if (d->state == DEV_RETURNING && d->vm_pending) {
			d->vm_pending = false; /* a VM guest did not ack: ask again */
			return 0;
		}
		return reason_set(reason, -EBUSY, "a request is in flight (%s %s)",
				  dev_state_name(d->state), d->borrower);
	case DEV_LENT:
		break;
	}
	return 0;
}

/*
 * The guest did not acknowledge in time: the return stays pending (the
 * acknowledgement finishes it, lend_guest_ack()), unless the
 * acknowledgement came meanwhile or the guest went away.  0: go on.
 */
static int return_pending(struct engine *e, struct ldevice *d,
			  const char *owner, char *reason)
{
	bool claimed = false;

	pthread_mutex_lock(&d->lock);
	if (d->vm_acked)
		claimed = true;
	else
		d->vm_pending = true;
	d->vm_acked = false;
	pthread_mutex_unlock(&d->lock);
	if (claimed)
		return 0;
	if (!borrower_kind(e, owner)->attached(e, owner)) {
		pthread_mutex_lock(&d->lock);
		claimed = d->vm_pending;
		d->vm_pending = false;
		pthread_mutex_unlock(&d->lock);
		if (claimed)
			return 0;
	}
	engine_report(e, "%s stays returning: %s", d->id, reason);
	return -ETIMEDOUT; /* from here on the guest's ack may finish it */
}

static int do_return(struct lend_req *q)
{
	struct engine *e = q->e;
	struct ldevice *d = q->d;
	char owner[BORROWER_MAX + 1];
	int r;

	pthread_mutex_lock(&d->lock);
	r = return_check(e, d, q->notes, q->reason);
	if (r == 0 && !inflight_get(e))
		r = reason_set(q->reason, -EBUSY, "too many requests in flight (max %u)",
			       e->cfg->max_requests);
	if (r != 0) {
		pthread_mutex_unlock(&d->lock);
		return r == 2 ? 0 : r;
	}
	d->state = DEV_RETURNING;
	d->vm_acked = false;
	snprintf(owner, sizeof(owner), "%s", d->borrower);
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	notes_add(q->notes, d->id);
	notes_event(q->notes, EV_RETURNING, d->id, "borrower", owner, "cause",
		    q->cause, NULL);

	/* windows stay owned by the device while it is returning */
	p2p_decompose(e, d, q->notes);
	fault_pass("return.unplug");
	r = borrower_kind(e, owner)->unplug(e, d, owner, q->reason);
	if (r == 0)
		fault_pass("return.unplug.done");
	if (r == -ETIMEDOUT)
		r = return_pending(e, d, owner, q->reason);
	q->stored = r == 0;
	q->epoch = d->epoch;
	if (r != -ETIMEDOUT) /* else it stays returning */
		r = return_finish(e, d, r, q->txn, q->notes, q->cause, q->reason);
	if (r == 0)
		fault_pass("return.done"); /* done, not yet acknowledged */
	inflight_put(e);
	notes_add(q->notes, d->id);
	return r;
}

/* ---- distributed: requests for another daemon's devices ----------------- */

/*
 * The lender's daemon decides; this one checks what it can (the value,
 * the lender being up) and hands the write over.
 */
static int forward(struct lend_req *q)
{
	struct engine *e = q->e;
	struct ldevice *d = q->d;
	enum dev_state st;
	int r;

	if (*q->value) {
		r = borrower_resolve(e, d, q->value, &q->b, q->reason);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&d->lock);
	st = d->state;
	pthread_mutex_unlock(&d->lock);
	if (st == DEV_OFFLINE)
		return reason_set(q->reason, -EHOSTDOWN, "lender %s is offline",
				  d->lender->name);
	/*
	 * Not even the current value is a no-op here: this mount's copy may
	 * lag the lender's (a return just committed), and an acknowledged
	 * write must be true when it returns.  The lender decides.
	 */
	q->forwarded = true; /* the lender's daemon logs what it does */
	return e->coord->forward(e->coord_ctx, d->id, d->lender->name, q->value,
				 q->txn->compo, q->who, q->reason);
}

/* ---- public requests ------------------------------------------------------ */

/* settle.c settles it once connected (engine_internal.h). */
void lend_mark_unsure(struct engine *e, struct ldevice *d, uint64_t epoch)
{
	if (!e->coord->settles)
		return;
	pthread_mutex_lock(&d->lock);
	if (!d->unsure)
		__atomic_add_fetch(&e->unsure, 1, __ATOMIC_RELAXED);
	d->unsure = true;
	d->unsure_epoch = epoch;
	pthread_mutex_unlock(&d->lock);
}


/*
 * A request of this lender's on @d ended without knowing what the store
 * holds (settle.c): every write of @d is refused until it is settled, a
 * return too (the books may say `available` while the record says lent:
 * it would be acknowledged as a no-op).  0, or -EBUSY.
 */
static int unsure_refused(struct ldevice *d, char *reason)
{
	bool unsure;

	pthread_mutex_lock(&d->lock);
	unsure = d->unsure;
	pthread_mutex_unlock(&d->lock);
	if (!unsure)
		return 0;
	return reason_set(reason, -EBUSY,
			  "the outcome of the last request of %s is not known yet: it is settled with ZooKeeper's record once connected",
			  d->id);
}

/* Run @q on its pinned device under its request lock. */
static int run_request(struct lend_req *q)
{
	struct engine *e = q->e;
	struct ldevice *d = q->d;
	bool gone;
	int r;

	dev_request_begin(e, d);
	if (__atomic_load_n(&d->unlinked, __ATOMIC_ACQUIRE)) {
		/* hot-removed while this request waited for the one before */
		dev_request_end(e, d);
		return reason_set(q->reason, -ENODEV, "no device %s", d->id);
	}
	if (e->coord->writable &&
	    (r = e->coord->writable(e->coord_ctx, q->reason)) < 0) {
		/* nothing was done: no session to do it with */
	} else if (lend_remote(q->e, d)) {
		r = forward(q);
	} else if ((r = unsure_refused(d, q->reason)) < 0) {
		/* nothing was done: settled first (lend_settle_all()) */
	} else if (*q->value) {
		q->deadline = deadline_of(q->e);
		r = steps_run(lend_steps, ARRAY_SIZE(lend_steps), q);
		if (r < 0 && q->stands)
			r = lend_finish(q, r);
		if (r == 0)
			fault_pass("lend.done"); /* done, not yet acknowledged */
	} else {
		r = do_return(q);
	}
	/* the store may hold what this request wrote: settle it later */
	if (r < 0 && q->stored)
		lend_mark_unsure(e, d, q->epoch);
	pthread_mutex_lock(&d->lock);
	if (r < 0) {
		dev_set_last_error(d, r, q->reason);
		dev_touch(d);
	}
	gone = r == 0 && !*q->value && d->gone && d->state == DEV_AVAILABLE;
	pthread_mutex_unlock(&d->lock);
	if (gone) {
		/* a removed device disappears once its failure is cleared */
		pthread_rwlock_wrlock(&q->e->model_lock);
		/* unless a hot-add brought it back meanwhile (lend_device_back()) */
		if (engine_dev(q->e, d->id) == d && d->gone)
			model_unlink(q->e, d);
		pthread_rwlock_unlock(&q->e->model_lock);
		notes_add(q->notes, NULL);
	}
	dev_request_end(e, d);
	return r;
}

int lend_request(struct engine *e, const char *devid, const char *value,
		 const struct engine_caller *who, struct lend_txn *txn,
		 char *reason)
{
	char buf[REASON_MAX];
	struct notes nt = { 0 };
	struct lend_txn own = { 0 }; /* a request of this mount: answers nobody */
	struct lend_req q = {
		.e = e, .value = value ? value : "", .txn = txn ? txn : &own,
		.reason = reason ? reason : buf, .notes = &nt, .who = who,
	};
	uint64_t t0 = now_ns();
	int r;

	q.reason[0] = '\0';
	notes_caller(&nt, e, who);
	q.d = model_get(e, devid);
	if (!q.d)
		return reason_set(q.reason, -ENODEV, "no device %s", devid);
	r = run_request(&q);
	model_put(e, q.d);
	if (r != 1)
		metrics_request(&e->metrics, *q.value, r, now_ns() - t0);
	if (r < 0)
		notes_add(&nt, devid);
	if (r < 0 && !q.forwarded)
		notes_event(&nt, EV_FAILED, devid, "request", *q.value ? "lend" : "return",
			    "borrower", *q.value ? q.value : NULL, "errno", errno_name(r),
			    "reason", q.reason, NULL);
	notes_flush(e, &nt, who);
	return r;
}

int lend_autolend(struct engine *e, const char *devid, const char *borrower,
		  char *why)
{
	int r = lend_request(e, devid, borrower, NULL, NULL, why);

	if (r < 0)
		engine_report(e, "autolend %s -> %s failed: %s", devid, borrower, why);
	else
		engine_report(e, "autolend %s -> %s done", devid, borrower);
	return r;
}

int engine_lend(struct engine *e, const char *devid, const char *borrower,
		char *reason)
{
	int r = lend_request(e, devid, borrower, NULL, NULL, reason);

	return r < 0 ? r : 0;
}

int engine_return(struct engine *e, const char *devid, char *reason)
{
	int r = lend_request(e, devid, "", NULL, NULL, reason);

	return r < 0 ? r : 0;
}

/*
 * Turn one write into a value: strip one trailing newline; bound the
 * length; refuse bytes no name can contain (so that a NUL or a second
 * line is an error, not a silently different request).
 */
int lend_parse_value(const char *buf, size_t len, char *out, char *reason)
{
	len = value_len(buf, len);
	if (len > BORROWER_MAX)
		return reason_set(reason, -EINVAL, "value too long (%zu bytes, max %d)",
				  len, BORROWER_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = buf[i];

		if (c < 0x21 || c > 0x7e)
			return reason_set(reason, -EINVAL,
					  "malformed name: byte 0x%02x at offset %zu", c, i);
	}
	memcpy(out, buf, len);
	out[len] = '\0';
	return 0;
}

/* A write that is no request at all: only its last_error changes. */
int lend_write_refused(struct engine *e, const char *devid, int r,
		       const char *buf, size_t len,
		       const struct engine_caller *who, const char *reason)
{
	struct ldevice *d = model_get(e, devid);
	char value[EVENT_VALUE_MAX + 1];
	struct notes nt = { 0 };

	if (d) {
		pthread_mutex_lock(&d->lock);
		dev_set_last_error(d, r, reason);
		dev_touch(d);
		pthread_mutex_unlock(&d->lock);
		model_put(e, d);
	}
	metrics_request(&e->metrics, 1, r, 0);
	notes_add(&nt, devid);
	notes_caller(&nt, e, who);
	if (d) { /* the bytes escaped (event_kv()), never raw */
		len = MIN(value_len(buf, len), sizeof(value) - 1);
		memcpy(value, buf, len);
		value[len] = '\0';
		notes_event(&nt, EV_FAILED, devid, "request", "write", "value", value,
			    "errno", errno_name(r), "reason", reason, NULL);
	}
	notes_flush(e, &nt, who);
	return r;
}

/* ---- lends that break under the engine -------------------------------------- */

/*
 * A lend broke under the engine (route lost, device removed): what the
 * borrower kind plugged is unplugged (a VM: hot-removed from the guest,
 * with its acknowledgement or after the timeout, and its QEMU objects
 * deleted), its windows and record torn down, and the device left
 * `failed` with @why as its last_error.  The device is not in any
 * composition any more.
 */
static void fail_lend(struct engine *e, struct ldevice *d, const char *why,
		      bool gone, const char *cause, struct notes *nt)
{
	const char *colon = strstr(why, ": ");
	char err[16], unplug_why[REASON_MAX] = "";

	if (borrower_kind(e, d->borrower)->unplug(e, d, d->borrower, unplug_why) < 0)
		engine_report(e, "%s: the failed lend to %s is still being unplugged: %s",
			      d->id, d->borrower, unplug_why);

	snprintf(err, sizeof(err), "%.*s", colon ? (int)(colon - why) : 0, why);
	notes_event(nt, EV_FAILED, d->id, "borrower", d->borrower, "errno",
		    err[0] ? err : NULL, "reason", colon ? colon + 2 : why, "cause",
		    cause, NULL);
	windows_clear(e, d->windows, d->nwindows, NULL);
	store_remove(e, d, NULL, "store_fail", NULL);
	plan_release_locked(e, d->windows, d->nwindows);
	pthread_mutex_lock(&d->lock);
	lend_forget_windows(d);
	d->gone = gone;
	d->state = DEV_FAILED;
	dev_set_error(d, "%s", why);
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	notes_add(nt, d->id);
}

void lend_device_gone(struct engine *e, struct ldevice *d, struct notes *nt)
{
	p2p_decompose(e, d, nt);
	fail_lend(e, d, "ENODEV: device removed", true, "hotplug", nt);
}

/* A new route for lent @d: its windows programmed and committed. */
static int reroute(struct engine *e, struct ldevice *d, struct window **w,
		   unsigned *nw, struct route *route, char *reason)
{
	struct borrower b;
	uint64_t owner;
	int r = borrower_resolve(e, d, d->borrower, &b, reason);

	if (r < 0)
		return r;
	pthread_mutex_lock(&e->fabric_lock);
	owner = ++e->next_owner;
	r = plan_lend(e, d, &b, owner, route, w, nw, reason);
	pthread_mutex_unlock(&e->fabric_lock);
	if (r < 0)
		return r;
	r = windows_program(e, *w, *nw, deadline_of(e), reason);
	if (r == 0)
		r = store_put(e, d, d->borrower, REC_LENT, d->epoch, d->lease, *w,
			      *nw, NULL, "store_commit", reason);
	if (r < 0) {
		windows_clear(e, *w, *nw, NULL);
		plan_release_locked(e, *w, *nw);
		free(*w);
	}
	return r;
}

/*
 * A lend whose route no longer holds is rerouted when another route
 * exists, otherwise failed: its windows are torn down and the reason kept.
 */
static void route_lost(struct engine *e, struct ldevice *d, const char *why,
		       struct notes *nt)
{
	struct route route;
	struct window *w = NULL, *old;
	unsigned nw = 0, nold;
	char reason[REASON_MAX] = "";

	pthread_mutex_lock(&d->lock);
	if (d->state != DEV_LENT) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	d->state = DEV_RETURNING;
	pthread_mutex_unlock(&d->lock);
	p2p_decompose(e, d, nt);

	/* try a new route first: program it, then drop the old windows */
	if (reroute(e, d, &w, &nw, &route, reason) < 0) {
		snprintf(reason, sizeof(reason), "EHOSTDOWN: route lost: %.200s", why);
		fail_lend(e, d, reason, false, "host", nt);
		engine_report(e, "lend of %s failed: route lost: %s", d->id, why);
		return;
	}
	old = d->windows;
	nold = d->nwindows;
	windows_clear(e, old, nold, NULL);
	plan_release_locked(e, old, nold);
	pthread_mutex_lock(&d->lock);
	d->windows = w;
	d->nwindows = nw;
	*d->route = route;
	d->state = DEV_LENT;
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	free(old);
	p2p_compose(e, d, nt);
	notes_add(nt, d->id);
	notes_event(nt, EV_LENT, d->id, "borrower", d->borrower, "rerouted", why,
		    "cause", "host", NULL);
	engine_report(e, "lend of %s to %s rerouted: %s", d->id, d->borrower, why);
}

/* @h's online state changed: one device of the model follows it. */
static void device_follow_host(struct engine *e, struct ldevice *d,
			       struct lhost *h, bool online, bool act,
			       struct notes *nt)
{
	char why[REASON_MAX];
	bool broken = false;

	pthread_mutex_lock(&d->lock);
	if (lend_remote(e, d)) {
		if (d->lender == h) {
			d->state = replica_state(e, d);
			dev_touch(d);
		}
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (d->lender == h) {
		if (!online && d->state == DEV_AVAILABLE)
			d->state = DEV_OFFLINE;
		else if (online && d->state == DEV_OFFLINE)
			d->state = DEV_AVAILABLE;
		dev_touch(d);
	}
	if (d->state == DEV_LENT && d->has_route) {
		pthread_mutex_lock(&e->fabric_lock);
		broken = !topo_route_intact(e->topo, d->route);
		pthread_mutex_unlock(&e->fabric_lock);
	}
	/* a borrower that went away is taken back (lend_take_back()) */
	if (broken && e->coord->takes_back && bname_on_host(d->borrower, h->name))
		broken = false;
	pthread_mutex_unlock(&d->lock);
	if (!broken || !act)
		return;
	snprintf(why, sizeof(why), "host %s went offline", h->name);
	dev_request_begin(e, d);
	route_lost(e, d, why, nt);
	dev_request_end(e, d);
}

/*
 * @h is online when an admin has not set it offline and (distributed
 * mode) its daemon is up.  After either changed: the devices follow and,
 * with @act, lends of this daemon's devices whose route broke are
 * rerouted or failed.
 */
void lend_host_refresh(struct engine *e, struct lhost *h, bool act,
		       struct notes *nt)
{
	struct ldevice **devs;
	unsigned n;
	bool online;

	pthread_mutex_lock(&e->fabric_lock);
	online = h->admin && h->live;
	h->online = online;
	topo_node_set_up(e->topo, h->node, online);
	pthread_mutex_unlock(&e->fabric_lock);
	if (model_pin_all(e, &devs, &n) < 0)
		return;
	for (unsigned i = 0; i < n; i++)
		device_follow_host(e, devs[i], h, online, act, nt);
	model_put_all(e, devs, n);
	notes_add(nt, NULL);
}

static int write_host_state(struct engine *e, const char *host,
			    const char *buf, size_t len, struct notes *nt,
			    char *reason)
{
	char value[16];
	struct lhost *h;
	bool online, changed;
	int r;

	len = value_len(buf, len);
	/* a NUL must not make "offline\0junk" read as "offline" */
	if (len >= sizeof(value) || memchr(buf, '\0', len))
		return reason_set(reason, -EINVAL, "expected 'online' or 'offline'");
	memcpy(value, buf, len);
	value[len] = '\0';
	if (!strcmp(value, "online"))
		online = true;
	else if (!strcmp(value, "offline"))
		online = false;
	else
		return reason_set(reason, -EINVAL,
				  "expected 'online' or 'offline', got '%s'", value);
	h = engine_host(e, host);
	if (!h)
		return reason_set(reason, -ENOENT, "no host %s", host);
	r = e->store->host_put(e->store_ctx, host, online, reason);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->fabric_lock);
	changed = h->admin != online;
	h->admin = online;
	pthread_mutex_unlock(&e->fabric_lock);
	if (changed) { /* before its devices' events: the cause first */
		char subject[HOST_NAME_MAX_LEN + 8];

		snprintf(subject, sizeof(subject), "host:%s", h->name);
		notes_event(nt, online ? EV_HOST_ONLINE : EV_HOST_OFFLINE, subject,
			    "admin", online ? "online" : "offline", NULL);
	}
	lend_host_refresh(e, h, true, nt);
	return 0;
}

int engine_write_host_state(struct engine *e, const char *host,
			    const char *buf, size_t len,
			    const struct engine_caller *who, char *reason)
{
	struct notes nt = { 0 };
	int r;

	notes_caller(&nt, e, who);
	r = write_host_state(e, host, buf, len, &nt, reason);

	notes_flush(e, &nt, who);
	return r;
}

/* ---- distributed: the mirror of another lender's device --------------------- */

void lend_mirror(struct engine *e, struct ldevice *d,
		   const struct lend_record *rec, struct window *nw,
		   unsigned nnew, uint64_t owner, const struct route *route,
		   bool *dirty)
{
	if (!d->route)
		d->route = calloc(1, sizeof(*d->route));
	d->windows = nw;
	d->nwindows = nnew;
	d->rec_state = rec ? (int)rec->state : -1;
	d->owner = owner;
	d->lease = rec ? rec->expires : 0;
	if (rec && dev_text(d) == 0) {
		d->epoch = rec->epoch;
		d->since = rec->since;
		snprintf(d->text->borrower, sizeof(d->text->borrower), "%s",
			 rec->borrower);
	} else {
		if (rec) /* no memory for its text: read it all again later */
			*dirty = true;
		dev_clear_borrower(d);
		d->since = now_wall();
	}
	d->has_route = route && d->route;
	if (d->has_route)
		*d->route = *route;
	d->state = replica_state(e, d);
	dev_touch(d);
}

/* ---- recovery and hot-plug ------------------------------------------------------ */

int lend_restored(struct engine *e, struct ldevice *d,
		  const struct lend_record *rec, uint64_t owner,
		  const struct route *route, char *reason)
{
	struct window *w = malloc(rec->nwindows * sizeof(*w));
	int r = 0;

	/* the device lock: in distributed mode the mount is up already */
	pthread_mutex_lock(&d->lock);
	if (!w || (!d->route && !(d->route = calloc(1, sizeof(*d->route)))) ||
	    dev_text(d) < 0) {
		free(w);
		r = reason_set(reason, -ENOMEM, "out of memory");
	} else {
		memcpy(w, rec->windows, rec->nwindows * sizeof(*w));
		free(d->windows);
		d->windows = w;
		d->nwindows = rec->nwindows;
		d->state = DEV_LENT;
		d->owner = owner;
		d->epoch = rec->epoch;
		d->since = rec->since;
		d->lease = rec->expires;
		*d->route = *route;
		d->has_route = route->nhops > 0;
		snprintf(d->text->borrower, sizeof(d->text->borrower), "%s",
			 rec->borrower);
		dev_touch(d);
	}
	pthread_mutex_unlock(&d->lock);
	/*
	 * Distributed mode: the timer runs already, and this deadline is new
	 * to it.  One that passed is recovery's to enforce (cause=recovery,
	 * lease_expire_due() once the session is up), not the timer's.
	 */
	if (r == 0 && rec->expires > now_wall_ns())
		lease_kick(e, rec->expires);
	return r;
}

void lend_restore_failed(struct engine *e, struct ldevice *d,
			 const char *borrower, int err, const char *why)
{
	pthread_mutex_lock(&d->lock);
	dev_set_error(d, "%s: cannot restore lend to %.64s: %.160s",
		      errno_name(err), borrower, why);
	d->state = DEV_FAILED;
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
}

int lend_device_back(struct engine *e, struct ldevice *d,
		     const struct cfg_device *c, char *reason)
{
	int r;

	pthread_mutex_lock(&d->lock);
	r = model_fill(d, c);
	if (r == 0) {
		d->gone = false;
		d->lease = 0;
		d->state = lender_online(e, d) ? DEV_AVAILABLE : DEV_OFFLINE;
		dev_clear_borrower(d);
		dev_touch(d);
	}
	pthread_mutex_unlock(&d->lock);
	return r < 0 ? reason_set(reason, r, "out of memory") : 0;
}

/* ---- VM guests: late acknowledgements, QEMU gone ------------------------------ */

int lend_guest_ack(struct engine *e, const char *devid, const char *owner,
		   struct notes *nt, char *reason)
{
	struct ldevice *d = model_get(e, devid);
	bool claim = false;
	int r = 0;

	if (!d)
		return 0;
	pthread_mutex_lock(&d->lock);
	if (d->state == DEV_RETURNING && !strcmp(d->borrower, owner)) {
		if (d->vm_pending) {
			d->vm_pending = false;
			claim = true;
		} else {
			d->vm_acked = true; /* the request running finishes it */
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (claim) {
		r = return_finish(e, d, 0, NULL, nt, "guest", reason);
		r = r < 0 ? r : 1;
	}
	model_put(e, d);
	return r;
}

int lend_guest_gone(struct engine *e, struct ldevice *d, const char *owner,
		    struct notes *nt, char *reason)
{
	bool claim = false;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	if (!strcmp(d->borrower, owner)) {
		if (d->state == DEV_LENT) {
			d->state = DEV_RETURNING;
			claim = true;
		} else if (d->state == DEV_RETURNING && d->vm_pending) {
			d->vm_pending = false;
			claim = true;
		} else if (d->state == DEV_LENDING || d->state == DEV_RETURNING) {
			r = -EBUSY;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (!claim)
		return r;
	r = return_finish(e, d, 0, NULL, nt, "guest", reason);
	return r < 0 ? r : 1;
}

/* ---- distributed: take-back ----------------------------------------------------- */

/* One device of ours lent to @host, whose session expired: returned. */
static int take_back_one(struct engine *e, struct ldevice *d, const char *host,
			 uint64_t fence, unsigned *failed, struct notes *nt)
{
	char reason[REASON_MAX] = "";
	struct lend_req q = { .e = e, .d = d, .value = "", .reason = reason,
			      .notes = nt, .cause = "take-back" };
	char fence_text[24];
	bool mine;
	int r;

	pthread_mutex_lock(&d->lock);
	mine = d->state == DEV_LENT && bname_on_host(d->borrower, host);
	pthread_mutex_unlock(&d->lock);
	if (!mine)
		return 0;
	dev_request_begin(e, d);
	r = do_return(&q);
	dev_request_end(e, d);
	pthread_mutex_lock(&d->lock);
	if (r < 0) {
		dev_set_last_error(d, r, reason);
		(*failed)++;
	} else {
		dev_set_error(d, "EHOSTDOWN: taken back from %s, whose session expired (fence epoch %" PRIu64 ")",
			      host, fence);
		snprintf(fence_text, sizeof(fence_text), "%" PRIu64, fence);
		notes_event(nt, EV_TAKEN_BACK, d->id, "borrower", host, "fence",
			    fence_text, "cause", "take-back", NULL);
	}
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	notes_add(nt, d->id);
	if (r < 0)
		engine_report(e, "take-back of %s from %s failed: %s", d->id, host,
			      reason);
	else
		engine_report(e, "%s taken back from %s (session expired, fence epoch %" PRIu64 ")",
			      d->id, host, fence);
	return 1;
}

int lend_take_back(struct engine *e, const char *host, uint64_t fence,
		   unsigned *failed)
{
	struct notes nt = { 0 };
	struct ldevice **devs;
	unsigned n;
	int tried = 0;

	if (model_pin_all(e, &devs, &n) < 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (!lend_remote(e, devs[i]))
			tried += take_back_one(e, devs[i], host, fence, failed, &nt);
	model_put_all(e, devs, n);
	notes_flush(e, &nt, NULL);
	return tried;
}

/* ---- leases (SPEC section 9) ----------------------------------------------- */

int lease_parse(const char *buf, size_t len, uint32_t *seconds, char *reason)
{
	uint64_t v = 0;

	len = value_len(buf, len);
	if (len > LEASE_TEXT_MAX)
		return reason_set(reason, -EINVAL,
				  "lease too long (%zu bytes, max %d): expected seconds, 0 to %d",
				  len, LEASE_TEXT_MAX, LEASE_MAX_S);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = buf[i];

		if (c < '0' || c > '9')
			return reason_set(reason, -EINVAL,
					  "malformed lease: byte 0x%02x at offset %zu (expected seconds, 0 to %d)",
					  c, i, LEASE_MAX_S);
		v = v * 10 + (c - '0');
	}
	if (v > LEASE_MAX_S)
		return reason_set(reason, -EINVAL,
				  "lease of %" PRIu64 " s is out of range (0 to %d)", v,
				  LEASE_MAX_S);
	*seconds = (uint32_t)v;
	return 0;
}

void lease_time_text(int64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;

	if (!ns || !gmtime_r(&t, &tm) ||
	    !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "%s", "");
}

void lease_kick(struct engine *e, int64_t deadline)
{
	pthread_mutex_lock(&e->lease_lock);
	if (!e->lease_next || deadline < e->lease_next) {
		e->lease_next = deadline;
		e->lease_kicked = true;
		pthread_cond_signal(&e->lease_cond);
	}
	pthread_mutex_unlock(&e->lease_lock);
}

/*
 * A lease request: validate (the device is lent) -> store (its record
 * with the new deadline, the `lease-set` event in the same transaction)
 * -> publish (the device's lease, the timer told).  The store step's undo
 * writes the old deadline back.
 */
static int step_lease_validate(struct lend_req *q)
{
	struct ldevice *d = q->d;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	if (d->state != DEV_LENT)
		r = reason_set(q->reason, -EINVAL,
			       "%s is not lent (%s): only a lend can have a lease",
			       d->id, dev_state_name(d->state));
	q->old_lease = d->lease;
	if (q->lease_at)
		q->lease = q->lease_at;
	else
		q->lease = q->lease_s ?
			now_wall_ns() + (int64_t)q->lease_s * 1000000000LL : 0;
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int step_lease_store(struct lend_req *q)
{
	struct engine *e = q->e;
	struct ldevice *d = q->d;
	struct event_rec evs[EVLOG_ATTACH_MAX];
	char secs[16], at[LEASE_TIME_MAX];
	int r;

	snprintf(secs, sizeof(secs), "%" PRIu32, q->lease_s);
	lease_time_text(q->lease, at, sizeof(at));
	notes_event(q->notes, EV_LEASE_SET, d->id, "borrower", d->borrower,
		    "seconds", q->lease ? secs : "none", "expires",
		    q->lease ? at : NULL, NULL);
	evlog_attach(q->notes, q->txn, evs);
	r = store_put(e, d, d->borrower, REC_LENT, d->epoch, q->lease, d->windows,
		      d->nwindows, q->txn, "store_lease", q->reason);
	evlog_attached(q->notes, q->txn);
	if (r < 0)
		notes_event_drop(q->notes); /* not set after all */
	return r;
}

static void undo_lease_store(struct lend_req *q)
{
	struct ldevice *d = q->d;

	store_put(q->e, d, d->borrower, REC_LENT, d->epoch, q->old_lease,
		  d->windows, d->nwindows, NULL, "store_restore", NULL);
}

static int step_lease_publish(struct lend_req *q)
{
	struct ldevice *d = q->d;

	pthread_mutex_lock(&d->lock);
	d->lease = q->lease;
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	notes_add(q->notes, d->id);
	if (q->lease)
		lease_kick(q->e, q->lease);
	return 0;
}

static const struct lend_step lease_steps[] = {
	{ "lease.validate", step_lease_validate, NULL },
	{ "lease.store", step_lease_store, undo_lease_store },
	{ "lease.publish", step_lease_publish, NULL },
};

/*
 * Another lender's device: its daemon decides.  The request node carries
 * "lease N" (docs/STATE.md): no borrower value has a space in it.
 */
static int lease_forward(struct lend_req *q)
{
	struct engine *e = q->e;
	struct ldevice *d = q->d;
	char value[32];
	enum dev_state st;

	pthread_mutex_lock(&d->lock);
	st = d->state;
	pthread_mutex_unlock(&d->lock);
	if (st == DEV_OFFLINE)
		return reason_set(q->reason, -EHOSTDOWN, "lender %s is offline",
				  d->lender->name);
	snprintf(value, sizeof(value), "%s%" PRIu32, LEASE_REQUEST_PREFIX,
		 q->lease_s);
	q->forwarded = true;
	return e->coord->forward(e->coord_ctx, d->id, d->lender->name, value,
				 q->txn->compo, q->who, q->reason);
}

int lend_lease_request(struct engine *e, const char *devid, uint32_t seconds,
		       int64_t at, const char *compo,
		       const struct engine_caller *who, char *reason)
{
	char buf[REASON_MAX];
	struct notes nt = { 0 };
	struct lend_txn own = { .compo = compo };
	struct lend_req q = {
		.e = e, .value = "", .txn = &own, .reason = reason ? reason : buf,
		.notes = &nt, .who = who, .lease_s = seconds, .lease_at = at,
	};
	int r;

	q.reason[0] = '\0';
	notes_caller(&nt, e, who);
	q.d = model_get(e, devid);
	if (!q.d)
		return reason_set(q.reason, -ENODEV, "no device %s", devid);
	dev_request_begin(e, q.d);
	if (__atomic_load_n(&q.d->unlinked, __ATOMIC_ACQUIRE))
		r = reason_set(q.reason, -ENODEV, "no device %s", devid);
	else if (e->coord->writable &&
		 (r = e->coord->writable(e->coord_ctx, q.reason)) < 0)
		; /* nothing was done: no session to do it with */
	else if (lend_remote(e, q.d))
		r = lease_forward(&q);
	else
		r = steps_run(lease_steps, ARRAY_SIZE(lease_steps), &q);
	if (r < 0) {
		pthread_mutex_lock(&q.d->lock);
		dev_set_last_error(q.d, r, q.reason);
		dev_touch(q.d);
		pthread_mutex_unlock(&q.d->lock);
		notes_add(&nt, devid);
		if (!q.forwarded)
			notes_event(&nt, EV_FAILED, devid, "request", "lease", "errno",
				    errno_name(r), "reason", q.reason, NULL);
	}
	dev_request_end(e, q.d);
	model_put(e, q.d);
	notes_flush(e, &nt, who);
	return r;
}

int lend_forwarded(struct engine *e, const char *devid, const char *value,
		   const struct engine_caller *who, struct lend_txn *txn,
		   char *reason)
{
	size_t n = strlen(LEASE_REQUEST_PREFIX);
	uint32_t seconds;
	int r;

	if (strncmp(value, LEASE_REQUEST_PREFIX, n))
		return lend_request(e, devid, value, who, txn, reason);
	/* its answer is written by the caller: the record's put carries none */
	r = lease_parse(value + n, strlen(value + n), &seconds, reason);
	return r < 0 ? r : lend_lease_request(e, devid, seconds, 0, NULL, who,
					      reason);
}

/*
 * The lease of @d ran out (@cause: "lease" for the timer, "recovery" at
 * start): returned exactly as an empty borrower write returns it, with an
 * `expired` event before its `returning` and last_error saying when.
 * @compo: the lent composition @d is a member of, whose lease (@at, the
 * earliest of its members') passed: @d goes with it whatever its own
 * deadline; NULL: @d alone, if its own deadline passed.
 * 0: nothing due; 1: returned; -errno: the return failed (retried later).
 */
int lend_lease_expire(struct engine *e, struct ldevice *d, const char *cause,
		      const char *compo, int64_t at)
{
	char reason[REASON_MAX] = "", when[LEASE_TIME_MAX];
	struct notes nt = { 0 };
	struct lend_req q = { .e = e, .d = d, .value = "", .reason = reason,
			      .notes = &nt, .cause = cause };
	int64_t deadline;
	uint64_t t0;
	bool due;
	int r;

	dev_request_begin(e, d);
	pthread_mutex_lock(&d->lock);
	deadline = compo ? at : d->lease;
	due = d->state == DEV_LENT && deadline && deadline <= now_wall_ns() &&
	      !lend_remote(e, d) && !d->unlinked;
	pthread_mutex_unlock(&d->lock);
	if (!due) {
		dev_request_end(e, d);
		return 0;
	}
	if (e->coord->writable && (r = e->coord->writable(e->coord_ctx, reason)) < 0) {
		dev_request_end(e, d);
		return r; /* no session: the lease is enforced once there is one */
	}
	lease_time_text(deadline, when, sizeof(when));
	notes_event(&nt, EV_EXPIRED, d->id, "borrower", d->borrower, "deadline", when,
		    "cause", cause, "composition", compo, NULL);
	t0 = now_ns();
	r = do_return(&q);
	metrics_request(&e->metrics, 0, r, now_ns() - t0);
	pthread_mutex_lock(&d->lock);
	if (r < 0 && r != -ETIMEDOUT) /* a guest's late ack finishes that */
		dev_set_last_error(d, r, reason);
	else
		dev_set_error(d, "ETIME: lease expired at %s", when);
	dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	dev_request_end(e, d);
	notes_add(&nt, d->id);
	notes_flush(e, &nt, NULL);
	if (r < 0 && r != -ETIMEDOUT) {
		engine_report(e, "lease of %s expired at %s, but its return failed: %s",
			      d->id, when, reason);
		return r;
	}
	__atomic_add_fetch(&e->metrics.lease_expiries, 1, __ATOMIC_RELAXED);
	engine_report(e, "lease of %s expired at %s: returned", d->id, when);
	return 1;
}
