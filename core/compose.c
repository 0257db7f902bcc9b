// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * compose.c - compositions (SPEC section 10): compositions/NAME/, a list
 * of devices lent to one borrower together, or not at all.
 *
 * A composition adds no lend machinery of its own: its lend is one
 * request of lend.c per device (lend_request(), the steps and undo of a
 * device's `borrower` write, P2P windows composed as separate lends
 * compose them), in list order.  If one fails, every device this write
 * lent is returned again (the same pipeline, value ""), and the write
 * fails with that device's errno; last_error is "ERRNO: DEVICE: reason".
 * A return is one return request per device.  The members' requests are
 * lazy (lend_txn.lazy: their records are written without waiting for a
 * sync), and so is the intent: the composition's last commit, durable,
 * covers them all, so a composition's write costs one fdatasync
 * (docs/STATE.md).
 *
 * Stored (store.h comp_*): the name, the devices, and the borrower
 * column, which doubles as the composition's intent:
 *
 *   ""        not lent
 *   "!VALUE"  a lend to VALUE began (written before the first device)
 *   "VALUE"   lent to VALUE (written after the last device: the write's
 *             acknowledgement)
 *   "~VALUE"  a return from VALUE began (written before the first device)
 *
 * compose_load() (after the lends' recovery) rolls an unfinished lend
 * back (returns the members lent to VALUE, then stores ""), and finishes
 * a return that a crash cut short ("~VALUE", or a committed VALUE some
 * of whose members are no longer lent to it): all lent or none.
 *
 * While a composition is not available, its members refuse their own
 * borrower writes: engine_write_borrower(), the front-ends' entry for a
 * device's borrower file, is here, above lend.c (compose_guard()); and
 * their own lease writes (engine_write_lease()).
 *
 * Leases (compositions/NAME/lease): a composition's lease is its
 * members', one deadline written to each by lend.c's lease request
 * (compo_lease(), all or none); it is the earliest of them.  The lease
 * timer (lease.c) hands every deadline that passed to
 * compose_lease_expire(): a member of a lent composition takes the
 * whole composition with it (compo_expire(): each member returned
 * through lend_lease_expire(), then the composition available, ETIME),
 * never alone.  Plans (compositions/NAME/plans/HOST) are dryrun.c's.
 *
 * Distributed mode (docs/STATE.md): the list is ZooKeeper's
 * (ROOT/compositions/NAME), mirrored by every daemon: compose_sync(),
 * run by the session thread on each watch (it never waits for
 * compo_op_lock: a write holding it may wait for the session thread; a
 * busy lock makes it try again at its next tick), and by each write of
 * mkdir, rmdir and devices before it validates (write_sync()).  The
 * borrower column's marks name their daemon ("!VALUE@HOST") and are
 * compare-and-sets (store.h comp_swap): one of two mounts lending at once
 * wins.  A member of another daemon is lent, returned or leased as a
 * step of the composition (lend_txn.compo, forwarded with the request):
 * its lender lets a step through, and refuses every other request for a
 * member of a composition that is not available, on a fresh read of the
 * composition (compose_forwarded(), compose_guard()).  A mark whose
 * daemon stopped is settled by compose_settle() (cluster.c runs it on a
 * worker when compose_sync() finds one), as compose_load() settles at
 * start in one-daemon mode.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "engine_internal.h"
#include "fault.h"

/* The stored borrower column: "!VALUE@HOST" at most (column_mark()). */
#define COLUMN_MAX (BORROWER_MAX + HOST_NAME_MAX_LEN + 3)
#define MARK_LEND '!'	/* a lend begun */
#define MARK_RETURN '~' /* a return begun */

struct lcompo {
	char name[COMP_NAME_MAX_LEN + 1];
	char (*devs)[DEVICE_ID_MAX]; /* COMP_DEVICES_MAX of them */
	unsigned ndevs;
	/* under compo_lock: */
	char borrower[BORROWER_MAX + 1]; /* "" none */
	char column[COLUMN_MAX];	 /* as stored (read or written) last */
	char coord[HOST_NAME_MAX_LEN + 1]; /* the marker's daemon, "" none */
	enum compo_state state;
	char error[REASON_MAX + DEVICE_ID_MAX + 32];
	uint64_t generation;
	struct lcompo *next;
};

static const char *const state_names[] = {
	[COMPO_AVAILABLE] = "available",
	[COMPO_LENDING] = "lending",
	[COMPO_LENT] = "lent",
	[COMPO_RETURNING] = "returning",
};

const char *compo_state_name(enum compo_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

/* ---- the list (compo_lock held) ----------------------------------------- */

static struct lcompo *find(struct engine *e, const char *name)
{
	for (struct lcompo *c = e->compos; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* The composition other than @self that lists @devid, or NULL. */
static struct lcompo *member_of(struct engine *e, const char *devid,
				const struct lcompo *self)
{
	for (struct lcompo *c = e->compos; c; c = c->next)
		for (unsigned i = 0; c != self && i < c->ndevs; i++)
			if (!strcmp(c->devs[i], devid))
				return c;
	return NULL;
}

static struct lcompo *compo_new(const char *name)
{
	struct lcompo *c = calloc(1, sizeof(*c));

	if (c)
		c->devs = calloc(COMP_DEVICES_MAX, sizeof(*c->devs));
	if (c && !c->devs) {
		free(c);
		return NULL;
	}
	if (c)
		snprintf(c->name, sizeof(c->name), "%s", name);
	return c;
}

static void compo_free(struct lcompo *c)
{
	if (c)
		free(c->devs);
	free(c);
}

static void list_append(struct engine *e, struct lcompo *c)
{
	struct lcompo **pp = &e->compos;

	while (*pp)
		pp = &(*pp)->next;
	*pp = c;
	e->ncompos++;
}

/* The device list as stored: IDs joined by newlines. */
static void join(const struct lcompo *c, char *buf, size_t len, char sep)
{
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < c->ndevs && at < len; i++)
		at += snprintf(buf + at, len - at, "%s%s", i ? (char[]){ sep, 0 } : "",
			       c->devs[i]);
}

static void set_state(struct engine *e, struct lcompo *c, enum compo_state s,
		      const char *borrower)
{
	pthread_mutex_lock(&e->compo_lock);
	c->state = s;
	if (borrower)
		snprintf(c->borrower, sizeof(c->borrower), "%s", borrower);
	c->generation++;
	pthread_mutex_unlock(&e->compo_lock);
}

static int set_error(struct engine *e, struct lcompo *c, int err,
		     const char *dev, const char *why)
{
	pthread_mutex_lock(&e->compo_lock);
	if (!err)
		c->error[0] = '\0';
	else if (dev)
		snprintf(c->error, sizeof(c->error), "%s: %s: %s", errno_name(err), dev,
			 why);
	else
		snprintf(c->error, sizeof(c->error), "%s: %s", errno_name(err), why);
	c->generation++;
	pthread_mutex_unlock(&e->compo_lock);
	return err;
}

static int store_put(struct engine *e, const struct lcompo *c,
		     const char *borrower, char *reason)
{
	_cleanup_free_ char *devs = malloc(COMP_DEVICES_TEXT_MAX);

	if (!devs)
		return reason_set(reason, -ENOMEM, "out of memory");
	join(c, devs, COMP_DEVICES_TEXT_MAX, '\n');
	return e->store->comp_put(e->store_ctx, c->name, devs, borrower, reason);
}

static int supported(struct engine *e, char *reason)
{
	if (!e->store->comp_put)
		return reason_set(reason, -ENOTSUP, "this store keeps no compositions");
	return 0;
}

/*
 * The borrower column (docs/STATE.md): "" not lent, "VALUE" lent,
 * "!VALUE" a lend begun, "~VALUE" a return begun; in distributed mode a
 * mark names the daemon writing it ("@HOST"), which settles it if it
 * stops before the end, or any daemon once HOST is not live.
 */
static void column_mark(const struct engine *e, char mark, const char *value,
			char *buf, size_t len)
{
	snprintf(buf, len, "%c%s%s%s", mark, value, e->self ? "@" : "",
		 e->self ? e->self->name : "");
}

/* @col's state; its VALUE into @value, its HOST into @coord ("" none). */
static enum compo_state column_parse(const char *col, char *value, char *coord)
{
	bool mark = col[0] == MARK_LEND || col[0] == MARK_RETURN;
	const char *v = mark ? col + 1 : col, *at = mark ? strchr(v, '@') : NULL;

	snprintf(value, BORROWER_MAX + 1, "%.*s",
		 at ? (int)(at - v) : (int)strlen(v), v);
	snprintf(coord, HOST_NAME_MAX_LEN + 1, "%s", at ? at + 1 : "");
	if (!col[0])
		return COMPO_AVAILABLE;
	return col[0] == MARK_LEND ? COMPO_LENDING :
	       col[0] == MARK_RETURN ? COMPO_RETURNING : COMPO_LENT;
}

/* Take stored column @col into @c (compo_lock held, or nothing runs yet). */
static void column_take(struct lcompo *c, const char *col)
{
	snprintf(c->column, sizeof(c->column), "%s", col);
	c->state = column_parse(col, c->borrower, c->coord);
}

/*
 * Store @c's borrower column as @to.  Where several daemons write
 * (comp_swap), only if it still holds what this one read or wrote last:
 * of two mounts lending one composition at once, one gets -EBUSY.
 */
static int column_put(struct engine *e, struct lcompo *c, const char *to,
		      char *reason)
{
	int r = e->store->comp_swap ?
		e->store->comp_swap(e->store_ctx, c->name, c->column, to, reason) :
		store_put(e, c, to, reason);

	if (r == 0) {
		pthread_mutex_lock(&e->compo_lock);
		snprintf(c->column, sizeof(c->column), "%s", to);
		pthread_mutex_unlock(&e->compo_lock);
	}
	return r;
}

static void changed(struct engine *e, const struct engine_caller *who)
{
	notes_flush(e, &(struct notes){ .compos = true }, who);
}

/* ---- construction and loading -------------------------------------------- */

void compose_init(struct engine *e)
{
	pthread_rwlock_init(&e->compo_op_lock, NULL);
	pthread_mutex_init(&e->compo_lock, NULL);
}

void compose_free(struct engine *e)
{
	while (e->compos) {
		struct lcompo *c = e->compos;

		e->compos = c->next;
		compo_free(c);
	}
	e->ncompos = 0;
	pthread_mutex_destroy(&e->compo_lock);
	pthread_rwlock_destroy(&e->compo_op_lock);
}

/* Split a stored (validated) list into @c. */
static void split(struct lcompo *c, const char *devices)
{
	for (const char *p = devices; *p && c->ndevs < COMP_DEVICES_MAX;) {
		size_t len = strcspn(p, "\n");

		snprintf(c->devs[c->ndevs++], DEVICE_ID_MAX, "%.*s", (int)len, p);
		p += len;
		if (*p)
			p++;
	}
}

/* How many members are lent to @borrower. */
static unsigned lent_to(struct engine *e, const struct lcompo *c,
			const char *borrower)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->ndevs; i++)
		n += engine_device_lent_to_or_by(e, c->devs[i], borrower, false);
	return n;
}

/*
 * @devid's request (lend.c) as a step of @c's lend, return or lease
 * expiry: lazy (the composition's durable commit syncs it) and, for
 * another daemon's member, forwarded as such (lend_txn.compo).
 */
static int member_request(struct engine *e, const struct lcompo *c,
			  const char *devid, const char *value,
			  const struct engine_caller *who, char *reason)
{
	return lend_request(e, devid, value, who,
			    &(struct lend_txn){ .lazy = true, .compo = c->name },
			    reason);
}

/* Return every member lent to @borrower; the first error, or 0. */
static int return_members(struct engine *e, struct lcompo *c,
			  const char *borrower, const struct engine_caller *who,
			  char *dev, char *reason)
{
	char why[REASON_MAX];
	int first = 0;

	for (unsigned i = c->ndevs; i-- > 0;) {
		int r;

		if (borrower && !engine_device_lent_to_or_by(e, c->devs[i], borrower,
							     false))
			continue;
		fault_pass("compose.return");
		r = member_request(e, c, c->devs[i], "", who, why);
		if (r < 0 && !first) {
			first = r;
			snprintf(dev, DEVICE_ID_MAX, "%s", c->devs[i]);
			snprintf(reason, REASON_MAX, "%s", why);
		}
	}
	return first;
}

static void event(struct engine *e, const struct lcompo *c, enum event_kind k,
		  const char *borrower, const char *cause,
		  const struct engine_caller *who);

/* What settle() finishes, for the log. */
static const char *settling(enum compo_state st)
{
	return st == COMPO_LENDING ? "unfinished lend" :
	       st == COMPO_LENT ? "return (members taken back)" :
	       "unfinished return";
}

/*
 * The end of settle(): @c's column is "" now.  A lend that lost members
 * (broken_lend()) says so in the log, as a return would.
 */
static void settled(struct engine *e, struct lcompo *c, enum compo_state st,
		    const char *value, const char *coord)
{
	set_state(e, c, COMPO_AVAILABLE, "");
	if (st == COMPO_LENT) {
		event(e, c, EV_COMPOSITION_RETURNED, value, "take-back", NULL);
		engine_report(e, "composition %s: members of its lend to %s were taken back: the rest returned",
			      c->name, value);
		return;
	}
	engine_report(e, "composition %s: the %s to %s %s%s%s", c->name,
		      settling(st), value,
		      st == COMPO_LENDING ? "rolled back" : "finished",
		      coord[0] ? " for " : " at recovery", coord);
}

/*
 * A stored composition whose lend or return was cut short (its daemon
 * stopped): a lend is rolled back, a return finished, so that all of it
 * is lent or none.  A committed VALUE all of whose members are lent to
 * it is lent; one that lost members (broken_lend()) is returned.  If the
 * column changed meanwhile (another daemon settled it first: -EBUSY of
 * comp_swap), the next sync mirrors what it wrote.
 */
static void settle(struct engine *e, struct lcompo *c)
{
	char dev[DEVICE_ID_MAX] = "", why[REASON_MAX] = "";
	char value[BORROWER_MAX + 1], coord[HOST_NAME_MAX_LEN + 1];
	enum compo_state st = column_parse(c->column, value, coord);
	int r;

	if (st == COMPO_LENT && lent_to(e, c, value) == c->ndevs) {
		set_state(e, c, COMPO_LENT, value);
		return;
	}
	r = return_members(e, c, value, NULL, dev, why);
	if (r == 0 && (r = column_put(e, c, "", why)) == -EBUSY)
		return;
	if (r < 0) { /* keep the intent: the next start tries again */
		set_error(e, c, r, dev[0] ? dev : NULL, why);
		set_state(e, c, COMPO_RETURNING, value);
		engine_report(e, "composition %s: cannot finish its %s: %s", c->name,
			      settling(st), c->error);
		return;
	}
	settled(e, c, st, value, coord);
}

static int load_one(void *arg, const char *name, const char *devices,
		    const char *borrower)
{
	struct engine *e = arg;
	struct lcompo *c = compo_new(name);

	if (!c)
		return -ENOMEM;
	split(c, devices);
	column_take(c, borrower);
	list_append(e, c); /* nothing else runs yet */
	if (borrower[0])
		settle(e, c);
	return 0;
}

int compose_load(struct engine *e, char *reason)
{
	if (supported(e, NULL) < 0 || e->self) /* distributed: compose_sync() */
		return 0;
	return e->store->comp_load(e->store_ctx, load_one, e, reason);
}

/* ---- the mirror (distributed mode) ------------------------------------------ */

/* The stored compositions, a list of their own (comp_load's callback). */
static int fresh_one(void *arg, const char *name, const char *devices,
		     const char *borrower)
{
	struct lcompo **head = arg, *c = compo_new(name);

	if (!c)
		return -ENOMEM;
	split(c, devices);
	column_take(c, borrower);
	c->next = *head;
	*head = c;
	return 0;
}

/* Take @f's stored fields into @c if they differ; true if they did. */
static bool take(struct lcompo *c, const struct lcompo *f)
{
	if (c->ndevs == f->ndevs && !strcmp(c->column, f->column) &&
	    !memcmp(c->devs, f->devs, f->ndevs * sizeof(*f->devs)))
		return false;
	memcpy(c->devs, f->devs, f->ndevs * sizeof(*f->devs));
	c->ndevs = f->ndevs;
	column_take(c, f->column);
	c->generation++;
	return true;
}

/*
 * Make the list what @fresh (consumed) holds: the ones gone removed, the
 * others' fields taken, the new ones appended.  compo_op_lock write-held
 * (no write holds a composition), compo_lock taken here.
 */
static bool mirror(struct engine *e, struct lcompo *fresh)
{
	bool moved = false;

	pthread_mutex_lock(&e->compo_lock);
	for (struct lcompo **pp = &e->compos; *pp;) {
		struct lcompo *c = *pp, **fp = &fresh;

		while (*fp && strcmp((*fp)->name, c->name))
			fp = &(*fp)->next;
		if (!*fp) { /* removed on another mount */
			*pp = c->next;
			e->ncompos--;
			compo_free(c);
			moved = true;
			continue;
		}
		moved |= take(c, *fp);
		c = *fp;
		*fp = c->next;
		compo_free(c);
		pp = &(*pp)->next;
	}
	while (fresh) {
		struct lcompo *c = fresh;

		fresh = c->next;
		c->next = NULL;
		c->generation = 1;
		list_append(e, c);
		moved = true;
	}
	pthread_mutex_unlock(&e->compo_lock);
	return moved;
}

/* Read the stored compositions into the list; compo_op_lock write-held. */
static int sync_locked(struct engine *e, bool *moved, char *reason)
{
	struct lcompo *fresh = NULL;
	int r = e->store->comp_load(e->store_ctx, fresh_one, &fresh, reason);

	if (r < 0) {
		while (fresh) {
			struct lcompo *c = fresh;

			fresh = c->next;
			compo_free(c);
		}
		return r;
	}
	*moved |= mirror(e, fresh);
	return 0;
}

/*
 * Is @c's lend or return one that no daemon will finish: marked by this
 * daemon (whose writes hold compo_op_lock: none runs now, so it is one of
 * an earlier life), or by a daemon that is not live?  compo_lock held.
 */
static bool orphaned(struct engine *e, const struct lcompo *c)
{
	if (c->state != COMPO_LENDING && c->state != COMPO_RETURNING)
		return false;
	if (!c->coord[0] || !strcmp(c->coord, e->self->name))
		return true;
	return !model_host_live(e, c->coord);
}

/*
 * Is @c stored as lent to VALUE while a member no longer is?  Only a
 * take-back does that (lend_take_back(): the borrower went away): the
 * composition's own return and lease expiry mark the column `~` before
 * they return a member.  The column was just read (write_sync(),
 * sync_locked()), the members' records mirrored before it: a member
 * seen returned was returned before the column was read.  compo_op_lock
 * held (the list holds still); compo_lock not (lent_to() takes the
 * devices' locks).
 */
static bool broken_lend(struct engine *e, struct lcompo *c)
{
	char value[BORROWER_MAX + 1], host[HOST_NAME_MAX_LEN + 1];
	unsigned n;
	bool lent;

	pthread_mutex_lock(&e->compo_lock);
	lent = c->state == COMPO_LENT;
	snprintf(value, sizeof(value), "%s", c->borrower);
	pthread_mutex_unlock(&e->compo_lock);
	if (!lent || (n = lent_to(e, c, value)) == c->ndevs)
		return false;
	/*
	 * A borrower ("HOST" or "HOST/VM") gone away: every lender takes its
	 * members back (a return through it would wait for it in vain),
	 * then the rest is 0.
	 */
	snprintf(host, sizeof(host), "%.*s", (int)strcspn(value, "/"), value);
	return n == 0 || model_host_live(e, host);
}

/* Does @c need settle()?  compo_op_lock held, compo_lock not. */
static bool unsettled(struct engine *e, struct lcompo *c)
{
	bool orphan;

	pthread_mutex_lock(&e->compo_lock);
	orphan = orphaned(e, c);
	pthread_mutex_unlock(&e->compo_lock);
	return orphan || broken_lend(e, c);
}

/* How many compositions are unsettled(); compo_op_lock held. */
static unsigned orphans(struct engine *e)
{
	unsigned n = 0;

	for (struct lcompo *c = e->compos; c; c = c->next)
		n += unsettled(e, c);
	return n;
}

int compose_sync(struct engine *e, char *reason)
{
	bool moved = false;
	int r;

	if (!e->self || !e->store->comp_load)
		return 0;
	fault_pass("compose.sync"); /* LENDFS_DELAY: a watch delivered late */
	if (pthread_rwlock_trywrlock(&e->compo_op_lock) != 0)
		return reason_set(reason, -EAGAIN, "a composition write runs");
	r = sync_locked(e, &moved, reason);
	if (r == 0)
		r = orphans(e) > 0;
	pthread_rwlock_unlock(&e->compo_op_lock);
	if (moved)
		changed(e, NULL);
	return r;
}

/*
 * A write begins in distributed mode (compo_op_lock write-held): refused
 * without a ZooKeeper session, as a device's write; else the list as
 * the store holds it now, not as the last watch left it.
 */
static int write_sync(struct engine *e, char *reason)
{
	bool moved = false;
	int r;

	if (!e->self)
		return 0;
	/* no session: -EHOSTDOWN, nothing written (as a device's write) */
	if (e->coord->writable && (r = e->coord->writable(e->coord_ctx, reason)) < 0)
		return r;
	return sync_locked(e, &moved, reason);
}

/*
 * Settle the compositions whose lend or return no daemon will finish
 * (orphaned()), and the lends that lost members (broken_lend()):
 * cluster.c runs it on a thread of its own when compose_sync() found
 * some.
 */
int compose_settle(struct engine *e, char *reason)
{
	int r;

	pthread_rwlock_wrlock(&e->compo_op_lock);
	r = write_sync(e, reason);
	/* the list changes only under compo_op_lock write-held: as here */
	for (struct lcompo *c = e->compos; r == 0 && c; c = c->next)
		if (unsettled(e, c))
			settle(e, c);
	pthread_rwlock_unlock(&e->compo_op_lock);
	changed(e, NULL);
	return r;
}

/*
 * Composition @name as the store holds it now (comp_get, where several
 * daemons write), not as the last watch left the list: its stored column
 * in @col; -ENOENT gone, 0 and an empty @col when it no longer lists
 * @devid.
 */
static int fresh_column(struct engine *e, const char *name, const char *devid,
			char *col, char *reason)
{
	_cleanup_free_ char *devs = NULL;
	int r = e->store->comp_get(e->store_ctx, name, col, &devs, reason);

	if (r == 0 && !comp_lists(devs, devid, strlen(devid)))
		col[0] = '\0';
	return r;
}

/*
 * -EBUSY "part of composition NAME" for a member of one not available.
 * Where several daemons write, a member's composition is read again from
 * the store: a lend begun on another mount refuses the write at once.
 */
static int compose_guard(struct engine *e, const char *devid, char *reason)
{
	char name[COMP_NAME_MAX_LEN + 1] = "", col[REASON_MAX];
	struct lcompo *c;
	bool busy;
	int r = 0;

	pthread_mutex_lock(&e->compo_lock);
	c = member_of(e, devid, NULL);
	busy = c && c->state != COMPO_AVAILABLE;
	if (c)
		snprintf(name, sizeof(name), "%s", c->name);
	pthread_mutex_unlock(&e->compo_lock);
	if (name[0] && e->store->comp_get) {
		r = fresh_column(e, name, devid, col, reason);
		busy = r == 0 && col[0];
		if (r == -ENOENT)
			r = 0;
	}
	if (r == 0 && busy)
		r = reason_set(reason, -EBUSY, "part of composition %s", name);
	return r;
}

/*
 * A step of composition @name's lend or return, forwarded by the daemon
 * running it (lend_txn.compo): it passes the member guard only while the
 * composition is stored as being lent to @value (a lend), lent (a lease),
 * or lent or being lent or returned (a return): a late step of a lend
 * that another daemon rolled back is refused.
 */
static int step_allowed(struct engine *e, const char *devid, const char *value,
			const char *name, char *reason)
{
	char col[REASON_MAX], v[BORROWER_MAX + 1] = "", coord[HOST_NAME_MAX_LEN + 1];
	bool lease = !strncmp(value, LEASE_REQUEST_PREFIX,
			      strlen(LEASE_REQUEST_PREFIX));
	enum compo_state st;
	int r = fresh_column(e, name, devid, col, reason);

	if (r < 0)
		return r;
	st = col[0] ? column_parse(col, v, coord) : COMPO_AVAILABLE;
	if (lease ? st == COMPO_LENT :
	    value[0] ? st == COMPO_LENDING && !strcmp(v, value) :
		       st != COMPO_AVAILABLE)
		return 0;
	return reason_set(reason, -EBUSY, "composition %s is %s%s%s: a late step "
			  "of its %s", name, compo_state_name(st), v[0] ? " to " : "",
			  v, lease ? "lease" : value[0] ? "lend" : "return");
}

int compose_forwarded(struct engine *e, const char *devid, const char *value,
		      const char *compo, const struct engine_caller *who,
		      struct lend_txn *txn, char *reason)
{
	int r = compo ? step_allowed(e, devid, value, compo, reason) :
			compose_guard(e, devid, reason);

	if (r < 0)
		return lend_write_refused(e, devid, r, value, strlen(value), who,
					  reason);
	return lend_forwarded(e, devid, value, who, txn, reason);
}

/* ---- mkdir, rmdir ----------------------------------------------------------- */

int engine_compo_create(struct engine *e, const char *name, char *reason)
{
	struct lcompo *c = NULL;
	int r = supported(e, reason);

	if (r == 0 && !comp_name_valid(name))
		r = reason_set(reason, -EINVAL,
			       "invalid composition name (1 to %d bytes of "
			       "[A-Za-z0-9_.-])", COMP_NAME_MAX_LEN);
	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&e->compo_op_lock);
	r = write_sync(e, reason);
	pthread_mutex_lock(&e->compo_lock);
	if (r < 0)
		;
	else if (find(e, name))
		r = reason_set(reason, -EEXIST, "composition %s exists", name);
	else if (e->ncompos >= COMPOSITIONS_MAX)
		r = reason_set(reason, -ENOSPC, "too many compositions (max %d)",
			       COMPOSITIONS_MAX);
	pthread_mutex_unlock(&e->compo_lock);
	if (r == 0) {
		c = compo_new(name);
		if (!c)
			r = reason_set(reason, -ENOMEM, "out of memory");
		else if (e->store->comp_create)
			r = e->store->comp_create(e->store_ctx, name, reason);
		else
			r = store_put(e, c, "", reason);
	}
	if (r == 0) {
		pthread_mutex_lock(&e->compo_lock);
		list_append(e, c);
		pthread_mutex_unlock(&e->compo_lock);
		c = NULL;
	}
	pthread_rwlock_unlock(&e->compo_op_lock);
	compo_free(c);
	if (r == 0)
		changed(e, NULL);
	return r;
}

