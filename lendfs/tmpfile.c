// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tmpfile.c - in-memory temporary files in device directories.
 *
 * Directories are found by device id in a hash map (O(1) in the number
 * of devices) and exist only while they hold a temp file.  One mutex
 * guards everything: every operation is a short memory copy.
 */
#include "tmpfile.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hashmap.h"
#include "util.h"

struct tmpdir;

struct tmpfile {
	unsigned refs;		/* the directory's link counts as one */
	struct tmpdir *dir;	/* NULL once unlinked or renamed */
	char name[TMPFILE_NAME_MAX + 1];
	mode_t mode;		/* permission bits */
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
	char *data;
	size_t size;
};

struct tmpdir {
	char dev[DEVICE_ID_MAX]; /* the hash key */
	struct tmpfile *files[TMPFILE_MAX_PER_DIR];
	unsigned n;
	struct tmpdir *next, *prev; /* every directory, for teardown */
};

struct tmpfiles {
	pthread_mutex_t lock;
	struct hashmap *dirs;
	struct tmpdir *all;
	unsigned live; /* allocated files, named or only open */
};

int tmpfiles_new(struct tmpfiles **out)
{
	struct tmpfiles *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->dirs = hashmap_new(16);
	if (!t->dirs) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

/* Under the lock. */
static void file_unref(struct tmpfiles *t, struct tmpfile *f)
{
	if (--f->refs == 0) {
		free(f->data);
		free(f);
		t->live--;
	}
}

static void dir_drop(struct tmpfiles *t, struct tmpdir *d)
{
	hashmap_remove(t->dirs, d->dev);
	if (d->prev)
		d->prev->next = d->next;
	else
		t->all = d->next;
	if (d->next)
		d->next->prev = d->prev;
	free(d);
}

void tmpfiles_free(struct tmpfiles *t)
{
	if (!t)
		return;
	while (t->all) {
		struct tmpdir *d = t->all;

		for (unsigned i = 0; i < d->n; i++) {
			d->files[i]->dir = NULL;
			file_unref(t, d->files[i]);
		}
		dir_drop(t, d);
	}
	hashmap_free(t->dirs);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int dir_index(const struct tmpdir *d, const char *name)
{
	for (unsigned i = 0; i < d->n; i++)
		if (strcmp(d->files[i]->name, name) == 0)
			return (int)i;
	return -ENOENT;
}

static struct tmpdir *dir_get(struct tmpfiles *t, const char *dev)
{
	return hashmap_get(t->dirs, dev);
}

static struct tmpdir *dir_get_or_add(struct tmpfiles *t, const char *dev)
{
	struct tmpdir *d = dir_get(t, dev);

	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->dev, sizeof(d->dev), "%s", dev);
	if (hashmap_put(t->dirs, d->dev, d) < 0) {
		free(d);
		return NULL;
	}
	d->next = t->all;
	if (t->all)
		t->all->prev = d;
	t->all = d;
	return d;
}

static bool name_ok(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= TMPFILE_NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int tmpfile_create(struct tmpfiles *t, const char *dev, const char *name,
		   mode_t mode, uid_t uid, gid_t gid, struct tmpfile **out)
{
	struct tmpfile *f;
	struct tmpdir *d;
	struct timespec now;

	if (strlen(name) > TMPFILE_NAME_MAX)
		return -ENAMETOOLONG;
	if (!name_ok(name) || strlen(dev) >= DEVICE_ID_MAX)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->mode = mode & 07777;
	f->uid = uid;
	f->gid = gid;
	f->atime = f->mtime = f->ctime = now;
	f->refs = 2; /* the directory and the caller */

	pthread_mutex_lock(&t->lock);
	d = dir_get(t, dev);
	if (d && dir_index(d, name) >= 0) {
		pthread_mutex_unlock(&t->lock);
		free(f);
		return -EEXIST;
	}
	if ((d && d->n >= TMPFILE_MAX_PER_DIR) ||
	    t->live >= TMPFILE_MAX_TOTAL) {
		pthread_mutex_unlock(&t->lock);
		free(f);
		return -ENOSPC;
	}
	d = dir_get_or_add(t, dev);
	if (!d) {
		pthread_mutex_unlock(&t->lock);
		free(f);
		return -ENOMEM;
	}
	f->dir = d;
	d->files[d->n++] = f;
	t->live++;
	pthread_mutex_unlock(&t->lock);
	*out = f;
	return 0;
}

struct tmpfile *tmpfile_get(struct tmpfiles *t, const char *dev,
			    const char *name)
{
	struct tmpfile *f = NULL;
	struct tmpdir *d;
	int i;

	pthread_mutex_lock(&t->lock);
	d = dir_get(t, dev);
	if (d && (i = dir_index(d, name)) >= 0) {
		f = d->files[i];
		f->refs++;
	}
	pthread_mutex_unlock(&t->lock);
	return f;
}

struct tmpfile *tmpfile_ref(struct tmpfiles *t, struct tmpfile *f)
{
	pthread_mutex_lock(&t->lock);
	f->refs++;
	pthread_mutex_unlock(&t->lock);
	return f;
}

void tmpfile_put(struct tmpfiles *t, struct tmpfile *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&t->lock);
	file_unref(t, f);
	pthread_mutex_unlock(&t->lock);
}

/* Under the lock. */
static void fill_stat(const struct tmpfile *f, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | f->mode;
	st->st_nlink = f->dir ? 1 : 0;
	st->st_uid = f->uid;
	st->st_gid = f->gid;
	st->st_size = (off_t)f->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((f->size + 511) / 512);
	st->st_atim = f->atime;
	st->st_mtim = f->mtime;
	st->st_ctim = f->ctime;
}

void tmpfile_stat(struct tmpfiles *t, struct tmpfile *f, struct stat *st)
{
	pthread_mutex_lock(&t->lock);
	fill_stat(f, st);
	pthread_mutex_unlock(&t->lock);
}

int tmpfile_read(struct tmpfiles *t, struct tmpfile *f, char *buf,
		 size_t size, off_t off)
{
	size_t n = 0;

	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if ((uint64_t)off < f->size) {
		n = MIN(size, f->size - (size_t)off);
		memcpy(buf, f->data + off, n);
	}
	clock_gettime(CLOCK_REALTIME, &f->atime);
	pthread_mutex_unlock(&t->lock);
	return (int)n;
}

/* Under the lock: grow or shrink to @size, zero-filling. */
static int resize(struct tmpfile *f, size_t size)
{
	if (size > TMPFILE_MAX_SIZE)
		return -EFBIG;
	if (size > f->size) {
		char *p = realloc(f->data, size);

		if (!p)
			return -ENOMEM;
		memset(p + f->size, 0, size - f->size);
		f->data = p;
	}
	f->size = size;
	clock_gettime(CLOCK_REALTIME, &f->mtime);
	f->ctime = f->mtime;
	return 0;
}

int tmpfile_write(struct tmpfiles *t, struct tmpfile *f, const char *buf,
		  size_t size, off_t off)
{
	int r = 0;

	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off > TMPFILE_MAX_SIZE ||
	    size > TMPFILE_MAX_SIZE - (size_t)off)
		return -EFBIG;
	pthread_mutex_lock(&t->lock);
	if ((size_t)off + size > f->size)
		r = resize(f, (size_t)off + size);
	if (r == 0) {
		memcpy(f->data + off, buf, size);
		clock_gettime(CLOCK_REALTIME, &f->mtime);
		f->ctime = f->mtime;
	}
	pthread_mutex_unlock(&t->lock);
	return r < 0 ? r : (int)size;
}

