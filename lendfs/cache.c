// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cache.c - invalidate what the kernel caches of the tree when the engine
 * changes it (see cache.h for the rules).
 *
 * fuse_invalidate_path() looks the path up in libfuse's node table and,
 * when the kernel holds it, sends FUSE_NOTIFY_INVAL_INODE: cheap for a
 * path the kernel never saw (-ENOENT, no system call), one write to
 * /dev/fuse otherwise.  Every file of the tree is opened direct_io, so no
 * page cache is dropped and the notification never waits on a reader.
 */
#include "cache.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "hashmap.h"

/* The peers/ entries of one device the kernel may hold. */
struct peer_set {
	char id[DEVICE_ID_MAX]; /* the hash key */
	unsigned n;
	char (*peers)[DEVICE_ID_MAX];
};

struct lendfs_cache {
	struct engine *engine;
	pthread_rwlock_t fuse_lock; /* written by attach / detach only */
	struct fuse *fuse;

	pthread_mutex_t lock; /* the rest */
	struct hashmap *known; /* id -> index + 1 in ids */
	char **ids;	       /* device ids the kernel was told about */
	size_t nids, ids_cap;
	struct hashmap *peers; /* id -> struct peer_set */
	struct peer_set **sets;
	size_t nsets, sets_cap;
	char **hosts; /* hosts the kernel was told about (few) */
	size_t nhosts, hosts_cap;
	/* every host, for devices/ID/plans/HOST: fixed after engine_new() */
	char **all_hosts;
	size_t nall;
};