int engine_compo_remove(struct engine *e, const char *name, char *reason)
{
	struct lcompo *c, **pp;
	int r = supported(e, reason);

	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&e->compo_op_lock);
	r = write_sync(e, reason);
	pthread_mutex_lock(&e->compo_lock);
	c = r < 0 ? NULL : find(e, name);
	if (r < 0)
		;
	else if (!c)
		r = reason_set(reason, -ENOENT, "no composition %s", name);
	else if (c->state != COMPO_AVAILABLE)
		r = reason_set(reason, -EBUSY, "composition %s is %s to %s; return it "
			       "first", name, compo_state_name(c->state), c->borrower);
	pthread_mutex_unlock(&e->compo_lock);
	if (r == 0)
		r = e->store->comp_remove(e->store_ctx, name, reason);
	if (r == 0) {
		pthread_mutex_lock(&e->compo_lock);
		for (pp = &e->compos; *pp != c; pp = &(*pp)->next)
			;
		*pp = c->next;
		e->ncompos--;
		pthread_mutex_unlock(&e->compo_lock);
		compo_free(c);
	}
	pthread_rwlock_unlock(&e->compo_op_lock);
	if (r == 0)
		changed(e, NULL);
	return r;
}

/* ---- devices ------------------------------------------------------------------ */

