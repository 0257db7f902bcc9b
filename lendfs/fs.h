/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fs.h - the lendfs FUSE filesystem (high-level libfuse3 API).
 *
 * fs.c resolves a path to a node of the tree (SPEC section 3) and hands
 * the work to the node's attribute table (attr.h, attr_*.c) or the temp
 * files of config-management tools (tmpfile.c).  It holds no lend state:
 * every value is rendered from the engine when read, and every write is
 * one engine request whose -errno goes straight back to the writer.
 * Logging: log.h.
 */
#ifndef LENDFS_FS_H
#define LENDFS_FS_H

#define FUSE_USE_VERSION 31

#include <fuse.h>
#include <stdbool.h>
#include <time.h>

#include "engine.h"

struct tmpfiles;
struct lendfs_cache;
struct watches;

#define LENDFS_MAX_OPEN 4096 /* open files in the mount (ENFILE beyond) */

struct lendfs {
	struct engine *engine;
	struct tmpfiles *tmp;
	struct lendfs_cache *cache; /* what the kernel caches (cache.h) */
	struct watches *watches;    /* pollers of the attributes (watch.h) */
	struct timespec start; /* mtime / ctime / atime of the tree */
	uid_t uid;	       /* owner of every file: the daemon's user */
	gid_t gid;	       /* group of every file: the write group */
	bool group_write;      /* false: the group does not exist */
	unsigned handles;      /* open files (under handles_lock of fs.c) */
};

extern const struct fuse_operations lendfs_ops;

/* watch_render_fn (watch.h) of the tree: @arg is the struct lendfs. */
int lendfs_watch_render(void *arg, const char *path, char **buf, size_t *len);

/*
 * Owner and write group of the tree (docs/PERMISSIONS.md): the daemon's
 * user, and @group (looked up now).  A group that does not exist is
 * logged and leaves writing to the owner alone (-ENOENT).
 */
int lendfs_set_group(struct lendfs *fs, const char *group);

#endif
