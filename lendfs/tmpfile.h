/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tmpfile.h - in-memory temporary files in device directories.
 *
 * Config-management tools (Ansible, Salt, Puppet) write a temporary file
 * next to the target and rename(2) it over the target.  In a device
 * directory, creating a name that is not an attribute makes such a temp
 * file; it lives until it is renamed onto `borrower` (the rename is the
 * request, fs.c) or unlinked.  An open file descriptor keeps the data
 * alive after the name is gone, as on any POSIX filesystem.
 *
 * Bounds: TMPFILE_MAX_PER_DIR files per device directory and
 * TMPFILE_MAX_TOTAL in the whole mount, counting files unlinked but still
 * open (-ENOSPC beyond either), TMPFILE_MAX_SIZE bytes of content (-EFBIG
 * beyond), names of 1..255 bytes without '/'.  So temp files never hold
 * more than TMPFILE_MAX_TOTAL * TMPFILE_MAX_SIZE bytes of the daemon's
 * memory, whatever users do (docs/LIMITS.md).  All calls are thread-safe.
 */
#ifndef LENDFS_TMPFILE_H
#define LENDFS_TMPFILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define TMPFILE_MAX_PER_DIR 16
#define TMPFILE_MAX_TOTAL 1024
#define TMPFILE_MAX_SIZE 4096
#define TMPFILE_NAME_MAX 255

struct tmpfiles;
struct tmpfile;

int tmpfiles_new(struct tmpfiles **out);
void tmpfiles_free(struct tmpfiles *t);

/*
 * Create @name in the directory of device @dev (O_CREAT|O_EXCL: -EEXIST
 * if present).  On success *@out holds a reference (tmpfile_put()).
 */
int tmpfile_create(struct tmpfiles *t, const char *dev, const char *name,
		   mode_t mode, uid_t uid, gid_t gid, struct tmpfile **out);

/* A new reference to @dev/@name, or NULL. */
struct tmpfile *tmpfile_get(struct tmpfiles *t, const char *dev,
			    const char *name);
/* Another reference to @f. */
struct tmpfile *tmpfile_ref(struct tmpfiles *t, struct tmpfile *f);
/* Drop a reference (NULL is fine). */
void tmpfile_put(struct tmpfiles *t, struct tmpfile *f);

void tmpfile_stat(struct tmpfiles *t, struct tmpfile *f, struct stat *st);
int tmpfile_read(struct tmpfiles *t, struct tmpfile *f, char *buf,
		 size_t size, off_t off);
int tmpfile_write(struct tmpfiles *t, struct tmpfile *f, const char *buf,
		  size_t size, off_t off);
int tmpfile_truncate(struct tmpfiles *t, struct tmpfile *f, off_t size);
void tmpfile_chmod(struct tmpfiles *t, struct tmpfile *f, mode_t mode);
/* (uid_t)-1 / (gid_t)-1 leave that id unchanged. */
void tmpfile_chown(struct tmpfiles *t, struct tmpfile *f, uid_t uid,
		   gid_t gid);
void tmpfile_utimens(struct tmpfiles *t, struct tmpfile *f,
		     const struct timespec ts[2]);

/* A malloc'd copy of the content (the caller frees it). */
int tmpfile_content(struct tmpfiles *t, struct tmpfile *f, char **buf,
		    size_t *len);

/* Remove the name of @f from its directory; -ENOENT if already gone. */
int tmpfile_unlink(struct tmpfiles *t, struct tmpfile *f);

/* Call @cb for each temp file of device @dev; stops on nonzero. */
int tmpfile_foreach(struct tmpfiles *t, const char *dev,
		    int (*cb)(void *arg, const char *name,
			      const struct stat *st),
		    void *arg);

#endif
