// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * render.c - multi-line text views of the whole cluster: lends, links,
 * topology.dot, metrics, and a route.  Each takes its own consistent
 * snapshot under the engine's locks and never holds a lock while writing
 * more than one object.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bname.h"
#include "engine_internal.h"

static void render_hops(struct engine *e, const struct route *r, FILE *out)
{
	unsigned prev = r->src;

	for (unsigned i = 0; i < r->nhops; i++) {
		const struct route_hop *h = &r->hops[i];

		fprintf(out, "%s -> %s latency_ns %" PRIu64 "%s\n",
			topo_node_name(e->topo, prev), topo_node_name(e->topo, h->node),
			h->latency_ns, h->crossing ? " ntb" : "");
		prev = h->node;
	}
}

void engine_render_route(struct engine *e, const struct route *r, FILE *out)
{
	render_hops(e, r, out);
	fprintf(out, "latency_ns %" PRIu64 "\n", r->latency_ns);
	fprintf(out, "read_latency_ns %" PRIu64 "\n",
		r->latency_ns + (r->nhops ? e->cfg->remote_read_ns : 0));
}

void engine_render_peer(struct engine *e, const char *lender,
			const struct peer_view *p, FILE *out)
{
	if (p->error[0])
		fprintf(out, "error %s\n", p->error);
	if (p->via_root_complex)
		fprintf(out, "via root-complex %s\n", lender);
	else if (!p->route.nhops)
		fprintf(out, "via pcie-switch %s\n", lender);
	render_hops(e, &p->route, out);
	if (p->via_root_complex)
		fprintf(out, "root_complex_ns %" PRIu64 "\n", e->cfg->root_complex_ns);
	fprintf(out, "hops %u\n", p->route.nhops);
	fprintf(out, "latency_ns %" PRIu64 "\n", p->latency_ns);
}

int engine_render_lends(struct engine *e, FILE *out)
{
	pthread_rwlock_rdlock(&e->model_lock);
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *d = e->devs[i];

		pthread_mutex_lock(&d->lock);
		if (d->state != DEV_LENT) {
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		fprintf(out, "%s %s since %" PRId64 " windows %u latency_ns %" PRIu64,
			d->id, d->borrower, d->since, d->nwindows,
			d->has_route ? d->route->latency_ns : 0);
		/* the lease deadline, in whole seconds (SPEC section 9) */
		if (d->lease)
			fprintf(out, " expires %" PRId64, d->lease / (int64_t)1000000000);
		fputc('\n', out);
		pthread_mutex_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&e->model_lock);
	return 0;
}

int engine_render_links(struct engine *e, FILE *out)
{
	pthread_mutex_lock(&e->fabric_lock);
	for (unsigned i = 0; i < topo_link_count(e->topo); i++) {
		unsigned a, b;
		uint64_t lat, bw;

		topo_link_get(e->topo, i, &a, &b, &lat, &bw);
		fprintf(out, "%s %s %" PRIu64 " %" PRIu64 "\n",
			topo_node_name(e->topo, a), topo_node_name(e->topo, b), lat, bw);
	}
	pthread_mutex_unlock(&e->fabric_lock);
	return 0;
}

static void dot_id(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

int engine_render_topology_dot(struct engine *e, FILE *out)
{
	fprintf(out, "graph lendfs {\n\tgraph [label=");
	dot_id(out, e->cfg->name);
	fprintf(out, ", fontname=\"Helvetica\"];\n"
		     "\tnode [fontname=\"Helvetica\"];\n"
		     "\tedge [fontname=\"Helvetica\", fontsize=10];\n");
	pthread_rwlock_rdlock(&e->model_lock);
	pthread_mutex_lock(&e->fabric_lock);
	for (unsigned i = 0; i < topo_node_count(e->topo); i++) {
		const char *name = topo_node_name(e->topo, i);
		struct lhost *h = engine_host(e, name);

		fputc('\t', out);
		dot_id(out, name);
		if (h)
			fprintf(out, " [shape=box, style=%s, label=\"%s\\n%s %u/%u LUT%s\"];\n",
				h->online ? "solid" : "dashed", name, h->cfg->adapter,
				h->ntb.used, h->ntb.nentries,
				h->iommu ? "\\nIOMMU on" : "");
		else
			fprintf(out, " [shape=diamond];\n");
	}
	for (unsigned i = 0; i < topo_link_count(e->topo); i++) {
		unsigned a, b;
		uint64_t lat, bw;

		topo_link_get(e->topo, i, &a, &b, &lat, &bw);
		fputc('\t', out);
		dot_id(out, topo_node_name(e->topo, a));
		fprintf(out, " -- ");
		dot_id(out, topo_node_name(e->topo, b));
		fprintf(out, " [label=\"%" PRIu64 " ns\\n%" PRIu64 " MB/s\"%s];\n", lat,
			bw, topo_link_up(e->topo, i) ? "" : ", style=dashed");
	}
	pthread_mutex_unlock(&e->fabric_lock);
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *d = e->devs[i];
		struct bname bn;

		pthread_mutex_lock(&d->lock);
		if (d->state == DEV_LENT) {
			const char *b = d->borrower;

			if (bname_parse(b, &bn) == 0)
				b = bn.host; /* a VM: the host it runs on */
			fputc('\t', out);
			dot_id(out, d->lender->name);
			fprintf(out, " -- ");
			dot_id(out, b);
			fprintf(out, " [color=\"#d62728\", penwidth=2, dir=forward, label=");
			dot_id(out, d->id);
			fprintf(out, "];\n");
		}
		pthread_mutex_unlock(&d->lock);
	}
	pthread_rwlock_unlock(&e->model_lock);
	fprintf(out, "}\n");
	return 0;
}

