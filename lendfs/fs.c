// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fs.c - the lendfs FUSE operations: resolve a path to a node of the
 * tree, then hand the work to the node's attribute table (attr.h) or the
 * temp files.
 *
 *   MOUNT/{version,lends,metrics}               cluster_attrs
 *   MOUNT/devices/ID/ATTR                       device_attrs
 *   MOUNT/devices/ID/peers/PEER                 device_peer_show()
 *   MOUNT/devices/ID/plans/HOST                 device_plan_show()
 *   MOUNT/devices/ID/TMPNAME                    tmpfile.c
 *   MOUNT/hosts/HOST/ATTR                       host_attrs
 *   MOUNT/hosts/HOST/{lent,borrowed}/ID         symlinks to the device
 *   MOUNT/hosts/HOST/vms/VM/ATTR                vm_attrs (mkdir / rmdir VM)
 *   MOUNT/hosts/HOST/vms/VM/devices/ID          symlinks to the device
 *   MOUNT/compositions/NAME/ATTR                compo_attrs (mkdir / rmdir NAME)
 *   MOUNT/compositions/NAME/plans/HOST          compo_plan_show()
 *   MOUNT/fabric/{links,topology.dot}           fabric_attrs
 *
 * An attribute's mode, its store() (writable or not), its rendering and
 * its directory's listing come from its table; the areas only say which
 * names exist.  Every write(2) to an attribute, and every rename(2) of a
 * temp file onto `borrower`, is one request through attr_write().
 *
 * Lookups are O(1) in the number of devices: a device is found by id
 * (engine_device_exists / engine_device_view), never by a scan.
 *
 * Every file is opened with direct_io: reads are never served from the
 * page cache, and the errno of a borrower write reaches write(2).  An
 * open file renders its value when read at offset 0 and serves later
 * offsets from that snapshot, so one sequential read is consistent.
 * The append-only log `events` is the exception (events_read()).
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "attr.h"
#include "bname.h"
#include "cache.h"
#include "log.h"
#include "path.h"
#include "tmpfile.h"
#include "watch.h"

#define DIR_MODE 0755
#define CACHE_TIMEOUT_S 1.0 /* entries and attributes the kernel keeps */
#define DEVICE_DIR_MODE 0775 /* the group creates temp files there */
#define LINK_PREFIX "../../../devices/"
#define VM_LINK_PREFIX "../../../../../devices/"
#define VMS_DIR_MODE 0775 /* the group creates VMs there */

/* ---- path resolution ------------------------------------------------ */

static struct lendfs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static bool device_exists(struct lendfs *fs, const char *dev)
{
	return engine_device_exists(fs->engine, dev);
}

static int host_match(void *arg, const char *host)
{
	return strcmp(arg, host) == 0;
}

/* O(hosts): a host view would count the IOMMU mappings of every device. */
static bool host_exists(struct lendfs *fs, const char *host)
{
	return engine_foreach_host(fs->engine, host_match, (void *)host) > 0;
}

static bool host_link_exists(struct lendfs *fs, const char *host,
			     bool borrowed, const char *dev)
{
	return engine_device_lent_to_or_by(fs->engine, dev, host, !borrowed);
}

static bool peer_exists(struct lendfs *fs, const char *dev, const char *peer)
{
	struct device_view v;
	bool yes;

	if (engine_device_view(fs->engine, dev, &v) < 0)
		return false;
	yes = device_peer_exists(&v, peer);
	device_view_release(&v);
	return yes;
}

/* devices/ID/plans/HOST: HOST is a host, and not the device's lender. */
static bool plan_exists(struct lendfs *fs, const char *dev, const char *host)
{
	struct device_view v;
	bool yes;

	if (!host_exists(fs, host) || engine_device_view(fs->engine, dev, &v) < 0)
		return false;
	yes = device_plan_exists(&v, host);
	device_view_release(&v);
	return yes;
}

/* hosts/H/vms/VM/devices/ID: is ID lent to vm:H/VM? */
static bool vm_link_exists(struct lendfs *fs, const struct node *nd)
{
	char owner[BORROWER_MAX + 1];

	return bname_format_vm(owner, sizeof(owner), nd->host, nd->vm) == 0 &&
	       engine_device_lent_to_or_by(fs->engine, nd->dev, owner, false);
}

/*
 * Fill @nd for @path: the parser (path.c) checks the syntax, then the
 * engine is asked about the names it accepted, outermost first.  Returns
 * 0 when the path exists, except for a temp file (area_is_tmp()), where 0 means "a temp file
 * name in an existing device directory" whether or not the temp file
 * exists.
 */
static int resolve(struct lendfs *fs, const char *path, struct node *nd)
{
	int r = path_parse(path, nd);

	if (area_in_device(nd->area) && !device_exists(fs, nd->dev))
		return -ENOENT;
	if (area_in_host(nd->area) && !host_exists(fs, nd->host))
		return -ENOENT;
	if (r < 0)
		return r;
	if (nd->area == AREA_PEER && !peer_exists(fs, nd->dev, nd->name))
		return -ENOENT;
	if (nd->area == AREA_PLAN && !plan_exists(fs, nd->dev, nd->name))
		return -ENOENT;
	if (nd->area == AREA_COMPO_PLAN && !host_exists(fs, nd->name))
		return -ENOENT;
	if (area_in_vm(nd->area) &&
	    !engine_vm_exists(fs->engine, nd->host, nd->vm))
		return -ENOENT;
	if (nd->area == AREA_VM_LINK && !vm_link_exists(fs, nd))
		return -ENOENT;
	if (area_in_compo(nd->area) && !engine_compo_exists(fs->engine, nd->comp))
		return -ENOENT;
	if (nd->area == AREA_HOST_LINK &&
	    !host_link_exists(fs, nd->host, nd->borrowed, nd->dev))
		return -ENOENT;
	return 0;
}

