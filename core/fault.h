/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fault.h - fault injection for tests.
 *
 * LENDFS_FAULT="point:N[:ACTION][,...]" acts at the Nth time (counting
 * from 1) the engine passes `point`.  ACTION is `eio` (the default): that
 * pass fails with -EIO ("injected fault at point #N"); or `crash`: the
 * process ends there (the exit_group system call, with status
 * FAULT_CRASH_STATUS): no cleanup, no atexit handler, no stdio flush (one line goes to stderr with write(2)).
 * LENDFS_DELAY="point:MS[,...]" sleeps MS milliseconds every time `point`
 * is passed (to provoke the engine timeout).  Both are read once, at
 * engine start; a point that is not in the list (fault.c, docs/TESTING.md)
 * or `eio` at a point that can only crash is refused with -EINVAL.
 */
#ifndef LENDFS_FAULT_H
#define LENDFS_FAULT_H

#include <stdbool.h>

/* The exit status of an injected crash (nothing else in lendfs uses it). */
#define FAULT_CRASH_STATUS 86

/* Parse the environment; -EINVAL on a malformed spec. */
int fault_init(char *reason);

/*
 * A point where a request can fail: 0, or -EIO with a reason when this
 * pass of @point is the injected one.  Crashes here if asked to.
 */
int fault_check(const char *point, char *reason);

/* A point where a request cannot fail: it only crashes or sleeps. */
void fault_pass(const char *point);

/* Total passes of @point so far (tests enumerate injection points). */
unsigned fault_count(const char *point);

void fault_reset(void);

#endif
