// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * floorfs.c - the FUSE floor: the least a libfuse3 filesystem can do.
 *
 *   floorfs [--dirs=N] [--cache | --noopen] [FUSE options] MOUNTPOINT
 *
 *   MOUNT/state       "available\n", read-only
 *   MOUNT/borrower    writable; a write succeeds and changes nothing
 *   MOUNT/devices/    N empty directories d000000 ... (for ls -l)
 *
 * It is built like lendfs (high-level API, the same mount options,
 * fuse_main: the multi-threaded loop unless -s) and otherwise keeps
 * libfuse's defaults, as a minimal filesystem would: 1 s entry and
 * attribute timeouts, no keep_cache, a FLUSH on every close.  --cache
 * opens `state` with keep_cache and noflush, the most a filesystem can
 * cache while the kernel still sends OPEN.  --noopen answers OPEN with
 * ENOSYS: the kernel then sends no OPEN and no RELEASE for the rest of the
 * mount (FUSE_CAP_NO_OPEN_SUPPORT, its `no_open`) and keeps every file's
 * pages (FOPEN_KEEP_CACHE, its default without OPEN), and FLUSH is
 * answered ENOSYS too (no more FLUSH): an open+read+close of `state` then
 * reaches the daemon only when the attribute timeout has run out, the
 * floor of a FUSE read (docs/PERFORMANCE.md, "Attribute read").
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOUNT_DEFAULTS "-odefault_permissions,fsname=floorfs,subtype=floorfs"

static const char state_text[] = "available\n";

struct options {
	unsigned dirs;
	int cache;
	int noopen;
};

static struct options opt;
static struct timespec start;

static const struct fuse_opt floor_opts[] = {
	{ "--dirs=%u", offsetof(struct options, dirs), 0 },
	{ "--cache", offsetof(struct options, cache), 1 },
	{ "--noopen", offsetof(struct options, noopen), 1 },
	FUSE_OPT_END
};

/* "/devices/d000042" -> 42; -1 if it is not one of ours. */
static long dir_index(const char *path)
{
	const char *p = path + strlen("/devices/d");
	char *end;
	long i;

	if (strncmp(path, "/devices/d", strlen("/devices/d")) != 0 || !*p)
		return -1;
	i = strtol(p, &end, 10);
	return *end || i < 0 || i >= (long)opt.dirs ? -1 : i;
}

static int floor_getattr(const char *path, struct stat *st,
			 struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_atim = st->st_mtim = st->st_ctim = start;
	if (!strcmp(path, "/") || !strcmp(path, "/devices") ||
	    dir_index(path) >= 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (!strcmp(path, "/state")) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = sizeof(state_text) - 1;
	} else if (!strcmp(path, "/borrower")) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
	} else {
		return -ENOENT;
	}
	return 0;
}

static int floor_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			 off_t off, struct fuse_file_info *fi,
			 enum fuse_readdir_flags flags)
{
	char name[32];

	(void)off;
	(void)fi;
	(void)flags;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (!strcmp(path, "/")) {
		filler(buf, "state", NULL, 0, 0);
		filler(buf, "borrower", NULL, 0, 0);
		filler(buf, "devices", NULL, 0, 0);
		return 0;
	}
	if (strcmp(path, "/devices") != 0)
		return dir_index(path) >= 0 ? 0 : -ENOENT;
	for (unsigned i = 0; i < opt.dirs; i++) {
		snprintf(name, sizeof(name), "d%06u", i);
		if (filler(buf, name, NULL, 0, 0))
			return -ENOMEM;
	}
	return 0;
}

static int floor_open(const char *path, struct fuse_file_info *fi)
{
	if (opt.noopen)
		return -ENOSYS; /* the kernel stops sending OPEN */
	if (!strcmp(path, "/state")) {
		if ((fi->flags & O_ACCMODE) != O_RDONLY)
			return -EACCES;
		if (opt.cache) {
			fi->keep_cache = 1;
			fi->noflush = 1;
		}
		return 0;
	}
	return strcmp(path, "/borrower") ? -ENOENT : 0;
}

static int floor_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	size_t len = sizeof(state_text) - 1;

	(void)fi;
	if (strcmp(path, "/state") != 0)
		return 0;
	if (off < 0 || (size_t)off >= len)
		return 0;
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	memcpy(buf, state_text + off, size);
	return (int)size;
}

static int floor_write(const char *path, const char *buf, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	(void)buf;
	(void)off;
	(void)fi;
	return strcmp(path, "/borrower") ? -EACCES : (int)size;
}

static int floor_truncate(const char *path, off_t size,
			  struct fuse_file_info *fi)
{
	(void)size;
	(void)fi;
	return strcmp(path, "/borrower") ? -EACCES : 0;
}

/* --noopen only: the first FLUSH answered ENOSYS is the last */
static int floor_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return -ENOSYS;
}

/* no flush by default: libfuse's own answer, as a minimal fs has it */
static struct fuse_operations floor_ops = {
	.getattr = floor_getattr,
	.readdir = floor_readdir,
	.open = floor_open,
	.read = floor_read,
	.write = floor_write,
	.truncate = floor_truncate,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int r;

	clock_gettime(CLOCK_REALTIME, &start);
	if (fuse_opt_parse(&args, &opt, floor_opts, NULL) < 0 ||
	    fuse_opt_insert_arg(&args, 1, MOUNT_DEFAULTS) < 0)
		return 2;
	if (opt.noopen)
		floor_ops.flush = floor_flush;
	r = fuse_main(args.argc, args.argv, &floor_ops, NULL);
	fuse_opt_free_args(&args);
	return r;
}
