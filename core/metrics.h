/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * metrics.h - request counters and latency histogram, rendered in the
 * Prometheus text exposition format (names prefixed lendfs_, with HELP and
 * TYPE lines).  Updates are lock-free atomics.
 */
#ifndef LENDFS_METRICS_H
#define LENDFS_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define METRICS_ERRNO_MAX 256
#define METRICS_BUCKETS 12

struct metrics {
	uint64_t lends;
	uint64_t returns;
	uint64_t lease_expiries; /* lends ended by their lease */
	uint64_t failures[METRICS_ERRNO_MAX]; /* by errno */
	uint64_t buckets[METRICS_BUCKETS];    /* cumulative at render */
	uint64_t count;
	uint64_t sum_ns;
};

/* Record one finished request: @err is 0 or -errno, @ns its duration. */
void metrics_request(struct metrics *m, int is_lend, int err, uint64_t ns);

/* Render the counters and the histogram. */
void metrics_render(const struct metrics *m, FILE *out);

/* Write a HELP + TYPE header. */
void metrics_header(FILE *out, const char *name, const char *type,
		    const char *help);

#endif