/* Resolve to something that exists (temp files included). */
static int resolve_existing(struct lendfs *fs, const char *path,
			    struct node *nd, struct tmpfile **tmp)
{
	int r = resolve(fs, path, nd);

	*tmp = NULL;
	if (r < 0 || !area_is_tmp(nd->area))
		return r;
	*tmp = tmpfile_get(fs->tmp, nd->tmpdir, nd->name);
	return *tmp ? 0 : -ENOENT;
}

/* ---- rendering ------------------------------------------------------ */

/* The context of the node's attribute (ids only: no view taken yet). */
static void node_ctx(struct lendfs *fs, const struct node *nd,
		     const struct engine_caller *who, struct attr_ctx *ctx)
{
	*ctx = (struct attr_ctx){
		.engine = fs->engine,
		.devid = nd->dev,
		.host = nd->host,
		.vm = nd->vm,
		.compo = nd->comp,
		.who = who,
	};
}

/* An attribute: the table takes the object's view, show() renders it. */
static int render_attr(struct lendfs *fs, const struct node *nd, FILE *out)
{
	const struct attr_table *t = nd->table;
	struct attr_ctx ctx;
	int r;

	node_ctx(fs, nd, NULL, &ctx);
	r = t->get ? t->get(&ctx) : 0;
	if (r < 0)
		return r;
	r = nd->attr->show(&ctx, out);
	if (t->put)
		t->put(&ctx);
	return r;
}

/* devices/ID/peers/PEER, a regular file that is no attribute. */
static int render_peer(struct lendfs *fs, const struct node *nd, FILE *out)
{
	struct device_view v;
	int r = engine_device_view(fs->engine, nd->dev, &v);

	if (r < 0)
		return r;
	r = device_peer_show(fs->engine, &v, nd->name, out);
	device_view_release(&v);
	return r;
}

static int render_node(struct lendfs *fs, const struct node *nd, FILE *out)
{
	if (nd->attr)
		return render_attr(fs, nd, out);
	if (nd->area == AREA_PLAN) /* computed now: see device_plan_show() */
		return device_plan_show(fs->engine, nd->dev, nd->name, out);
	if (nd->area == AREA_COMPO_PLAN)
		return compo_plan_show(fs->engine, nd->comp, nd->name, out);
	return nd->area == AREA_PEER ? render_peer(fs, nd, out) : -EISDIR;
}

/* Render a file into a malloc'd buffer. */
static int render(struct lendfs *fs, const struct node *nd, char **buf,
		  size_t *len)
{
	char *p = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&p, &n);
	int r;

	if (!out)
		return -ENOMEM;
	r = render_node(fs, nd, out);
	if (fclose(out) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(p);
		return r;
	}
	*buf = p;
	*len = n;
	return 0;
}

/* What a watched file renders now, for watch.h (-ENOENT: it is gone). */
int lendfs_watch_render(void *arg, const char *path, char **buf, size_t *len)
{
	struct lendfs *fs = arg;
	struct node nd;
	int r = resolve(fs, path, &nd);

	return r < 0 ? r : render(fs, &nd, buf, len);
}

/* ---- attributes ----------------------------------------------------- */

/*
 * Permissions (docs/PERMISSIONS.md): everything belongs to the daemon's
 * user and the write group; everyone reads; the owner and the group write
 * `borrower`, hosts/HOST/state and create temp files in device
 * directories.  Without the group only the owner writes.  The kernel
 * enforces the modes (default_permissions).
 */
int lendfs_set_group(struct lendfs *fs, const char *group)
{
	struct group gr, *res = NULL;
	char buf[4096];
	int r;

	fs->uid = geteuid();
	fs->gid = getegid();
	fs->group_write = false;
	if (!group || !*group)
		return 0;
	r = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
	if (r != 0 || !res) {
		lendfs_log(LOG_WARNING, "group %s %s: only %s can write", group,
			   r ? strerror(r) : "does not exist",
			   fs->uid == 0 ? "root" : "the daemon's user");
		return r ? -r : -ENOENT;
	}
	fs->gid = res->gr_gid;
	fs->group_write = true;
	return 0;
}

static mode_t group_mode(const struct lendfs *fs, mode_t mode)
{
	return fs->group_write ? mode : mode & ~(mode_t)S_IWGRP;
}

static mode_t node_mode(const struct lendfs *fs, const struct node *nd)
{
	if (nd->attr)
		return group_mode(fs, nd->attr->mode);
	switch (nd->area) {
	case AREA_PEER:
	case AREA_PLAN:
	case AREA_COMPO_PLAN:
		return ATTR_RO;
	case AREA_HOST_LINK:
	case AREA_VM_LINK:
		return 0777;
	case AREA_DEVICE:
	case AREA_COMPO:
		return group_mode(fs, DEVICE_DIR_MODE);
	case AREA_VMS:
	case AREA_COMPOS:
		return group_mode(fs, VMS_DIR_MODE);
	default:
		return DIR_MODE;
	}
}

static bool node_writable(const struct node *nd)
{
	return nd->attr && nd->attr->store;
}

/*
 * `events`: its size is what a descriptor opened now (or @base's) reads
 * to the end, and it grows with every append; its mtime is the last
 * event's time.  `tail -f` follows the size.
 */