/*
 * Parse one write into @out: IDs a line, one trailing newline stripped
 * (a lone newline is the empty list);
 * printable bytes only, no empty line, no ID twice, every ID known.
 */
static int parse_devices(struct engine *e, const char *buf, size_t len,
			 struct lcompo *out, char *reason)
{
	size_t at = 0;

	len = value_len(buf, len); /* one trailing newline: "\n" is no device */
	if (len && buf[len - 1] == '\n')
		return reason_set(reason, -EINVAL, "malformed device list: an empty "
				  "line at offset %zu", len - 1);
	if (len > COMP_DEVICES_TEXT_MAX)
		return reason_set(reason, -EINVAL, "device list too long (%zu bytes, "
				  "max %d)", len, COMP_DEVICES_TEXT_MAX);
	while (at < len) {
		const char *p = buf + at, *nl = memchr(p, '\n', len - at);
		size_t n = nl ? (size_t)(nl - p) : len - at;
		char *id;

		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
				return reason_set(reason, -EINVAL, "malformed device list: "
						  "byte 0x%02x at offset %zu",
						  (unsigned char)p[i], at + i);
		if (n == 0)
			return reason_set(reason, -EINVAL, "malformed device list: an "
					  "empty line at offset %zu", at);
		if (n >= DEVICE_ID_MAX)
			return reason_set(reason, -EINVAL, "malformed device list: an "
					  "ID of %zu bytes", n);
		if (out->ndevs == COMP_DEVICES_MAX)
			return reason_set(reason, -EINVAL, "more than %d devices",
					  COMP_DEVICES_MAX);
		id = out->devs[out->ndevs];
		memcpy(id, p, n);
		id[n] = '\0';
		for (unsigned i = 0; i < out->ndevs; i++)
			if (!strcmp(out->devs[i], id))
				return reason_set(reason, -EINVAL, "%s is listed twice", id);
		if (!engine_device_exists(e, id))
			return reason_set(reason, -EINVAL, "unknown device %s", id);
		out->ndevs++;
		at += n + 1;
	}
	return 0;
}

