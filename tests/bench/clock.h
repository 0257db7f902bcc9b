/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * clock.h - what the benchmark loops share: a monotonic clock in ns and
 * the comparison that sorts samples for their percentiles.
 */
#ifndef LENDFS_BENCH_CLOCK_H
#define LENDFS_BENCH_CLOCK_H

#include <time.h>

static inline double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#endif
