// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lendloop.c - lend and return devices as fast as writes allow.
 *
 *   lendloop [-w WRITERS] [-n ITERATIONS | -t SECONDS] [-f SYNCDIR]
 *            PATH=VALUE...
 *
 * Each writer takes one PATH=VALUE (writer k the k-th, round robin) and
 * loops: open PATH, write(2) "VALUE\n" (a lend), close; open, write "\n"
 * (the return), close.  A write returns when the request is done, so its
 * time is the lend's.  -n: ITERATIONS lends per writer; -t: as many as
 * fit in SECONDS.  With -f (the floor), every write is followed by one
 * small write and fsync(2) of SYNCDIR/floor-sync.K, a file of its own per
 * writer: what one durable commit costs on that disk.
 *
 * Prints one line:
 *
 *   lends N seconds S lends_per_s R lend_median_ns A return_median_ns B
 *
 * Exit 1 on the first failed write (with its errno).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define MAX_SAMPLES 20000

struct writer {
	pthread_t thread;
	const char *path;
	char value[300];
	int sync_fd;
	long lends;
	double *lend_ns, *return_ns;
	long nsamples;
	int err;
};

static long iterations = 0;
static double seconds = 0;
static double t_end;

/* One request; returns its duration in ns, or -errno. */
static double request(struct writer *w, const char *value)
{
	double t0 = now_ns();
	size_t len = strlen(value);
	int fd = open(w->path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n != (ssize_t)len) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		return -e;
	}
	close(fd);
	if (w->sync_fd >= 0) {
		uint64_t stamp = (uint64_t)t0;

		if (pwrite(w->sync_fd, &stamp, sizeof(stamp), 0) != sizeof(stamp) ||
		    fsync(w->sync_fd) < 0)
			return -errno;
	}
	return now_ns() - t0;
}

static void *run(void *arg)
{
	struct writer *w = arg;

	for (long i = 0; iterations ? i < iterations : now_ns() < t_end; i++) {
		double a = request(w, w->value), b;

		if (a < 0) {
			w->err = (int)-a;
			return NULL;
		}
		b = request(w, "\n");
		if (b < 0) {
			w->err = (int)-b;
			return NULL;
		}
		w->lends++;
		if (w->nsamples < MAX_SAMPLES) {
			w->lend_ns[w->nsamples] = a;
			w->return_ns[w->nsamples++] = b;
		}
	}
	return NULL;
}

static double median(double *v, long n)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char *argv[])
{
	const char *sync_dir = NULL;
	struct writer *w;
	double *all_lend, *all_return, t0, elapsed;
	long nwriters = 1, lends = 0, n = 0;
	int c, ntargets;

	while ((c = getopt(argc, argv, "w:n:t:f:")) != -1) {
		switch (c) {
		case 'w':
			nwriters = strtol(optarg, NULL, 10);
			break;
		case 'n':
			iterations = strtol(optarg, NULL, 10);
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'f':
			sync_dir = optarg;
			break;
		default:
			goto usage;
		}
	}
	ntargets = argc - optind;
	if (ntargets < 1 || nwriters < 1 || nwriters > 1024 ||
	    (iterations <= 0) == (seconds <= 0))
		goto usage;

	w = calloc((size_t)nwriters, sizeof(*w));
	if (!w)
		return 1;
	for (long k = 0; k < nwriters; k++) {
		const char *t = argv[optind + k % ntargets];
		const char *eq = strrchr(t, '=');

		if (!eq)
			goto usage;
		w[k].path = strndup(t, (size_t)(eq - t));
		snprintf(w[k].value, sizeof(w[k].value), "%s\n", eq + 1);
		w[k].sync_fd = -1;
		w[k].lend_ns = calloc(MAX_SAMPLES, sizeof(double));
		w[k].return_ns = calloc(MAX_SAMPLES, sizeof(double));
		if (!w[k].path || !w[k].lend_ns || !w[k].return_ns)
			return 1;
		if (sync_dir) {
			char p[4096];

			snprintf(p, sizeof(p), "%s/floor-sync.%ld", sync_dir, k);
			w[k].sync_fd = open(p, O_RDWR | O_CREAT, 0644);
			if (w[k].sync_fd < 0) {
				fprintf(stderr, "lendloop: %s: %s\n", p,
					strerror(errno));
				return 1;
			}
		}
	}

	t0 = now_ns();
	t_end = t0 + seconds * 1e9;
	for (long k = 0; k < nwriters; k++)
		pthread_create(&w[k].thread, NULL, run, &w[k]);
	for (long k = 0; k < nwriters; k++)
		pthread_join(w[k].thread, NULL);
	elapsed = (now_ns() - t0) / 1e9;

	all_lend = calloc((size_t)nwriters * MAX_SAMPLES, sizeof(double));
	all_return = calloc((size_t)nwriters * MAX_SAMPLES, sizeof(double));
	if (!all_lend || !all_return)
		return 1;
	for (long k = 0; k < nwriters; k++) {
		if (w[k].err) {
			fprintf(stderr, "lendloop: %s: %s\n", w[k].path,
				strerror(w[k].err));
			return 1;
		}
		lends += w[k].lends;
		memcpy(all_lend + n, w[k].lend_ns, (size_t)w[k].nsamples * sizeof(double));
		memcpy(all_return + n, w[k].return_ns,
		       (size_t)w[k].nsamples * sizeof(double));
		n += w[k].nsamples;
	}
	printf("lends %ld seconds %.3f lends_per_s %.1f lend_median_ns %.0f "
	       "return_median_ns %.0f\n", lends, elapsed, (double)lends / elapsed,
	       median(all_lend, n), median(all_return, n));
	return 0;

usage:
	fprintf(stderr, "usage: lendloop [-w WRITERS] [-n ITERATIONS | -t SECONDS] "
		"[-f SYNCDIR] PATH=VALUE...\n");
	return 2;
}
