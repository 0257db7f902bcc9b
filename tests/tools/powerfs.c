// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * powerfs - a FUSE filesystem that loses what was not made durable when
 * the power is cut, for the power-loss tests (tests/bats/powerfs.bats,
 * tests/bats/powerloss.bats; docs/TESTING.md "Power loss (powerfs)").
 * In the spirit of Jepsen's LazyFS.
 *
 *   powerfs [-f] [-d] [-o OPT] BACKING MOUNTPOINT
 *
 * Files pass through to BACKING, which always holds the live state.
 * powerfs keeps, in memory, an undo journal of everything that is not
 * durable yet:
 *
 * * Data, per inode (keyed by the backing st_dev/st_ino: paths move): the
 *   size at the last sync and the original bytes of every range below it
 *   overwritten (by write, truncate, fallocate punch/zero) since.  A
 *   file's data and size become durable on fsync(2) or fdatasync(2) of
 *   it (the FUSE FSYNC request, both alike: the size is needed to read
 *   the data back), on a write through a descriptor opened O_SYNC or
 *   O_DSYNC (the kernel sends FSYNC after such a write; the open flags
 *   are honoured too).
 * * Names, in one ordered list: create, mknod, mkdir, symlink, link,
 *   unlink, rmdir, rename (also over an existing target, which is moved
 *   aside, not deleted).  An entry becomes durable when every directory
 *   it changed has been fsync(2)ed (the FUSE FSYNCDIR request), together
 *   with every earlier entry that touched one of its names (so that the
 *   durable names never contradict each other: a journaling filesystem
 *   commits them in order).  Unlinked objects and overwritten targets
 *   wait in BACKING/.powerfs-stash (hidden: neither listed nor found)
 *   until durable, then are deleted.
 *
 * Not durable, deliberately: sync_file_range(2) never reaches a FUSE
 * daemon (there is no such request) and, by its own manual page, makes
 * nothing durable (no metadata, no flush of the disk's cache); sync(2)
 * and syncfs(2) do not reach a FUSE daemon either; close(2) (FLUSH).
 * Not modelled: modes, owners, times and extended attributes (they pass
 * through and are not undone), RENAME_EXCHANGE (EINVAL), torn or
 * reordered writes (a FUSE write request is kept or lost whole, and all
 * unsynced ones are lost).
 *
 * A power cut: "cut" written to the control file MOUNTPOINT/.powerfs, or
 * SIGUSR1, or "cut-after N" written there: the cut comes right after the
 * Nth operation from then on that changes something (a write, truncate,
 * fallocate, change of names, fsync or fsyncdir) has been answered, so a
 * test can cut at every step of a sequence in turn.  Under the one lock
 * every operation takes, the name entries are undone newest first, every
 * file is cut back to its durable size and bytes, the stash is emptied:
 * BACKING is now exactly the durable image.
 * Every later operation fails with EIO (the control file still answers).
 * The test then unmounts (fusermount3 -u -z) and mounts a new powerfs on
 * BACKING: the reboot.  Reading .powerfs gives "state live|cut", the
 * counts of dirty files, saved bytes and name entries, and of operations
 * that changed something since the mount.
 *
 * The kernel keeps nothing across the reboot: entry and attribute
 * timeouts are 0, no keep_cache, no writeback cache (a write reaches
 * powerfs before write(2) returns).  No direct_io: SQLite maps its -shm
 * file shared.  POSIX locks are the kernel's own (no lock operation).
 */
#define FUSE_USE_VERSION 31
#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define STASH ".powerfs-stash"
#define CONTROL ".powerfs"
#define CTL_FH UINT64_MAX

/* Original bytes of [off, off + len), as they were at the last sync. */
struct saved {
	off_t off;
	size_t len;
	char *data;
};

/* A file changed since its last sync. */
struct dirty {
	struct dirty *next;
	dev_t dev;
	ino_t ino;
	int fd;			/* O_RDWR on the inode, whatever its name now */
	off_t durable_size;
	struct saved *sv;	/* sorted by off, never overlapping */
	size_t nsv, cap;
};

enum ns_kind { NS_CREATE, NS_UNLINK, NS_RENAME };

/* A name: its directory (held open, O_PATH) and the entry in it. */
struct ns_name {
	dev_t dev;
	ino_t ino;
	int fd;
	char *name;
};

/*
 * One change of names.  CREATE: at[0] appeared.  UNLINK: at[0] went to
 * the stash.  RENAME: at[0] moved to at[1], whose old object (if any)
 * went to the stash.
 */
struct ns_entry {
	struct ns_entry *prev, *next;
	enum ns_kind kind;
	struct ns_name at[2];
	unsigned nat;
	unsigned pending;	/* bit i: at[i]'s directory not synced yet */
	bool durable;
	char stash[32];		/* "" or its name in the stash */
};

static struct {
	pthread_mutex_t lock;
	bool cut;
	int root, stash;
	uint64_t stash_seq;
	struct dirty *dirty;
	struct ns_entry *head, *tail;	/* oldest first */
	unsigned nentries;
	uint64_t saved_bytes;
	uint64_t nops;		/* operations that change something, so far */
	uint64_t countdown;	/* "cut-after N": cut once it reaches 0 */
	char *backing;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER, .root = -1, .stash = -1 };

/* ---- paths ---------------------------------------------------------------- */

static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static bool is_hidden(const char *path)
{
	size_t n = strlen("/" STASH);

	return strncmp(path, "/" STASH, n) == 0 && (!path[n] || path[n] == '/');
}

static bool is_control(const char *path)
{
	return strcmp(path, "/" CONTROL) == 0;
}

/* The directory of @path, opened O_PATH, and its last component. */
static int split(const char *path, int *pfd, const char **name)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (is_hidden(path) || is_control(path))
		return -EPERM;
	*name = slash + 1;
	if (slash == path)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path - 1), path + 1);
	*pfd = openat(g.root, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return *pfd < 0 ? -errno : 0;
}