int engine_render_metrics(struct engine *e, FILE *out)
{
	unsigned states[DEV_OFFLINE + 1] = { 0 };

	metrics_render(&e->metrics, out);
	evlog_render_metrics(e, out);
	pthread_rwlock_rdlock(&e->model_lock);
	for (unsigned i = 0; i < e->ndevs; i++) {
		pthread_mutex_lock(&e->devs[i]->lock);
		states[e->devs[i]->state]++;
		pthread_mutex_unlock(&e->devs[i]->lock);
	}
	metrics_header(out, "lendfs_active_lends", "gauge", "Devices currently lent.");
	fprintf(out, "lendfs_active_lends %u\n", states[DEV_LENT]);
	metrics_header(out, "lendfs_devices", "gauge", "Devices by state.");
	for (unsigned s = 0; s <= DEV_OFFLINE; s++)
		fprintf(out, "lendfs_devices{state=\"%s\"} %u\n", dev_state_name(s),
			states[s]);

	metrics_header(out, "lendfs_host_online", "gauge",
		       "1 when the host is online.");
	pthread_mutex_lock(&e->fabric_lock); /* the online flags */
	for (unsigned i = 0; i < e->nhosts; i++)
		fprintf(out, "lendfs_host_online{host=\"%s\"} %d\n", e->hosts[i].name,
			e->hosts[i].online);
	pthread_mutex_unlock(&e->fabric_lock);
	metrics_header(out, "lendfs_lut_entries", "gauge",
		       "NTB translation table size per adapter.");
	for (unsigned i = 0; i < e->nhosts; i++)
		fprintf(out, "lendfs_lut_entries{host=\"%s\",adapter=\"%s\"} %u\n",
			e->hosts[i].name, e->hosts[i].cfg->adapter,
			e->hosts[i].ntb.nentries);
	metrics_header(out, "lendfs_lut_entries_used", "gauge",
		       "NTB translation entries in use per adapter.");
	pthread_mutex_lock(&e->fabric_lock);
	for (unsigned i = 0; i < e->nhosts; i++)
		fprintf(out, "lendfs_lut_entries_used{host=\"%s\",adapter=\"%s\"} %u\n",
			e->hosts[i].name, e->hosts[i].cfg->adapter,
			e->hosts[i].ntb.used);
	metrics_header(out, "lendfs_dma_windows_used", "gauge",
		       "NTB reverse DMA windows in use per adapter.");
	for (unsigned i = 0; i < e->nhosts; i++)
		fprintf(out, "lendfs_dma_windows_used{host=\"%s\",adapter=\"%s\"} %u\n",
			e->hosts[i].name, e->hosts[i].cfg->adapter,
			e->hosts[i].ntb.dma_used);
	pthread_mutex_unlock(&e->fabric_lock);
	metrics_header(out, "lendfs_iommu_faults_total", "counter",
		       "DMA refused by a lender IOMMU (modelled faults).");
	for (unsigned i = 0; i < e->nhosts; i++) {
		uint64_t faults = 0, bad = 0;

		if (e->fabric->host_stats)
			e->fabric->host_stats(e->fabric_ctx, e->hosts[i].name, &faults,
					      &bad);
		fprintf(out, "lendfs_iommu_faults_total{host=\"%s\"} %" PRIu64 "\n",
			e->hosts[i].name, faults);
	}
	pthread_rwlock_unlock(&e->model_lock);
	return 0;
}
