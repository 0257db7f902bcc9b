// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * view.c - what front-ends read of the model (engine.h): consistent
 * copies of a device or a host, and walks over devices and hosts.  Each
 * takes the model's read lock only for the copy or the walk.
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"

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
	v->lease = d->state == DEV_LENT ? d->lease : 0;
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
		r = p2p_view(e, d, v);
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

static bool lend_matches(const struct ldevice *d, const char *host,
			 bool by_lender)
{
	return d->state == DEV_LENT &&
	       (by_lender ? !strcmp(d->lender->name, host) :
			    bname_on_host(d->borrower, host));
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