static void log_stat(struct lendfs *fs, const uint64_t *base, struct stat *st)
{
	uint64_t begin, end;
	int64_t t;

	engine_events_span(fs->engine, &begin, &end, NULL, &t);
	st->st_size = (off_t)(end - (base ? MIN(*base, end) : begin));
	if (t > 0) {
		st->st_mtim.tv_sec = t / 1000000000LL;
		st->st_mtim.tv_nsec = t % 1000000000LL;
		st->st_ctim = st->st_mtim;
	}
}

static int node_stat(struct lendfs *fs, const struct node *nd,
		     struct tmpfile *tmp, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	if (tmp) {
		tmpfile_stat(fs->tmp, tmp, st);
		return 0;
	}
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = st->st_mtim = st->st_ctim = fs->start;
	st->st_blksize = 4096;
	if (area_is_dir(nd->area)) {
		st->st_mode = S_IFDIR | node_mode(fs, nd);
		st->st_nlink = 2;
	} else if (nd->area == AREA_HOST_LINK || nd->area == AREA_VM_LINK) {
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)(strlen(nd->area == AREA_VM_LINK ? VM_LINK_PREFIX :
					     LINK_PREFIX) + strlen(nd->dev));
	} else if (nd->attr && nd->attr->log) {
		log_stat(fs, NULL, st);
		st->st_mode = S_IFREG | node_mode(fs, nd);
		st->st_nlink = 1;
	} else {
		char *buf;
		size_t len;
		int r = render(fs, nd, &buf, &len);

		if (r < 0)
			return r;
		free(buf);
		st->st_mode = S_IFREG | node_mode(fs, nd);
		st->st_nlink = 1;
		st->st_size = (off_t)len;
	}
	return 0;
}

/* ---- open files ----------------------------------------------------- */

struct handle {
	struct node node;
	struct tmpfile *tmp; /* AREA_TMP */
	pthread_mutex_t lock;
	char *buf; /* the snapshot being read */
	size_t len;
	bool rendered;
	struct watch_fd *watch; /* a pollable attribute (watch.h) */
	uint64_t base; /* `events`: the log's offset at this file's offset 0 */
	struct handle *prev, *next; /* every open handle: handles_lock */
};

/*
 * Open handles, counted against LENDFS_MAX_OPEN and listed so that those
 * still open when the loop ends (a RELEASE the kernel had not sent yet)
 * are freed in lendfs_destroy().  One mount per process.
 */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle *handles_all;

static struct handle *handle_of(const struct fuse_file_info *fi)
{
	return fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

/* At most LENDFS_MAX_OPEN open files in the mount: -ENFILE beyond. */
static int handle_open(struct lendfs *fs, struct fuse_file_info *fi,
		       const char *path, const struct node *nd,
		       struct tmpfile *tmp)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	if (nd->attr && nd->attr->poll && fs->watches &&
	    watch_open(fs->watches, path, nd->attr->log, &h->watch) < 0) {
		free(h);
		return -ENOMEM;
	}
	pthread_mutex_lock(&handles_lock);
	if (fs->handles >= LENDFS_MAX_OPEN) {
		pthread_mutex_unlock(&handles_lock);
		watch_close(fs->watches, h->watch);
		free(h);
		return -ENFILE;
	}
	fs->handles++;
	h->next = handles_all;
	if (handles_all)
		handles_all->prev = h;
	handles_all = h;
	pthread_mutex_unlock(&handles_lock);
	h->node = *nd;
	h->tmp = tmp;
	if (nd->attr && nd->attr->log) /* offset 0: the oldest retained event */
		engine_events_span(fs->engine, &h->base, &(uint64_t){ 0 }, NULL,
				   NULL);
	pthread_mutex_init(&h->lock, NULL);
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fi->noflush = !tmp; /* close(2) never fails here: no FLUSH round trip */
	return 0;
}

static void handle_free(struct lendfs *fs, struct handle *h)
{
	pthread_mutex_lock(&handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		handles_all = h->next;
	if (h->next)
		h->next->prev = h->prev;
	fs->handles--;
	pthread_mutex_unlock(&handles_lock);
	tmpfile_put(fs->tmp, h->tmp);
	watch_close(fs->watches, h->watch);
	pthread_mutex_destroy(&h->lock);
	free(h->buf);
	free(h);
}

/*
 * The node (and a temp file reference) an operation works on: the open
 * handle when there is one (its path may be NULL or gone by now), else
 * the path.  Release *tmp with tmpfile_put().
 */
static int lookup(struct lendfs *fs, const char *path,
		  struct fuse_file_info *fi, struct node *nd,
		  struct tmpfile **tmp)
{
	struct handle *h = handle_of(fi);

	if (h) {
		*nd = h->node;
		*tmp = h->tmp ? tmpfile_ref(fs->tmp, h->tmp) : NULL;
		return 0;
	}
	return resolve_existing(fs, path, nd, tmp);
}

/* ---- FUSE operations ------------------------------------------------ */

static void *lendfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct lendfs *fs = fs_get();

	/*
	 * The kernel keeps names and attributes (no LOOKUP per component,
	 * no GETATTR per open) and is told when they change (cache.h); the
	 * timeout only bounds what no notification covers.  Contents are
	 * never cached (direct_io) and missing names not at all.
	 */
	cfg->entry_timeout = CACHE_TIMEOUT_S;
	cfg->attr_timeout = CACHE_TIMEOUT_S;
	cfg->negative_timeout = 0;
	cfg->use_ino = 0;
	cfg->nullpath_ok = 0;
	/*
	 * No ".fuse_hidden" renames: a temp file unlinked while open lives
	 * on in its handle, and renaming onto an open `borrower` must not
	 * turn into a rename of `borrower` itself.
	 */
	cfg->hard_remove = 1;
	cache_attach(fs->cache, fuse_get_context()->fuse);
	return fs;
}

