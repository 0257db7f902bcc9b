/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cache.h - what the kernel caches of the tree, and telling it when that
 * goes stale.
 *
 * lendfs lets the kernel keep dentries and attributes (entry and attribute
 * timeouts, fs.c) so that reading an attribute costs one OPEN and one READ
 * round trip, not a LOOKUP per path component and a GETATTR.  File
 * contents are never cached (direct_io): a read always renders the value
 * now.  What can go stale is therefore the metadata: the size that
 * stat(2) shows, and the existence of entries that vanish (a returned
 * device's hosts/H/lent/ID, peers/ID, a hot-removed device).
 *
 * The engine's watch (engine_set_watch) calls cache_device_changed() or
 * cache_all_changed() from the thread that made the change, before the
 * request returns to its writer; it invalidates the attributes of every
 * path that may mention the device (fuse_invalidate_path, a no-op for
 * what the kernel does not hold), so the next stat(2) asks the daemon
 * again and a vanished entry answers ENOENT.  A reader that starts after a write returned therefore
 * sees the new value and the new size (tests/bats/cache.bats hammers that
 * with tests/tools/staleread.py: no read older than the last completed
 * write).
 *
 * An attribute declared constant (attr.h, `version`) is never
 * invalidated: its content and size are fixed while the daemon runs, and
 * its notification cost every request a write to /dev/fuse once the
 * kernel held it (tests/bats/lend.bats counts a request's notifications).
 *
 * A plan (devices/ID/plans/HOST) depends on the whole cluster: the
 * device's own changes invalidate its plans, a change elsewhere leaves
 * their cached size up to the attribute timeout old (its content is
 * computed at each read all the same).
 *
 * Device ids and hosts the kernel has been told about (lookups, readdir)
 * are remembered: a change of the whole tree (cache_all_changed(): hot-plug,
 * a host going offline) invalidates exactly those devices, the vanished ones
 * included, and only the hosts/H/ paths of known hosts are looked at.
 */
#ifndef LENDFS_CACHE_H
#define LENDFS_CACHE_H

#define FUSE_USE_VERSION 31

#include <fuse.h>

#include "engine.h"

struct lendfs_cache;

int cache_new(struct engine *e, struct lendfs_cache **out);
void cache_free(struct lendfs_cache *c);

/* The mount serves (fuse init) / is going away (fuse destroy). */
void cache_attach(struct lendfs_cache *c, struct fuse *f);
void cache_detach(struct lendfs_cache *c);

/* The kernel has been given a path that names device @devid / @host. */
void cache_seen(struct lendfs_cache *c, const char *devid);
void cache_seen_host(struct lendfs_cache *c, const char *host);

/*
 * From the engine's watch: device @devid changed; @v is its view now
 * (NULL: gone).  @who is the request that changed it (NULL: none), as
 * the engine hands it back; see below for who->origin.
 */
void cache_device_changed(struct lendfs_cache *c, const char *devid,
			  const struct device_view *v,
			  const struct engine_caller *who);

/* From the engine's watch: anything may have changed (@who: as above). */
void cache_all_changed(struct lendfs_cache *c, const struct engine_caller *who);

/*
 * The writer's own file.  fs.c serves a write(2) to an attribute with
 * who->origin set to that file's path (the engine hands @who back to the
 * watch with every change the request makes, from the same thread,
 * before the write returns), and the changes of that request do not
 * invalidate who->origin: when a write succeeds the kernel drops that
 * file's size and times itself (fuse_write_update_attr(): the
 * FUSE_STATX_MODSIZE bits, not mode and owner), and a failed one changes
 * nothing of it.  So the writer's next open(2) needs no GETATTR round
 * trip for its permission check (default_permissions), and stat(2) after
 * the write still asks for the new size.  (While the request is in
 * flight, stat(2) may show the old size; read(2) is always fresh.)  Every
 * other file the change touches is invalidated as usual, and so is every
 * file when the change has no caller (hot-plug, recovery, the cluster).
 * A rename(2) onto `borrower` has the temp file as its origin, a path
 * never invalidated here: `borrower` is invalidated as usual.
 */

#endif