int tmpfile_truncate(struct tmpfiles *t, struct tmpfile *f, off_t size)
{
	int r;

	if (size < 0)
		return -EINVAL;
	if ((uint64_t)size > TMPFILE_MAX_SIZE)
		return -EFBIG;
	pthread_mutex_lock(&t->lock);
	r = resize(f, (size_t)size);
	pthread_mutex_unlock(&t->lock);
	return r;
}

void tmpfile_chmod(struct tmpfiles *t, struct tmpfile *f, mode_t mode)
{
	pthread_mutex_lock(&t->lock);
	f->mode = mode & 07777;
	clock_gettime(CLOCK_REALTIME, &f->ctime);
	pthread_mutex_unlock(&t->lock);
}

void tmpfile_chown(struct tmpfiles *t, struct tmpfile *f, uid_t uid,
		   gid_t gid)
{
	pthread_mutex_lock(&t->lock);
	if (uid != (uid_t)-1)
		f->uid = uid;
	if (gid != (gid_t)-1)
		f->gid = gid;
	clock_gettime(CLOCK_REALTIME, &f->ctime);
	pthread_mutex_unlock(&t->lock);
}

static void set_time(struct timespec *dst, const struct timespec *src,
		     const struct timespec *now)
{
	if (src->tv_nsec == UTIME_OMIT)
		return;
	*dst = src->tv_nsec == UTIME_NOW ? *now : *src;
}

void tmpfile_utimens(struct tmpfiles *t, struct tmpfile *f,
		     const struct timespec ts[2])
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&t->lock);
	if (ts) {
		set_time(&f->atime, &ts[0], &now);
		set_time(&f->mtime, &ts[1], &now);
	} else {
		f->atime = f->mtime = now;
	}
	f->ctime = now;
	pthread_mutex_unlock(&t->lock);
}

int tmpfile_content(struct tmpfiles *t, struct tmpfile *f, char **buf,
		    size_t *len)
{
	char *p;

	pthread_mutex_lock(&t->lock);
	p = malloc(f->size + 1);
	if (p) {
		memcpy(p, f->data ? f->data : "", f->size);
		p[f->size] = '\0';
		*len = f->size;
	}
	pthread_mutex_unlock(&t->lock);
	if (!p)
		return -ENOMEM;
	*buf = p;
	return 0;
}

int tmpfile_unlink(struct tmpfiles *t, struct tmpfile *f)
{
	struct tmpdir *d;
	unsigned i;

	pthread_mutex_lock(&t->lock);
	d = f->dir;
	if (!d) {
		pthread_mutex_unlock(&t->lock);
		return -ENOENT;
	}
	for (i = 0; i < d->n && d->files[i] != f; i++)
		;
	d->files[i] = d->files[--d->n];
	f->dir = NULL;
	file_unref(t, f);
	if (d->n == 0)
		dir_drop(t, d);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int tmpfile_foreach(struct tmpfiles *t, const char *dev,
		    int (*cb)(void *arg, const char *name,
			      const struct stat *st),
		    void *arg)
{
	struct tmpdir *d;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	d = dir_get(t, dev);
	for (unsigned i = 0; d && i < d->n && r == 0; i++) {
		struct stat st;

		fill_stat(d->files[i], &st);
		r = cb(arg, d->files[i]->name, &st);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}
