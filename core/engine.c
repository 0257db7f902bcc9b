// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * engine.c - building an engine and taking it apart (engine.h): the
 * back-ends, the coordination and the borrower kinds, chosen once here;
 * the hosts and the config's devices; then the coordination's start,
 * which brings the stored lends back.
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"
#include "fault.h"

static int hosts_new(struct engine *e, char *reason)
{
	const struct cluster_config *cfg = e->cfg;

	for (unsigned i = 0; i < cfg->nhosts; i++) {
		struct lhost *h = &e->hosts[i];
		int r;

		snprintf(h->name, sizeof(h->name), "%s", cfg->hosts[i].name);
		h->cfg = &cfg->hosts[i];
		h->admin = true;
		h->live = !e->coord->per_host; /* else once its daemon is seen */
		h->online = h->live;
		h->node = (unsigned)topo_node_find(e->topo, h->name);
		h->next_bar = BAR_BASE;
		r = ntb_table_init(&h->ntb, h->cfg);
		if (r < 0)
			return reason_set(reason, r, "host %s: invalid NTB adapter settings",
					  h->name);
		h->iommu = h->cfg->iommu;
		e->nhosts++;
		hashmap_put(e->hostmap, h->name, h);
	}
	return 0;
}

/* The fabric, with the RAM of every host and config VM attached. */
static int fabric_open(struct engine *e, char *reason)
{
	const struct cluster_config *cfg = e->cfg;
	int r = e->fabric->open(cfg, e->run_dir, &e->fabric_ctx, reason);

	for (unsigned i = 0; r == 0 && i < cfg->nhosts; i++)
		r = e->fabric->ram_attach(e->fabric_ctx, cfg->hosts[i].name,
					  cfg->hosts[i].ram, cfg->hosts[i].nram, NULL,
					  reason);
	for (unsigned i = 0; r == 0 && i < cfg->nvms; i++) {
		char owner[BORROWER_MAX + 1];

		bname_format_vm(owner, sizeof(owner), cfg->vms[i].host,
				cfg->vms[i].name);
		r = e->fabric->ram_attach(e->fabric_ctx, owner, cfg->vms[i].ram,
					  cfg->vms[i].nram, NULL, reason);
	}
	return r;
}

static struct engine *engine_alloc(const struct engine_options *opt)
{
	const struct cluster_config *cfg = opt->cfg;
	struct engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->cfg = cfg;
	e->fabric = opt->fabric;
	e->store = opt->store;
	e->coord = opt->coord ? opt->coord : &coord_local_ops;
	e->host_borrower = &borrower_host_ops;
	e->vm_borrower = &borrower_vm_ops;
	e->log = opt->log;
	e->log_arg = opt->log_arg;
	snprintf(e->run_dir, sizeof(e->run_dir), "%s", opt->run_dir ? opt->run_dir : "");
	pthread_mutex_init(&e->req_mutex, NULL);
	pthread_cond_init(&e->req_cond, NULL);
	pthread_rwlock_init(&e->model_lock, NULL);
	pthread_rwlock_init(&e->watch_lock, NULL);
	pthread_mutex_init(&e->fabric_lock, NULL);
	pthread_mutex_init(&e->comp_lock, NULL);
	lease_init(e);
	vmreg_init(e);
	compose_init(e);
	e->event_retain = cfg->event_retention ? cfg->event_retention : EVENT_RETAIN_DEFAULT;
	if (evlog_init(&e->events, e->event_retain) < 0) {
		engine_free(e);
		return NULL;
	}
	e->hostmap = hashmap_new(cfg->nhosts);
	e->devmap = hashmap_new(cfg->ndevices);
	e->hosts = calloc(cfg->nhosts, sizeof(*e->hosts));
	e->devs_cap = cfg->ndevices ? cfg->ndevices : 64;
	e->devs = calloc(e->devs_cap, sizeof(*e->devs));
	if (cfg->ndevices && model_slab_new(e, cfg->ndevices) < 0)
		e->slab = NULL;
	if (!e->hostmap || !e->devmap || !e->hosts || !e->devs ||
	    (cfg->ndevices && !e->slab)) {
		engine_free(e);
		return NULL;
	}
	return e;
}

/* Which host this daemon is, where the coordination wants one. */
static int self_find(struct engine *e, const char *local_host, char *reason)
{
	if (!e->coord->per_host)
		return 0;
	e->self = local_host ? engine_host(e, local_host) : NULL;
	if (!e->self)
		return reason_set(reason, -EINVAL,
				  "the %s coordination needs --host NAME, a host of the config (got '%s')",
				  e->coord->name, local_host ? local_host : "");
	return 0;
}

int engine_new(const struct engine_options *opt, struct engine **out,
	       char *reason)
{
	const struct cluster_config *cfg = opt->cfg;
	struct engine *e;
	int r;

	*out = NULL;
	r = fault_init(reason);
	if (r < 0)
		return r;
	e = engine_alloc(opt);
	if (!e)
		return reason_set(reason, -ENOMEM, "out of memory");
	r = topo_new(cfg, cfg->ntb_crossing_ns, &e->topo, reason);
	if (r == 0)
		r = hosts_new(e, reason);
	if (r == 0)
		r = self_find(e, opt->local_host, reason);
	if (r == 0)
		r = fabric_open(e, reason);
	if (r == 0)
		r = e->store->open(opt->store_where, &e->store_ctx, reason);
	if (r == 0 && e->store->event_sink_set)
		e->store->event_sink_set(e->store_ctx, evlog_sink, e, e->event_retain);
	if (r == 0 && !e->store->event_shared)
		r = evlog_load(e, reason); /* the retained history (zk: cluster.c) */
	if (r == 0)
		r = e->coord->open(e, e->store_ctx, &e->coord_ctx, reason);
	if (r == 0)
		r = vmreg_load(e, reason); /* VM borrowers: connect again */
	for (unsigned i = 0; r == 0 && i < cfg->ndevices; i++)
		r = model_add(e, &cfg->devices[i], &e->slab[i], reason);
	if (r == 0) {
		vmreg_start(e); /* VM events from here on */
		r = e->coord->start(e->coord_ctx, reason);
	}
	if (r == 0)
		r = lease_start(e, reason); /* after recovery expired what passed */
	if (r < 0) {
		engine_free(e);
		return r;
	}
	*out = e;
	return 0;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	lease_stop(e); /* first: it runs requests */
	if (e->coord_ctx)
		e->coord->close(e->coord_ctx); /* first: its threads use the engine */
	e->coord_ctx = NULL;
	vmreg_free(e); /* the VMs' callbacks use the engine */
	compose_free(e);
	p2p_free_all(e);
	model_free_all(e);
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
	pthread_mutex_destroy(&e->req_mutex);
	pthread_cond_destroy(&e->req_cond);
	pthread_rwlock_destroy(&e->model_lock);
	pthread_rwlock_destroy(&e->watch_lock);
	pthread_mutex_destroy(&e->fabric_lock);
	pthread_mutex_destroy(&e->comp_lock);
	lease_free(e);
	evlog_free(&e->events);
	free(e);
}
