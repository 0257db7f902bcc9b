/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h - where the daemon's log lines go.
 *
 * In the foreground (-f) every line goes to stderr as "lendfs: MESSAGE".
 * A daemon that forks (no -f) has no stderr (it is /dev/null once it has
 * detached): from the fork on, every line goes to syslog(3) instead, as
 * ident "lendfs" with LOG_PID, facility LOG_DAEMON, at the priority given
 * (lendfs_log_to_syslog()).  libfuse's own messages follow once the
 * daemon detaches (lendfs_log_fuse_to_syslog()): before that they are
 * start-up errors (a bad -o option) for whoever started lendfs.
 *
 * Everything the daemon says while it serves goes through lendfs_log():
 * its own lines (the tree: refused requests, state changes; main.c:
 * device events) and the engine's events (recovery decisions, reroutes,
 * take-backs, autolend, ZooKeeper; main.c hands them over).  Start-up
 * failures before the daemon serves are printed on stderr by main.c, for
 * whoever started it (the parent waits for the child's status).
 *
 * Priorities:
 *   LOG_ERR      the daemon cannot go on serving
 *   LOG_WARNING  a refused request, a device that failed, a missing group
 *   LOG_NOTICE   lends, returns, host and VM changes, engine events
 */
#ifndef LENDFS_LOG_H
#define LENDFS_LOG_H

#include <stddef.h>
#include <syslog.h>

#include "util.h"

void lendfs_log(int prio, const char *fmt, ...) _printf_(2, 3);

/* From now on, to syslog (once, in the forked daemon). */
void lendfs_log_to_syslog(void);

/* libfuse's messages too, from now on (once it has detached). */
void lendfs_log_fuse_to_syslog(void);

/* Printable, bounded copy of a user-supplied value for log lines. */
void lendfs_log_value(const char *buf, size_t len, char *out, size_t outlen);

#endif
