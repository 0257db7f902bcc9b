// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * store_memory.c - the store in memory: the semantics of the SQLite
 * back-end without a file.  For unit tests of the engine and for
 * `--state none`; nothing survives the process.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

struct mem_host {
	char name[HOST_NAME_MAX_LEN + 1];
	int online;
};

struct mem_vm {
	char host[HOST_NAME_MAX_LEN + 1];
	char name[VM_NAME_MAX_LEN + 1];
	char *qmp;
};

struct mem_comp {
	char name[COMP_NAME_MAX_LEN + 1];
	char *devices, *borrower;
};

struct mem_store {
	pthread_mutex_t lock;
	struct lend_record *recs; /* sorted by device (strcmp) */
	unsigned nrecs, caprecs;
	struct mem_host *hosts;	  /* sorted by name */
	unsigned nhosts, caphosts;
	struct mem_vm *vms;	  /* sorted by host, then name */
	unsigned nvms, capvms;
	struct mem_comp *comps;	  /* sorted by name */
	unsigned ncomps;
	struct event_rec *evs;	  /* the event log, oldest first; text owned */
	unsigned nevs, capevs;
	uint64_t last_seq;
	store_event_sink sink;	  /* events of a put()/remove() are appended
				     on their own, by event_append */
	void *sink_arg;
};

static void events_drop(struct mem_store *s, unsigned n)
{
	if (!n)
		return; /* s->evs may be NULL: no memmove of it */
	for (unsigned i = 0; i < n; i++)
		free((char *)s->evs[i].text);
	memmove(s->evs, s->evs + n, (s->nevs - n) * sizeof(*s->evs));
	s->nevs -= n;
}

static void records_free(struct lend_record *recs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		lend_record_release(&recs[i]);
	free(recs);
}

static int mem_open(const char *where, void **ctx, char *reason)
{
	struct mem_store *s = calloc(1, sizeof(*s));

	if (!s)
		return reason_set(reason, -ENOMEM, "cannot allocate the memory store");
	pthread_mutex_init(&s->lock, NULL);
	*ctx = s;
	return 0;
}