/* ---- removing trees from the stash ----------------------------------------- */

static void rm_tree(int pfd, const char *name)
{
	struct dirent *de;
	DIR *dp;
	int fd;

	if (unlinkat(pfd, name, 0) == 0 || errno != EISDIR)
		return;
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (dp = fdopendir(fd))) {
		while ((de = readdir(dp)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				rm_tree(dirfd(dp), de->d_name);
		closedir(dp);
	} else if (fd >= 0) {
		close(fd);
	}
	unlinkat(pfd, name, AT_REMOVEDIR);
}

static void stash_empty(void)
{
	int fd = openat(g.stash, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;

	if (!dp)
		return;
	while ((de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rm_tree(g.stash, de->d_name);
	closedir(dp);
}

/* Move @pfd/@name into the stash; its stash name in @out. */
static int stash_put(int pfd, const char *name, char out[32])
{
	snprintf(out, 32, "%" PRIu64, ++g.stash_seq);
	return renameat(pfd, name, g.stash, out) < 0 ? -errno : 0;
}

/* ---- data: the undo of one file ---------------------------------------------- */

static struct dirty *dirty_find(dev_t dev, ino_t ino, struct dirty ***link)
{
	struct dirty **p;

	for (p = &g.dirty; *p; p = &(*p)->next)
		if ((*p)->dev == dev && (*p)->ino == ino)
			break;
	if (link)
		*link = p;
	return *p;
}

/* The record of the file open as @fd, made at its first change since a sync. */
static int dirty_get(int fd, struct dirty **out)
{
	char proc[64];
	struct dirty *d;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	d = dirty_find(st.st_dev, st.st_ino, NULL);
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return -ENOMEM;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		d->fd = open(proc, O_RDWR | O_CLOEXEC);
		if (d->fd < 0) {
			int err = -errno;

			free(d);
			return err;
		}
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		d->durable_size = st.st_size;
		d->next = g.dirty;
		g.dirty = d;
	}
	*out = d;
	return 0;
}

static int saved_cmp(const void *a, const void *b)
{
	const struct saved *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static int save_gap(struct dirty *d, off_t off, off_t end)
{
	struct saved s = { .off = off, .len = (size_t)(end - off) };
	ssize_t n;

	if (d->nsv == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 8;
		struct saved *sv = realloc(d->sv, cap * sizeof(*sv));

		if (!sv)
			return -ENOMEM;
		d->sv = sv;
		d->cap = cap;
	}
	s.data = malloc(s.len);
	if (!s.data)
		return -ENOMEM;
	n = pread(d->fd, s.data, s.len, off);
	if (n != (ssize_t)s.len) {
		free(s.data);
		return n < 0 ? -errno : -EIO;
	}
	d->sv[d->nsv++] = s;
	g.saved_bytes += s.len;
	return 0;
}

/*
 * Keep the durable bytes of [off, off + len) that are not kept yet, before
 * they are overwritten.  Bytes at or past the durable size need nothing:
 * the cut truncates them away.  Every byte below the durable size is either
 * kept already or still live as it was at the last sync.
 */
static int save_range(struct dirty *d, off_t off, off_t len)
{
	off_t end = off + len < d->durable_size ? off + len : d->durable_size;
	off_t cur = off;
	size_t n = d->nsv;
	int r = 0;

	for (size_t i = 0; i < n && cur < end && r == 0; i++) {
		struct saved *s = &d->sv[i];
		off_t s_end = s->off + (off_t)s->len;

		if (s_end <= cur)
			continue;
		if (s->off >= end)
			break;
		if (s->off > cur)
			r = save_gap(d, cur, s->off);
		cur = s_end;
	}
	if (r == 0 && cur < end)
		r = save_gap(d, cur, end);
	if (d->nsv != n)
		qsort(d->sv, d->nsv, sizeof(*d->sv), saved_cmp);
	return r;
}

static void dirty_free(struct dirty *d)
{
	for (size_t i = 0; i < d->nsv; i++) {
		g.saved_bytes -= d->sv[i].len;
		free(d->sv[i].data);
	}
	free(d->sv);
	close(d->fd);
	free(d);
}

/* fsync, fdatasync, an O_(D)SYNC write: the file's bytes and size are durable. */
static int file_sync(int fd)
{
	struct dirty **link, *d;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	d = dirty_find(st.st_dev, st.st_ino, &link);
	if (d) {
		*link = d->next;
		dirty_free(d);
	}
	return 0;
}

/* The cut: the file back to its size and bytes of the last sync. */
static void dirty_revert(struct dirty *d)
{
	if (ftruncate(d->fd, d->durable_size) < 0)
		fprintf(stderr, "powerfs: cannot truncate inode %ju back: %m\n",
			(uintmax_t)d->ino);
	for (size_t i = 0; i < d->nsv; i++)
		if (pwrite(d->fd, d->sv[i].data, d->sv[i].len, d->sv[i].off) !=
		    (ssize_t)d->sv[i].len)
			fprintf(stderr, "powerfs: cannot restore inode %ju: %m\n",
				(uintmax_t)d->ino);
}

/* ---- names --------------------------------------------------------------------- */

static int ns_name_set(struct ns_name *n, int pfd, const char *name)
{
	struct stat st;

	if (fstat(pfd, &st) < 0)
		return -errno;
	n->fd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
	n->name = strdup(name);
	if (n->fd < 0 || !n->name)
		return -ENOMEM;
	n->dev = st.st_dev;
	n->ino = st.st_ino;
	return 0;
}

static void ns_free(struct ns_entry *e)
{
	for (unsigned i = 0; i < e->nat; i++) {
		if (e->at[i].fd >= 0)
			close(e->at[i].fd);
		free(e->at[i].name);
	}
	free(e);
}

/*
 * Journal a change of names that has been made.  Failing to journal it
 * (no memory, no descriptor) would make it durable behind the test's
 * back: that is fatal.
 */
static void ns_add(enum ns_kind kind, int dfd0, const char *n0, int dfd1, const char *n1,
		   const char *stash)
{
	struct ns_entry *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		abort();
	e->kind = kind;
	e->at[0].fd = e->at[1].fd = -1;
	e->nat = n1 ? 2 : 1;
	r = ns_name_set(&e->at[0], dfd0, n0);
	if (r == 0 && n1)
		r = ns_name_set(&e->at[1], dfd1, n1);
	if (r < 0) {
		fprintf(stderr, "powerfs: cannot journal a change of names: %s\n",
			strerror(-r));
		abort();
	}
	e->pending = n1 ? 3 : 1;
	snprintf(e->stash, sizeof(e->stash), "%s", stash ? stash : "");
	e->prev = g.tail;
	if (g.tail)
		g.tail->next = e;
	else
		g.head = e;
	g.tail = e;
	g.nentries++;
}

static bool ns_same(const struct ns_name *a, const struct ns_name *b)
{
	return a->dev == b->dev && a->ino == b->ino && strcmp(a->name, b->name) == 0;
}

static bool ns_share(const struct ns_entry *a, const struct ns_entry *b)
{
	for (unsigned i = 0; i < a->nat; i++)
		for (unsigned j = 0; j < b->nat; j++)
			if (ns_same(&a->at[i], &b->at[j]))
				return true;
	return false;
}

/* @e is durable, and so is every earlier entry that touched one of its names. */
static void ns_mark(struct ns_entry *e)
{
	e->durable = true;
	for (struct ns_entry *x = e->prev; x; x = x->prev)
		if (!x->durable && ns_share(x, e))
			ns_mark(x);
}

/* fsync of the directory @dev/@ino. */
static void dir_sync(dev_t dev, ino_t ino)
{
	struct ns_entry *e, *next;

	for (e = g.head; e; e = e->next)
		for (unsigned i = 0; i < e->nat; i++)
			if (e->at[i].dev == dev && e->at[i].ino == ino)
				e->pending &= ~(1u << i);
	for (e = g.tail; e; e = e->prev)
		if (!e->pending && !e->durable)
			ns_mark(e);
	for (e = g.head; e; e = next) {
		next = e->next;
		if (!e->durable)
			continue;
		if (e->stash[0])
			rm_tree(g.stash, e->stash);	/* gone for good */
		*(e->prev ? &e->prev->next : &g.head) = e->next;
		*(e->next ? &e->next->prev : &g.tail) = e->prev;
		g.nentries--;
		ns_free(e);
	}
}

static void ns_report(const char *what, int r)
{
	if (r < 0)
		fprintf(stderr, "powerfs: cut: cannot undo %s: %m\n", what);
}

/* The cut: undo one change of names (the later ones are undone already). */
static void ns_revert(struct ns_entry *e)
{
	struct ns_name *a = &e->at[0], *b = &e->at[1];
	char tmp[32];

	switch (e->kind) {
	case NS_CREATE:
		ns_report(a->name, stash_put(a->fd, a->name, tmp));
		break;
	case NS_UNLINK:
		ns_report(a->name, renameat(g.stash, e->stash, a->fd, a->name));
		break;
	case NS_RENAME:
		ns_report(b->name, renameat(b->fd, b->name, a->fd, a->name));
		if (e->stash[0])
			ns_report(b->name, renameat(g.stash, e->stash, b->fd, b->name));
		break;
	}
}

/* ---- the power cut -------------------------------------------------------------- */

static void power_cut(const char *why)
{
	unsigned nentries = g.nentries, nfiles = 0;
	uint64_t bytes = g.saved_bytes;

	if (g.cut)
		return;
	while (g.tail) {
		struct ns_entry *e = g.tail;

		ns_revert(e);
		g.tail = e->prev;
		ns_free(e);
	}
	g.head = NULL;
	g.nentries = 0;
	while (g.dirty) {
		struct dirty *d = g.dirty;

		dirty_revert(d);
		g.dirty = d->next;
		dirty_free(d);
		nfiles++;
	}
	stash_empty();
	g.cut = true;
	fprintf(stderr, "powerfs: power cut (%s): %u changes of names and %u files "
		"(%" PRIu64 " bytes kept) undone\n", why, nentries, nfiles, bytes);
}

static void *sigusr1_thread(void *arg)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		pthread_mutex_lock(&g.lock);
		power_cut("SIGUSR1");
		pthread_mutex_unlock(&g.lock);
	}
	return NULL;
}

/* ---- the control file ---------------------------------------------------------- */

static int control_text(char *buf, size_t len)
{
	size_t nfiles = 0;

	for (struct dirty *d = g.dirty; d; d = d->next)
		nfiles++;
	return snprintf(buf, len, "state %s\ndirty_files %zu\nsaved_bytes %" PRIu64
			"\nname_changes %u\noperations %" PRIu64 "\n",
			g.cut ? "cut" : "live", nfiles, g.saved_bytes, g.nentries, g.nops);
}

static int control_read(char *buf, size_t size, off_t off)
{
	char text[256];
	int n;

	pthread_mutex_lock(&g.lock);
	n = control_text(text, sizeof(text));
	pthread_mutex_unlock(&g.lock);
	if (off >= n)
		return 0;
	if (size > (size_t)(n - off))
		size = (size_t)(n - off);
	memcpy(buf, text + off, size);
	return (int)size;
}

/* A count from 1, in decimal. */
static int parse_count(const char *text, uint64_t *out)
{
	unsigned long long n;
	char *end;

	if (*text < '1' || *text > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (*end || errno)
		return -EINVAL;
	*out = n;
	return 0;
}

/* "cut": now.  "cut-after N": once N more operations have changed something. */
static int control_write(const char *buf, size_t size)
{
	size_t len = size;
	char text[64];
	uint64_t n;
	int r = 0;

	if (len && buf[len - 1] == '\n')
		len--;
	if (len >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, len);
	text[len] = '\0';
	pthread_mutex_lock(&g.lock);
	if (strcmp(text, "cut") == 0)
		power_cut("control file");
	else if (strncmp(text, "cut-after ", 10) == 0 && parse_count(text + 10, &n) == 0)
		g.countdown = n;
	else
		r = -EINVAL;
	pthread_mutex_unlock(&g.lock);
	return r ? r : (int)size;
}

/* An operation that changed something has returned: count it, maybe cut. */
static void op_counted(void)
{
	char why[64];

	g.nops++;
	if (g.countdown && --g.countdown == 0) {
		snprintf(why, sizeof(why), "after operation %" PRIu64, g.nops);
		power_cut(why);
	}
}

/* ---- operations --------------------------------------------------------------- */

/* Run @call under the lock, or fail with EIO after a cut. */
#define GUARD(call)                                              \
	do {                                                     \
		int r_;                                          \
		pthread_mutex_lock(&g.lock);                     \
		r_ = g.cut ? -EIO : (call);                      \
		pthread_mutex_unlock(&g.lock);                   \
		return r_;                                       \
	} while (0)

/* The same for an operation that changes something (op_counted()). */
#define GUARD_COUNTED(call)                                      \
	do {                                                     \
		int r_;                                          \
		pthread_mutex_lock(&g.lock);                     \
		r_ = g.cut ? -EIO : (call);                      \
		if (!g.cut)                                      \
			op_counted();                            \
		pthread_mutex_unlock(&g.lock);                   \
		return r_;                                       \
	} while (0)

#define ERR(expr) ((expr) < 0 ? -errno : 0)

static int do_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (is_hidden(path))
		return -ENOENT;
	if (fi && fi->fh != CTL_FH)
		return ERR(fstat((int)fi->fh, st));
	return ERR(fstatat(g.root, rel(path), st, AT_SYMLINK_NOFOLLOW));
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (is_control(path)) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		return 0;
	}
	GUARD(do_getattr(path, st, fi));
}

static int do_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n;

	if (is_hidden(path))
		return -ENOENT;
	n = readlinkat(g.root, rel(path), buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	GUARD(do_readlink(path, buf, size));
}

/* A directory's handle is its descriptor, as a file's is: fh is always an fd. */
static int do_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd;

	if (is_hidden(path))
		return -ENOENT;
	fd = openat(g.root, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
	GUARD(do_opendir(path, fi));
}

/* Every entry at once (offsets 0: libfuse keeps the listing). */
static int do_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      struct fuse_file_info *fi)
{
	int fd = openat((int)fi->fh, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool root = strcmp(path, "/") == 0;
	struct dirent *de;
	DIR *dp;

	if (fd < 0)
		return -errno;
	dp = fdopendir(fd);
	if (!dp) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(dp))) {
		struct stat st = { .st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type) };

		if (root && strcmp(de->d_name, STASH) == 0)
			continue;
		if (fill(buf, de->d_name, &st, 0, 0))
			break;
	}
	closedir(dp);
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	GUARD(do_readdir(path, buf, fill, fi));
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
	pthread_mutex_lock(&g.lock);
	close((int)fi->fh);
	pthread_mutex_unlock(&g.lock);
	return 0;
}

