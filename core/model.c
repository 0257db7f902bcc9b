// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * model.c - the engine's model: hosts and devices, their lookups and
 * pins, the views front-ends read, and the batch of change notifications
 * (engine_internal.h).  Nothing here changes a lend: lend.c does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>

#include "engine_internal.h"

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

void engine_set_watch(struct engine *e, engine_watch_cb cb, void *arg)
{
	pthread_rwlock_wrlock(&e->watch_lock);
	e->watch = cb;
	e->watch_arg = arg;
	pthread_rwlock_unlock(&e->watch_lock);
}

/* ---- notifications ---------------------------------------------------- */

void notes_add(struct notes *nt, const char *devid)
{
	if (!devid) {
		nt->all = true;
		return;
	}
	for (unsigned i = 0; i < nt->n; i++)
		if (!strcmp(nt->ids[i], devid))
			return;
	if (nt->n == nt->cap) {
		unsigned cap = nt->cap ? nt->cap * 2 : 8;
		char (*n)[DEVICE_ID_MAX] = realloc(nt->ids, cap * sizeof(*n));

		if (!n) {
			nt->all = true; /* cannot say which: say all */
			return;
		}
		nt->ids = n;
		nt->cap = cap;
	}
	snprintf(nt->ids[nt->n++], DEVICE_ID_MAX, "%s", devid);
}

/* Deliver (events, then watches) and empty @nt; no engine lock may be held. */
void notes_flush(struct engine *e, struct notes *nt,
		 const struct engine_caller *who)
{
	char (*ids)[DEVICE_ID_MAX] = nt->ids;
	struct note_event *evs = nt->evs;
	unsigned n = nt->n, nev = nt->nev;
	bool all = nt->all, compos = nt->compos;

	memset(nt, 0, sizeof(*nt));
	/* the log first: a poller woken by a change finds its event there */
	evlog_commit(e, evs, nev, who);
	free(evs);
	pthread_rwlock_rdlock(&e->watch_lock);
	if (e->watch) {
		for (unsigned i = 0; i < n; i++)
			e->watch(e->watch_arg, ids[i], who);
		if (all)
			e->watch(e->watch_arg, NULL, who);
		else if (compos)
			e->watch(e->watch_arg, "", who);
	}
	pthread_rwlock_unlock(&e->watch_lock);
	free(ids);
}

/* ---- a device's text -------------------------------------------------- */

int dev_text(struct ldevice *d)
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

void dev_clear_borrower(struct ldevice *d)
{
	if (d->text)
		d->text->borrower[0] = '\0';
}

/*
 * Without memory for the text the error is not kept: the request that
 * failed returned its reason already.
 */
void dev_set_error(struct ldevice *d, const char *fmt, ...)
{
	va_list ap;

	if (dev_text(d) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(d->text->last_error, sizeof(d->text->last_error), fmt, ap);
	va_end(ap);
}

void last_error_format(char *buf, size_t size, int err, const char *reason)
{
	snprintf(buf, size, "%s: %s", errno_name(err),
		 reason && *reason ? reason : strerror(-err));
}

void dev_set_last_error(struct ldevice *d, int err, const char *reason)
{
	char line[sizeof(d->text->last_error)];

	last_error_format(line, sizeof(line), err, reason);
	dev_set_error(d, "%s", line);
}

bool lender_online(struct engine *e, const struct ldevice *d)
{
	bool online;

	pthread_mutex_lock(&e->fabric_lock);
	online = d->lender->online;
	pthread_mutex_unlock(&e->fabric_lock);
	return online;
}

void model_host_flags(struct engine *e, const struct lhost *h, bool *live,
		      bool *admin)
{
	pthread_mutex_lock(&e->fabric_lock);
	*live = h->live;
	*admin = h->admin;
	pthread_mutex_unlock(&e->fabric_lock);
}

bool model_host_live(struct engine *e, const char *name)
{
	struct lhost *h = engine_host(e, name);
	bool live = false, admin;

	if (h)
		model_host_flags(e, h, &live, &admin);
	return live;
}

bool lend_remote(const struct engine *e, const struct ldevice *d)
{
	return e->self && d->lender != e->self;
}

bool lend_window_here(const struct engine *e, const struct window *w)
{
	return !e->self || !strcmp(w->host, e->self->name);
}

/* What another lender's device shows: its record, or offline (d->lock). */
enum dev_state replica_state(struct engine *e, const struct ldevice *d)
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

/* ---- pins ---------------------------------------------------------------- */

void model_pin(struct ldevice *d)
{
	__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
}

struct ldevice *model_get(struct engine *e, const char *id)
{
	struct ldevice *d;

	pthread_rwlock_rdlock(&e->model_lock);
	d = engine_dev(e, id);
	if (d)
		model_pin(d);
	pthread_rwlock_unlock(&e->model_lock);
	return d;
}

static void device_free(struct engine *e, struct ldevice *d);

void model_put(struct engine *e, struct ldevice *d)
{
	if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL))
		return;
	/* unlinked is set under the write lock, before the last pin goes */
	if (__atomic_load_n(&d->unlinked, __ATOMIC_ACQUIRE))
		device_free(e, d);
}

