// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * pollbench - how soon a poll(2) on devices/X/state wakes after a write
 * to devices/X/borrower starts, next to how long that write takes
 * (tests/bench/run.sh, docs/PERFORMANCE.md).
 *
 *   pollbench -n N DEVICE_DIR BORROWER
 *
 * A poller thread reads `state` (so it has seen the value), says it is
 * ready, and polls for POLLPRI; the main thread then writes BORROWER (or,
 * every other time, an empty line) to `borrower` with open+write+close.
 * Per request: wake = poll return - write start, write = write return -
 * write start.  Prints "wake_p50_ns A wake_p99_ns B write_p50_ns C
 * write_p99_ns D".  Exit 1 when a request or a poll fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_LIMIT_MS 10000

struct bench {
	char state[4096];
	unsigned n;
	uint64_t *woke;
	sem_t ready;
	int failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *poller(void *arg)
{
	struct bench *b = arg;
	int fd = open(b->state, O_RDONLY | O_CLOEXEC);
	char buf[64];

	for (unsigned i = 0; fd >= 0 && i < b->n; i++) {
		struct pollfd p = { .fd = fd, .events = POLLPRI };

		if (pread(fd, buf, sizeof(buf), 0) < 0)
			break;
		sem_post(&b->ready);
		if (poll(&p, 1, POLL_LIMIT_MS) != 1) {
			b->failed = 1;
			break;
		}
		b->woke[i] = now_ns();
	}
	if (fd < 0)
		b->failed = 1;
	if (fd >= 0)
		close(fd);
	sem_post(&b->ready); /* never leave the writer waiting */
	return NULL;
}

static int write_value(const char *file, const char *v)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, v, strlen(v));
	close(fd);
	return n == (ssize_t)strlen(v) ? 0 : -errno;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, unsigned n, unsigned p)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(size_t)(n - 1) * p / 100];
}

int main(int argc, char **argv)
{
	struct bench b = { .n = 200 };
	char borrower[4096], lend[256];
	uint64_t *start, *wrote, *wake;
	pthread_t t;
	int c;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || (b.n = (unsigned)atoi(optarg)) < 2) {
			fprintf(stderr, "usage: pollbench -n N DEVICE_DIR BORROWER\n");
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: pollbench -n N DEVICE_DIR BORROWER\n");
		return 2;
	}
	snprintf(b.state, sizeof(b.state), "%s/state", argv[optind]);
	snprintf(borrower, sizeof(borrower), "%s/borrower", argv[optind]);
	snprintf(lend, sizeof(lend), "%s\n", argv[optind + 1]);
	b.woke = calloc(b.n, sizeof(*b.woke));
	start = calloc(b.n, sizeof(*start));
	wrote = calloc(b.n, sizeof(*wrote));
	wake = calloc(b.n, sizeof(*wake));
	if (!b.woke || !start || !wrote || !wake || sem_init(&b.ready, 0, 0) ||
	    pthread_create(&t, NULL, poller, &b))
		return 1;
	for (unsigned i = 0; i < b.n && !b.failed; i++) {
		sem_wait(&b.ready);
		if (b.failed)
			break;
		start[i] = now_ns();
		if (write_value(borrower, i % 2 ? "\n" : lend) < 0)
			b.failed = 1;
		wrote[i] = now_ns();
	}
	pthread_join(t, NULL);
	if (b.failed) {
		fprintf(stderr, "pollbench: a request or a poll failed\n");
		return 1;
	}
	for (unsigned i = 0; i < b.n; i++) {
		wake[i] = b.woke[i] - start[i];
		wrote[i] -= start[i];
	}
	printf("wake_p50_ns %llu wake_p99_ns %llu ",
	       (unsigned long long)pct(wake, b.n, 50),
	       (unsigned long long)pct(wake, b.n, 99));
	printf("write_p50_ns %llu write_p99_ns %llu\n",
	       (unsigned long long)pct(wrote, b.n, 50),
	       (unsigned long long)pct(wrote, b.n, 99));
	return 0;
}
