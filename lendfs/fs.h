/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fs.h - the lendfs FUSE filesystem (high-level libfuse3 API).
 *
 * fs.c resolves a path to an area of the tree (SPEC section 3) and hands
 * the work to the attribute tables (attr_*.c) or the temp files of
 * config-management tools (tmpfile.c).  It holds no lend state: every
 * value is rendered from the engine when read, and every write is one
 * engine request whose -errno goes straight back to the writer.
 */
#ifndef LENDFS_FS_H
#define LENDFS_FS_H

#define FUSE_USE_VERSION 31

#include <fuse.h>
#include <stdbool.h>
#include <time.h>

#include "engine.h"

struct tmpfiles;

struct lendfs {
	struct engine *engine;
	struct tmpfiles *tmp;
	struct timespec start; /* mtime / ctime / atime of the tree */
};

extern const struct fuse_operations lendfs_ops;

/*
 * Log one line with the "lendfs: " prefix: to stderr, or to syslog once
 * the daemon has detached (lendfs_log_to_syslog()).
 */
void lendfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lendfs_log_to_syslog(void);

/* Printable, bounded copy of a user-supplied value for log lines. */
void lendfs_log_value(const char *buf, size_t len, char *out, size_t outlen);

#endif