/* No member of @next in another composition; @c available.  compo_lock. */
static int devices_allowed(struct engine *e, const struct lcompo *c,
			   const struct lcompo *next, char *reason)
{
	struct lcompo *o;

	if (c->state != COMPO_AVAILABLE)
		return reason_set(reason, -EBUSY, "composition %s is %s; return it "
				  "first", c->name, compo_state_name(c->state));
	for (unsigned i = 0; i < next->ndevs; i++) {
		o = member_of(e, next->devs[i], c);
		if (o)
			return reason_set(reason, -EBUSY, "%s is in composition %s",
					  next->devs[i], o->name);
	}
	return 0;
}

/*
 * A write to composition @name begins: compo_op_lock is taken (the caller
 * drops it), the list synced with the store (distributed mode) and the
 * composition found; NULL, with -ENOENT in *@r when there is none (or
 * the sync's error).
 */
static struct lcompo *write_begin(struct engine *e, const char *name, int *r,
				  char *reason)
{
	struct lcompo *c;

	pthread_rwlock_wrlock(&e->compo_op_lock);
	*r = write_sync(e, reason);
	if (*r < 0)
		return NULL;
	pthread_mutex_lock(&e->compo_lock);
	c = find(e, name);
	pthread_mutex_unlock(&e->compo_lock);
	if (!c)
		*r = reason_set(reason, -ENOENT, "no composition %s", name);
	return c;
}

