// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lend.c - the engine and its lend state machine, the only code that
 * changes a device's lend state.
 *
 * A lend:   check + mark `lending` (device lock)  -> plan (fabric lock:
 *           route, LUT/DMA/IOMMU reservations)   -> store intent `lending`
 *           with the windows -> program each window -> store `lent`
 *           -> mark `lent`.
 * A return: mark `returning` -> store intent `returning` -> clear each
 *           window -> release reservations -> store remove -> `available`.
 *
 * Any failure undoes, in reverse, exactly what was done, and puts the
 * device back where it was; the only trace is last_error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>

#include "cluster.h"
#include "engine_internal.h"
#include "fault.h"

static const char *const state_names[] = {
	[DEV_AVAILABLE] = "available", [DEV_LENDING] = "lending",
	[DEV_LENT] = "lent",	       [DEV_RETURNING] = "returning",
	[DEV_FAILED] = "failed",       [DEV_OFFLINE] = "offline",
};

const char *dev_state_name(enum dev_state s)
{
	if ((unsigned)s >= ARRAY_SIZE(state_names))
		return "?";
	return state_names[s];
}

struct lhost *engine_host(struct engine *e, const char *name)
{
	return hashmap_get(e->hostmap, name);
}

struct ldevice *engine_dev(struct engine *e, const char *id)
{
	return hashmap_get(e->devmap, id);
}