static void comm_cache_clear(void);

static void lendfs_destroy(void *private_data)
{
	struct lendfs *fs = private_data;

	cache_detach(fs->cache);
	comm_cache_clear();
	/* no request runs any more: what the kernel did not release, we do */
	while (handles_all)
		handle_free(fs, handles_all);
}

static int lendfs_getattr(const char *path, struct stat *st,
			  struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node nd;
	int r = lookup(fs, path, fi, &nd, &tmp);

	if (r < 0)
		return r;
	r = node_stat(fs, &nd, tmp, st);
	tmpfile_put(fs->tmp, tmp);
	if (r == 0 && handle_of(fi) && nd.attr && nd.attr->log)
		log_stat(fs, &handle_of(fi)->base, st); /* fstat: its own size */
	if (r == 0 && nd.dev[0])
		cache_seen(fs->cache, nd.dev); /* the kernel may keep it now */
	if (r == 0 && nd.host[0])
		cache_seen_host(fs->cache, nd.host);
	return r;
}

static int lendfs_access(const char *path, int mask)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node nd;
	int r = resolve_existing(fs, path, &nd, &tmp);

	if (r < 0)
		return r;
	tmpfile_put(fs->tmp, tmp);
	if (tmp || mask == F_OK)
		return 0;
	if (area_is_dir(nd.area))
		return (mask & W_OK) && !area_has_tmp(nd.area) &&
		       nd.area != AREA_VMS && nd.area != AREA_COMPOS ? -EACCES : 0;
	if ((mask & X_OK) || ((mask & W_OK) && !node_writable(&nd)))
		return -EACCES;
	return 0;
}

static int lendfs_readlink(const char *path, char *buf, size_t size)
{
	struct lendfs *fs = fs_get();
	struct node nd;
	int r = resolve(fs, path, &nd);

	if (r < 0)
		return r;
	if (nd.area != AREA_HOST_LINK && nd.area != AREA_VM_LINK)
		return -EINVAL;
	if (size == 0)
		return -EINVAL;
	snprintf(buf, size, "%s%s",
		 nd.area == AREA_VM_LINK ? VM_LINK_PREFIX : LINK_PREFIX, nd.dev);
	return 0;
}

struct fill {
	void *buf;
	fuse_fill_dir_t filler;
	mode_t mode;
	struct lendfs *fs;
	bool plus; /* READDIRPLUS: full attributes with each entry */
	off_t skip, pos; /* offset mode (devices/): entries already sent, this one */
};

static int fill_one(struct fill *f, const char *name, mode_t mode)
{
	struct stat st = { .st_mode = mode };

	return f->filler(f->buf, name, &st, 0, 0) ? -ENOMEM : 0;
}

static int fill_cb(void *arg, const char *name)
{
	struct fill *f = arg;

	return fill_one(f, name, f->mode);
}

/* Returns 1 when the kernel's buffer is full: stop, it asks again. */
static int fill_device_cb(void *arg, const char *devid)
{
	struct fill *f = arg;
	struct node nd = { .area = AREA_DEVICE };
	struct stat st;

	if (++f->pos <= f->skip)
		return 0;
	snprintf(nd.dev, sizeof(nd.dev), "%s", devid);
	node_stat(f->fs, &nd, NULL, &st);
	if (f->plus)
		cache_seen(f->fs->cache, devid); /* the kernel keeps it now */
	return f->filler(f->buf, devid, &st, f->pos,
			 f->plus ? FUSE_FILL_DIR_PLUS : 0) ? 1 : 0;
}

/*
 * devices/ is read in offset mode (".", "..", then device i at offset
 * i + 3): with READDIRPLUS libfuse then hands the kernel every device's
 * node and attributes, so that `ls -l` of 100,000 devices costs no LOOKUP
 * per device.  (In its buffered mode, offset 0, libfuse drops them.)
 */
static int readdir_devices(struct lendfs *fs, struct fill *f, off_t off)
{
	static const char *const dots[] = { ".", ".." };
	struct stat st = { .st_mode = S_IFDIR };
	int r;

	f->skip = off;
	f->pos = 0;
	for (size_t i = 0; i < ARRAY_SIZE(dots); i++)
		if (++f->pos > off && f->filler(f->buf, dots[i], &st, f->pos, 0))
			return 0;
	r = engine_foreach_device(fs->engine, fill_device_cb, f);
	return r < 0 ? r : 0;
}

static int fill_tmp_cb(void *arg, const char *name, const struct stat *st)
{
	struct fill *f = arg;

	return f->filler(f->buf, name, st, 0, 0) ? -ENOMEM : 0;
}

/* A directory with a table: its attributes, then its subdirectories. */
static int readdir_table(struct lendfs *fs, const struct node *nd,
			 struct fill *f)
{
	const struct attr_table *t = nd->table;
	int r = 0;

	for (size_t i = 0; i < t->n && r == 0; i++)
		r = fill_one(f, t->attrs[i].name, S_IFREG);
	for (const char *const *d = t->dirs; d && *d && r == 0; d++)
		r = fill_one(f, *d, S_IFDIR);
	if (r == 0 && area_has_tmp(nd->area)) /* config tools' temp files */
		r = tmpfile_foreach(fs->tmp, nd->tmpdir, fill_tmp_cb, f);
	return r;
}