int engine_compo_write_devices(struct engine *e, const char *name,
			       const char *buf, size_t len,
			       const struct engine_caller *who, char *reason)
{
	struct lcompo *c, *next = compo_new(name);
	int r = supported(e, reason);

	if (r == 0 && !next)
		r = reason_set(reason, -ENOMEM, "out of memory");
	if (r < 0) {
		compo_free(next);
		return r;
	}
	c = write_begin(e, name, &r, reason);
	if (r == 0)
		r = parse_devices(e, buf, len, next, reason);
	if (r == 0) {
		pthread_mutex_lock(&e->compo_lock);
		r = devices_allowed(e, c, next, reason);
		pthread_mutex_unlock(&e->compo_lock);
	}
	if (r == 0)
		r = store_put(e, next, "", reason);
	if (r == 0) { /* only this thread writes the list (compo_op_lock) */
		pthread_mutex_lock(&e->compo_lock);
		memcpy(c->devs, next->devs, next->ndevs * sizeof(*c->devs));
		c->ndevs = next->ndevs;
		pthread_mutex_unlock(&e->compo_lock);
	}
	if (c)
		set_error(e, c, r, NULL, reason);
	pthread_rwlock_unlock(&e->compo_op_lock);
	compo_free(next);
	changed(e, who);
	return r;
}

