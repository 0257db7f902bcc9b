// SPDX-License-Identifier: LGPL-2.1-or-later
/* watch.c - poll(2) on the files of the tree (watch.h). */
#include "watch.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "util.h"

#define POLL_CHANGED (POLLIN | POLLRDNORM | POLLPRI | POLLERR)
/*
 * An append-only log reports more to read, as a pipe or a growing file
 * would: POLLERR there means a broken input to readers such as less(1),
 * which stop following it.
 */
#define POLL_APPENDED (POLLIN | POLLRDNORM)

/* A file with at least one open descriptor. */
struct watched {
	char *path; /* the key */
	bool append; /* an append-only log: a change is "more to read" */
	bool known; /* content, len and err hold a rendering */
	/*
	 * Changed since that rendering, not rendered again yet: a change
	 * renders a file at once only when a poller waits on it; otherwise
	 * the next poll or read of a descriptor renders it (settle()), so a
	 * request does not render the files nobody polls (the writer's own
	 * `borrower`, every request).
	 */
	bool stale;
	char *content;
	size_t len;
	int err; /* the last render failed: the file is gone */
	uint64_t gen;
	struct watch_fd *fds;
	struct watched *prev, *next;
};

struct watch_fd {
	struct watched *f;
	uint64_t seen;
	struct fuse_pollhandle *ph; /* a poller waiting for the next change */
	struct watch_fd *prev, *next;
};

struct watches {
	pthread_mutex_t lock;
	struct hashmap *files; /* path -> struct watched */
	struct watched *all;
	watch_render_fn render;
	void *arg;
};

/* Pollers to wake, collected under the lock, woken after it. */
struct wake {
	struct fuse_pollhandle **ph;
	size_t n, cap;
};

static void wake_add(struct wake *k, struct fuse_pollhandle *ph)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 16;
		void *v = realloc(k->ph, cap * sizeof(*k->ph));

		if (!v) { /* cannot remember it: wake it now, under the lock */
			fuse_notify_poll(ph);
			fuse_pollhandle_destroy(ph);
			return;
		}
		k->ph = v;
		k->cap = cap;
	}
	k->ph[k->n++] = ph;
}

static void wake_run(struct wake *k)
{
	for (size_t i = 0; i < k->n; i++) {
		fuse_notify_poll(k->ph[i]);
		fuse_pollhandle_destroy(k->ph[i]);
	}
	free(k->ph);
}