static int readdir_peers(struct lendfs *fs, const struct node *nd,
			 struct fill *f)
{
	struct device_view v;
	int r = engine_device_view(fs->engine, nd->dev, &v);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < v.npeers && r == 0; i++)
		r = fill_one(f, v.peers[i].device, S_IFREG);
	device_view_release(&v);
	return r;
}

struct plans_fill {
	struct fill *f;
	const char *lender;
};

static int fill_plan_cb(void *arg, const char *host)
{
	struct plans_fill *p = arg;

	return strcmp(host, p->lender) ? fill_one(p->f, host, S_IFREG) : 0;
}

/* One plan per host that could borrow: every host but the lender. */
static int readdir_plans(struct lendfs *fs, const struct node *nd,
			 struct fill *f)
{
	struct device_view v;
	struct plans_fill p = { f, NULL };
	int r = engine_device_view(fs->engine, nd->dev, &v);

	if (r < 0)
		return r;
	p.lender = v.lender; /* filled now */
	r = engine_foreach_host(fs->engine, fill_plan_cb, &p);
	device_view_release(&v);
	return r;
}

/* The directories the engine lists: hosts, VMs, symlinks, peers, plans. */
static int readdir_listed(struct lendfs *fs, const struct node *nd,
			  struct fill *f)
{
	char owner[BORROWER_MAX + 1];
	int r;

	switch (nd->area) {
	case AREA_PEERS:
		return readdir_peers(fs, nd, f);
	case AREA_PLANS:
		return readdir_plans(fs, nd, f);
	case AREA_HOSTS:
		f->mode = S_IFDIR;
		return engine_foreach_host(fs->engine, fill_cb, f);
	case AREA_HOST_LINKS:
		f->mode = S_IFLNK;
		if (nd->borrowed)
			return engine_foreach_borrowed_by(fs->engine, nd->host,
							  fill_cb, f);
		return engine_foreach_lent_by(fs->engine, nd->host, fill_cb, f);
	case AREA_VMS:
		f->mode = S_IFDIR;
		return engine_foreach_vm(fs->engine, nd->host, fill_cb, f);
	case AREA_COMPOS:
		f->mode = S_IFDIR;
		return engine_foreach_compo(fs->engine, fill_cb, f);
	case AREA_COMPO_PLANS: /* one per host: any could borrow it */
		return engine_foreach_host(fs->engine, fill_cb, f);
	case AREA_VM_LINKS:
		f->mode = S_IFLNK;
		r = bname_format_vm(owner, sizeof(owner), nd->host, nd->vm);
		if (r < 0)
			return r;
		return engine_foreach_borrowed_by(fs->engine, owner, fill_cb, f);
	default:
		return 0;
	}
}

static int lendfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			  off_t off, struct fuse_file_info *fi,
			  enum fuse_readdir_flags flags)
{
	struct lendfs *fs = fs_get();
	struct fill f = { buf, filler, S_IFREG, fs, flags & FUSE_READDIR_PLUS, 0, 0 };
	struct node nd;
	int r = resolve(fs, path, &nd);

	if (r < 0)
		return r;
	if (!area_is_dir(nd.area))
		return -ENOTDIR;
	if (nd.area == AREA_DEVICES)
		return readdir_devices(fs, &f, off);
	if (fill_one(&f, ".", S_IFDIR) || fill_one(&f, "..", S_IFDIR))
		return -ENOMEM;
	if (nd.table)
		r = readdir_table(fs, &nd, &f);
	else
		r = readdir_listed(fs, &nd, &f);
	return r < 0 ? r : 0;
}

static int lendfs_open(const char *path, struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	bool wr = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct tmpfile *tmp;
	struct node nd;
	int r = resolve_existing(fs, path, &nd, &tmp);

	if (r < 0)
		return r;
	if (area_is_dir(nd.area)) {
		r = wr ? -EISDIR : 0;
	} else if (tmp) {
		if (fi->flags & O_TRUNC)
			r = tmpfile_truncate(fs->tmp, tmp, 0);
	} else if (wr && !node_writable(&nd)) {
		r = -EACCES;
	}
	/* O_TRUNC on an attribute does nothing: only a write is a request. */
	if (r == 0)
		r = handle_open(fs, fi, path, &nd, tmp);
	if (r < 0)
		tmpfile_put(fs->tmp, tmp);
	return r;
}

static int lendfs_create(const char *path, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	const struct fuse_context *ctx = fuse_get_context();
	char parent[PATH_MAX], *slash;
	struct tmpfile *tmp;
	struct node nd;
	int r;

	/* Only a device or composition directory takes new (temp) files. */
	if (strlen(path) >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, strlen(path) + 1);
	slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	r = resolve(fs, parent, &nd);
	if (r < 0)
		return r;
	if (!area_has_tmp(nd.area))
		return area_is_dir(nd.area) ? -EACCES : -ENOTDIR;

	r = resolve(fs, path, &nd);
	if (r < 0)
		return r;
	if (!area_is_tmp(nd.area))
		return -EEXIST; /* an attribute, peers/ or plans/ */
	r = tmpfile_create(fs->tmp, nd.tmpdir, nd.name, mode, ctx->uid, ctx->gid,
			   &tmp);
	if (r < 0)
		return r;
	r = handle_open(fs, fi, path, &nd, tmp);
	if (r < 0) {
		tmpfile_unlink(fs->tmp, tmp);
		tmpfile_put(fs->tmp, tmp);
	}
	return r;
}