static int do_fsyncdir(struct fuse_file_info *fi)
{
	struct stat st;

	if (fstat((int)fi->fh, &st) < 0)
		return -errno;
	dir_sync(st.st_dev, st.st_ino);
	return 0;
}

static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	GUARD_COUNTED(do_fsyncdir(fi));
}

enum mkkind { MK_DIR, MK_NOD, MK_SYMLINK, MK_LINK };

/* mkdir, mknod, symlink, link: make the name, journal it. */
static int do_make(enum mkkind kind, const char *path, mode_t mode, dev_t rdev,
		   const char *target)
{
	const char *name;
	int pfd, r, sfd = -1;
	const char *sname;

	r = split(path, &pfd, &name);
	if (r < 0)
		return r;
	switch (kind) {
	case MK_DIR:
		r = ERR(mkdirat(pfd, name, mode));
		break;
	case MK_NOD:
		r = ERR(mknodat(pfd, name, mode, rdev));
		break;
	case MK_SYMLINK:
		r = ERR(symlinkat(target, pfd, name));
		break;
	case MK_LINK:
		r = split(target, &sfd, &sname);
		if (r == 0)
			r = ERR(linkat(sfd, sname, pfd, name, 0));
		if (sfd >= 0)
			close(sfd);
		break;
	}
	if (r == 0)
		ns_add(NS_CREATE, pfd, name, -1, NULL, NULL);
	close(pfd);
	return r;
}

