// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * readloop.c - the cost of reading one small file, the way a script does.
 *
 *   readloop [-s | -l] [-b BATCHES] ITERATIONS FILE...
 *
 * Default: open + read + close of each FILE, ITERATIONS times.  -s:
 * stat(2) instead.  -l: stat(2) of a FILE that must not exist (a negative
 * lookup: with no negative caching each one is a round trip to the
 * filesystem).  The iterations run in BATCHES batches (default 10), the
 * files taking turns batch by batch, so that a noisy machine (other
 * processes, frequency changes) weighs on every file alike.  Prints one
 * line per file:
 *
 *   FILE median_ns N min_ns N iterations N
 *
 * per iteration: the median and the minimum over the batches.  Exit 1 if
 * an operation fails (or, with -l, succeeds).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define MAX_BATCHES 1000
#define MAX_FILES 8

enum mode { MODE_READ, MODE_STAT, MODE_MISSING };

static int one(enum mode mode, const char *path)
{
	char buf[4096];
	struct stat st;
	ssize_t n;
	int fd;

	switch (mode) {
	case MODE_STAT:
		return stat(path, &st);
	case MODE_MISSING:
		return stat(path, &st) == 0 || errno != ENOENT ? -1 : 0;
	default:
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -1;
		n = read(fd, buf, sizeof(buf));
		close(fd);
		return n <= 0 ? -1 : 0;
	}
}

static double median(double *v, long n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char *argv[])
{
	enum mode mode = MODE_READ;
	long batches = 10, iters, per;
	static double t[MAX_FILES][MAX_BATCHES];
	int c, nfiles;

	while ((c = getopt(argc, argv, "slb:")) != -1) {
		switch (c) {
		case 's':
			mode = MODE_STAT;
			break;
		case 'l':
			mode = MODE_MISSING;
			break;
		case 'b':
			batches = strtol(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	nfiles = argc - optind - 1;
	if (nfiles < 1 || nfiles > MAX_FILES)
		goto usage;
	iters = strtol(argv[optind], NULL, 10);
	if (batches < 1 || batches > MAX_BATCHES || iters < batches)
		goto usage;
	per = iters / batches;

	for (int f = 0; f < nfiles; f++) {
		const char *path = argv[optind + 1 + f];

		/* a warm-up pass: the first access is a cold lookup */
		if (one(mode, path) < 0) {
			fprintf(stderr, "readloop: %s: %s\n", path,
				mode == MODE_MISSING ? "exists" : strerror(errno));
			return 1;
		}
	}
	for (long b = 0; b < batches; b++) {
		for (int f = 0; f < nfiles; f++) {
			const char *path = argv[optind + 1 + f];
			double t0 = now_ns();

			for (long i = 0; i < per; i++) {
				if (one(mode, path) < 0) {
					fprintf(stderr, "readloop: %s: %s\n", path,
						strerror(errno));
					return 1;
				}
			}
			t[f][b] = (now_ns() - t0) / (double)per;
		}
	}
	for (int f = 0; f < nfiles; f++) {
		double m = median(t[f], batches);

		printf("%s median_ns %.0f min_ns %.0f iterations %ld\n",
		       argv[optind + 1 + f], m, t[f][0], per * batches);
	}
	return 0;

usage:
	fprintf(stderr, "usage: readloop [-s | -l] [-b BATCHES] ITERATIONS FILE...\n");
	return 2;
}