/*
 * `events`, an append-only log: a read copies the engine's lines from
 * the descriptor's offset (h->base + off), holding nothing per descriptor
 * but that base, so a reader open for days costs the daemon nothing.  A
 * reader left behind by the retention skips to the oldest line kept.  A
 * read at the end returns 0 at once; one that stops short of it leaves
 * the descriptor ready for poll(2).
 */
static int events_read(struct lendfs *fs, struct handle *h, char *buf,
		       size_t size, off_t off)
{
	uint64_t pos, want, begin, end;
	size_t n;

	pthread_mutex_lock(&h->lock);
	if (h->watch) /* first: an append during the read wakes the next poll */
		watch_read(fs->watches, h->watch);
	pos = want = h->base + (uint64_t)off;
	n = engine_events_read(fs->engine, &pos, buf, size);
	h->base += pos - want;
	engine_events_span(fs->engine, &begin, &end, NULL, NULL);
	if (h->watch && pos + n < end)
		watch_unread(fs->watches, h->watch);
	pthread_mutex_unlock(&h->lock);
	return (int)n;
}

static int lendfs_read(const char *path, char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	struct handle *h = handle_of(fi);
	int r = 0;

	if (!h)
		return -EBADF;
	if (h->tmp)
		return tmpfile_read(fs->tmp, h->tmp, buf, size, off);
	if (off < 0)
		return -EINVAL;
	if (h->node.attr && h->node.attr->log)
		return events_read(fs, h, buf, MIN(size, (size_t)INT_MAX), off);

	pthread_mutex_lock(&h->lock);
	if (off == 0 || !h->rendered) {
		free(h->buf);
		h->buf = NULL;
		h->len = 0;
		h->rendered = false;
		if (h->watch)
			watch_read(fs->watches, h->watch);
		r = render(fs, &h->node, &h->buf, &h->len);
		h->rendered = r == 0;
		if (h->watch && r == 0)
			watch_rendered(fs->watches, h->watch, h->buf, h->len);
	}
	if (r == 0 && (uint64_t)off < h->len) {
		r = (int)MIN(size, h->len - (size_t)off);
		memcpy(buf, h->buf + off, (size_t)r);
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

/*
 * The writer's command, from /proc/PID/comm, for the `events` log: at
 * most 15 bytes, its newline dropped; bytes outside 0x20..0x7e become '?'
 * (the log escapes the rest).  "" when the process is gone or in another
 * PID namespace.
 *
 * The descriptors of the last COMM_CACHE writers stay open, so that a
 * writer's next request costs one pread(2), not an open, a read and a
 * close (docs/PERFORMANCE.md, "Where the time goes", Lend).  pread(2)
 * reads the comm of now (an exec or PR_SET_NAME in between shows); a
 * descriptor stays bound to the process it was opened for, so once that
 * one is gone (its PID free, or reused by another process) it reads
 * ESRCH and is opened again for the PID's new owner: no process is ever
 * named by another's comm.
 */
#define COMM_CACHE 8

static struct {
	pthread_mutex_t lock;
	struct comm_fd {
		pid_t pid; /* 0: free */
		int fd;
		uint64_t used;
	} e[COMM_CACHE];
	uint64_t tick;
} comms = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The slot of @pid, or the least recently used one (closed, pid 0). */
static struct comm_fd *comm_slot(pid_t pid)
{
	struct comm_fd *lru = &comms.e[0];

	for (unsigned i = 0; i < COMM_CACHE; i++) {
		if (comms.e[i].pid == pid)
			return &comms.e[i];
		if (comms.e[i].used < lru->used)
			lru = &comms.e[i];
	}
	if (lru->pid)
		close(lru->fd);
	lru->pid = 0;
	return lru;
}

/* pread @pid's comm into @comm through its slot (opened if need be). */
static ssize_t comm_pread(pid_t pid, char *comm, size_t cap)
{
	struct comm_fd *c = comm_slot(pid);
	char path[32];
	ssize_t n = -1;

	for (int tries = 0; tries < 2 && n < 0; tries++) {
		if (!c->pid) {
			snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
			c->fd = open(path, O_RDONLY | O_CLOEXEC);
			if (c->fd < 0)
				return -1;
			c->pid = pid;
		}
		n = pread(c->fd, comm, cap - 1, 0);
		if (n < 0) { /* its process is gone: the PID's owner now */
			close(c->fd);
			c->pid = 0;
		}
	}
	c->used = ++comms.tick;
	return n;
}

static void caller_comm(pid_t pid, char *comm, size_t cap)
{
	ssize_t n;

	comm[0] = '\0';
	pthread_mutex_lock(&comms.lock);
	n = comm_pread(pid, comm, cap);
	pthread_mutex_unlock(&comms.lock);
	if (n <= 0)
		return;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	for (char *c = comm; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
}

/* The mount goes away: close the cached descriptors. */
static void comm_cache_clear(void)
{
	pthread_mutex_lock(&comms.lock);
	for (unsigned i = 0; i < COMM_CACHE; i++) {
		if (comms.e[i].pid)
			close(comms.e[i].fd);
		comms.e[i].pid = 0;
	}
	pthread_mutex_unlock(&comms.lock);
}

/*
 * Who is writing: the FUSE request's caller, and the file the request
 * came through (@origin, a path of the tree, or NULL).
 */
static void caller_fill(struct engine_caller *who, const char *origin)
{
	const struct fuse_context *fc = fuse_get_context();

	*who = (struct engine_caller){ .origin = origin };
	if (!fc)
		return;
	who->uid = fc->uid;
	who->pid = (uint32_t)fc->pid;
	if (fc->pid > 0)
		caller_comm(fc->pid, who->comm, sizeof(who->comm));
}

/*
 * The one write path: one write(2) to attribute @nd, or the content of a
 * temp file renamed onto it, is one request.  It goes to the attribute's
 * store() with its caller (@origin: the file it came through, whose
 * cached attributes the change leaves alone, cache.h), and its outcome
 * is logged here, once.  0 or -errno, for write(2) or rename(2).
 */
static int attr_write(struct lendfs *fs, const struct node *nd,
		      const char *buf, size_t len, const char *origin)
{
	struct engine_caller who;
	struct attr_write w = { .buf = buf, .len = len };
	struct attr_ctx ctx;
	char value[ATTR_VALUE_LOG_MAX];
	int r;

	if (len > INT_MAX)
		return -EINVAL;
	if (!node_writable(nd))
		return -EACCES;
	caller_fill(&who, origin);
	node_ctx(fs, nd, &who, &ctx);
	lendfs_log_value(buf, value_len(buf, len), value, sizeof(value));
	w.value = value;
	r = nd->attr->store(&ctx, &w);
	if (r < 0) {
		lendfs_log(LOG_WARNING, "cannot %s: %s", w.what, w.reason);
		return r;
	}
	if (w.done[0])
		lendfs_log(LOG_NOTICE, "%s", w.done);
	return 0;
}

/* One write is one request; the offset is ignored, as in sysfs. */
static int lendfs_write(const char *path, const char *buf, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	struct handle *h = handle_of(fi);
	int r;

	if (!h)
		return -EBADF;
	if (h->tmp)
		return tmpfile_write(fs->tmp, h->tmp, buf, size, off);
	r = attr_write(fs, &h->node, buf, size, path);
	return r < 0 ? r : (int)size;
}

/* Never a request: O_TRUNC and `: >` arrive here, before the write. */
static int lendfs_truncate(const char *path, off_t size,
			   struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node nd;
	int r = lookup(fs, path, fi, &nd, &tmp);

	if (r < 0)
		return r;
	if (tmp)
		r = tmpfile_truncate(fs->tmp, tmp, size);
	else if (area_is_dir(nd.area))
		r = -EISDIR;
	else if (!node_writable(&nd))
		r = -EACCES;
	tmpfile_put(fs->tmp, tmp);
	return r;
}

static int lendfs_unlink(const char *path)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node nd;
	int r = resolve_existing(fs, path, &nd, &tmp);

	if (r < 0)
		return r;
	if (!tmp)
		return -EPERM;
	r = tmpfile_unlink(fs->tmp, tmp);
	tmpfile_put(fs->tmp, tmp);
	return r;
}

/* mkdir compositions/NAME (SPEC section 10). */
static int mkdir_compo(struct lendfs *fs, const struct node *nd)
{
	char reason[REASON_MAX] = "", value[80];
	int r = engine_compo_create(fs->engine, nd->comp, reason);

	lendfs_log_value(nd->comp, strlen(nd->comp), value, sizeof(value));
	if (r < 0)
		lendfs_log(LOG_WARNING, "cannot create composition %s: %s", value,
			   reason);
	else
		lendfs_log(LOG_NOTICE, "composition %s created", nd->comp);
	return r;
}

static int any_tmp_cb(void *arg, const char *name, const struct stat *st)
{
	return 1;
}

/* A composition's directory goes with it, unless a temp file is left. */
static int rmdir_compo(struct lendfs *fs, const struct node *nd)
{
	char reason[REASON_MAX] = "";
	int r;

	if (tmpfile_foreach(fs->tmp, nd->tmpdir, any_tmp_cb, NULL) != 0)
		return -ENOTEMPTY;
	r = engine_compo_remove(fs->engine, nd->comp, reason);

	if (r < 0)
		lendfs_log(LOG_WARNING, "cannot remove composition %s: %s", nd->comp,
			   reason);
	else
		lendfs_log(LOG_NOTICE, "composition %s removed", nd->comp);
	return r;
}

/*
 * Only hosts/HOST/vms/ and compositions/ take new directories: VM
 * borrowers and compositions (configfs), created and removed by the
 * engine (logged here).
 */
static int lendfs_mkdir(const char *path, mode_t mode)
{
	struct lendfs *fs = fs_get();
	char reason[REASON_MAX] = "", value[80];
	struct tmpfile *tmp;
	struct node nd;
	/* a temp file name resolves in any device directory: it must exist */
	int r = resolve_existing(fs, path, &nd, &tmp);

	tmpfile_put(fs->tmp, tmp);
	if (r == 0)
		return -EEXIST;
	if (r == -ENOENT && nd.area == AREA_COMPO)
		return mkdir_compo(fs, &nd);
	if (r != -ENOENT || nd.area != AREA_VM)
		return -EPERM;
	if (!host_exists(fs, nd.host))
		return -ENOENT;
	r = engine_vm_create(fs->engine, nd.host, nd.vm, reason);
	lendfs_log_value(nd.vm, strlen(nd.vm), value, sizeof(value));
	if (r < 0)
		lendfs_log(LOG_WARNING, "cannot create vm %s/%s: %s", nd.host,
			   value, reason);
	else
		lendfs_log(LOG_NOTICE, "vm %s/%s created", nd.host, nd.vm);
	return r;
}

static int lendfs_rmdir(const char *path)
{
	struct lendfs *fs = fs_get();
	char reason[REASON_MAX] = "";
	struct node nd;
	int r = resolve(fs, path, &nd);

	if (nd.area == AREA_COMPO)
		return r < 0 ? r : rmdir_compo(fs, &nd);
	if (nd.area != AREA_VM)
		return -EPERM;
	if (r < 0)
		return r;
	r = engine_vm_remove(fs->engine, nd.host, nd.vm, reason);
	if (r < 0)
		lendfs_log(LOG_WARNING, "cannot remove vm %s/%s: %s", nd.host,
			   nd.vm, reason);
	else
		lendfs_log(LOG_NOTICE, "vm %s/%s removed", nd.host, nd.vm);
	return r;
}

/*
 * What a temp file can be renamed over: a device's `borrower`, a
 * composition's `borrower` or `devices`.
 */
static bool rename_target(const struct node *nd)
{
	if (nd->area == AREA_DEVICE_ATTR)
		return strcmp(nd->attr->name, BORROWER_ATTR) == 0;
	return nd->area == AREA_COMPO_ATTR &&
	       (strcmp(nd->attr->name, BORROWER_ATTR) == 0 ||
		strcmp(nd->attr->name, COMPO_DEVICES_ATTR) == 0);
}

/*
 * A temp file renamed over `borrower` (of this or another device or
 * composition; or a composition's `devices`, rename_target()) is the
 * request: its content is one write, through the same write
 * path as write(2).  On success the temp file is gone; on failure
 * rename(2) gets the errno and the temp file stays, for the tool to
 * unlink.  Nothing else can be renamed or be a target.  The request came
 * through the temp file (@from): `borrower` itself is invalidated as
 * usual, since the kernel replaces its node with the temp file's.
 */
static int lendfs_rename(const char *from, const char *to, unsigned int flags)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node src, dst;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	r = resolve_existing(fs, from, &src, &tmp);
	if (r < 0)
		return r;
	if (!tmp)
		return -EINVAL;
	r = resolve(fs, to, &dst);
	if (r < 0 || !rename_target(&dst))
		r = r == -ENOENT ? -ENOENT : -EINVAL;
	else if (flags & RENAME_NOREPLACE)
		r = -EEXIST;
	else
		r = tmpfile_content(fs->tmp, tmp, &buf, &len);
	if (r == 0)
		r = attr_write(fs, &dst, buf, len, from);
	if (r == 0)
		tmpfile_unlink(fs->tmp, tmp); /* gone already: fine */
	tmpfile_put(fs->tmp, tmp);
	return r;
}

static int lendfs_chmod(const char *path, mode_t mode,
			struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node nd;
	int r = lookup(fs, path, fi, &nd, &tmp);

	if (r < 0)
		return r;
	if (tmp) {
		tmpfile_chmod(fs->tmp, tmp, mode);
		tmpfile_put(fs->tmp, tmp);
		return 0;
	}
	/* Setting what is already there is fine (config tools do that). */
	return (mode & 07777) == node_mode(fs, &nd) ? 0 : -EPERM;
}

static int lendfs_chown(const char *path, uid_t uid, gid_t gid,
			struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node nd;
	int r = lookup(fs, path, fi, &nd, &tmp);

	if (r < 0)
		return r;
	if (tmp) {
		tmpfile_chown(fs->tmp, tmp, uid, gid);
		tmpfile_put(fs->tmp, tmp);
		return 0;
	}
	if ((uid != (uid_t)-1 && uid != fs->uid) ||
	    (gid != (gid_t)-1 && gid != fs->gid))
		return -EPERM;
	return 0;
}

/* Times of the tree are the daemon's start time; touch is a no-op. */
static int lendfs_utimens(const char *path, const struct timespec ts[2],
			  struct fuse_file_info *fi)
{
	struct lendfs *fs = fs_get();
	struct tmpfile *tmp;
	struct node nd;
	int r = lookup(fs, path, fi, &nd, &tmp);

	if (r < 0)
		return r;
	if (tmp) {
		tmpfile_utimens(fs->tmp, tmp, ts);
		tmpfile_put(fs->tmp, tmp);
	}
	return 0;
}

/* Errors come from write(2) and rename(2), never from close(2). */
static int lendfs_flush(const char *path, struct fuse_file_info *fi)
{
	return 0;
}

static int lendfs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	if (h)
		handle_free(fs_get(), h);
	return 0;
}