/* ---- borrower ------------------------------------------------------------------ */

/* @k of @c (cause= @cause unless NULL: a change nobody wrote). */
static void event(struct engine *e, const struct lcompo *c, enum event_kind k,
		  const char *borrower, const char *cause,
		  const struct engine_caller *who)
{
	char subject[COMP_NAME_MAX_LEN + 16];
	_cleanup_free_ char *devs = malloc(COMP_DEVICES_TEXT_MAX);
	struct notes nt = { .compos = true };

	if (!devs)
		return;
	join(c, devs, COMP_DEVICES_TEXT_MAX, ',');
	snprintf(subject, sizeof(subject), "composition:%s", c->name);
	notes_caller(&nt, e, who);
	notes_event(&nt, k, subject, "borrower", borrower, "devices", devs,
		    cause ? "cause" : NULL, cause, NULL);
	notes_flush(e, &nt, who);
}

/*
 * Lend every member to @value, in list order; on a failure return those
 * this call lent (the newest first) and fail with that device's errno.
 */
static int lend_all(struct engine *e, struct lcompo *c, const char *value,
		    const struct engine_caller *who, char *dev, char *reason)
{
	bool made[COMP_DEVICES_MAX] = { false };
	char why[REASON_MAX];
	int r = 0;

	for (unsigned i = 0; i < c->ndevs && r == 0; i++) {
		r = member_request(e, c, c->devs[i], value, who, reason);
		made[i] = r == 0;
		if (r < 0)
			snprintf(dev, DEVICE_ID_MAX, "%s", c->devs[i]);
	}
	if (r > 0)
		r = 0;
	for (unsigned i = c->ndevs; r < 0 && i-- > 0;) {
		if (made[i] && member_request(e, c, c->devs[i], "", who, why) < 0)
			engine_report(e, "composition %s: cannot undo the lend of %s to %s: "
				      "%s", c->name, c->devs[i], value, why);
	}
	return r;
}

static int compo_lend(struct engine *e, struct lcompo *c, const char *value,
		      const struct engine_caller *who, char *reason)
{
	char intent[COLUMN_MAX], dev[DEVICE_ID_MAX] = "";
	char why[REASON_MAX] = "";
	int r;

	if (c->ndevs == 0)
		return set_error(e, c, reason_set(reason, -EINVAL, "composition %s "
				 "has no devices", c->name), NULL, reason);
	column_mark(e, MARK_LEND, value, intent, sizeof(intent));
	r = column_put(e, c, intent, reason);
	if (r < 0)
		return set_error(e, c, r, NULL, reason);
	set_state(e, c, COMPO_LENDING, value);
	changed(e, who);
	fault_pass("compose.intent");
	r = lend_all(e, c, value, who, dev, why);
	if (r == 0) {
		fault_pass("compose.commit");
		r = fault_check("store_compose", why);
	}
	if (r == 0)
		r = column_put(e, c, value, why);
	if (r < 0 && !dev[0]) /* the commit failed: undo every lend */
		return_members(e, c, value, who, dev, reason);
	if (r < 0) {
		if (column_put(e, c, "", reason) < 0)
			engine_report(e, "composition %s: its intent stays: %s", c->name,
				      reason);
		set_state(e, c, COMPO_AVAILABLE, "");
		set_error(e, c, r, dev[0] ? dev : NULL, why);
		if (dev[0])
			return reason_set(reason, r, "%s: %s", dev, why);
		return reason_set(reason, r, "%s", why);
	}
	fault_pass("compose.done");
	set_state(e, c, COMPO_LENT, value);
	set_error(e, c, 0, NULL, NULL);
	event(e, c, EV_COMPOSITION_LENT, value, NULL, who);
	return 0;
}

/*
 * A return of lent @c begins: its borrower into @was, and the column
 * marked "~WAS" (one of two daemons returning it at once gets -EBUSY).
 */
static int mark_return(struct engine *e, struct lcompo *c, char *was,
		       char *reason)
{
	char mark[COLUMN_MAX];

	snprintf(was, BORROWER_MAX + 1, "%s", c->borrower);
	column_mark(e, MARK_RETURN, was, mark, sizeof(mark));
	return column_put(e, c, mark, reason);
}

static int compo_return(struct engine *e, struct lcompo *c,
			const struct engine_caller *who, char *reason)
{
	char dev[DEVICE_ID_MAX] = "", why[REASON_MAX] = "";
	char was[BORROWER_MAX + 1];
	int r = mark_return(e, c, was, reason);

	if (r < 0)
		return set_error(e, c, r, NULL, reason);
	set_state(e, c, COMPO_RETURNING, NULL);
	changed(e, who);
	r = return_members(e, c, was, who, dev, why);
	if (r == 0)
		r = column_put(e, c, "", why);
	if (r < 0) { /* lent still, in part: a new write returns the rest */
		set_state(e, c, COMPO_LENT, NULL);
		set_error(e, c, r, dev[0] ? dev : NULL, why);
		return dev[0] ? reason_set(reason, r, "%s: %s", dev, why)
			      : reason_set(reason, r, "%s", why);
	}
	set_state(e, c, COMPO_AVAILABLE, "");
	set_error(e, c, 0, NULL, NULL);
	event(e, c, EV_COMPOSITION_RETURNED, was, NULL, who);
	return 0;
}

/*
 * A device's own borrower write (engine.h): lend.c's request, unless the
 * device is a member of a composition that is not available.
 */
int engine_write_borrower(struct engine *e, const char *devid, const char *buf,
			  size_t len, const struct engine_caller *who,
			  char *reason)
{
	char value[BORROWER_MAX + 1];
	char rbuf[REASON_MAX];
	int r, refused;

	if (!reason)
		reason = rbuf;
	r = lend_parse_value(buf, len, value, reason);
	if (r < 0)
		return lend_write_refused(e, devid, r, buf, len, who, reason);
	/* read-held: no composition changes state until this request ends */
	pthread_rwlock_rdlock(&e->compo_op_lock);
	refused = compose_guard(e, devid, reason);
	if (!refused)
		r = lend_request(e, devid, value, who, NULL, reason);
	pthread_rwlock_unlock(&e->compo_op_lock);
	if (refused)
		return lend_write_refused(e, devid, refused, buf, len, who, reason);
	return r < 0 ? r : 0;
}

