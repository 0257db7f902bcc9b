// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * racer - many threads of one process hit one control file at the same
 * moment, for the race tests (tests/bats/races.bats).
 *
 *   racer [-t THREADS] [-s START_FILE] [-r] FILE VALUE...
 *
 * Thread i uses VALUE[i % count].  Every thread prepares first (opens FILE
 * for writing, or with -r writes VALUE to a temp file of its own next to
 * FILE), then all wait on a barrier, and on START_FILE when given, so
 * that several racer processes start together; then each does its one
 * request: a single write(2) of "VALUE\n", or with -r a rename(2) of its
 * temp file over FILE.  A temp file whose rename failed is unlinked.
 *
 * Output: one line per thread, "INDEX VALUE RESULT", RESULT being OK or
 * the errno name (EBUSY, ...).  Exit status 0 once every thread has
 * reported, 2 on a usage or set-up error.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define MAX_THREADS 256
#define START_WAIT_MS 20000

struct racer {
	const char *file;
	const char *start;
	bool rename;
	pthread_barrier_t barrier;
};

struct job {
	struct racer *rc;
	unsigned index;
	const char *value;
	int fd;
	char tmp[4096];
	int err; /* 0 or an errno */
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int prepare(struct job *j)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s\n", j->value);
	const char *slash;
	int fd;

	if (!j->rc->rename) {
		j->fd = open(j->rc->file, O_WRONLY);
		return j->fd < 0 ? -errno : 0;
	}
	slash = strrchr(j->rc->file, '/');
	snprintf(j->tmp, sizeof(j->tmp), "%.*s.racer-%d-%u",
		 slash ? (int)(slash - j->rc->file + 1) : 0, j->rc->file,
		 (int)getpid(), j->index);
	fd = open(j->tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, line, (size_t)n) != n) {
		int e = errno;

		close(fd);
		unlink(j->tmp);
		return -e;
	}
	close(fd);
	return 0;
}

static void *run(void *arg)
{
	struct job *j = arg;
	char line[512];
	int n = snprintf(line, sizeof(line), "%s\n", j->value);

	pthread_barrier_wait(&j->rc->barrier);
	if (j->rc->rename) {
		j->err = rename(j->tmp, j->rc->file) < 0 ? errno : 0;
		if (j->err)
			unlink(j->tmp);
	} else {
		ssize_t w = write(j->fd, line, (size_t)n);

		j->err = w < 0 ? errno : (w == n ? 0 : EIO);
		close(j->fd);
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: racer [-t THREADS] [-s START_FILE] [-r] FILE "
		"VALUE...\n");
	exit(2);
}

int main(int argc, char *argv[])
{
	struct racer rc = { 0 };
	static struct job jobs[MAX_THREADS];
	pthread_t tids[MAX_THREADS];
	unsigned threads = 8, nvalues;
	int opt;

	while ((opt = getopt(argc, argv, "t:s:r")) != -1) {
		switch (opt) {
		case 't':
			threads = (unsigned)atoi(optarg);
			if (threads < 1 || threads > MAX_THREADS)
				usage();
			break;
		case 's':
			rc.start = optarg;
			break;
		case 'r':
			rc.rename = true;
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 2)
		usage();
	rc.file = argv[optind];
	nvalues = (unsigned)(argc - optind - 1);

	for (unsigned i = 0; i < threads; i++) {
		struct job *j = &jobs[i];
		int r;

		j->rc = &rc;
		j->index = i;
		j->value = argv[optind + 1 + i % nvalues];
		j->fd = -1;
		r = prepare(j);
		if (r < 0) {
			fprintf(stderr, "racer: thread %u: %s: %s\n", i,
				rc.rename ? j->tmp : rc.file, strerror(-r));
			return 2;
		}
	}
	/* all threads created and ready, then the start file, then go */
	pthread_barrier_init(&rc.barrier, NULL, threads + 1);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&tids[i], NULL, run, &jobs[i]) != 0) {
			fprintf(stderr, "racer: cannot create thread %u\n", i);
			return 2;
		}
	}
	for (unsigned ms = 0; rc.start && access(rc.start, F_OK) < 0; ms++) {
		if (ms == START_WAIT_MS) {
			fprintf(stderr, "racer: %s never appeared\n", rc.start);
			return 2;
		}
		sleep_ms(1);
	}
	pthread_barrier_wait(&rc.barrier);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	for (unsigned i = 0; i < threads; i++)
		printf("%u %s %s\n", i, jobs[i].value,
		       jobs[i].err ? errno_name(jobs[i].err) : "OK");
	pthread_barrier_destroy(&rc.barrier);
	return 0;
}