static int all_hosts_add(void *arg, const char *host)
{
	struct lendfs_cache *c = arg;
	char **v = realloc(c->all_hosts, (c->nall + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->all_hosts = v;
	if (!(v[c->nall] = strdup(host)))
		return -ENOMEM;
	c->nall++;
	return 0;
}

int cache_new(struct engine *e, struct lendfs_cache **out)
{
	struct lendfs_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->engine = e;
	c->known = hashmap_new(64);
	c->peers = hashmap_new(16);
	if (!c->known || !c->peers) {
		hashmap_free(c->known);
		hashmap_free(c->peers);
		free(c);
		return -ENOMEM;
	}
	pthread_rwlock_init(&c->fuse_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	if (engine_foreach_host(e, all_hosts_add, c) < 0) {
		cache_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void cache_free(struct lendfs_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nids; i++)
		free(c->ids[i]);
	for (size_t i = 0; i < c->nsets; i++) {
		free(c->sets[i]->peers);
		free(c->sets[i]);
	}
	for (size_t i = 0; i < c->nhosts; i++)
		free(c->hosts[i]);
	free(c->hosts);
	for (size_t i = 0; i < c->nall; i++)
		free(c->all_hosts[i]);
	free(c->all_hosts);
	free(c->ids);
	free(c->sets);
	hashmap_free(c->known);
	hashmap_free(c->peers);
	pthread_rwlock_destroy(&c->fuse_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void cache_attach(struct lendfs_cache *c, struct fuse *f)
{
	if (!c)
		return;
	pthread_rwlock_wrlock(&c->fuse_lock);
	c->fuse = f;
	pthread_rwlock_unlock(&c->fuse_lock);
}

void cache_detach(struct lendfs_cache *c)
{
	cache_attach(c, NULL);
}

/* ---- device ids the kernel knows ---------------------------------------- */

void cache_seen(struct lendfs_cache *c, const char *devid)
{
	char *id;

	if (!c || !devid || !devid[0])
		return;
	pthread_mutex_lock(&c->lock);
	if (hashmap_get(c->known, devid))
		goto out;
	if (c->nids == c->ids_cap) {
		size_t cap = c->ids_cap ? 2 * c->ids_cap : 64;
		char **n = realloc(c->ids, cap * sizeof(*n));

		if (!n)
			goto out;
		c->ids = n;
		c->ids_cap = cap;
	}
	id = strdup(devid);
	if (!id)
		goto out;
	if (hashmap_put(c->known, id, (void *)(uintptr_t)(c->nids + 1)) < 0) {
		free(id);
		goto out;
	}
	c->ids[c->nids++] = id;
out:
	pthread_mutex_unlock(&c->lock);
}

void cache_seen_host(struct lendfs_cache *c, const char *host)
{
	char *h;

	if (!c || !host || !host[0])
		return;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nhosts; i++)
		if (!strcmp(c->hosts[i], host))
			goto out;
	if (c->nhosts == c->hosts_cap) {
		size_t cap = c->hosts_cap ? 2 * c->hosts_cap : 8;
		char **n = realloc(c->hosts, cap * sizeof(*n));

		if (!n)
			goto out;
		c->hosts = n;
		c->hosts_cap = cap;
	}
	h = strdup(host);
	if (h)
		c->hosts[c->nhosts++] = h;
out:
	pthread_mutex_unlock(&c->lock);
}

/*
 * A copy of the hosts the kernel knows, to walk without c->lock: only
 * their hosts/H/ paths can be cached (a lend in a cluster of 100 hosts
 * then costs no 800 path lookups).  Free with hosts_free().
 */
static char **hosts_copy(struct lendfs_cache *c, size_t *n)
{
	char **v;

	*n = 0;
	pthread_mutex_lock(&c->lock);
	v = calloc(c->nhosts ? c->nhosts : 1, sizeof(*v));
	for (size_t i = 0; v && i < c->nhosts; i++)
		if ((v[*n] = strdup(c->hosts[i])))
			(*n)++;
	pthread_mutex_unlock(&c->lock);
	return v;
}

static void hosts_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Under c->lock: forget ids[i] (the last one moves into its place). */
static void forget(struct lendfs_cache *c, size_t i)
{
	char *id = c->ids[i];

	hashmap_remove(c->known, id);
	c->ids[i] = c->ids[--c->nids];
	if (i < c->nids) {
		hashmap_remove(c->known, c->ids[i]);
		hashmap_put(c->known, c->ids[i], (void *)(uintptr_t)(i + 1));
	}
	free(id);
}

/* ---- invalidation ------------------------------------------------------- */

/* The invalidations of one change, made by one request (or none). */
struct pass {
	struct lendfs_cache *c;
	const char *skip; /* the writer's own file (cache.h), or NULL */
};

static int inval_path(const struct pass *p, const char *path)
{
	if (p->skip && !strcmp(path, p->skip))
		return 0; /* the kernel drops what it must when the write returns */
	return fuse_invalidate_path(p->c->fuse, path);
}

/* 0, or -ENOENT when the kernel does not hold the path. */
_printf_(2, 3) static int inval(const struct pass *p, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return inval_path(p, path);
}

/*
 * Every file of attribute table @t under directory @dir ("" for the
 * root): the directory's path is formatted once and each name appended.
 */
static void inval_table(const struct pass *p, const char *dir,
			const struct attr_table *t)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len + 1 >= sizeof(path))
		return;
	memcpy(path, dir, len);
	path[len++] = '/';
	for (size_t i = 0; i < t->n; i++) {
		size_t nl = strlen(t->attrs[i].name);

		if (t->attrs[i].constant)
			continue; /* nothing to drop: it never changes */
		if (len + nl < sizeof(path)) {
			memcpy(path + len, t->attrs[i].name, nl + 1);
			inval_path(p, path);
		}
	}
}

/*
 * Under c->lock (the invalidations need none, only the remembered sets):
 * invalidate devices/@id/peers/P for every P the kernel
 * may hold (the peers remembered, and those of @v), then remember @v's.
 */
static void peers_changed(const struct pass *p, const char *id,
			  const struct device_view *v)
{
	struct lendfs_cache *c = p->c;
	struct peer_set *s = hashmap_get(c->peers, id);

	for (unsigned i = 0; s && i < s->n; i++)
		inval(p, "/devices/%s/peers/%s", id, s->peers[i]);
	for (unsigned i = 0; v && i < v->npeers; i++)
		inval(p, "/devices/%s/peers/%s", id, v->peers[i].device);
	if (!v || !v->npeers) {
		if (s)
			s->n = 0; /* the set stays, empty: devices do come back */
		return;
	}
	if (!s) {
		if (c->nsets == c->sets_cap) {
			size_t cap = c->sets_cap ? 2 * c->sets_cap : 16;
			struct peer_set **n = realloc(c->sets, cap * sizeof(*n));

			if (!n)
				return;
			c->sets = n;
			c->sets_cap = cap;
		}
		s = calloc(1, sizeof(*s));
		if (!s)
			return;
		snprintf(s->id, sizeof(s->id), "%s", id);
		if (hashmap_put(c->peers, s->id, s) < 0) {
			free(s);
			return;
		}
		c->sets[c->nsets++] = s;
	}
	free(s->peers);
	s->n = 0;
	s->peers = malloc(v->npeers * sizeof(*s->peers));
	if (!s->peers)
		return;
	for (unsigned i = 0; i < v->npeers; i++)
		snprintf(s->peers[i], sizeof(s->peers[i]), "%s", v->peers[i].device);
	s->n = v->npeers;
}

struct link_ctx {
	const struct pass *p;
	const char *id;
	const char *host;
};

static int vm_link_changed(void *arg, const char *vm)
{
	struct link_ctx *l = arg;

	inval(l->p, "/hosts/%s/vms/%s/%s/%s", l->host, vm, VM_DEVICES_DIR, l->id);
	return 0;
}

/*
 * devices/ID/plans/H: a plan is computed at every read (direct_io), but
 * its size, which stat(2) shows, changes with the device's state.  (A
 * change elsewhere in the cluster changes it too, and is not followed
 * here: at most CACHE_TIMEOUT_S of fs.c, docs/ABI/devices-ID-plans-HOST.)
 */
static void plans_changed(const struct pass *p, const char *id)
{
	/*
	 * A node of libfuse holds its parent's, so when devices/ID/plans is
	 * not held (-ENOENT) none of its files is: no lookup per host (33
	 * snprintf() and path walks a request in make bench's cluster were
	 * 3% of the daemon's time).  When it is, it is invalidated too.
	 */
	if (inval(p, "/devices/%s/" PLANS_DIR, id) == -ENOENT)
		return;
	for (size_t i = 0; i < p->c->nall; i++)
		inval(p, "/devices/%s/" PLANS_DIR "/%s", id, p->c->all_hosts[i]);
}

/* hosts/H/{lent,borrowed}/ID and hosts/H/vms/VM/devices/ID */
static int host_links_changed(void *arg, const char *host)
{
	struct link_ctx *l = arg;

	l->host = host;
	inval(l->p, "/hosts/%s/lent/%s", host, l->id);
	inval(l->p, "/hosts/%s/borrowed/%s", host, l->id);
	engine_foreach_vm(l->p->c->engine, host, vm_link_changed, l);
	return 0;
}

/*
 * Everything that names device @id, whose view is @v (NULL: it is gone).
 * c->lock is taken only around the cache's own state, never across an
 * engine call: the engine calls cache_seen() with its model lock held
 * (readdir).
 */
static void device_changed(const struct pass *p, const char *id,
			   const struct device_view *v)
{
	struct lendfs_cache *c = p->c;
	struct link_ctx l = { p, id, NULL };
	char dir[DEVICE_ID_MAX + 16];
	char **hosts;
	size_t nhosts;

	if (!v) { /* gone: its directories too */
		inval(p, "/devices/%s", id);
		inval(p, "/devices/%s/peers", id);
		inval(p, "/devices/%s/" PLANS_DIR, id);
	}
	plans_changed(p, id);
	snprintf(dir, sizeof(dir), "/devices/%s", id);
	inval_table(p, dir, &device_attrs);
	pthread_mutex_lock(&c->lock);
	peers_changed(p, id, v);
	pthread_mutex_unlock(&c->lock);
	hosts = hosts_copy(c, &nhosts);
	for (size_t i = 0; i < nhosts; i++)
		host_links_changed(&l, hosts[i]);
	hosts_free(hosts, nhosts);
}

static int vm_attrs_changed(void *arg, const char *vm)
{
	struct link_ctx *l = arg;
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "/hosts/%s/vms/%s", l->host, vm);
	inval_table(l->p, dir, &vm_attrs);
	return 0;
}

static int host_attrs_changed(void *arg, const char *host)
{
	struct link_ctx *l = arg;
	char dir[HOST_NAME_MAX_LEN + 16];

	snprintf(dir, sizeof(dir), "/hosts/%s", host);
	inval_table(l->p, dir, &host_attrs);
	l->host = host;
	engine_foreach_vm(l->p->c->engine, host, vm_attrs_changed, l);
	return 0;
}

/* The files about the whole cluster: lends, metrics, hosts, the fabric. */
static void cluster_changed(const struct pass *p)
{
	struct link_ctx l = { p, NULL, NULL };
	size_t nhosts;
	char **hosts = hosts_copy(p->c, &nhosts);

	inval_table(p, "", &cluster_attrs);
	inval_table(p, "/fabric", &fabric_attrs);
	for (size_t i = 0; i < nhosts; i++)
		host_attrs_changed(&l, hosts[i]);
	hosts_free(hosts, nhosts);
}

/* lendfs's origin of a request is the path it wrote (fs.c). */
static struct pass pass_of(struct lendfs_cache *c,
			   const struct engine_caller *who)
{
	return (struct pass){ c, who ? who->origin : NULL };
}

void cache_device_changed(struct lendfs_cache *c, const char *devid,
			  const struct device_view *v,
			  const struct engine_caller *who)
{
	struct pass p = pass_of(c, who);

	if (!c)
		return;
	pthread_rwlock_rdlock(&c->fuse_lock);
	if (c->fuse) {
		device_changed(&p, devid, v);
		cluster_changed(&p);
	}
	pthread_rwlock_unlock(&c->fuse_lock);
}

/* Every device the kernel was told about; those gone are forgotten. */
static void known_changed(const struct pass *p)
{
	struct lendfs_cache *c = p->c;
	char **ids = NULL;
	size_t n = 0;

	/* a copy: the engine is called without c->lock */
	pthread_mutex_lock(&c->lock);
	ids = calloc(c->nids ? c->nids : 1, sizeof(*ids));
	for (size_t i = 0; ids && i < c->nids; i++)
		if ((ids[n] = strdup(c->ids[i])))
			n++;
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		struct device_view v;
		bool exists = engine_device_view(c->engine, ids[i], &v) == 0;

		device_changed(p, ids[i], exists ? &v : NULL);
		if (exists) {
			device_view_release(&v);
		} else {
			uintptr_t at;

			pthread_mutex_lock(&c->lock);
			at = (uintptr_t)hashmap_get(c->known, ids[i]);
			if (at)
				forget(c, at - 1);
			pthread_mutex_unlock(&c->lock);
		}
		free(ids[i]);
	}
	free(ids);
}

void cache_all_changed(struct lendfs_cache *c, const struct engine_caller *who)
{
	struct pass p = pass_of(c, who);

	if (!c)
		return;
	pthread_rwlock_rdlock(&c->fuse_lock);
	if (c->fuse) {
		known_changed(&p);
		cluster_changed(&p);
	}
	pthread_rwlock_unlock(&c->fuse_lock);
}