/*
 * A device's own lease write (engine.h): lend.c's lease request, unless
 * the device is a member of a composition that is not available (its
 * lease is the composition's: compositions/NAME/lease).
 */
int engine_write_lease(struct engine *e, const char *devid, const char *buf,
		       size_t len, const struct engine_caller *who, char *reason)
{
	char rbuf[REASON_MAX];
	uint32_t seconds;
	int r, refused;

	if (!reason)
		reason = rbuf;
	r = lease_parse(buf, len, &seconds, reason);
	if (r < 0)
		return lend_write_refused(e, devid, r, buf, len, who, reason);
	pthread_rwlock_rdlock(&e->compo_op_lock);
	refused = compose_guard(e, devid, reason);
	if (!refused)
		r = lend_lease_request(e, devid, seconds, 0, NULL, who, reason);
	pthread_rwlock_unlock(&e->compo_op_lock);
	if (refused)
		return lend_write_refused(e, devid, refused, buf, len, who, reason);
	return r;
}

int engine_compo_write_borrower(struct engine *e, const char *name,
				const char *buf, size_t len,
				const struct engine_caller *who, char *reason)
{
	char value[BORROWER_MAX + 1];
	struct lcompo *c;
	int r = supported(e, reason);

	if (r < 0)
		return r;
	c = write_begin(e, name, &r, reason);
	if (!c)
		goto out;
	if ((r = lend_parse_value(buf, len, value, reason)) < 0)
		set_error(e, c, r, NULL, reason);
	else if (!strcmp(value, c->borrower) &&
		 (c->state == COMPO_LENT || c->state == COMPO_AVAILABLE))
		r = 0; /* the current value: nothing to do */
	else if (value[0] && c->borrower[0])
		r = set_error(e, c, reason_set(reason, -EBUSY, "composition %s is lent "
			      "to %s; return it first", name, c->borrower), NULL,
			      reason);
	else if (value[0])
		r = compo_lend(e, c, value, who, reason);
	else
		r = compo_return(e, c, who, reason);
out:
	pthread_rwlock_unlock(&e->compo_op_lock);
	changed(e, who);
	return r;
}

/* ---- lease ------------------------------------------------------------------- */

/* @devid's lease deadline (wall ns), 0: none or no such device. */
static int64_t member_lease(struct engine *e, const char *devid)
{
	struct ldevice *d = model_get(e, devid);
	int64_t at = 0;

	if (!d)
		return 0;
	pthread_mutex_lock(&d->lock);
	if (d->state == DEV_LENT)
		at = d->lease;
	pthread_mutex_unlock(&d->lock);
	model_put(e, d);
	return at;
}

/*
 * The lease of a composition: the earliest deadline of its members (they
 * are set together; after a crash in the middle of a lease write, or with
 * [cluster] default_lease, they may differ), 0 none.  No lock: @devs is
 * the caller's copy, or @c's list under compo_op_lock.
 */
static int64_t devs_lease(struct engine *e, char (*devs)[DEVICE_ID_MAX],
			  unsigned n)
{
	int64_t first = 0;

	for (unsigned i = 0; i < n; i++) {
		int64_t at = member_lease(e, devs[i]);

		if (at && (!first || at < first))
			first = at;
	}
	return first;
}

static void lease_event(struct engine *e, const struct lcompo *c,
			enum event_kind k, const char *const *kv,
			const struct engine_caller *who)
{
	char subject[COMP_NAME_MAX_LEN + 16];
	struct notes nt = { .compos = true };

	snprintf(subject, sizeof(subject), "composition:%s", c->name);
	notes_caller(&nt, e, who);
	notes_event(&nt, k, subject, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5],
		    kv[6], kv[7], NULL);
	notes_flush(e, &nt, who);
}

/* Whole seconds from now to @at, rounded up, at least 1 (0: none). */
static uint32_t seconds_to(int64_t at)
{
	int64_t left = at - now_wall_ns();

	if (!at)
		return 0;
	return left <= 1000000000LL ? 1 : (uint32_t)((left + 999999999LL) / 1000000000LL);
}

/*
 * Set every member's lease to the same deadline, as one step: on a
 * failure the members already changed get their old deadlines back, and
 * the write fails with that member's errno (compo_op_lock write-held).
 */
static int compo_lease(struct engine *e, struct lcompo *c, uint32_t seconds,
		       const struct engine_caller *who, char *reason)
{
	int64_t old[COMP_DEVICES_MAX], at = seconds ?
		now_wall_ns() + (int64_t)seconds * 1000000000LL : 0;
	char why[REASON_MAX], secs[16], when[LEASE_TIME_MAX];
	unsigned i;
	int r = 0;

	for (i = 0; i < c->ndevs; i++)
		old[i] = member_lease(e, c->devs[i]);
	for (i = 0; i < c->ndevs && r == 0; i++)
		r = lend_lease_request(e, c->devs[i], seconds, at, c->name, who, why);
	if (r < 0) {
		i--; /* the member that failed */
		for (unsigned j = i; j-- > 0;)
			if (lend_lease_request(e, c->devs[j], seconds_to(old[j]), old[j],
					       c->name, who, reason) < 0)
				engine_report(e, "composition %s: cannot restore the lease "
					      "of %s: %s", c->name, c->devs[j], reason);
		set_error(e, c, r, c->devs[i], why);
		return reason_set(reason, r, "%s: %s", c->devs[i], why);
	}
	snprintf(secs, sizeof(secs), "%" PRIu32, seconds);
	lease_time_text(at, when, sizeof(when));
	lease_event(e, c, EV_LEASE_SET, (const char *const[]){
		"borrower", c->borrower, "seconds", at ? secs : "none",
		"expires", at ? when : NULL, NULL, NULL }, who);
	set_error(e, c, 0, NULL, NULL);
	return 0;
}

int engine_compo_write_lease(struct engine *e, const char *name,
			     const char *buf, size_t len,
			     const struct engine_caller *who, char *reason)
{
	struct lcompo *c;
	uint32_t seconds;
	int r = supported(e, reason);

	if (r < 0)
		return r;
	c = write_begin(e, name, &r, reason);
	if (!c)
		goto out;
	if ((r = lease_parse(buf, len, &seconds, reason)) < 0)
		set_error(e, c, r, NULL, reason);
	else if (c->state != COMPO_LENT)
		r = set_error(e, c, reason_set(reason, -EINVAL, "composition %s is "
			      "not lent (%s): only a lend can have a lease", name,
			      compo_state_name(c->state)), NULL, reason);
	else
		r = compo_lease(e, c, seconds, who, reason);
out:
	pthread_rwlock_unlock(&e->compo_op_lock);
	changed(e, who);
	return r;
}

