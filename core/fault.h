/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fault.h - fault injection for tests.
 *
 * LENDFS_FAULT="point:N[,point:N...]" makes the Nth time (counting from 1)
 * the engine passes `point` fail with -EIO ("injected fault at point #N").
 * LENDFS_DELAY="point:MS[,...]" sleeps MS milliseconds every time `point`
 * is passed (to provoke the engine timeout).  Points are listed in
 * docs/TESTING.md.  Both are read once, at engine start.
 */
#ifndef LENDFS_FAULT_H
#define LENDFS_FAULT_H

/* Parse the environment; -EINVAL on a malformed spec. */
int fault_init(char *reason);

/* 0, or -EIO with a reason when this pass of @point is the injected one. */
int fault_check(const char *point, char *reason);

/* Total passes of @point so far (tests enumerate injection points). */
unsigned fault_count(const char *point);

void fault_reset(void);

#endif