void dev_request_begin(struct engine *e, struct ldevice *d)
{
	pthread_mutex_lock(&e->req_mutex);
	while (d->req_busy)
		pthread_cond_wait(&e->req_cond, &e->req_mutex);
	d->req_busy = true;
	pthread_mutex_unlock(&e->req_mutex);
}

bool dev_request_try(struct engine *e, struct ldevice *d)
{
	bool got;

	pthread_mutex_lock(&e->req_mutex);
	got = !d->req_busy;
	d->req_busy = true;
	pthread_mutex_unlock(&e->req_mutex);
	return got;
}

void dev_request_end(struct engine *e, struct ldevice *d)
{
	pthread_mutex_lock(&e->req_mutex);
	d->req_busy = false;
	pthread_cond_broadcast(&e->req_cond); /* no syscall without waiters */
	pthread_mutex_unlock(&e->req_mutex);
}

int model_pin_all(struct engine *e, struct ldevice ***out, unsigned *n)
{
	struct ldevice **v;

	pthread_rwlock_rdlock(&e->model_lock);
	v = malloc((e->ndevs ? e->ndevs : 1) * sizeof(*v));
	if (!v) {
		pthread_rwlock_unlock(&e->model_lock);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < e->ndevs; i++) {
		v[i] = e->devs[i];
		model_pin(v[i]);
	}
	*n = e->ndevs;
	pthread_rwlock_unlock(&e->model_lock);
	*out = v;
	return 0;
}

void model_put_all(struct engine *e, struct ldevice **devs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		model_put(e, devs[i]);
	free(devs);
}

/* ---- devices ------------------------------------------------------------- */

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

int model_fill(struct ldevice *d, const struct cfg_device *c)
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

int model_add(struct engine *e, const struct cfg_device *c,
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
	d->refs = 1; /* the model's */
	iommu_domain_init(&d->iommu, h->iommu);
	if (model_fill(d, c) < 0) {
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

/* The device holds no lend. */
void model_unlink(struct engine *e, struct ldevice *d)
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
	/* the model's own pin goes: the last user frees it */
	__atomic_store_n(&d->unlinked, true, __ATOMIC_RELEASE);
	model_put(e, d);
}

/*
 * The config's devices, in one anonymous mapping rather than a malloc
 * each: its pages are zero until touched, and on a kernel with
 * transparent huge pages on madvise a 2 MiB page costs one fault where
 * 512 small ones cost 512 (a first touch is about 25 us on a VM).
 */
/*
 * LeakSanitizer scans the heap, not anonymous mappings: the slab is a root
 * region for it, or what a device points to (its text, its windows) would
 * look leaked.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MODEL_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MODEL_LSAN 1
#endif
#endif
#ifdef MODEL_LSAN
#include <sanitizer/lsan_interface.h>
#define slab_lsan_add(p, n) __lsan_register_root_region((p), (n))
#define slab_lsan_del(p, n) __lsan_unregister_root_region((p), (n))
#else
#define slab_lsan_add(p, n) ((void)0)
#define slab_lsan_del(p, n) ((void)0)
#endif

int model_slab_new(struct engine *e, size_t n)
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
	slab_lsan_add(p, bytes);
	return 0;
}


void model_free_all(struct engine *e)
{
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *d = e->devs[i];

		if (e->fabric_ctx)
			e->fabric->device_detach(e->fabric_ctx, d->id);
		device_free(e, d);
	}
	free(e->devs);
	e->devs = NULL;
	e->ndevs = 0;
	if (e->slab) {
		slab_lsan_del(e->slab, e->slab_bytes);
		munmap(e->slab, e->slab_bytes);
	}
	e->slab = NULL;
}
