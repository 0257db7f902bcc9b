// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * p2p.c - peer-to-peer links between the devices lent to one borrower
 * (engine_internal.h): planned and programmed when a device becomes lent,
 * torn down when it stops being lent, shown in devices/ID/peers/.
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"

static bool p2p_involves(const struct p2p_link *l, const struct ldevice *d)
{
	return l->a == d || l->b == d;
}

/* A peer's view changed: its generation, and a note for its watchers. */
static void peer_touched(struct ldevice *o, struct notes *nt)
{
	pthread_mutex_lock(&o->lock);
	dev_touch(o);
	pthread_mutex_unlock(&o->lock);
	notes_add(nt, o->id);
}

/* Windows for a new link @l (comp_lock held); the reason kept in @l. */
static void link_program(struct engine *e, struct p2p_link *l)
{
	int r;

	pthread_mutex_lock(&e->fabric_lock);
	l->owner = ++e->next_owner;
	r = plan_p2p(e, l, l->error);
	pthread_mutex_unlock(&e->fabric_lock);
	if (r == 0) {
		r = windows_program(e, l->w, l->nw, UINT64_MAX, l->error);
		if (r < 0) {
			plan_release_locked(e, l->w, l->nw);
			free(l->w);
			l->w = NULL;
			l->nw = 0;
		}
	}
	if (r < 0) {
		char why[REASON_MAX];

		snprintf(why, sizeof(why), "%s: %.200s", errno_name(r), l->error);
		snprintf(l->error, sizeof(l->error), "%s", why);
		engine_report(e, "no peer-to-peer path between %s and %s: %s",
			      l->a->id, l->b->id, why);
	}
}

/* Is @o lent to @borrower and not yet linked with @d?  (comp_lock held) */
static bool new_peer(struct engine *e, struct ldevice *d, struct ldevice *o,
		     const char *borrower)
{
	bool peer;

	if (o == d)
		return false;
	pthread_mutex_lock(&o->lock);
	peer = o->state == DEV_LENT && !strcmp(o->borrower, borrower);
	pthread_mutex_unlock(&o->lock);
	for (struct p2p_link *l = e->p2p; peer && l; l = l->next)
		if (p2p_involves(l, d) && p2p_involves(l, o))
			peer = false;
	return peer;
}

/*
 * @d just became lent: link it with every other device lent to the same
 * borrower.  A link that cannot get its windows is kept with the reason
 * (the lend itself stands; traffic then goes through the borrower).
 * The model lock is read-held for the walk: programming the sim fabric
 * waits on nothing slow.
 */
void p2p_compose(struct engine *e, struct ldevice *d, struct notes *nt)
{
	char borrower[BORROWER_MAX + 1];

	if (!e->coord->p2p)
		return; /* P2P across daemons: not yet (docs/STATE.md) */
	pthread_mutex_lock(&d->lock);
	snprintf(borrower, sizeof(borrower), "%s", d->borrower);
	pthread_mutex_unlock(&d->lock);

	pthread_rwlock_rdlock(&e->model_lock);
	pthread_mutex_lock(&e->comp_lock);
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *o = e->devs[i];
		struct p2p_link *l;

		if (!new_peer(e, d, o, borrower))
			continue;
		l = calloc(1, sizeof(*l));
		if (!l)
			break;
		l->a = d;
		l->b = o;
		link_program(e, l);
		l->next = e->p2p;
		e->p2p = l;
		peer_touched(o, nt);
	}
	pthread_mutex_unlock(&e->comp_lock);
	pthread_rwlock_unlock(&e->model_lock);
}

void p2p_decompose(struct engine *e, struct ldevice *d, struct notes *nt)
{
	pthread_mutex_lock(&e->comp_lock);
	for (struct p2p_link **pp = &e->p2p; *pp;) {
		struct p2p_link *l = *pp;
		struct ldevice *other = l->a == d ? l->b : l->a;

		if (!p2p_involves(l, d)) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		windows_clear(e, l->w, l->nw, NULL);
		plan_release_locked(e, l->w, l->nw);
		free(l->w);
		free(l);
		peer_touched(other, nt);
	}
	pthread_mutex_unlock(&e->comp_lock);
}

int p2p_view(struct engine *e, struct ldevice *d, struct device_view *v)
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


void p2p_free_all(struct engine *e)
{
	while (e->p2p) {
		struct p2p_link *l = e->p2p;

		e->p2p = l->next;
		free(l->w);
		free(l);
	}
}