int watches_new(watch_render_fn render, void *arg, struct watches **out)
{
	struct watches *w = calloc(1, sizeof(*w));

	if (!w || !(w->files = hashmap_new(64))) {
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	w->render = render;
	w->arg = arg;
	*out = w;
	return 0;
}

static void watched_free(struct watches *w, struct watched *f)
{
	hashmap_remove(w->files, f->path);
	if (f->prev)
		f->prev->next = f->next;
	else
		w->all = f->next;
	if (f->next)
		f->next->prev = f->prev;
	free(f->content);
	free(f->path);
	free(f);
}

void watches_free(struct watches *w)
{
	if (!w)
		return;
	while (w->all) /* a watched file goes with its last descriptor */
		watch_close(w, w->all->fds);
	hashmap_free(w->files);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* @path rendered now into *buf, *len (NULL, 0 when it failed): 0 or -errno. */
static int render_now(struct watches *w, const char *path, char **buf,
		      size_t *len)
{
	int r;

	*buf = NULL;
	*len = 0;
	r = w->render(w->arg, path, buf, len);
	if (r < 0) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return r < 0 ? r : 0;
}

static void set_content(struct watched *f, char *buf, size_t len, int err)
{
	free(f->content);
	f->known = true;
	f->content = buf;
	f->len = len;
	f->err = err;
}

/* The content of @f now, as it stands: no change counted (lock held). */
static void baseline(struct watches *w, struct watched *f)
{
	char *buf;
	size_t len;
	int r = render_now(w, f->path, &buf, &len);

	set_content(f, buf, len, r);
	f->stale = false;
}

/* Render @f again (lock held); a new content bumps its generation. */
static void refresh(struct watches *w, struct watched *f, struct wake *k)
{
	char *buf;
	size_t len;
	int r = render_now(w, f->path, &buf, &len);

	f->stale = false;
	/*
	 * Not known yet: no descriptor has finished a read (one may be in
	 * the middle of one, with the old content): count it as a change, a
	 * wake-up too many at worst, never one too few.
	 */
	if (f->known && r == f->err && len == f->len &&
	    (len == 0 || memcmp(buf, f->content, len) == 0)) {
		free(buf);
		return;
	}
	set_content(f, buf, len, r);
	f->gen++;
	for (struct watch_fd *fd = f->fds; fd; fd = fd->next) {
		if (fd->ph)
			wake_add(k, fd->ph);
		fd->ph = NULL;
	}
}

/*
 * Before a descriptor's poll or read is compared with @f's generation
 * (lock held): a change that came while nobody polled counts now, as it
 * would have then (on a file not rendered yet, as a change: refresh()).
 * No poller can be waiting on a stale file, as the change would have
 * rendered it at once; @k takes one anyway, never losing a wake-up.
 */
static void settle(struct watches *w, struct watched *f, struct wake *k)
{
	if (f->stale)
		refresh(w, f, k);
}

/* A change of @f (lock held): rendered now if a poller waits, else later. */
static void changed(struct watches *w, struct watched *f, struct wake *k)
{
	for (struct watch_fd *fd = f->fds; fd; fd = fd->next) {
		if (fd->ph) {
			refresh(w, f, k);
			return;
		}
	}
	f->stale = true;
}

static struct watched *watched_get(struct watches *w, const char *path)
{
	struct watched *f = hashmap_get(w->files, path);

	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return NULL;
	}
	if (hashmap_put(w->files, f->path, f) < 0) {
		free(f->path);
		free(f);
		return NULL;
	}
	f->next = w->all;
	if (w->all)
		w->all->prev = f;
	w->all = f;
	return f; /* rendered by the first read, poll or change */
}

int watch_open(struct watches *w, const char *path, bool append,
	       struct watch_fd **out)
{
	struct watch_fd *fd = calloc(1, sizeof(*fd));
	struct watched *f;

	if (!fd)
		return -ENOMEM;
	pthread_mutex_lock(&w->lock);
	f = watched_get(w, path);
	if (f) {
		f->append = append;
		fd->f = f;
		fd->seen = f->gen;
		fd->next = f->fds;
		if (f->fds)
			f->fds->prev = fd;
		f->fds = fd;
	}
	pthread_mutex_unlock(&w->lock);
	if (!f) {
		free(fd);
		return -ENOMEM;
	}
	*out = fd;
	return 0;
}

void watch_close(struct watches *w, struct watch_fd *fd)
{
	struct watched *f;

	if (!fd)
		return;
	pthread_mutex_lock(&w->lock);
	f = fd->f;
	if (fd->prev)
		fd->prev->next = fd->next;
	else
		f->fds = fd->next;
	if (fd->next)
		fd->next->prev = fd->prev;
	if (!f->fds)
		watched_free(w, f);
	pthread_mutex_unlock(&w->lock);
	if (fd->ph)
		fuse_pollhandle_destroy(fd->ph);
	free(fd);
}

void watch_read(struct watches *w, struct watch_fd *fd)
{
	struct wake k = { 0 };

	pthread_mutex_lock(&w->lock);
	settle(w, fd->f, &k);
	fd->seen = fd->f->gen;
	pthread_mutex_unlock(&w->lock);
	wake_run(&k);
}

void watch_rendered(struct watches *w, struct watch_fd *fd, const char *buf,
		    size_t len)
{
	struct watched *f = fd->f;
	char *copy = len ? malloc(len) : NULL;

	if (len && !copy)
		return; /* the first change renders it instead */
	if (len)
		memcpy(copy, buf, len);
	pthread_mutex_lock(&w->lock);
	if (!f->known) {
		set_content(f, copy, len, 0);
		copy = NULL;
	}
	pthread_mutex_unlock(&w->lock);
	free(copy);
}

void watch_unread(struct watches *w, struct watch_fd *fd)
{
	pthread_mutex_lock(&w->lock);
	fd->seen = fd->f->gen - 1;
	pthread_mutex_unlock(&w->lock);
}

void watch_path_changed(struct watches *w, const char *path)
{
	struct wake k = { 0 };
	struct watched *f;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	f = hashmap_get(w->files, path);
	if (f)
		changed(w, f, &k);
	pthread_mutex_unlock(&w->lock);
	wake_run(&k);
}

unsigned watch_poll(struct watches *w, struct watch_fd *fd,
		    struct fuse_pollhandle *ph)
{
	struct fuse_pollhandle *old = NULL;
	struct wake k = { 0 };
	unsigned ev = 0;

	pthread_mutex_lock(&w->lock);
	if (!fd->f->known && !fd->f->stale) /* polled before any read or change */
		baseline(w, fd->f);
	settle(w, fd->f, &k);
	if (fd->seen != fd->f->gen) {
		ev = fd->f->append ? POLL_APPENDED : POLL_CHANGED;
		old = ph;
	} else if (ph) {
		old = fd->ph;
		fd->ph = ph;
	}
	pthread_mutex_unlock(&w->lock);
	wake_run(&k);
	if (old)
		fuse_pollhandle_destroy(old);
	return ev;
}

/* Is @path in the directory of device @devid ("/devices/ID/...")? */
static bool of_device(const char *path, const char *devid)
{
	static const char dir[] = "/devices/";
	size_t n = strlen(devid);

	return !strncmp(path, dir, sizeof(dir) - 1) &&
	       !strncmp(path + sizeof(dir) - 1, devid, n) &&
	       path[sizeof(dir) - 1 + n] == '/';
}

/*
 * Refresh the watched files of device @devid (with `lends`), or those
 * under @prefix when @devid is "", or all when it is NULL.
 */
static void refresh_matching(struct watches *w, const char *devid,
			     const char *prefix)
{
	struct wake k = { 0 };

	pthread_mutex_lock(&w->lock);
	for (struct watched *f = w->all; f; f = f->next)
		if (!devid || (devid[0] ? of_device(f->path, devid) ||
				!strcmp(f->path, "/lends") :
				!strncmp(f->path, prefix, strlen(prefix))))
			changed(w, f, &k);
	pthread_mutex_unlock(&w->lock);
	wake_run(&k);
}

void watch_device_changed(struct watches *w, const char *devid)
{
	if (w && devid && devid[0])
		refresh_matching(w, devid, "");
}

void watch_all_changed(struct watches *w)
{
	if (w)
		refresh_matching(w, NULL, "");
}

void watch_compos_changed(struct watches *w)
{
	if (w)
		refresh_matching(w, "", "/compositions/");
}
