/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * watch.h - poll(2) on the files of the tree, with sysfs semantics.
 *
 * An attribute declared pollable (LENDFS_ATTR_*_POLL, attr.h) can be
 * waited on: a poll(2)/select(2)/epoll(7) on an open descriptor blocks
 * until the file's content differs from what it was when the descriptor
 * last read it from offset 0 (or was opened), then reports
 * POLLPRI|POLLERR|POLLIN; the reader re-reads from offset 0 and polls
 * again.  (sysfs also reports POLLIN while nothing changed, so that only
 * POLLPRI can be waited for; here POLLIN waits too, so `poll` on POLLIN
 * works as users expect.)  Any other file is always ready, like a
 * regular file.
 *
 * One watched file (a path with at least one open descriptor) keeps its
 * last rendered content (from the first read, poll or change after it was
 * opened) and a generation that counts its changes.  The
 * engine's watch tells us which device changed (or that anything may
 * have): watch_device_changed() renders that device's watched files and
 * `lends` again, watch_all_changed() every watched file; a content that
 * differs (a device that vanished renders as an error) bumps the
 * generation and wakes the file's pending pollers with
 * fuse_notify_poll().  A watched file on which no poller waits is only
 * marked stale by a change, and rendered by the next poll or read of one
 * of its descriptors, which counts the change then: the same answer, as
 * a poll compares with what the descriptor last read, without a render
 * per request of files nobody polls (the writer's own `borrower`, issue
 * 22).  The FUSE poll request itself never blocks, so an
 * idle poller holds no worker thread, only its struct watch_fd.  A file
 * nobody has open is not watched and costs nothing.
 */
#ifndef LENDFS_WATCH_H
#define LENDFS_WATCH_H

#define FUSE_USE_VERSION 31

#include <fuse.h>
#include <stdbool.h>
#include <stddef.h>

struct watches;
struct watch_fd;

/* Render the file at @path now (0, or -errno: it is gone). */
typedef int (*watch_render_fn)(void *arg, const char *path, char **buf,
			       size_t *len);

int watches_new(watch_render_fn render, void *arg, struct watches **out);
/* Wakes and drops every pending poller. */
void watches_free(struct watches *w);

/* A descriptor of pollable @path was opened: it has seen the content now. */
/*
 * @append: an append-only log (`events`), whose change is reported as
 * POLLIN|POLLRDNORM alone (more to read), not POLLPRI|POLLERR.
 */
int watch_open(struct watches *w, const char *path, bool append,
	       struct watch_fd **out);
void watch_close(struct watches *w, struct watch_fd *fd);

/*
 * A read from offset 0 of @fd is about to render the file: whatever it
 * renders is seen (a change that lands during the render wakes the next
 * poll, at worst once too often, never too late).
 */
void watch_read(struct watches *w, struct watch_fd *fd);

/*
 * ... and this is what it rendered: the file's content to compare the
 * next change with, if nothing has rendered it yet (opening a watched
 * file renders nothing: a read that is never polled costs one copy).
 */
void watch_rendered(struct watches *w, struct watch_fd *fd, const char *buf,
		    size_t len);

/*
 * The FUSE poll request: the events ready now; @ph (may be NULL) is kept
 * and notified on the next change, or destroyed at once if ready.
 */
unsigned watch_poll(struct watches *w, struct watch_fd *fd,
		    struct fuse_pollhandle *ph);

/*
 * A read did not reach the end of an append-only file (`events`): the
 * next poll reports it ready at once.
 */
void watch_unread(struct watches *w, struct watch_fd *fd);

/* The file at @path may have changed (`events`: an append). */
void watch_path_changed(struct watches *w, const char *path);

/* From the engine's watch: device @devid changed / anything may have. */
void watch_device_changed(struct watches *w, const char *devid);
void watch_all_changed(struct watches *w);
/* Compositions changed: every watched file under compositions/. */
void watch_compos_changed(struct watches *w);

#endif