/*
 * A pollable attribute waits for a change (watch.h); every other file is
 * always ready, as a regular file is.
 */
static int lendfs_poll(const char *path, struct fuse_file_info *fi,
		       struct fuse_pollhandle *ph, unsigned *reventsp)
{
	struct lendfs *fs = fs_get();
	struct handle *h = handle_of(fi);

	if (h && h->watch) {
		*reventsp = watch_poll(fs->watches, h->watch, ph);
		return 0;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	*reventsp = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
	return 0;
}

static int lendfs_statfs(const char *path, struct statvfs *st)
{
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_namemax = FS_NAME_MAX;
	return 0;
}

const struct fuse_operations lendfs_ops = {
	.init = lendfs_init,
	.destroy = lendfs_destroy,
	.getattr = lendfs_getattr,
	.access = lendfs_access,
	.readlink = lendfs_readlink,
	.readdir = lendfs_readdir,
	.open = lendfs_open,
	.create = lendfs_create,
	.read = lendfs_read,
	.write = lendfs_write,
	.truncate = lendfs_truncate,
	.unlink = lendfs_unlink,
	.mkdir = lendfs_mkdir,
	.rmdir = lendfs_rmdir,
	.rename = lendfs_rename,
	.chmod = lendfs_chmod,
	.chown = lendfs_chown,
	.utimens = lendfs_utimens,
	.flush = lendfs_flush,
	.release = lendfs_release,
	.poll = lendfs_poll,
	.statfs = lendfs_statfs,
};