void engine_report(struct engine *e, const char *fmt, ...)
{
	char msg[REASON_MAX * 2];
	va_list ap;

	if (!e->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e->log(e->log_arg, msg);
}

/*
 * Change notifications are queued on the calling thread and delivered by
 * notify_flush() once the public entry point has dropped every engine
 * lock, as engine.h promises: a watcher may call back into the engine.
 */
static __thread struct {
	char (*ids)[DEVICE_ID_MAX];
	unsigned n, cap;
	bool all;
} pending;

static void notify(struct engine *e, const char *devid)
{
	if (!e->watch)
		return;
	if (!devid) {
		pending.all = true;
		return;
	}
	for (unsigned i = 0; i < pending.n; i++)
		if (!strcmp(pending.ids[i], devid))
			return;
	if (pending.n == pending.cap) {
		unsigned cap = pending.cap ? pending.cap * 2 : 8;
		char (*n)[DEVICE_ID_MAX] = realloc(pending.ids, cap * sizeof(*n));

		if (!n) {
			pending.all = true; /* cannot say which: say all */
			return;
		}
		pending.ids = n;
		pending.cap = cap;
	}
	snprintf(pending.ids[pending.n++], DEVICE_ID_MAX, "%s", devid);
}

/* Deliver queued notifications; no engine lock may be held. */
static void notify_flush(struct engine *e, const struct engine_caller *who)
{
	char (*ids)[DEVICE_ID_MAX] = pending.ids;
	unsigned n = pending.n;
	bool all = pending.all;

	pending.ids = NULL;
	pending.n = pending.cap = 0;
	pending.all = false;
	if (e->watch) {
		for (unsigned i = 0; i < n; i++)
			e->watch(e->watch_arg, ids[i], who);
		if (all)
			e->watch(e->watch_arg, NULL, who);
	}
	free(ids);
}

void lend_notify(struct engine *e, const char *devid)
{
	notify(e, devid);
}

void lend_notify_flush(struct engine *e, const struct engine_caller *who)
{
	notify_flush(e, who);
}

/*
 * Device lock held: the borrower and last_error buffers, allocated by the
 * first lend or error (struct ldevice_text).
 */
static int dev_text(struct ldevice *d)
{
	if (d->text)
		return 0;
	d->text = calloc(1, sizeof(*d->text));
	if (!d->text)
		return -ENOMEM;
	d->borrower = d->text->borrower;
	d->last_error = d->text->last_error;
	return 0;
}

static void dev_clear_borrower(struct ldevice *d)
{
	if (d->text)
		d->text->borrower[0] = '\0';
}

/*
 * Device lock held.  Without memory for the text the error is not kept:
 * the request that failed returned its reason already.
 */
_printf_(2, 3) static void dev_set_error(struct ldevice *d, const char *fmt, ...)
{
	va_list ap;

	if (dev_text(d) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(d->text->last_error, sizeof(d->text->last_error), fmt, ap);
	va_end(ap);
}

/* Record a failed request on the device (device lock held). */
static void set_last_error(struct ldevice *d, int err, const char *reason)
{
	dev_set_error(d, "%s: %s", errno_name(err),
		      reason && *reason ? reason : strerror(-err));
}

static void touch(struct ldevice *d)
{
	d->generation++;
}

/*
 * Is the lender of @d online?  h->online belongs to fabric_lock, which
 * nests inside d->lock (engine_internal.h): a host going offline at the
 * same moment is then seen either before or after, never half.
 */
static bool lender_online(struct engine *e, const struct ldevice *d)
{
	bool online;

	pthread_mutex_lock(&e->fabric_lock);
	online = d->lender->online;
	pthread_mutex_unlock(&e->fabric_lock);
	return online;
}

/* ---- borrower values ---------------------------------------------------- */

static int borrower_resolve(struct engine *e, const struct ldevice *d,
			    const char *value, struct borrower *b, char *reason)
{
	struct lhost *h;

	memset(b, 0, sizeof(*b));
	if (strlen(value) > BORROWER_MAX)
		return reason_set(reason, -EINVAL, "borrower name too long (max %d bytes)",
				  BORROWER_MAX);
	snprintf(b->value, sizeof(b->value), "%s", value);
	if (strncmp(value, "vm:", 3) == 0) {
		const char *slash = strchr(value + 3, '/');
		char host[HOST_NAME_MAX_LEN + 1];
		size_t hl = slash ? (size_t)(slash - value - 3) : 0;

		if (!slash || hl == 0 || hl > HOST_NAME_MAX_LEN)
			return reason_set(reason, -EINVAL,
					  "malformed vm borrower '%s' (expected vm:HOST/VM)",
					  value);
		memcpy(host, value + 3, hl);
		host[hl] = '\0';
		if (!name_valid(host) || !name_valid(slash + 1))
			return reason_set(reason, -EINVAL,
					  "malformed vm borrower '%s' (expected vm:HOST/VM)",
					  value);
		h = engine_host(e, host);
		if (!h)
			return reason_set(reason, -EINVAL, "unknown host '%s'", host);
		for (unsigned i = 0; i < e->cfg->nvms; i++) {
			const struct cfg_vm *vm = &e->cfg->vms[i];

			if (!strcmp(vm->host, host) && !strcmp(vm->name, slash + 1)) {
				b->host = h;
				b->ram = vm->ram;
				b->nram = vm->nram;
				return 0;
			}
		}
		return vmreg_resolve(e, d, h, slash + 1, b, reason); /* registry */
	}
	if (!name_valid(value))
		return reason_set(reason, -EINVAL,
				  "malformed host name '%s' (1-63 of A-Z a-z 0-9 _ -)",
				  value);
	h = engine_host(e, value);
	if (!h)
		return reason_set(reason, -EINVAL, "unknown host '%s'", value);
	if (h == d->lender)
		return reason_set(reason, -EINVAL,
				  "cannot lend %s to its own lender %s", d->id, value);
	b->host = h;
	b->ram = h->cfg->ram;
	b->nram = h->cfg->nram;
	return 0;
}

/* ---- fabric programming -------------------------------------------------- */

bool lend_remote(const struct engine *e, const struct ldevice *d)
{
	return e->cluster && d->lender != e->self;
}

bool lend_window_here(const struct engine *e, const struct window *w)
{
	return !e->cluster || !strcmp(w->host, e->self->name);
}

/*
 * Program @n windows; in distributed mode only those on this daemon's
 * host (the others' daemons program theirs: cluster_wait_peers()).
 */
static int program_windows(struct engine *e, const struct window *w,
			   unsigned n, uint64_t deadline, char *reason)
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
static int clear_windows(struct engine *e, const struct window *w, unsigned n,
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
 * Must a request to or from @borrower store its intent (lending,
 * returning) before it touches the fabric?  The intent is there to undo,
 * after a crash, what the request did outside the daemon: registers of
 * hardware that keeps them over a restart, a VM guest (QEMU keeps a
 * hot-added device), and in distributed mode the other daemons, for
 * which the intent is the protocol itself (cluster.h).  With a fabric
 * that resets at open, a host borrower and one daemon, a crash leaves
 * nothing behind that the restart does not reset: a lend then writes
 * only its outcome (lent), after programming, and a return removes the
 * record before clearing; one durable write per request either way.
 */
static bool intent_needed(const struct engine *e, const char *borrower)
{
	return e->cluster || !e->fabric->resets_at_open ||
	       !strncmp(borrower, "vm:", 3);
}

static int store_put(struct engine *e, const struct ldevice *d,
		     const char *borrower, enum rec_state st, uint64_t epoch,
		     const struct window *w, unsigned n, const char *point,
		     char *reason)
{
	struct lend_record rec = {
		.state = st,
		.since = now_wall(),
		.epoch = epoch,
		.windows = (struct window *)w,
		.nwindows = n,
	};
	int r = fault_check(point, reason);

	if (r < 0)
		return r;
	snprintf(rec.device, sizeof(rec.device), "%s", d->id);
	snprintf(rec.borrower, sizeof(rec.borrower), "%s", borrower);
	return e->store->put(e->store_ctx, &rec, reason);
}

static int store_remove(struct engine *e, const struct ldevice *d,
			const char *point, char *reason)
{
	int r = fault_check(point, reason);

	if (r < 0)
		return r;
	return e->store->remove(e->store_ctx, d->id, reason);
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

/* ---- compositions (P2P) ------------------------------------------------- */

static bool p2p_involves(const struct p2p_link *l, const struct ldevice *d)
{
	return l->a == d || l->b == d;
}

/*
 * @d just became lent: link it with every other device lent to the same
 * borrower.  A link that cannot get its windows is kept with the reason
 * (the lend itself stands; traffic then goes through the borrower).
 */
/* Peers whose views changed, to notify once no lock is held. */
struct touched {
	const char **ids;
	unsigned n;
};

static void touched_add(struct touched *t, struct ldevice *d)
{
	const char **n = realloc(t->ids, (t->n + 1) * sizeof(*n));

	if (n) {
		t->ids = n;
		t->ids[t->n++] = d->id;
	}
}

static void touched_notify(struct engine *e, struct touched *t)
{
	for (unsigned i = 0; i < t->n; i++)
		notify(e, t->ids[i]);
	free(t->ids);
}

static void compose(struct engine *e, struct ldevice *d)
{
	char borrower[BORROWER_MAX + 1];
	struct touched t = { 0 };

	if (e->cluster)
		return; /* P2P across daemons: not yet (docs/STATE.md) */
	pthread_mutex_lock(&d->lock);
	snprintf(borrower, sizeof(borrower), "%s", d->borrower);
	pthread_mutex_unlock(&d->lock);

	pthread_mutex_lock(&e->comp_lock);
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *o = e->devs[i];
		struct p2p_link *l;
		bool peer;
		int r;

		if (o == d)
			continue;
		pthread_mutex_lock(&o->lock);
		peer = o->state == DEV_LENT && !strcmp(o->borrower, borrower);
		pthread_mutex_unlock(&o->lock);
		for (l = e->p2p; peer && l; l = l->next)
			if (p2p_involves(l, d) && p2p_involves(l, o))
				peer = false;
		if (!peer)
			continue;
		l = calloc(1, sizeof(*l));
		if (!l)
			break;
		l->a = d;
		l->b = o;
		pthread_mutex_lock(&e->fabric_lock);
		l->owner = ++e->next_owner;
		r = plan_p2p(e, l, l->error);
		pthread_mutex_unlock(&e->fabric_lock);
		if (r == 0) {
			r = program_windows(e, l->w, l->nw, UINT64_MAX, l->error);
			if (r < 0) {
				pthread_mutex_lock(&e->fabric_lock);
				plan_release(e, l->w, l->nw);
				pthread_mutex_unlock(&e->fabric_lock);
				free(l->w);
				l->w = NULL;
				l->nw = 0;
			}
		}
		if (r < 0) {
			char why[REASON_MAX];

			snprintf(why, sizeof(why), "%s: %.200s", errno_name(r), l->error);
			snprintf(l->error, sizeof(l->error), "%s", why);
			engine_report(e, "no peer-to-peer path between %s and %s: %s", d->id, o->id,
			       why);
		}
		l->next = e->p2p;
		e->p2p = l;
		pthread_mutex_lock(&o->lock);
		touch(o);
		pthread_mutex_unlock(&o->lock);
		touched_add(&t, o);
	}
	pthread_mutex_unlock(&e->comp_lock);
	touched_notify(e, &t);
}

/* @d leaves its composition: every link with it goes, windows freed. */
static void decompose(struct engine *e, struct ldevice *d)
{
	struct touched t = { 0 };

	pthread_mutex_lock(&e->comp_lock);
	for (struct p2p_link **pp = &e->p2p; *pp;) {
		struct p2p_link *l = *pp;
		struct ldevice *other = l->a == d ? l->b : l->a;

		if (!p2p_involves(l, d)) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		clear_windows(e, l->w, l->nw, NULL);
		pthread_mutex_lock(&e->fabric_lock);
		plan_release(e, l->w, l->nw);
		pthread_mutex_unlock(&e->fabric_lock);
		free(l->w);
		free(l);
		pthread_mutex_lock(&other->lock);
		touch(other);
		pthread_mutex_unlock(&other->lock);
		touched_add(&t, other);
	}
	pthread_mutex_unlock(&e->comp_lock);
	touched_notify(e, &t);
}

/* ---- lend ---------------------------------------------------------------- */

static int do_lend(struct engine *e, struct ldevice *d, const char *value,
		   char *reason)
{
	struct borrower b;
	struct route route;
	struct window *w = NULL;
	unsigned nw = 0;
	uint64_t owner, epoch;
	uint64_t deadline = now_ns() + (uint64_t)e->cfg->timeout_ms * 1000000ULL;
	enum dev_state prev;
	bool committed = false;
	int r;

	r = borrower_resolve(e, d, value, &b, reason);
	if (r < 0)
		return r;

	pthread_mutex_lock(&d->lock);
	switch (d->state) {
	case DEV_LENT:
		if (!strcmp(d->borrower, value)) {
			pthread_mutex_unlock(&d->lock);
			return 1; /* idempotent: a no-op, not counted */
		}
		r = reason_set(reason, -EBUSY, "lent to %s; return it first",
			       d->borrower);
		break;
	case DEV_LENDING:
	case DEV_RETURNING:
		r = reason_set(reason, -EBUSY, "a request is in flight (%s %s)",
			       dev_state_name(d->state), d->borrower);
		break;
	case DEV_OFFLINE:
		r = reason_set(reason, -EHOSTDOWN, "lender %s is offline",
			       d->lender->name);
		break;
	default:
		r = 0;
	}
	if (r == 0 && d->denied)
		r = reason_set(reason, -EPERM,
			       "policy refuses to lend %s: listed in [policy] deny",
			       d->id);
	if (r == 0 && d->deny_reason)
		r = reason_set(reason, -EPERM, "policy refuses to lend %s: it %s",
			       d->id, d->deny_reason);
	if (r == 0 && d->gone)
		r = reason_set(reason, -ENODEV, "device %s was removed", d->id);
	if (r == 0 && !inflight_get(e))
		r = reason_set(reason, -EBUSY, "too many requests in flight (max %u)",
			       e->cfg->max_requests);
	if (r < 0) {
		pthread_mutex_unlock(&d->lock);
		return r;
	}
	if ((!d->route && !(d->route = calloc(1, sizeof(*d->route)))) ||
	    dev_text(d) < 0) {
		inflight_put(e);
		pthread_mutex_unlock(&d->lock);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	prev = d->state;
	d->state = DEV_LENDING;
	snprintf(d->text->borrower, sizeof(d->text->borrower), "%s", value);
	touch(d);
	pthread_mutex_unlock(&d->lock);
	notify(e, d->id);

	r = vmreg_prepare(e, d, &b, reason); /* a VM: its memory layout now */
	if (r < 0)
		goto fail;
	for (unsigned tries = 0;; tries++) {
		pthread_mutex_lock(&e->fabric_lock);
		owner = ++e->next_owner;
		if (e->cluster) /* epochs are the cluster's: ROOT/seq */
			e->next_epoch = MAX(e->next_epoch, cluster_epoch(e->cluster));
		epoch = ++e->next_epoch;
		r = plan_lend(e, d, &b, owner, &route, &w, &nw, reason);
		pthread_mutex_unlock(&e->fabric_lock);
		if (r < 0)
			goto fail;
		r = !intent_needed(e, value) ? 0 :
			store_put(e, d, value, REC_LENDING, epoch, w, nw,
				  "store_intent", reason);
		if (r != -EAGAIN)
			break;
		/* another daemon reserved meanwhile: look again, plan again */
		pthread_mutex_lock(&e->fabric_lock);
		plan_release(e, w, nw);
		pthread_mutex_unlock(&e->fabric_lock);
		free(w);
		w = NULL;
		nw = 0;
		if (tries >= 20 || now_ns() > deadline) {
			r = reason_set(reason, -ETIMEDOUT,
				       "engine timeout (%u ms): the cluster kept changing while planning",
				       e->cfg->timeout_ms);
			goto fail;
		}
		r = cluster_resync(e->cluster, reason);
		if (r < 0)
			goto fail;
	}
	if (r < 0)
		goto fail_release;
	r = program_windows(e, w, nw, deadline, reason);
	if (r == 0 && e->cluster)
		r = cluster_wait_peers(e->cluster, d->id, epoch, w, nw, true,
				       deadline, reason);
	if (r < 0) {
		clear_windows(e, w, nw, NULL);
		goto fail_abort;
	}
	committed = r == 1; /* by the borrower (cluster.h) */
	r = 0;
	r = vmreg_plug(e, d, &b, deadline, reason); /* a VM: hot-add to the guest */
	if (r == 0)
		r = fault_check("lend_commit", reason);
	if (r == 0 && now_ns() > deadline)
		r = reason_set(reason, -ETIMEDOUT, "engine timeout (%u ms)",
			       e->cfg->timeout_ms);
	if (r == 0 && !committed)
		r = store_put(e, d, value, REC_LENT, epoch, w, nw, "store_commit",
			      reason);
	if (e->cluster && !committed) /* the lend's marker: not needed now */
		cluster_intent_close(e->cluster, d->id, epoch);
	if (r < 0) {
		vmreg_unplug_rollback(e, d, &b);
		clear_windows(e, w, nw, NULL);
		goto fail_abort;
	}

	pthread_mutex_lock(&d->lock);
	d->state = DEV_LENT;
	d->owner = owner;
	d->epoch = epoch;
	d->since = now_wall();
	*d->route = route;
	d->has_route = true;
	free(d->windows);
	d->windows = w;
	d->nwindows = nw;
	touch(d);
	pthread_mutex_unlock(&d->lock);
	compose(e, d);
	inflight_put(e);
	notify(e, d->id);
	return 0;

fail_abort:
	/* the intent, or a failed commit, may be on disk: make sure it is not */
	store_remove(e, d, "store_abort", NULL);
fail_release:
	pthread_mutex_lock(&e->fabric_lock);
	plan_release(e, w, nw);
	pthread_mutex_unlock(&e->fabric_lock);
	free(w);
fail:
	pthread_mutex_lock(&d->lock);
	d->state = prev == DEV_FAILED ? DEV_FAILED : DEV_AVAILABLE;
	dev_clear_borrower(d);
	touch(d);
	pthread_mutex_unlock(&d->lock);
	inflight_put(e);
	notify(e, d->id);
	return r;
}

/* ---- return -------------------------------------------------------------- */

/*
 * Tear down a lend whose windows are @w (device in `returning` or being
 * failed).  Returns 0 or the error of the step that failed, with
 * everything re-programmed as it was.
 */
static int teardown(struct engine *e, struct ldevice *d, struct window *w,
		    unsigned nw, char *reason)
{
	bool intent = intent_needed(e, d->borrower);
	int r;

	/*
	 * Without an intent the record goes first: a crash after that finds
	 * the device available and the fabric reset, a return finished.
	 */
	r = intent ? store_put(e, d, d->borrower, REC_RETURNING, d->epoch, w, nw,
			       "store_intent", reason)
		   : store_remove(e, d, "store_commit", reason);
	if (r < 0)
		return r;
	r = clear_windows(e, w, nw, reason);
	if (r == 0 && e->cluster) {
		uint64_t deadline = now_ns() + (uint64_t)e->cfg->timeout_ms * 1000000ULL;

		r = cluster_wait_peers(e->cluster, d->id, d->epoch, w, nw, false,
				       deadline, reason);
		if (r < 0)
			program_windows(e, w, nw, UINT64_MAX, NULL);
	}
	if (r == 1) { /* the borrower removed the record */
		r = 0;
	} else if (r == 0 && intent) {
		r = store_remove(e, d, "store_commit", reason);
		if (r < 0)
			program_windows(e, w, nw, UINT64_MAX, NULL);
	}
	if (r < 0) {
		/*
		 * Back to lent: the windows are programmed again; if even this
		 * write fails the record stays `returning` (or absent) and
		 * the next start finishes the return.
		 */
		store_put(e, d, d->borrower, REC_LENT, d->epoch, w, nw,
			  "store_restore", NULL);
		return r;
	}
	pthread_mutex_lock(&e->fabric_lock);
	plan_release(e, w, nw);
	pthread_mutex_unlock(&e->fabric_lock);
	return 0;
}

int lend_return_finish(struct engine *e, struct ldevice *d, int r,
		       char *reason)
{
	decompose(e, d); /* done already by a return, not by a VM that went */
	if (r == 0)
		r = teardown(e, d, d->windows, d->nwindows, reason);
	if (r < 0)
		compose(e, d); /* still lent: back in its composition */

	pthread_mutex_lock(&d->lock);
	if (r < 0) {
		d->state = DEV_LENT;
	} else {
		d->state = lender_online(e, d) ? DEV_AVAILABLE : DEV_OFFLINE;
		dev_clear_borrower(d);
		free(d->windows);
		d->windows = NULL;
		d->nwindows = 0;
		d->has_route = false;
		d->owner = 0;
		d->since = now_wall();
	}
	touch(d);
	pthread_mutex_unlock(&d->lock);
	notify(e, d->id);
	return r;
}

static int do_return(struct engine *e, struct ldevice *d, char *reason)
{
	int r = 0;

	pthread_mutex_lock(&d->lock);
	switch (d->state) {
	case DEV_AVAILABLE:
	case DEV_OFFLINE:
		pthread_mutex_unlock(&d->lock);
		return 1; /* nothing lent: writing "" is a no-op */
	case DEV_FAILED:
		d->state = lender_online(e, d) ? DEV_AVAILABLE : DEV_OFFLINE;
		dev_clear_borrower(d);
		touch(d);
		pthread_mutex_unlock(&d->lock);
		notify(e, d->id);
		return 0;
	case DEV_LENDING:
	case DEV_RETURNING:
		if (d->state == DEV_RETURNING && d->vm_pending) {
			d->vm_pending = false; /* a VM guest did not ack: ask again */
			break;
		}
		r = reason_set(reason, -EBUSY, "a request is in flight (%s %s)",
			       dev_state_name(d->state), d->borrower);
		break;
	case DEV_LENT:
		break;
	}
	if (r == 0 && !inflight_get(e))
		r = reason_set(reason, -EBUSY, "too many requests in flight (max %u)",
			       e->cfg->max_requests);
	if (r < 0) {
		pthread_mutex_unlock(&d->lock);
		return r;
	}
	d->state = DEV_RETURNING;
	touch(d);
	pthread_mutex_unlock(&d->lock);
	notify(e, d->id);

	/* windows stay owned by the device while it is returning */
	decompose(e, d);
	r = vmreg_unplug(e, d, reason); /* a VM: hot-remove, the guest acks */
	if (r != -ETIMEDOUT) /* else it stays returning: vmreg.c finishes it */
		r = lend_return_finish(e, d, r, reason);
	inflight_put(e);
	notify(e, d->id);
	return r;
}

/* ---- distributed: requests for another daemon's devices ---------------- */

/*
 * The lender's daemon decides; this one checks what it can (the value,
 * the lender being up, a no-op) and hands the write over (cluster.c).
 */
static int forward(struct engine *e, struct ldevice *d, const char *value,
		   char *reason)
{
	char cur[BORROWER_MAX + 1];
	struct borrower b;
	enum dev_state st;
	int r;

	if (*value) {
		r = borrower_resolve(e, d, value, &b, reason);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&d->lock);
	st = d->state;
	snprintf(cur, sizeof(cur), "%s", d->borrower);
	pthread_mutex_unlock(&d->lock);
	if (st == DEV_OFFLINE)
		return reason_set(reason, -EHOSTDOWN, "lender %s is offline",
				  d->lender->name);
	if (!*value && st == DEV_AVAILABLE)
		return 1;
	if (*value && st == DEV_LENT && !strcmp(cur, value))
		return 1;
	return cluster_forward(e->cluster, d->id, d->lender->name, value,
			       reason);
}

/* ---- public requests ---------------------------------------------------- */

static void device_unlink(struct engine *e, struct ldevice *d);

static int request(struct engine *e, const char *devid, const char *value,
		   const struct engine_caller *who, char *reason)
{
	char buf[REASON_MAX];
	struct ldevice *d;
	uint64_t t0 = now_ns();
	bool lend = value && *value;
	bool noop, gone;
	int r;

	if (!reason)
		reason = buf;
	reason[0] = '\0';
	pthread_rwlock_rdlock(&e->model_lock);
	d = engine_dev(e, devid);
	if (!d) {
		pthread_rwlock_unlock(&e->model_lock);
		return reason_set(reason, -ENODEV, "no device %s", devid);
	}
	if (lend_remote(e, d))
		r = forward(e, d, lend ? value : "", reason);
	else
		r = lend ? do_lend(e, d, value, reason) : do_return(e, d, reason);
	noop = r == 1;
	if (noop)
		r = 0;
	pthread_mutex_lock(&d->lock);
	if (r < 0) {
		set_last_error(d, r, reason);
		touch(d);
	}
	gone = r == 0 && !lend && d->gone;
	pthread_mutex_unlock(&d->lock);
	pthread_rwlock_unlock(&e->model_lock);
	if (gone) {
		/*
		 * A removed device disappears once its failure is cleared.
		 * Only then the write lock: it waits out every request in
		 * flight (their syncs included) and holds off new ones.
		 */
		pthread_rwlock_wrlock(&e->model_lock);
		d = engine_dev(e, devid);
		if (d && d->gone && d->state == DEV_AVAILABLE) {
			device_unlink(e, d);
			pthread_rwlock_unlock(&e->model_lock);
			notify(e, NULL);
		} else {
			pthread_rwlock_unlock(&e->model_lock);
		}
	}
	if (!noop)
		metrics_request(&e->metrics, lend, r, now_ns() - t0);
	if (r < 0)
		notify(e, devid);
	notify_flush(e, who);
	return r;
}

/* A lend the configuration or udev asked for; the outcome is reported. */
static int autolend(struct engine *e, const char *devid, const char *borrower,
		    char *why)
{
	int r = request(e, devid, borrower, NULL, why);

	if (r < 0)
		engine_report(e, "autolend %s -> %s failed: %s", devid, borrower, why);
	else
		engine_report(e, "autolend %s -> %s done", devid, borrower);
	return r;
}

int engine_lend(struct engine *e, const char *devid, const char *borrower,
		char *reason)
{
	return request(e, devid, borrower ? borrower : "", NULL, reason);
}

int engine_return(struct engine *e, const char *devid, char *reason)
{
	return request(e, devid, "", NULL, reason);
}

/*
 * Turn one write into a value: strip one trailing newline; bound the
 * length; refuse bytes no name can contain (so that a NUL or a second
 * line is an error, not a silently different request).
 */
static int parse_value(const char *buf, size_t len, char *out, char *reason)
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

int engine_write_borrower(struct engine *e, const char *devid, const char *buf,
			  size_t len, const struct engine_caller *who,
			  char *reason)
{
	char value[BORROWER_MAX + 1];
	char rbuf[REASON_MAX];
	int r;

	if (!reason)
		reason = rbuf;
	r = parse_value(buf, len, value, reason);
	if (r < 0) {
		struct ldevice *d;

		pthread_rwlock_rdlock(&e->model_lock);
		d = engine_dev(e, devid);
		if (d) {
			pthread_mutex_lock(&d->lock);
			set_last_error(d, r, reason);
			touch(d);
			pthread_mutex_unlock(&d->lock);
		}
		pthread_rwlock_unlock(&e->model_lock);
		metrics_request(&e->metrics, 1, r, 0);
		notify(e, devid);
		notify_flush(e, who);
		return r;
	}
	return request(e, devid, value, who, reason);
}

/* ---- host state ---------------------------------------------------------- */

/*
 * A lend broke under the engine (route lost, device removed): tear down
 * its windows and record, and leave the device `failed` with @why as its
 * last_error.  The device is not in any composition any more.
 */
static void fail_lend(struct engine *e, struct ldevice *d, const char *why,
		      bool gone)
{
	clear_windows(e, d->windows, d->nwindows, NULL);
	store_remove(e, d, "store_fail", NULL);
	pthread_mutex_lock(&e->fabric_lock);
	plan_release(e, d->windows, d->nwindows);
	pthread_mutex_unlock(&e->fabric_lock);
	pthread_mutex_lock(&d->lock);
	free(d->windows);
	d->windows = NULL;
	d->nwindows = 0;
	d->has_route = false;
	d->gone = gone;
	d->state = DEV_FAILED;
	dev_set_error(d, "%s", why);
	touch(d);
	pthread_mutex_unlock(&d->lock);
	notify(e, d->id);
}

/*
 * A lend whose route no longer holds is rerouted when another route
 * exists, otherwise failed: its windows are torn down and the reason kept.
 */
static void lend_route_lost(struct engine *e, struct ldevice *d,
			    const char *why)
{
	struct borrower b;
	struct route route;
	struct window *w = NULL;
	unsigned nw = 0;
	char reason[REASON_MAX] = "";
	int r;

	pthread_mutex_lock(&d->lock);
	if (d->state != DEV_LENT) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	d->state = DEV_RETURNING;
	pthread_mutex_unlock(&d->lock);
	decompose(e, d);

	/* try a new route first: program it, then drop the old windows */
	r = borrower_resolve(e, d, d->borrower, &b, reason);
	if (r == 0) {
		uint64_t owner;

		pthread_mutex_lock(&e->fabric_lock);
		owner = ++e->next_owner;
		r = plan_lend(e, d, &b, owner, &route, &w, &nw, reason);
		pthread_mutex_unlock(&e->fabric_lock);
	}
	if (r == 0) {
		uint64_t deadline = now_ns() + (uint64_t)e->cfg->timeout_ms * 1000000ULL;

		r = program_windows(e, w, nw, deadline, reason);
		if (r == 0)
			r = store_put(e, d, d->borrower, REC_LENT, d->epoch, w, nw,
				      "store_commit", reason);
		if (r < 0) {
			clear_windows(e, w, nw, NULL);
			pthread_mutex_lock(&e->fabric_lock);
			plan_release(e, w, nw);
			pthread_mutex_unlock(&e->fabric_lock);
			free(w);
		}
	}
	if (r == 0) {
		struct window *old = d->windows;
		unsigned nold = d->nwindows;

		clear_windows(e, old, nold, NULL);
		pthread_mutex_lock(&e->fabric_lock);
		plan_release(e, old, nold);
		pthread_mutex_unlock(&e->fabric_lock);
		pthread_mutex_lock(&d->lock);
		d->windows = w;
		d->nwindows = nw;
		*d->route = route;
		d->state = DEV_LENT;
		touch(d);
		pthread_mutex_unlock(&d->lock);
		free(old);
		compose(e, d);
		engine_report(e, "lend of %s to %s rerouted: %s", d->id, d->borrower, why);
		return;
	}

	/* no way around: the lend fails */
	snprintf(reason, sizeof(reason), "EHOSTDOWN: route lost: %.200s", why);
	fail_lend(e, d, reason, false);
	engine_report(e, "lend of %s failed: route lost: %s", d->id, why);
}

static bool borrower_is_host(const char *borrower, const char *host);

/* What another lender's device shows: its record, or offline (d->lock). */
static enum dev_state remote_state(struct engine *e, const struct ldevice *d)
{
	if (!lender_online(e, d))
		return DEV_OFFLINE;
	switch (d->rec_state) {
	case REC_LENDING:
		return DEV_LENDING;
	case REC_LENT:
		return DEV_LENT;
	case REC_RETURNING:
		return DEV_RETURNING;
	default:
		return DEV_AVAILABLE;
	}
}

/*
 * @h is online when an admin has not set it offline and (distributed
 * mode) its daemon is up.  After either changed: the devices follow and,
 * with @act, lends of this daemon's devices whose route broke are
 * rerouted or failed.  In distributed mode a borrower that went away is
 * not a broken route: lend_take_back() returns its devices once its
 * session is over.  Model lock read-held.
 */
static void host_refresh(struct engine *e, struct lhost *h, bool act)
{
	char why[REASON_MAX];
	bool online;

	pthread_mutex_lock(&e->fabric_lock);
	online = h->admin && h->live;
	h->online = online;
	topo_node_set_up(e->topo, h->node, online);
	pthread_mutex_unlock(&e->fabric_lock);
	snprintf(why, sizeof(why), "host %s went offline", h->name);

	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *d = e->devs[i];
		bool broken = false;

		pthread_mutex_lock(&d->lock);
		if (lend_remote(e, d)) {
			if (d->lender == h) {
				d->state = remote_state(e, d);
				touch(d);
			}
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		if (d->lender == h) {
			if (!online && d->state == DEV_AVAILABLE)
				d->state = DEV_OFFLINE;
			else if (online && d->state == DEV_OFFLINE)
				d->state = DEV_AVAILABLE;
			touch(d);
		}
		if (d->state == DEV_LENT && d->has_route) {
			pthread_mutex_lock(&e->fabric_lock);
			broken = !topo_route_intact(e->topo, d->route);
			pthread_mutex_unlock(&e->fabric_lock);
		}
		if (broken && e->cluster && borrower_is_host(d->borrower, h->name))
			broken = false;
		pthread_mutex_unlock(&d->lock);
		if (broken && act)
			lend_route_lost(e, d, why);
	}
}

static int write_host_state(struct engine *e, const char *host,
			    const char *buf, size_t len, char *reason)
{
	char value[16];
	struct lhost *h;
	bool online;
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

	pthread_rwlock_rdlock(&e->model_lock);
	h = engine_host(e, host);
	if (!h) {
		pthread_rwlock_unlock(&e->model_lock);
		return reason_set(reason, -ENOENT, "no host %s", host);
	}
	r = e->store->host_put(e->store_ctx, host, online, reason);
	if (r < 0) {
		pthread_rwlock_unlock(&e->model_lock);
		return r;
	}
	pthread_mutex_lock(&e->fabric_lock);
	h->admin = online;
	pthread_mutex_unlock(&e->fabric_lock);
	host_refresh(e, h, true);
	pthread_rwlock_unlock(&e->model_lock);
	notify(e, NULL);
	return 0;
}

int engine_write_host_state(struct engine *e, const char *host,
			    const char *buf, size_t len,
			    const struct engine_caller *who, char *reason)
{
	int r = write_host_state(e, host, buf, len, reason);

	notify_flush(e, who);
	return r;
}

/* ---- views ---------------------------------------------------------------- */

static int view_peers(struct engine *e, struct ldevice *d,
		      struct device_view *v)
{
	unsigned n = 0;

	pthread_mutex_lock(&e->comp_lock);
	for (struct p2p_link *l = e->p2p; l; l = l->next)
		n += p2p_involves(l, d);
	if (n) {
		v->peers = calloc(n, sizeof(*v->peers));
		if (!v->peers) {
			pthread_mutex_unlock(&e->comp_lock);
			return -ENOMEM;
		}
	}
	for (struct p2p_link *l = e->p2p; l; l = l->next) {
		struct peer_view *p;
		bool fwd = l->a == d;

		if (!p2p_involves(l, d))
			continue;
		p = &v->peers[v->npeers++];
		snprintf(p->device, sizeof(p->device), "%s", (fwd ? l->b : l->a)->id);
		p->route = fwd ? l->ab : l->ba;
		p->via_root_complex = fwd ? l->rc_a : l->rc_b;
		p->latency_ns = p->route.latency_ns +
				(p->via_root_complex ? e->cfg->root_complex_ns : 0);
		snprintf(p->error, sizeof(p->error), "%s", l->error);
	}
	pthread_mutex_unlock(&e->comp_lock);
	return 0;
}

int engine_device_view(struct engine *e, const char *devid,
		       struct device_view *v)
{
	struct ldevice *d;
	int r = 0;

	memset(v, 0, sizeof(*v));
	pthread_rwlock_rdlock(&e->model_lock);
	d = engine_dev(e, devid);
	if (!d) {
		pthread_rwlock_unlock(&e->model_lock);
		return -ENOENT;
	}
	/* under the device lock: a udev `change` rewrites the ids and driver */
	pthread_mutex_lock(&d->lock);
	snprintf(v->id, sizeof(v->id), "%s", d->id);
	snprintf(v->lender, sizeof(v->lender), "%s", d->lender->name);
	v->addr = d->addr;
	v->vendor = d->vendor;
	v->device = d->device;
	v->subsystem_vendor = d->subsystem_vendor;
	v->subsystem_device = d->subsystem_device;
	v->class = d->class;
	snprintf(v->driver, sizeof(v->driver), "%s", d->driver ? d->driver : "");
	v->numa_node = d->numa_node;
	v->iommu_group = d->iommu_group;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		v->bar_size[i] = d->bar_size[i];
		v->bar_addr[i] = d->bar_size[i] ? d->bar_addr[i] : 0;
		/* IORESOURCE_MEM | IORESOURCE_MEM_64 | prefetch for big BARs */
		v->bar_flags[i] = d->bar_size[i] ?
			(d->bar_size[i] >= (1 << 20) ? 0x14220c : 0x140204) : 0;
	}
	v->state = d->state;
	snprintf(v->borrower, sizeof(v->borrower), "%s", d->borrower);
	snprintf(v->last_error, sizeof(v->last_error), "%s", d->last_error);
	v->since = d->since;
	v->generation = d->generation;
	v->has_route = d->has_route && (d->state == DEV_LENT ||
					d->state == DEV_RETURNING);
	if (d->route)
		v->route = *d->route;
	if (d->nwindows && v->has_route) {
		v->windows = malloc(d->nwindows * sizeof(*v->windows));
		if (v->windows) {
			memcpy(v->windows, d->windows,
			       d->nwindows * sizeof(*v->windows));
			v->nwindows = d->nwindows;
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (r == 0 && v->state == DEV_LENT)
		r = view_peers(e, d, v);
	pthread_rwlock_unlock(&e->model_lock);
	return r;
}

void device_view_release(struct device_view *v)
{
	free(v->windows);
	free(v->peers);
	v->windows = NULL;
	v->peers = NULL;
}

bool engine_device_exists(struct engine *e, const char *devid)
{
	bool r;

	pthread_rwlock_rdlock(&e->model_lock);
	r = engine_dev(e, devid) != NULL;
	pthread_rwlock_unlock(&e->model_lock);
	return r;
}

int engine_foreach_device(struct engine *e,
			  int (*cb)(void *arg, const char *devid), void *arg)
{
	int r = 0;

	pthread_rwlock_rdlock(&e->model_lock);
	for (unsigned i = 0; i < e->ndevs && r == 0; i++)
		r = cb(arg, e->devs[i]->id);
	pthread_rwlock_unlock(&e->model_lock);
	return r;
}

int engine_foreach_busy_device(struct engine *e,
			       int (*cb)(void *arg, const char *devid), void *arg)
{
	int r = 0;

	pthread_rwlock_rdlock(&e->model_lock);
	for (unsigned i = 0; i < e->ndevs && r == 0; i++) {
		struct ldevice *d = e->devs[i];
		bool busy;

		pthread_mutex_lock(&d->lock);
		busy = d->state != DEV_AVAILABLE || d->borrower[0];
		pthread_mutex_unlock(&d->lock);
		if (busy)
			r = cb(arg, d->id);
	}
	pthread_rwlock_unlock(&e->model_lock);
	return r;
}

size_t engine_device_count(struct engine *e)
{
	size_t n;

	pthread_rwlock_rdlock(&e->model_lock);
	n = e->ndevs;
	pthread_rwlock_unlock(&e->model_lock);
	return n;
}

int engine_host_view(struct engine *e, const char *host, struct host_view *v)
{
	struct lhost *h;
	uint64_t faults = 0, bad = 0;

	memset(v, 0, sizeof(*v));
	pthread_rwlock_rdlock(&e->model_lock);
	h = engine_host(e, host);
	if (!h) {
		pthread_rwlock_unlock(&e->model_lock);
		return -ENOENT;
	}
	snprintf(v->name, sizeof(v->name), "%s", h->name);
	snprintf(v->adapter, sizeof(v->adapter), "%s", h->cfg->adapter);
	pthread_mutex_lock(&e->fabric_lock);
	v->online = h->online;
	v->iommu = h->iommu;
	v->lut_entries = h->ntb.nentries;
	v->lut_used = h->ntb.used;
	v->dma_windows = h->ntb.ndma;
	v->dma_used = h->ntb.dma_used;
	for (unsigned i = 0; i < e->ndevs; i++)
		if (e->devs[i]->lender == h)
			v->iommu_mappings += e->devs[i]->iommu.n;
	pthread_mutex_unlock(&e->fabric_lock);
	if (e->fabric->host_stats)
		e->fabric->host_stats(e->fabric_ctx, h->name, &faults, &bad);
	v->iommu_faults = faults;
	pthread_rwlock_unlock(&e->model_lock);
	return 0;
}

int engine_foreach_host(struct engine *e,
			int (*cb)(void *arg, const char *host), void *arg)
{
	int r = 0;

	pthread_rwlock_rdlock(&e->model_lock);
	for (unsigned i = 0; i < e->nhosts && r == 0; i++)
		r = cb(arg, e->hosts[i].name);
	pthread_rwlock_unlock(&e->model_lock);
	return r;
}

static bool borrower_is_host(const char *borrower, const char *host)
{
	size_t hl = strlen(host);

	if (!strcmp(borrower, host))
		return true;
	/* a VM borrower counts as borrowed by the host it runs on */
	return !strncmp(borrower, "vm:", 3) && !strncmp(borrower + 3, host, hl) &&
	       borrower[3 + hl] == '/';
}

static bool lend_matches(const struct ldevice *d, const char *host,
			 bool by_lender)
{
	return d->state == DEV_LENT &&
	       (by_lender ? !strcmp(d->lender->name, host) :
			    borrower_is_host(d->borrower, host));
}

bool engine_device_lent_to_or_by(struct engine *e, const char *devid,
				 const char *host, bool by_lender)
{
	struct ldevice *d;
	bool r = false;

	pthread_rwlock_rdlock(&e->model_lock);
	d = engine_dev(e, devid);
	if (d) {
		pthread_mutex_lock(&d->lock);
		r = lend_matches(d, host, by_lender);
		pthread_mutex_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&e->model_lock);
	return r;
}

static int foreach_lend(struct engine *e, const char *host, bool by_lender,
			int (*cb)(void *arg, const char *devid), void *arg)
{
	int r = 0;

	pthread_rwlock_rdlock(&e->model_lock);
	for (unsigned i = 0; i < e->ndevs && r == 0; i++) {
		struct ldevice *d = e->devs[i];
		bool match;

		pthread_mutex_lock(&d->lock);
		match = lend_matches(d, host, by_lender);
		pthread_mutex_unlock(&d->lock);
		if (match)
			r = cb(arg, d->id);
	}
	pthread_rwlock_unlock(&e->model_lock);
	return r;
}

int engine_foreach_lent_by(struct engine *e, const char *host,
			   int (*cb)(void *arg, const char *devid), void *arg)
{
	return foreach_lend(e, host, true, cb, arg);
}

int engine_foreach_borrowed_by(struct engine *e, const char *host,
			       int (*cb)(void *arg, const char *devid),
			       void *arg)
{
	return foreach_lend(e, host, false, cb, arg);
}

void engine_set_watch(struct engine *e, engine_watch_cb cb, void *arg)
{
	e->watch = cb;
	e->watch_arg = arg;
}

const char *engine_run_dir(struct engine *e)
{
	return e->run_dir;
}

/* ---- construction and recovery ------------------------------------------ */

/* A copy of @src, or NULL for "" (-ENOMEM leaves *dst as it was). */
static int dev_set_string(char **dst, const char *src)
{
	char *n = NULL;

	if (src[0] && !(n = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

static int device_fill(struct ldevice *d, const struct cfg_device *c)
{
	if (dev_set_string(&d->driver, c->driver) < 0 ||
	    dev_set_string(&d->deny_reason, c->deny_reason) < 0)
		return -ENOMEM;
	d->addr = c->addr;
	d->vendor = c->vendor;
	d->device = c->device;
	d->subsystem_vendor = c->subsystem_vendor;
	d->subsystem_device = c->subsystem_device;
	d->class = c->class;
	d->numa_node = c->numa_node;
	d->iommu_group = c->iommu_group;
	return 0;
}

/* Everything of @d but its slot (config devices live in e->slab). */
static void device_free(struct engine *e, struct ldevice *d)
{
	pthread_mutex_destroy(&d->lock);
	iommu_domain_release(&d->iommu);
	free(d->windows);
	free(d->route);
	free(d->text);
	free(d->driver);
	free(d->deny_reason);
	if ((char *)d < (char *)e->slab ||
	    (char *)d >= (char *)e->slab + e->slab_bytes)
		free(d);
}

/*
 * Model write lock held (or the engine not yet shared).  @slot: where the
 * record goes (zeroed), or NULL to allocate one (hot-plug).
 */
static int add_device(struct engine *e, const struct cfg_device *c,
		      struct ldevice *slot, char *reason)
{
	struct ldevice *d;
	struct lhost *h = engine_host(e, c->host);
	int r;

	if (!h)
		return reason_set(reason, -EINVAL, "device %s: unknown lender host %s",
				  c->id, c->host);
	if (engine_dev(e, c->id))
		return reason_set(reason, -EEXIST, "duplicate device %s", c->id);
	if (e->ndevs == e->devs_cap) {
		unsigned cap = e->devs_cap ? e->devs_cap * 2 : 64;
		struct ldevice **n = realloc(e->devs, cap * sizeof(*n));

		if (!n)
			return reason_set(reason, -ENOMEM, "out of memory");
		e->devs = n;
		e->devs_cap = cap;
	}
	d = slot ? slot : calloc(1, sizeof(*d));
	if (!d)
		return reason_set(reason, -ENOMEM, "out of memory");
	snprintf(d->id, sizeof(d->id), "%s", c->id);
	d->lender = h;
	d->borrower = "";
	d->last_error = "";
	pthread_mutex_init(&d->lock, NULL);
	iommu_domain_init(&d->iommu, h->iommu);
	if (device_fill(d, c) < 0) {
		device_free(e, d);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		d->bar_size[i] = c->bar[i];
		if (!c->bar[i])
			continue;
		/* naturally aligned, and never below the adapter's alignment */
		h->next_bar = align_up(h->next_bar, MAX(c->bar[i], h->ntb.align));
		d->bar_addr[i] = h->next_bar;
		h->next_bar += c->bar[i];
	}
	for (unsigned i = 0; i < e->cfg->ndenies; i++)
		if (!strcmp(e->cfg->denies[i].device, d->id))
			d->denied = true;
	d->state = h->online ? DEV_AVAILABLE : DEV_OFFLINE;
	d->rec_state = -1;
	r = e->fabric->device_attach(e->fabric_ctx, d->id, h->name, d->bar_size,
				     d->bar_addr, reason);
	if (r == 0)
		r = hashmap_put(e->devmap, d->id, d);
	if (r < 0) {
		e->fabric->device_detach(e->fabric_ctx, d->id);
		device_free(e, d);
		return r;
	}
	e->devs[e->ndevs++] = d;
	return 0;
}

/* Model write lock held; the device holds no lend. */
static void device_unlink(struct engine *e, struct ldevice *d)
{
	unsigned i;

	for (i = 0; i < e->ndevs && e->devs[i] != d; i++)
		;
	if (i == e->ndevs)
		return;
	memmove(&e->devs[i], &e->devs[i + 1], (e->ndevs - i - 1) * sizeof(*e->devs));
	e->ndevs--;
	hashmap_remove(e->devmap, d->id);
	e->fabric->device_detach(e->fabric_ctx, d->id);
	device_free(e, d);
}

static int device_add(struct engine *e, const struct cfg_device *c,
		      char *reason)
{
	struct ldevice *d;
	int r;

	pthread_rwlock_wrlock(&e->model_lock);
	d = engine_dev(e, c->id);
	if (d && d->gone) {
		/* back after a removal while lent: the failure is over */
		pthread_mutex_lock(&d->lock);
		r = device_fill(d, c);
		if (r == 0) {
			d->gone = false;
			d->state = lender_online(e, d) ? DEV_AVAILABLE : DEV_OFFLINE;
			dev_clear_borrower(d);
			touch(d);
		}
		pthread_mutex_unlock(&d->lock);
		if (r < 0)
			reason_set(reason, r, "out of memory");
	} else {
		r = add_device(e, c, NULL, reason);
	}
	pthread_rwlock_unlock(&e->model_lock);
	if (r < 0)
		return r;
	notify(e, NULL);
	if (c->borrower[0]) {
		char why[REASON_MAX];

		pthread_rwlock_rdlock(&e->model_lock);
		d = engine_dev(e, c->id);
		r = d && d->state == DEV_LENT;
		pthread_rwlock_unlock(&e->model_lock);
		if (r)
			return 0; /* already lent (restored from the store) */
		if (autolend(e, c->id, c->borrower, why) < 0) {
			reason_set(reason, 0, "%s", why);
			return 1;
		}
	}
	return 0;
}

int engine_device_add(struct engine *e, const struct cfg_device *c,
		      char *reason)
{
	int r = device_add(e, c, reason);

	notify_flush(e, NULL);
	return r;
}

static int device_update(struct engine *e, const struct cfg_device *c,
			 char *reason)
{
	struct ldevice *d;

	pthread_rwlock_rdlock(&e->model_lock);
	d = engine_dev(e, c->id);
	if (!d) {
		pthread_rwlock_unlock(&e->model_lock);
		return reason_set(reason, -ENODEV, "no device %s", c->id);
	}
	pthread_mutex_lock(&d->lock);
	if (device_fill(d, c) < 0) {
		pthread_mutex_unlock(&d->lock);
		pthread_rwlock_unlock(&e->model_lock);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	touch(d);
	pthread_mutex_unlock(&d->lock);
	pthread_rwlock_unlock(&e->model_lock);
	notify(e, c->id);
	return 0;
}

int engine_device_update(struct engine *e, const struct cfg_device *c,
			 char *reason)
{
	int r = device_update(e, c, reason);

	notify_flush(e, NULL);
	return r;
}

static int device_remove(struct engine *e, const char *devid, char *reason)
{
	char borrower[BORROWER_MAX + 1];
	struct ldevice *d;
	bool lent = false;

	pthread_rwlock_wrlock(&e->model_lock);
	d = engine_dev(e, devid);
	if (!d) {
		pthread_rwlock_unlock(&e->model_lock);
		return reason_set(reason, -ENODEV, "no device %s", devid);
	}
	/* the write lock waits out every request in flight */
	pthread_mutex_lock(&d->lock);
	lent = d->state == DEV_LENT;
	pthread_mutex_unlock(&d->lock);
	if (!lent) {
		device_unlink(e, d);
		pthread_rwlock_unlock(&e->model_lock);
		notify(e, NULL);
		return 0;
	}
	decompose(e, d);
	fail_lend(e, d, "ENODEV: device removed", true);
	/* once unlocked, a return may free @d: keep what the report needs */
	pthread_mutex_lock(&d->lock);
	snprintf(borrower, sizeof(borrower), "%s", d->borrower);
	pthread_mutex_unlock(&d->lock);
	pthread_rwlock_unlock(&e->model_lock);
	engine_report(e, "%s removed while lent to %s: lend torn down", devid, borrower);
	notify(e, NULL);
	return 0;
}

int engine_device_remove(struct engine *e, const char *devid, char *reason)
{
	int r = device_remove(e, devid, reason);

	notify_flush(e, NULL);
	return r;
}

struct recover_ctx {
	struct engine *e;
	char *reason;
};

/*
 * Bring one stored record back.  Rules (docs/STATE.md):
 *   lent       re-claim and re-program its windows; if the device or a
 *              host is gone from the config, or the windows no longer fit,
 *              the record is dropped and the device (if any) is `failed`
 *              with the reason;
 *   lending    never acknowledged: rolled back (record removed);
 *   returning  the admin asked for it: finished (record removed).
 */
static int recover_one(void *arg, const struct lend_record *rec)
{
	struct recover_ctx *rc = arg;
	struct engine *e = rc->e;
	struct ldevice *d = engine_dev(e, rec->device);
	char reason[REASON_MAX] = "";
	struct borrower b;
	struct route route;
	uint64_t owner;
	int r;

	r = vmreg_recover(e, d, rec, reason); /* a VM borrower: ask its guest */
	if (r > 0)
		return e->store->remove(e->store_ctx, rec->device, rc->reason);
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
		return e->store->remove(e->store_ctx, rec->device, rc->reason);
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
		r = program_windows(e, rec->windows, rec->nwindows, UINT64_MAX,
				    reason);
		if (r < 0) {
			pthread_mutex_lock(&e->fabric_lock);
			plan_release(e, rec->windows, rec->nwindows);
			pthread_mutex_unlock(&e->fabric_lock);
		}
	}
	/* the device lock: in distributed mode the mount is up already */
	pthread_mutex_lock(&d->lock);
	if (r < 0) {
		dev_set_error(d, "%s: cannot restore lend to %.64s: %.160s",
			      errno_name(r), rec->borrower, reason);
		d->state = DEV_FAILED;
		touch(d);
		pthread_mutex_unlock(&d->lock);
		engine_report(e, "%s: cannot restore lend to %.64s: %.160s",
		       errno_name(r), rec->borrower, reason);
		return e->store->remove(e->store_ctx, rec->device, rc->reason);
	}
	if ((!d->route && !(d->route = calloc(1, sizeof(*d->route)))) ||
	    dev_text(d) < 0) {
		pthread_mutex_unlock(&d->lock);
		return reason_set(rc->reason, -ENOMEM, "out of memory");
	}
	free(d->windows);
	d->windows = malloc(rec->nwindows * sizeof(*d->windows));
	if (!d->windows) {
		pthread_mutex_unlock(&d->lock);
		return reason_set(rc->reason, -ENOMEM, "out of memory");
	}
	memcpy(d->windows, rec->windows, rec->nwindows * sizeof(*d->windows));
	d->nwindows = rec->nwindows;
	d->state = DEV_LENT;
	d->owner = owner;
	d->epoch = rec->epoch;
	d->since = rec->since;
	*d->route = route;
	d->has_route = route.nhops > 0;
	snprintf(d->text->borrower, sizeof(d->text->borrower), "%s",
		 rec->borrower);
	touch(d);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int recover_host(void *arg, const char *host, int online)
{
	struct recover_ctx *rc = arg;
	struct lhost *h = engine_host(rc->e, host);

	if (h && !online) {
		h->admin = false;
		h->online = false;
		topo_node_set_up(rc->e->topo, h->node, false);
	}
	return 0;
}

/*
 * The config's devices, in one anonymous mapping rather than a malloc
 * each: its pages are zero until touched, and on a kernel with
 * transparent huge pages on madvise a 2 MiB page costs one fault where
 * 512 small ones cost 512 (a first touch is about 25 us on a VM).
 */
static int slab_new(struct engine *e, size_t n)
{
	size_t bytes = n * sizeof(*e->slab);
	void *p;

	if (bytes / sizeof(*e->slab) != n)
		return -ENOMEM;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	if (bytes >= (2u << 20))
		madvise(p, bytes, MADV_HUGEPAGE); /* a hint: failure is fine */
	e->slab = p;
	e->slab_bytes = bytes;
	return 0;
}

int engine_new(const struct engine_options *opt, struct engine **out,
	       char *reason)
{
	const struct cluster_config *cfg = opt->cfg;
	bool dist = opt->store && !strcmp(opt->store->name, "zk");
	struct engine *e;
	struct recover_ctx rc;
	int r;

	*out = NULL;
	r = fault_init(reason);
	if (r < 0)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e)
		return reason_set(reason, -ENOMEM, "out of memory");
	e->cfg = cfg;
	e->fabric = opt->fabric;
	e->store = opt->store;
	e->log = opt->log;
	e->log_arg = opt->log_arg;
	snprintf(e->run_dir, sizeof(e->run_dir), "%s", opt->run_dir ? opt->run_dir : "");
	pthread_rwlock_init(&e->model_lock, NULL);
	pthread_mutex_init(&e->fabric_lock, NULL);
	pthread_mutex_init(&e->comp_lock, NULL);
	vmreg_init(e);

	e->hostmap = hashmap_new(cfg->nhosts);
	e->devmap = hashmap_new(cfg->ndevices);
	e->hosts = calloc(cfg->nhosts, sizeof(*e->hosts));
	e->devs_cap = cfg->ndevices ? cfg->ndevices : 64;
	e->devs = calloc(e->devs_cap, sizeof(*e->devs));
	if (cfg->ndevices && slab_new(e, cfg->ndevices) < 0)
		e->slab = NULL;
	if (!e->hostmap || !e->devmap || !e->hosts || !e->devs ||
	    (cfg->ndevices && !e->slab)) {
		engine_free(e);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	r = topo_new(cfg, cfg->ntb_crossing_ns, &e->topo, reason);
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < cfg->nhosts; i++) {
		struct lhost *h = &e->hosts[i];

		snprintf(h->name, sizeof(h->name), "%s", cfg->hosts[i].name);
		h->cfg = &cfg->hosts[i];
		h->admin = true;
		h->live = !dist; /* distributed: once its daemon is seen */
		h->online = h->live;
		h->node = (unsigned)topo_node_find(e->topo, h->name);
		h->next_bar = BAR_BASE;
		r = ntb_table_init(&h->ntb, h->cfg);
		if (r < 0) {
			reason_set(reason, r, "host %s: invalid NTB adapter settings",
				   h->name);
			goto fail;
		}
		h->iommu = h->cfg->iommu;
		e->nhosts++;
		hashmap_put(e->hostmap, h->name, h);
	}

	if (dist) {
		e->self = opt->local_host ? engine_host(e, opt->local_host) : NULL;
		if (!e->self) {
			r = reason_set(reason, -EINVAL,
				       "the zk store needs --host NAME, a host of the config (got '%s')",
				       opt->local_host ? opt->local_host : "");
			goto fail;
		}
	}
	r = e->fabric->open(cfg, e->run_dir, &e->fabric_ctx, reason);
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < cfg->nhosts; i++) {
		r = e->fabric->ram_attach(e->fabric_ctx, cfg->hosts[i].name,
					  cfg->hosts[i].ram, cfg->hosts[i].nram,
					  reason);
		if (r < 0)
			goto fail;
	}
	for (unsigned i = 0; i < cfg->nvms; i++) {
		char owner[BORROWER_MAX + 1];

		snprintf(owner, sizeof(owner), "vm:%s/%s", cfg->vms[i].host,
			 cfg->vms[i].name);
		r = e->fabric->ram_attach(e->fabric_ctx, owner, cfg->vms[i].ram,
					  cfg->vms[i].nram, reason);
		if (r < 0)
			goto fail;
	}

	r = e->store->open(opt->store_where, &e->store_ctx, reason);
	if (r < 0)
		goto fail;
	if (dist) {
		/*
		 * The cluster's state comes with the session (cluster.c):
		 * until then every host is offline, nothing is recovered.
		 */
		r = cluster_new(e, e->store_ctx, &e->cluster, reason);
		if (r == 0)
			r = vmreg_load(e, reason); /* config VMs only */
		for (unsigned i = 0; r == 0 && i < cfg->ndevices; i++)
			r = add_device(e, &cfg->devices[i], &e->slab[i], reason);
		if (r < 0)
			goto fail;
		vmreg_start(e);
		r = cluster_start(e->cluster, reason);
		if (r < 0)
			goto fail;
		*out = e;
		return 0;
	}
	rc = (struct recover_ctx){ e, reason };
	r = e->store->host_load(e->store_ctx, recover_host, &rc, reason);
	if (r == 0)
		r = vmreg_load(e, reason); /* VM borrowers: connect again */
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		r = add_device(e, &cfg->devices[i], &e->slab[i], reason);
		if (r < 0)
			goto fail;
	}
	r = e->store->load(e->store_ctx, recover_one, &rc, reason);
	if (r < 0)
		goto fail;
	/* P2P links are derived from the lends: rebuild them */
	for (unsigned i = 0; i < e->ndevs; i++)
		if (e->devs[i]->state == DEV_LENT)
			compose(e, e->devs[i]);
	vmreg_start(e); /* VM events from here on */

	/* autolend: devices not already lent from the store */
	for (unsigned i = 0; i < cfg->nautolends; i++) {
		struct ldevice *d = engine_dev(e, cfg->autolends[i].device);
		char why[REASON_MAX];

		if (d && d->state == DEV_AVAILABLE)
			autolend(e, d->id, cfg->autolends[i].borrower, why);
	}
	*out = e;
	return 0;
fail:
	engine_free(e);
	return r;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	cluster_free(e->cluster); /* first: its threads use the engine */
	e->cluster = NULL;
	vmreg_free(e); /* the VMs' callbacks use the engine */
	while (e->p2p) {
		struct p2p_link *l = e->p2p;

		e->p2p = l->next;
		free(l->w);
		free(l);
	}
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *d = e->devs[i];

		if (e->fabric_ctx)
			e->fabric->device_detach(e->fabric_ctx, d->id);
		device_free(e, d);
	}
	free(e->devs);
	if (e->slab)
		munmap(e->slab, e->slab_bytes);
	for (unsigned i = 0; i < e->nhosts; i++)
		ntb_table_release(&e->hosts[i].ntb);
	free(e->hosts);
	if (e->store_ctx)
		e->store->close(e->store_ctx);
	if (e->fabric_ctx)
		e->fabric->close(e->fabric_ctx);
	topo_free(e->topo);
	hashmap_free(e->hostmap);
	hashmap_free(e->devmap);
	pthread_rwlock_destroy(&e->model_lock);
	pthread_mutex_destroy(&e->fabric_lock);
	pthread_mutex_destroy(&e->comp_lock);
	free(e);
}

/* ---- distributed: the replica of other lenders' devices ---------------- */

/* The host whose fabric side maps a borrower ("H" or "vm:H/VM"). */
static struct lhost *borrower_host(struct engine *e, const char *borrower)
{
	char host[HOST_NAME_MAX_LEN + 1];
	const char *p = borrower, *end;

	if (!strncmp(p, "vm:", 3))
		p += 3;
	end = strchr(p, '/');
	snprintf(host, sizeof(host), "%.*s",
		 (int)(end ? (size_t)(end - p) : strlen(p)), p);
	return engine_host(e, host);
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
	bool routed = false, same;
	struct ldevice *d;

	memset(ack, 0, sizeof(*ack));
	pthread_rwlock_rdlock(&e->model_lock);
	d = engine_dev(e, devid);
	if (!d || !lend_remote(e, d)) {
		pthread_rwlock_unlock(&e->model_lock);
		return; /* not in our config, or ours: we are its writer */
	}
	if (nnew) {
		nw = malloc(nnew * sizeof(*nw));
		if (!nw) {
			*dirty = true;
			pthread_rwlock_unlock(&e->model_lock);
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
	same = old_state == new_state && (!rec || old_epoch == rec->epoch) &&
	       (!rec || !strcmp(d->borrower, rec->borrower)) && d->nwindows == nnew;
	if (same) {
		pthread_mutex_unlock(&d->lock);
		pthread_rwlock_unlock(&e->model_lock);
		free(nw);
		if (rec && rec->state != REC_LENT &&
		    has_local(e, rec->windows, rec->nwindows))
			*ack = (struct lend_ack){
				true, rec_mapped(new_state),
				lend_sole_peer(d->lender->name, rec->windows,
					       rec->nwindows, e->self->name),
				rec->epoch };
		return;
	}
	if (!d->route)
		d->route = calloc(1, sizeof(*d->route));
	old = d->windows;
	nold = d->nwindows;
	d->windows = nw;
	d->nwindows = nnew;
	d->rec_state = new_state;
	d->owner = owner;
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
	d->has_route = routed && d->route;
	if (d->has_route)
		*d->route = route;
	d->state = remote_state(e, d);
	touch(d);
	pthread_mutex_unlock(&d->lock);

	/* the books: its reservations are the record's */
	pthread_mutex_lock(&e->fabric_lock);
	plan_release(e, old, nold);
	if (nnew && plan_claim(e, owner, nw, nnew, NULL) < 0)
		*dirty = true; /* one of ours in flight overlaps: resync */
	pthread_mutex_unlock(&e->fabric_lock);

	/* this host's registers: mapped while lending or lent */
	if (rec_mapped(old_state) && (!rec_mapped(new_state) || old_epoch != d->epoch))
		clear_windows(e, old, nold, NULL);
	if (rec_mapped(new_state) && (!rec_mapped(old_state) || old_epoch != rec->epoch))
		program_windows(e, nw, nnew, UINT64_MAX, NULL);
	/* the lender waits for these two; `lent` needs no answer */
	if (rec && rec->state != REC_LENT && has_local(e, nw, nnew))
		*ack = (struct lend_ack){
			true, rec_mapped(new_state),
			lend_sole_peer(d->lender->name, nw, nnew, e->self->name),
			rec->epoch };
	free(old);
	pthread_rwlock_unlock(&e->model_lock);
	notify(e, devid); /* delivered by the caller's lend_notify_flush() */
}

void lend_host_state(struct engine *e, const char *host, bool live,
		     bool admin, bool act)
{
	struct lhost *h;
	bool changed;

	pthread_rwlock_rdlock(&e->model_lock);
	h = engine_host(e, host);
	if (!h) {
		pthread_rwlock_unlock(&e->model_lock);
		return;
	}
	pthread_mutex_lock(&e->fabric_lock);
	changed = h->live != live || h->admin != admin;
	if (h->live && !live)
		h->absent_since = now_ns();
	h->live = live;
	h->admin = admin;
	pthread_mutex_unlock(&e->fabric_lock);
	if (changed)
		host_refresh(e, h, act);
	pthread_rwlock_unlock(&e->model_lock);
	if (changed)
		notify(e, NULL);
	notify_flush(e, NULL);
}

int lend_take_back(struct engine *e, const char *host, uint64_t fence,
		   unsigned *failed)
{
	char reason[REASON_MAX];
	int n = 0;

	pthread_rwlock_rdlock(&e->model_lock);
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *d = e->devs[i];
		bool mine;
		int r;

		if (lend_remote(e, d))
			continue;
		pthread_mutex_lock(&d->lock);
		mine = d->state == DEV_LENT && borrower_is_host(d->borrower, host);
		pthread_mutex_unlock(&d->lock);
		if (!mine)
			continue;
		reason[0] = '\0';
		n++;
		r = do_return(e, d, reason);
		pthread_mutex_lock(&d->lock);
		if (r < 0) {
			set_last_error(d, r, reason);
			(*failed)++;
		} else {
			dev_set_error(d, "EHOSTDOWN: taken back from %s, whose session expired (fence epoch %" PRIu64 ")",
				      host, fence);
		}
		touch(d);
		pthread_mutex_unlock(&d->lock);
		notify(e, d->id);
		if (r < 0)
			engine_report(e, "take-back of %s from %s failed: %s", d->id, host,
			       reason);
		else
			engine_report(e, "%s taken back from %s (session expired, fence epoch %" PRIu64 ")",
			       d->id, host, fence);
	}
	pthread_rwlock_unlock(&e->model_lock);
	notify_flush(e, NULL);
	return n;
}

struct own_ctx {
	struct recover_ctx rc;
	const char *self;
};

static bool device_of(const char *devid, const char *host)
{
	size_t n = strlen(host);

	return !strncmp(devid, host, n) && devid[n] == ':';
}

static int recover_own_one(void *arg, const struct lend_record *rec)
{
	struct own_ctx *o = arg;

	if (!device_of(rec->device, o->self))
		return 0; /* another lender's: the replica has it */
	return recover_one(&o->rc, rec);
}

int lend_recover_own(struct engine *e, char *reason)
{
	struct own_ctx o = { { e, reason }, e->self->name };
	int r;

	pthread_rwlock_rdlock(&e->model_lock);
	r = e->store->load(e->store_ctx, recover_own_one, &o, reason);
	pthread_rwlock_unlock(&e->model_lock);
	notify(e, NULL);
	notify_flush(e, NULL);
	return r;
}

void lend_autolend_own(struct engine *e)
{
	for (unsigned i = 0; i < e->cfg->nautolends; i++) {
		const char *id = e->cfg->autolends[i].device;
		struct ldevice *d;
		bool free_;
		char why[REASON_MAX];

		pthread_rwlock_rdlock(&e->model_lock);
		d = engine_dev(e, id);
		free_ = d && !lend_remote(e, d);
		if (free_) {
			pthread_mutex_lock(&d->lock);
			free_ = d->state == DEV_AVAILABLE;
			pthread_mutex_unlock(&d->lock);
		}
		pthread_rwlock_unlock(&e->model_lock);
		if (free_)
			autolend(e, id, e->cfg->autolends[i].borrower, why);
	}
}
