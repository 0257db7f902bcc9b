// SPDX-License-Identifier: LGPL-2.1-or-later
#include "metrics.h"

#include "util.h"

/* Upper bounds of the request latency buckets, in seconds. */
static const double bucket_le[METRICS_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01,	0.025,	 0.05,	 0.1,	1.0,	10.0,
};

void metrics_request(struct metrics *m, int is_lend, int err, uint64_t ns)
{
	double s = (double)ns / 1e9;

	if (err < 0) {
		unsigned e = (unsigned)-err;

		if (e < METRICS_ERRNO_MAX)
			__atomic_add_fetch(&m->failures[e], 1, __ATOMIC_RELAXED);
	} else if (is_lend) {
		__atomic_add_fetch(&m->lends, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&m->returns, 1, __ATOMIC_RELAXED);
	}
	for (unsigned i = 0; i < METRICS_BUCKETS; i++) {
		if (s <= bucket_le[i]) {
			__atomic_add_fetch(&m->buckets[i], 1, __ATOMIC_RELAXED);
			break;
		}
	}
	__atomic_add_fetch(&m->count, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->sum_ns, ns, __ATOMIC_RELAXED);
}

void metrics_header(FILE *out, const char *name, const char *type,
		    const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void metrics_render(const struct metrics *m, FILE *out)
{
	uint64_t cum = 0, total;

	metrics_header(out, "lendfs_lends_total", "counter",
		       "Lends completed successfully.");
	fprintf(out, "lendfs_lends_total %llu\n", (unsigned long long)load(&m->lends));
	metrics_header(out, "lendfs_returns_total", "counter",
		       "Returns completed successfully.");
	fprintf(out, "lendfs_returns_total %llu\n",
		(unsigned long long)load(&m->returns));
	metrics_header(out, "lendfs_lease_expiries_total", "counter",
		       "Lends of this daemon's devices ended by their lease.");
	fprintf(out, "lendfs_lease_expiries_total %llu\n",
		(unsigned long long)load(&m->lease_expiries));
	metrics_header(out, "lendfs_request_failures_total", "counter",
		       "Failed lend and return requests, by errno.");
	for (unsigned e = 1; e < METRICS_ERRNO_MAX; e++) {
		uint64_t n = load(&m->failures[e]);

		if (n)
			fprintf(out, "lendfs_request_failures_total{errno=\"%s\"} %llu\n",
				errno_name((int)e), (unsigned long long)n);
	}
	metrics_header(out, "lendfs_request_duration_seconds", "histogram",
		       "Time from a borrower write to its completion.");
	/*
	 * The counters are bumped one by one without a lock: a request in
	 * flight may be in its bucket but not yet in count.  The total shown
	 * is the larger of the two, so +Inf never falls below a bucket.
	 */
	for (unsigned i = 0; i < METRICS_BUCKETS; i++) {
		cum += load(&m->buckets[i]);
		fprintf(out, "lendfs_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			bucket_le[i], (unsigned long long)cum);
	}
	total = MAX(cum, load(&m->count));
	fprintf(out, "lendfs_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)total);
	fprintf(out, "lendfs_request_duration_seconds_sum %.9f\n",
		(double)load(&m->sum_ns) / 1e9);
	fprintf(out, "lendfs_request_duration_seconds_count %llu\n",
		(unsigned long long)total);
}