static void mem_close(void *ctx)
{
	struct mem_store *s = ctx;

	if (!s)
		return;
	records_free(s->recs, s->nrecs);
	free(s->hosts);
	for (unsigned i = 0; i < s->nvms; i++)
		free(s->vms[i].qmp);
	free(s->vms);
	for (unsigned i = 0; i < s->ncomps; i++) {
		free(s->comps[i].devices);
		free(s->comps[i].borrower);
	}
	free(s->comps);
	events_drop(s, s->nevs);
	free(s->evs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Index of @device, or where it would go (with *found false). */
static unsigned rec_find(const struct mem_store *s, const char *device, bool *found)
{
	unsigned lo = 0, hi = s->nrecs;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int r = strcmp(s->recs[mid].device, device);

		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* A private copy of every record, taken under the lock. */
static int snapshot(struct mem_store *s, struct lend_record **out, unsigned *n)
{
	struct lend_record *copy = NULL;
	unsigned i;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->nrecs) {
		copy = calloc(s->nrecs, sizeof(*copy));
		if (!copy)
			r = -ENOMEM;
	}
	for (i = 0; r == 0 && i < s->nrecs; i++)
		r = lend_record_copy(&copy[i], &s->recs[i]);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		records_free(copy, i);
		return r;
	}
	*out = copy;
	*n = i;
	return 0;
}

static int mem_load(void *ctx, store_load_cb cb, void *arg, char *reason)
{
	struct lend_record *recs = NULL;
	unsigned n = 0;
	int r;

	r = snapshot(ctx, &recs, &n);
	if (r < 0)
		return reason_set(reason, r, "cannot copy the memory store");
	for (unsigned i = 0; i < n && r == 0; i++)
		r = cb(arg, &recs[i]);
	records_free(recs, n);
	return r;
}

static int mem_put(void *ctx, const struct lend_record *rec, char *reason)
{
	struct mem_store *s = ctx;
	struct lend_record copy;
	unsigned at;
	bool found;
	int r;

	r = store_record_validate(rec, reason);
	if (r < 0)
		return r;
	r = lend_record_copy(&copy, rec);
	if (r < 0)
		return reason_set(reason, r, "cannot store %s: out of memory", rec->device);

	pthread_mutex_lock(&s->lock);
	at = rec_find(s, rec->device, &found);
	if (found) {
		lend_record_release(&s->recs[at]);
		s->recs[at] = copy;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (s->nrecs == s->caprecs) {
		unsigned cap = s->caprecs ? 2 * s->caprecs : 16;
		struct lend_record *p = realloc(s->recs, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&s->lock);
			lend_record_release(&copy);
			return reason_set(reason, -ENOMEM, "cannot store %s: out of memory",
					  rec->device);
		}
		s->recs = p;
		s->caprecs = cap;
	}
	memmove(&s->recs[at + 1], &s->recs[at], (s->nrecs - at) * sizeof(*s->recs));
	s->recs[at] = copy;
	s->nrecs++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int mem_remove(void *ctx, const char *device, struct lend_txn *txn,
		      char *reason)
{
	struct mem_store *s = ctx;
	unsigned at;
	bool found;

	if (!device || !device[0])
		return reason_set(reason, -EINVAL, "no device id to remove");
	pthread_mutex_lock(&s->lock);
	at = rec_find(s, device, &found);
	if (found) {
		lend_record_release(&s->recs[at]);
		memmove(&s->recs[at], &s->recs[at + 1],
			(s->nrecs - at - 1) * sizeof(*s->recs));
		s->nrecs--;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int mem_host_put(void *ctx, const char *host, int online, char *reason)
{
	struct mem_store *s = ctx;
	unsigned at;

	if (!host || !name_valid(host))
		return reason_set(reason, -EINVAL, "invalid host name '%s'",
				  host ? host : "");
	pthread_mutex_lock(&s->lock);
	for (at = 0; at < s->nhosts; at++) {
		int c = strcmp(s->hosts[at].name, host);

		if (c == 0) {
			s->hosts[at].online = online ? 1 : 0;
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		if (c > 0)
			break;
	}
	if (s->nhosts == s->caphosts) {
		unsigned cap = s->caphosts ? 2 * s->caphosts : 8;
		struct mem_host *p = realloc(s->hosts, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&s->lock);
			return reason_set(reason, -ENOMEM,
					  "cannot store state of host %s: out of memory",
					  host);
		}
		s->hosts = p;
		s->caphosts = cap;
	}
	memmove(&s->hosts[at + 1], &s->hosts[at], (s->nhosts - at) * sizeof(*s->hosts));
	snprintf(s->hosts[at].name, sizeof(s->hosts[at].name), "%s", host);
	s->hosts[at].online = online ? 1 : 0;
	s->nhosts++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int mem_host_load(void *ctx, int (*cb)(void *arg, const char *host, int online),
			 void *arg, char *reason)
{
	struct mem_store *s = ctx;
	_cleanup_free_ struct mem_host *copy = NULL;
	unsigned n;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	n = s->nhosts;
	if (n) {
		copy = calloc(n, sizeof(*copy));
		if (copy)
			memcpy(copy, s->hosts, n * sizeof(*copy));
	}
	pthread_mutex_unlock(&s->lock);
	if (n && !copy)
		return reason_set(reason, -ENOMEM, "cannot copy the memory store");
	for (unsigned i = 0; i < n && r == 0; i++)
		r = cb(arg, copy[i].name, copy[i].online);
	return r;
}

static int vm_cmp(const struct mem_vm *v, const char *host, const char *vm)
{
	int c = strcmp(v->host, host);

	return c ? c : strcmp(v->name, vm);
}

/* Index of @host/@vm, or where it would go (with *found false). */
static unsigned vm_find(const struct mem_store *s, const char *host,
			const char *vm, bool *found)
{
	unsigned at;

	*found = false;
	for (at = 0; at < s->nvms; at++) {
		int c = vm_cmp(&s->vms[at], host, vm);

		if (c == 0)
			*found = true;
		if (c >= 0)
			break;
	}
	return at;
}

static int mem_vm_put(void *ctx, const char *host, const char *vm,
		      const char *qmp, char *reason)
{
	struct mem_store *s = ctx;
	char *copy;
	unsigned at;
	bool found;
	int r;

	r = store_vm_validate(host, vm, qmp, reason);
	if (r < 0)
		return r;
	copy = strdup(qmp);
	if (!copy)
		return reason_set(reason, -ENOMEM, "cannot store vm %s/%s: out of memory",
				  host, vm);
	pthread_mutex_lock(&s->lock);
	at = vm_find(s, host, vm, &found);
	if (found) {
		free(s->vms[at].qmp);
		s->vms[at].qmp = copy;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (s->nvms == s->capvms) {
		unsigned cap = s->capvms ? 2 * s->capvms : 8;
		struct mem_vm *p = realloc(s->vms, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&s->lock);
			free(copy);
			return reason_set(reason, -ENOMEM,
					  "cannot store vm %s/%s: out of memory", host, vm);
		}
		s->vms = p;
		s->capvms = cap;
	}
	memmove(&s->vms[at + 1], &s->vms[at], (s->nvms - at) * sizeof(*s->vms));
	snprintf(s->vms[at].host, sizeof(s->vms[at].host), "%s", host);
	snprintf(s->vms[at].name, sizeof(s->vms[at].name), "%s", vm);
	s->vms[at].qmp = copy;
	s->nvms++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int mem_vm_remove(void *ctx, const char *host, const char *vm,
			 char *reason)
{
	struct mem_store *s = ctx;
	unsigned at;
	bool found;
	int r;

	r = store_vm_validate(host, vm, "", reason);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	at = vm_find(s, host, vm, &found);
	if (found) {
		free(s->vms[at].qmp);
		memmove(&s->vms[at], &s->vms[at + 1],
			(s->nvms - at - 1) * sizeof(*s->vms));
		s->nvms--;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int mem_vm_load(void *ctx,
		       int (*cb)(void *arg, const char *host, const char *vm,
				 const char *qmp),
		       void *arg, char *reason)
{
	struct mem_store *s = ctx;
	struct mem_vm *copy = NULL;
	unsigned n, i;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	n = s->nvms;
	if (n)
		copy = calloc(n, sizeof(*copy));
	for (i = 0; copy && i < n; i++) {
		copy[i] = s->vms[i];
		copy[i].qmp = strdup(s->vms[i].qmp);
		if (!copy[i].qmp)
			break;
	}
	pthread_mutex_unlock(&s->lock);
	if (n && (!copy || i < n))
		r = reason_set(reason, -ENOMEM, "cannot copy the memory store");
	for (unsigned j = 0; r == 0 && j < n; j++)
		r = cb(arg, copy[j].host, copy[j].name, copy[j].qmp);
	for (unsigned j = 0; copy && j < i; j++)
		free(copy[j].qmp);
	free(copy);
	return r;
}

/* Index of @name, or where it would go (with *found false). */
static unsigned comp_find(const struct mem_store *s, const char *name,
			  bool *found)
{
	unsigned at;

	*found = false;
	for (at = 0; at < s->ncomps; at++) {
		int c = strcmp(s->comps[at].name, name);

		*found = c == 0;
		if (c >= 0)
			break;
	}
	return at;
}

static int mem_comp_put(void *ctx, const char *name, const char *devices,
			const char *borrower, char *reason)
{
	struct mem_store *s = ctx;
	char *d, *b;
	unsigned at;
	bool found;
	int r = store_comp_validate(name, devices, borrower, reason);

	if (r < 0)
		return r;
	d = strdup(devices);
	b = strdup(borrower);
	pthread_mutex_lock(&s->lock);
	at = comp_find(s, name, &found);
	if (d && b && !found) {
		struct mem_comp *p = realloc(s->comps, (s->ncomps + 1) * sizeof(*p));

		if (p) {
			s->comps = p;
			memmove(&p[at + 1], &p[at], (s->ncomps - at) * sizeof(*p));
			snprintf(p[at].name, sizeof(p[at].name), "%s", name);
			p[at].devices = p[at].borrower = NULL;
			s->ncomps++;
			found = true;
		}
	}
	if (d && b && found) {
		free(s->comps[at].devices);
		free(s->comps[at].borrower);
		s->comps[at].devices = d;
		s->comps[at].borrower = b;
		d = b = NULL;
	} else {
		r = reason_set(reason, -ENOMEM, "cannot store composition %s: out of "
			       "memory", name);
	}
	pthread_mutex_unlock(&s->lock);
	free(d);
	free(b);
	return r;
}

static int mem_comp_remove(void *ctx, const char *name, char *reason)
{
	struct mem_store *s = ctx;
	unsigned at;
	bool found;

	if (!comp_name_valid(name))
		return reason_set(reason, -EINVAL, "invalid composition name");
	pthread_mutex_lock(&s->lock);
	at = comp_find(s, name, &found);
	if (found) {
		free(s->comps[at].devices);
		free(s->comps[at].borrower);
		memmove(&s->comps[at], &s->comps[at + 1],
			(s->ncomps - at - 1) * sizeof(*s->comps));
		s->ncomps--;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int mem_comp_load(void *ctx,
			 int (*cb)(void *arg, const char *name,
				   const char *devices, const char *borrower),
			 void *arg, char *reason)
{
	struct mem_store *s = ctx;
	struct mem_comp *copy = NULL;
	unsigned n, i = 0;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	n = s->ncomps;
	if (n)
		copy = calloc(n, sizeof(*copy));
	for (; copy && i < n; i++) {
		copy[i] = s->comps[i];
		copy[i].devices = strdup(s->comps[i].devices);
		copy[i].borrower = strdup(s->comps[i].borrower);
		if (!copy[i].devices || !copy[i].borrower) {
			i++;
			r = -ENOMEM;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (r < 0 || (n && !copy))
		r = reason_set(reason, -ENOMEM, "cannot copy the memory store");
	for (unsigned j = 0; r == 0 && j < n; j++)
		r = cb(arg, copy[j].name, copy[j].devices, copy[j].borrower);
	for (unsigned j = 0; copy && j < i; j++) {
		free(copy[j].devices);
		free(copy[j].borrower);
	}
	free(copy);
	return r;
}

static int mem_check(void *ctx, FILE *out)
{
	struct lend_record *recs = NULL;
	unsigned n = 0;
	int r;

	r = snapshot(ctx, &recs, &n);
	if (r < 0)
		return r;
	r = store_check_records(recs, n, out);
	records_free(recs, n);
	return r;
}

/* Room for @n more events (lock held). */
static int events_reserve(struct mem_store *s, unsigned n)
{
	struct event_rec *v;
	unsigned cap = s->capevs ? s->capevs : 64;

	while (cap < s->nevs + n)
		cap *= 2;
	if (cap == s->capevs)
		return 0;
	v = realloc(s->evs, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->evs = v;
	s->capevs = cap;
	return 0;
}

static int mem_event_append(void *ctx, struct event_rec *ev, unsigned n,
			    unsigned retain, char *reason)
{
	struct mem_store *s = ctx;
	unsigned i;
	int r;

	for (i = 0; i < n; i++)
		if (!event_text_valid(ev[i].text))
			return reason_set(reason, -EINVAL, "malformed event %u", i);
	pthread_mutex_lock(&s->lock);
	r = events_reserve(s, n);
	for (i = 0; i < n && r == 0; i++) {
		char *text = strdup(ev[i].text);

		if (!text) {
			r = -ENOMEM;
			break;
		}
		ev[i].seq = ++s->last_seq;
		s->evs[s->nevs++] = (struct event_rec){ .seq = ev[i].seq,
							.time_ns = ev[i].time_ns,
							.text = text };
	}
	if (r == 0 && retain && s->nevs > retain)
		events_drop(s, s->nevs - retain);
	if (r == 0 && s->sink)
		s->sink(s->sink_arg, ev, n);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? reason_set(reason, r, "out of memory") : 0;
}

static int mem_event_load(void *ctx, uint64_t since,
			  int (*cb)(void *arg, const struct event_rec *ev),
			  void *arg, char *reason)
{
	struct mem_store *s = ctx;
	struct event_rec *copy;
	unsigned n = 0, i;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	copy = calloc(s->nevs + 1, sizeof(*copy));
	for (i = 0; copy && i < s->nevs; i++) {
		if (s->evs[i].seq <= since)
			continue;
		copy[n] = s->evs[i];
		copy[n].text = strdup(s->evs[i].text);
		if (!copy[n++].text)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&s->lock);
	if (!copy)
		return reason_set(reason, -ENOMEM, "out of memory");
	for (i = 0; i < n && r == 0; i++)
		r = cb(arg, &copy[i]);
	for (i = 0; i < n; i++)
		free((char *)copy[i].text);
	free(copy);
	return r == -ENOMEM ? reason_set(reason, r, "out of memory") : r;
}

static void mem_event_sink_set(void *ctx, store_event_sink sink, void *arg,
			       unsigned retain)
{
	struct mem_store *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->sink = sink;
	s->sink_arg = arg;
	pthread_mutex_unlock(&s->lock);
}

const struct store_ops store_memory_ops = {
	.name = "memory",
	.open = mem_open,
	.close = mem_close,
	.load = mem_load,
	.put = mem_put,
	.remove = mem_remove,
	.host_put = mem_host_put,
	.host_load = mem_host_load,
	.vm_put = mem_vm_put,
	.vm_remove = mem_vm_remove,
	.vm_load = mem_vm_load,
	.comp_put = mem_comp_put,
	.comp_remove = mem_comp_remove,
	.comp_load = mem_comp_load,
	.check = mem_check,
	.event_append = mem_event_append,
	.event_load = mem_event_load,
	.event_sink_set = mem_event_sink_set,
};