static int op_mkdir(const char *path, mode_t mode)
{
	GUARD_COUNTED(do_make(MK_DIR, path, mode, 0, NULL));
}

static int op_mknod(const char *path, mode_t mode, dev_t rdev)
{
	GUARD_COUNTED(do_make(MK_NOD, path, mode, rdev, NULL));
}

static int op_symlink(const char *target, const char *path)
{
	GUARD_COUNTED(do_make(MK_SYMLINK, path, 0, 0, target));
}

static int op_link(const char *from, const char *to)
{
	GUARD_COUNTED(do_make(MK_LINK, to, 0, 0, from));
}

static bool dir_empty(int pfd, const char *name)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool empty = true;

	if (!dp) {
		if (fd >= 0)
			close(fd);
		return true;
	}
	while (empty && (de = readdir(dp)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(dp);
	return empty;
}

/* unlink, rmdir: the object goes to the stash until the removal is durable. */
static int do_remove(const char *path, bool dir)
{
	char stash[32];
	const char *name;
	struct stat st;
	int pfd, r;

	r = split(path, &pfd, &name);
	if (r < 0)
		return r;
	r = ERR(fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW));
	if (r == 0 && dir && !S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	else if (r == 0 && !dir && S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (r == 0 && dir && !dir_empty(pfd, name))
		r = -ENOTEMPTY;
	if (r == 0)
		r = stash_put(pfd, name, stash);
	if (r == 0)
		ns_add(NS_UNLINK, pfd, name, -1, NULL, stash);
	close(pfd);
	return r;
}

static int op_unlink(const char *path)
{
	GUARD_COUNTED(do_remove(path, false));
}

static int op_rmdir(const char *path)
{
	GUARD_COUNTED(do_remove(path, true));
}

/* The target of a rename, if there is one, checked and moved to the stash. */
static int rename_target(int sfd, const char *sname, int tfd, const char *tname,
			 unsigned flags, char stash[32])
{
	struct stat s, t;

	stash[0] = '\0';
	if (fstatat(sfd, sname, &s, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (fstatat(tfd, tname, &t, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (s.st_dev == t.st_dev && s.st_ino == t.st_ino)
		return 1;	/* the same file: nothing to do */
	if (S_ISDIR(t.st_mode) && !S_ISDIR(s.st_mode))
		return -EISDIR;
	if (!S_ISDIR(t.st_mode) && S_ISDIR(s.st_mode))
		return -ENOTDIR;
	if (S_ISDIR(t.st_mode) && !dir_empty(tfd, tname))
		return -ENOTEMPTY;
	return stash_put(tfd, tname, stash);
}

static int do_rename(const char *from, const char *to, unsigned flags)
{
	const char *sname, *tname;
	int sfd = -1, tfd = -1, r;
	char stash[32];

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;	/* RENAME_EXCHANGE, RENAME_WHITEOUT: not modelled */
	r = split(from, &sfd, &sname);
	if (r == 0)
		r = split(to, &tfd, &tname);
	if (r == 0)
		r = rename_target(sfd, sname, tfd, tname, flags, stash);
	if (r == 0 && renameat(sfd, sname, tfd, tname) < 0) {
		r = -errno;
		if (stash[0] && renameat(g.stash, stash, tfd, tname) < 0)
			abort();	/* the target cannot be put back */
	}
	if (r == 0)
		ns_add(NS_RENAME, sfd, sname, tfd, tname, stash);
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	return r > 0 ? 0 : r;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	GUARD_COUNTED(do_rename(from, to, flags));
}

static int do_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (is_hidden(path) || is_control(path))
		return -EPERM;
	if (fi)
		return ERR(fchmod((int)fi->fh, mode));
	return ERR(fchmodat(g.root, rel(path), mode, 0));
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	GUARD(do_chmod(path, mode, fi));
}

static int do_chown(const char *path, uid_t uid, gid_t gid)
{
	if (is_hidden(path) || is_control(path))
		return -EPERM;
	return ERR(fchownat(g.root, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	GUARD(do_chown(path, uid, gid));
}

static int do_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	if (is_hidden(path))
		return -ENOENT;
	if (fi)
		return ERR(futimens((int)fi->fh, tv));
	return ERR(utimensat(g.root, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	if (is_control(path))
		return 0;
	GUARD(do_utimens(path, tv, fi));
}

/* ftruncate with its undo: the bytes cut off below the durable size are kept. */
static int truncate_fd(int fd, off_t size)
{
	struct dirty *d;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	r = dirty_get(fd, &d);
	if (r == 0 && size < st.st_size)
		r = save_range(d, size, st.st_size - size);
	return r ? r : ERR(ftruncate(fd, size));
}

static int do_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int fd, r;

	if (is_hidden(path))
		return -ENOENT;
	if (fi)
		return truncate_fd((int)fi->fh, size);
	fd = openat(g.root, rel(path), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = truncate_fd(fd, size);
	close(fd);
	return r;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (is_control(path))
		return 0;	/* the O_TRUNC of `echo cut > .powerfs` */
	GUARD_COUNTED(do_truncate(path, size, fi));
}

/* The flags a backing descriptor is opened with: no syncing, no appending. */
static int backing_flags(int flags)
{
	return (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_SYNC | O_DSYNC |
			  O_DIRECT | O_NOCTTY)) | O_CLOEXEC;
}

static int do_open(const char *path, struct fuse_file_info *fi)
{
	int fd, r = 0;

	if (is_hidden(path))
		return -ENOENT;
	fd = openat(g.root, rel(path), backing_flags(fi->flags));
	if (fd < 0)
		return -errno;
	if (fi->flags & O_TRUNC)
		r = truncate_fd(fd, 0);
	if (r < 0) {
		close(fd);
		return r;
	}
	fi->fh = (uint64_t)fd;
	return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	if (is_control(path)) {
		fi->fh = CTL_FH;
		fi->direct_io = 1;
		return 0;
	}
	GUARD(do_open(path, fi));
}

static int do_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	const char *name;
	struct stat st;
	int pfd, fd, r;

	r = split(path, &pfd, &name);
	if (r < 0)
		return r;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(pfd);	/* it exists: an open, O_EXCL was the kernel's */
		return do_open(path, fi);
	}
	fd = openat(pfd, name, backing_flags(fi->flags) | O_CREAT | O_EXCL, mode);
	if (fd < 0) {
		r = -errno;
	} else {
		ns_add(NS_CREATE, pfd, name, -1, NULL, NULL);
		fi->fh = (uint64_t)fd;
	}
	close(pfd);
	return r;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	GUARD_COUNTED(do_create(path, mode, fi));
}

static int do_read(char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, size, off);

	return n < 0 ? -errno : (int)n;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	if (fi->fh == CTL_FH)
		return control_read(buf, size, off);
	GUARD(do_read(buf, size, off, fi));
}

static int do_write(const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dirty *d;
	ssize_t n;
	int r;

	r = dirty_get((int)fi->fh, &d);
	if (r == 0)
		r = save_range(d, off, (off_t)size);
	if (r < 0)
		return r;
	n = pwrite((int)fi->fh, buf, size, off);
	if (n < 0)
		return -errno;
	if (fi->flags & O_DSYNC)	/* O_SYNC includes it */
		file_sync((int)fi->fh);
	return (int)n;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (fi->fh == CTL_FH)
		return control_write(buf, size);
	GUARD_COUNTED(do_write(buf, size, off, fi));
}

static int do_fallocate(int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct dirty *d;
	int r;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	r = dirty_get((int)fi->fh, &d);
	if (r == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		r = save_range(d, off, len);
	return r ? r : ERR(fallocate((int)fi->fh, mode, off, len));
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	if (fi->fh == CTL_FH)
		return -EOPNOTSUPP;
	GUARD_COUNTED(do_fallocate(mode, off, len, fi));
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	if (fi->fh == CTL_FH)
		return 0;
	GUARD_COUNTED(file_sync((int)fi->fh));
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	if (fi->fh == CTL_FH)
		return 0;
	GUARD(0);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	if (fi->fh != CTL_FH) {
		pthread_mutex_lock(&g.lock);
		close((int)fi->fh);
		pthread_mutex_unlock(&g.lock);
	}
	return 0;
}

static int do_statfs(struct statvfs *st)
{
	return ERR(fstatvfs(g.root, st));
}

static int op_statfs(const char *path, struct statvfs *st)
{
	GUARD(do_statfs(st));
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	pthread_t t;

	cfg->use_ino = 1;
	cfg->readdir_ino = 1;
	cfg->hard_remove = 1;	/* an open file unlinked: our unlink, no .fuse_hidden */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->direct_io = 0;
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC);
	/* here, not in main(): without -f, fuse_main() forks after parsing */
	if (pthread_create(&t, NULL, sigusr1_thread, NULL) == 0)
		pthread_detach(t);
	return NULL;
}

static const struct fuse_operations powerfs_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.chmod = op_chmod,
	.chown = op_chown,
	.truncate = op_truncate,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.statfs = op_statfs,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.create = op_create,
	.utimens = op_utimens,
	.fallocate = op_fallocate,
};

/* The first argument that is not an option is BACKING; the rest is fuse_main's. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	if (key == FUSE_OPT_KEY_NONOPT && !g.backing) {
		g.backing = strdup(arg);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	sigset_t set;
	int r;

	if (fuse_opt_parse(&args, NULL, NULL, opt_proc) < 0 || !g.backing) {
		fprintf(stderr, "usage: powerfs [-f] [-d] [-o OPT] BACKING MOUNTPOINT\n");
		return 2;
	}
	umask(0);	/* the kernel applied the caller's umask already */
	g.root = open(g.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g.root < 0) {
		fprintf(stderr, "powerfs: cannot open %s: %m\n", g.backing);
		return 1;
	}
	if (mkdirat(g.root, STASH, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "powerfs: cannot make %s/%s: %m\n", g.backing, STASH);
		return 1;
	}
	g.stash = openat(g.root, STASH, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (g.stash < 0) {
		fprintf(stderr, "powerfs: cannot open %s/%s: %m\n", g.backing, STASH);
		return 1;
	}
	stash_empty();	/* what a previous run left there was never durable */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);	/* for sigusr1_thread() */
	fuse_opt_add_arg(&args, "-ofsname=powerfs,subtype=powerfs");
	r = fuse_main(args.argc, args.argv, &powerfs_ops, NULL);
	fuse_opt_free_args(&args);
	return r;
}