/*
 * The lease of lent @c ran out at @at: every member lent to its borrower
 * is returned through lend_lease_expire() (its `expired` event, its
 * last_error), after the composition's own `expired` event; then the
 * composition is available, with last_error "ETIME: lease expired at
 * TIME".  A member whose return fails leaves it lent (the timer tries
 * again).  compo_op_lock write-held.
 */
static int compo_expire(struct engine *e, struct lcompo *c, int64_t at,
			const char *cause)
{
	char was[BORROWER_MAX + 1], when[LEASE_TIME_MAX], why[REASON_MAX] = "";
	int r = mark_return(e, c, was, why);

	if (r == -EBUSY) /* another lender's timer returns it */
		return 0;
	if (r < 0)
		return r;
	lease_time_text(at, when, sizeof(when));
	lease_event(e, c, EV_EXPIRED, (const char *const[]){
		"borrower", was, "deadline", when, "cause", cause, NULL, NULL }, NULL);
	set_state(e, c, COMPO_RETURNING, NULL);
	changed(e, NULL);
	for (unsigned i = c->ndevs; i-- > 0 && r >= 0;) {
		struct ldevice *d;

		if (!engine_device_lent_to_or_by(e, c->devs[i], was, false))
			continue;
		d = model_get(e, c->devs[i]);
		/* another daemon's member: returned by its lender, as a step */
		if (!d)
			r = 0;
		else if (lend_remote(e, d))
			r = member_request(e, c, c->devs[i], "", NULL, why);
		else
			r = lend_lease_expire(e, d, cause, c->name, at);
		if (d)
			model_put(e, d);
		if (r < 0)
			set_error(e, c, r, c->devs[i], "its return failed");
	}
	if (r >= 0)
		r = column_put(e, c, "", why);
	if (r < 0) {
		set_state(e, c, COMPO_LENT, NULL);
		if (why[0])
			set_error(e, c, r, NULL, why);
		engine_report(e, "composition %s: lease expired at %s, but its "
			      "return failed: %s", c->name, when, c->error);
		return r;
	}
	set_state(e, c, COMPO_AVAILABLE, "");
	reason_set(why, -ETIME, "lease expired at %s", when);
	set_error(e, c, -ETIME, NULL, why);
	lease_event(e, c, EV_COMPOSITION_RETURNED, (const char *const[]){
		"borrower", was, "cause", cause, NULL, NULL, NULL, NULL }, NULL);
	engine_report(e, "composition %s: lease expired at %s: returned", c->name,
		      when);
	return 1;
}

int compose_lease_expire(struct engine *e, struct ldevice *d,
			 const char *cause)
{
	char name[COMP_NAME_MAX_LEN + 1] = "", why[REASON_MAX];
	struct lcompo *c;
	int64_t at;
	int r = 0;

	/* read-held: as a borrower write of @d, if it goes alone */
	pthread_rwlock_rdlock(&e->compo_op_lock);
	pthread_mutex_lock(&e->compo_lock);
	c = member_of(e, d->id, NULL);
	if (c && c->state == COMPO_LENT)
		snprintf(name, sizeof(name), "%s", c->name);
	pthread_mutex_unlock(&e->compo_lock);
	if (!name[0])
		r = lend_lease_expire(e, d, cause, NULL, 0);
	pthread_rwlock_unlock(&e->compo_op_lock);
	if (!name[0])
		return r;
	pthread_rwlock_wrlock(&e->compo_op_lock);
	r = write_sync(e, why); /* as the store holds it now */
	pthread_mutex_lock(&e->compo_lock);
	c = r < 0 ? NULL : find(e, name); /* still lent, and @d still in it? */
	if (c && (c->state != COMPO_LENT || member_of(e, d->id, NULL) != c))
		c = NULL;
	pthread_mutex_unlock(&e->compo_lock);
	at = c ? devs_lease(e, c->devs, c->ndevs) : 0;
	if (c && at && at <= now_wall_ns())
		r = compo_expire(e, c, at, cause);
	else if (!c && r == 0) /* returned meanwhile, or by another lender */
		r = lend_lease_expire(e, d, cause, NULL, 0);
	pthread_rwlock_unlock(&e->compo_op_lock);
	return r;
}

/* ---- views ------------------------------------------------------------------- */

int engine_compo_view(struct engine *e, const char *name,
		      struct compo_view *out)
{
	_cleanup_free_ char (*devs)[DEVICE_ID_MAX] =
		malloc(COMP_DEVICES_MAX * sizeof(*devs));
	unsigned ndevs = 0;
	struct lcompo *c;

	if (!devs)
		return -ENOMEM;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->compo_lock);
	c = name ? find(e, name) : NULL;
	if (c) {
		snprintf(out->name, sizeof(out->name), "%s", c->name);
		join(c, out->devices, sizeof(out->devices), '\n');
		snprintf(out->borrower, sizeof(out->borrower), "%s", c->borrower);
		out->state = c->state;
		snprintf(out->last_error, sizeof(out->last_error), "%s", c->error);
		out->generation = c->generation;
		ndevs = c->ndevs;
		memcpy(devs, c->devs, ndevs * sizeof(*devs));
	}
	pthread_mutex_unlock(&e->compo_lock);
	/* the members' leases, once compo_lock is dropped (it nests outside) */
	if (c && out->state == COMPO_LENT)
		out->lease = devs_lease(e, devs, ndevs);
	return c ? 0 : -ENOENT;
}

bool engine_compo_exists(struct engine *e, const char *name)
{
	bool r;

	if (!name)
		return false;
	pthread_mutex_lock(&e->compo_lock);
	r = find(e, name) != NULL;
	pthread_mutex_unlock(&e->compo_lock);
	return r;
}

int engine_foreach_compo(struct engine *e,
			 int (*cb)(void *arg, const char *name), void *arg)
{
	char (*names)[COMP_NAME_MAX_LEN + 1] = NULL;
	unsigned n = 0, total;
	int r = 0;

	pthread_mutex_lock(&e->compo_lock);
	total = e->ncompos;
	if (total)
		names = calloc(total, sizeof(*names));
	for (struct lcompo *c = e->compos; names && c; c = c->next)
		snprintf(names[n++], sizeof(names[0]), "%s", c->name);
	pthread_mutex_unlock(&e->compo_lock);
	if (total && !names)
		return -ENOMEM;
	for (unsigned i = 0; i < n && r == 0; i++)
		r = cb(arg, names[i]);
	free(names);
	return r;
}
