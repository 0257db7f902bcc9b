// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * clusterbench.c - latencies of distributed mode (tests/bench/cluster.sh).
 *
 *   clusterbench lat -n N BORROWER_FILE VALUE
 *       N lends (write "VALUE\n") each followed by a return (write "\n"),
 *       one at a time; prints
 *       "lend_us p50=A p99=B return_us p50=C p99=D n=N"
 *   clusterbench visible -n N BORROWER_FILE VALUE STATE_FILE...
 *       N times: lend, then wait until every STATE_FILE (the device on
 *       each mount) reads "lent"; return, wait until each reads
 *       "available".  One watcher thread per mount keeps its file open
 *       and waits in poll(2) (docs/ABI/README, "Polling"): it wakes on
 *       each change of `state` and re-reads it from offset 0; the time
 *       is taken when the re-read shows the state waited for.  Prints
 *       "visible_us p50=A p99=B n=2N mounts=M write_us p50=C p99=D": the
 *       time from the write's return until the last mount showed the
 *       change (0 when every mount showed it before the write returned),
 *       and the writes' own latency.
 *
 * Exit 1 on a failed write or when a mount never shows the change (10 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MOUNTS 64
#define POLL_MS 100 /* a watcher's poll(2): bounds how late it sees `stop` */
#define GIVE_UP_NS (10ULL * 1000000000ULL)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int write_value(const char *path, const char *value)
{
	char buf[300];
	int n = snprintf(buf, sizeof(buf), "%s\n", value);
	int fd = open(path, O_WRONLY);
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, buf, (size_t)n);
	if (w < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, unsigned n, unsigned p)
{
	unsigned i = (unsigned)(((uint64_t)n * p + 99) / 100);

	qsort(v, n, sizeof(*v), cmp_u64);
	return v[i ? i - 1 : 0];
}

static int lat(unsigned n, const char *file, const char *value)
{
	uint64_t *l = calloc(n, sizeof(*l)), *r = calloc(n, sizeof(*r));

	if (!l || !r)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		int e = write_value(file, value);
		uint64_t t1 = now_ns();

		if (e == 0)
			e = write_value(file, "");
		if (e < 0) {
			fprintf(stderr, "clusterbench: write %s: %s\n", file,
				strerror(-e));
			return 1;
		}
		l[i] = t1 - t0;
		r[i] = now_ns() - t1;
	}
	printf("lend_us p50=%.0f p99=%.0f return_us p50=%.0f p99=%.0f n=%u\n",
	       pct(l, n, 50) / 1e3, pct(l, n, 99) / 1e3, pct(r, n, 50) / 1e3,
	       pct(r, n, 99) / 1e3, n);
	free(l);
	free(r);
	return 0;
}

struct poller {
	pthread_t thread;
	const char *file;
	int fd;
};

static _Atomic(const char *) want; /* the state every poller waits for */
static atomic_uint round_no;	   /* bumped to start a round */
static atomic_uint seen;	   /* pollers that saw this round's state */
static atomic_uint stop;
static _Atomic uint64_t last_seen_ns;

/* Read @fd from offset 0: what poll(2) reports next is a later change. */
static int pread_word(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static void saw_it(void)
{
	uint64_t t = now_ns(), prev = atomic_load(&last_seen_ns);

	while (t > prev && !atomic_compare_exchange_weak(&last_seen_ns, &prev, t))
		;
	atomic_fetch_add(&seen, 1);
}

static void *poll_main(void *arg)
{
	struct poller *p = arg;
	unsigned done_round = 0;

	while (!atomic_load(&stop)) {
		unsigned r = atomic_load(&round_no);
		struct pollfd pfd = { .fd = p->fd, .events = POLLPRI };
		char buf[64];

		if (r != done_round && pread_word(p->fd, buf, sizeof(buf)) == 0 &&
		    !strcmp(buf, atomic_load(&want))) {
			saw_it();
			done_round = r;
			continue;
		}
		/* wakes at once if the state changed since the read above */
		poll(&pfd, 1, POLL_MS);
	}
	return NULL;
}

static int visible(unsigned n, const char *file, const char *value,
		   char **states, unsigned nstates)
{
	struct poller p[MAX_MOUNTS];
	uint64_t *v = calloc(2 * (size_t)n, sizeof(*v));
	uint64_t *w = calloc(2 * (size_t)n, sizeof(*w));
	unsigned k = 0;
	int rc = 0;

	if (!v || !w || nstates > MAX_MOUNTS) {
		free(v);
		free(w);
		return 1;
	}
	atomic_store(&want, "");
	for (unsigned i = 0; i < nstates; i++) {
		p[i].file = states[i];
		p[i].fd = open(states[i], O_RDONLY);
		if (p[i].fd < 0) {
			fprintf(stderr, "clusterbench: %s: %s\n", states[i],
				strerror(errno));
			return 1;
		}
	}
	for (unsigned i = 0; i < nstates; i++)
		pthread_create(&p[i].thread, NULL, poll_main, &p[i]);
	for (unsigned i = 0; i < 2 * n && rc == 0; i++) {
		const char *val = i % 2 ? "" : value;
		uint64_t t0, t1, dl;
		int e;

		atomic_store(&seen, 0);
		atomic_store(&last_seen_ns, 0);
		atomic_store(&want, i % 2 ? "available" : "lent");
		/* before the write: a mount may show it before the write returns */
		atomic_fetch_add(&round_no, 1);
		t0 = now_ns();
		e = write_value(file, val);
		t1 = now_ns();
		w[k] = t1 - t0;
		if (e < 0) {
			fprintf(stderr, "clusterbench: write %s: %s\n", file,
				strerror(-e));
			rc = 1;
			break;
		}
		dl = t1 + GIVE_UP_NS;
		while (atomic_load(&seen) < nstates && now_ns() < dl)
			usleep(200); /* pacing only: the watchers take the times */
		if (atomic_load(&seen) < nstates) {
			fprintf(stderr, "clusterbench: a mount never showed '%s'\n",
				atomic_load(&want));
			rc = 1;
			break;
		}
		v[k++] = atomic_load(&last_seen_ns) > t1 ?
				 atomic_load(&last_seen_ns) - t1 : 0;
	}
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < nstates; i++) {
		pthread_join(p[i].thread, NULL);
		close(p[i].fd);
	}
	if (rc == 0)
		printf("visible_us p50=%.0f p99=%.0f n=%u mounts=%u write_us p50=%.0f p99=%.0f\n",
		       pct(v, k, 50) / 1e3, pct(v, k, 99) / 1e3, k, nstates,
		       pct(w, k, 50) / 1e3, pct(w, k, 99) / 1e3);
	free(v);
	free(w);
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: clusterbench lat -n N BORROWER_FILE VALUE\n"
			"       clusterbench visible -n N BORROWER_FILE VALUE STATE_FILE...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned n;

	if (argc < 6 || strcmp(argv[2], "-n"))
		usage();
	n = (unsigned)strtoul(argv[3], NULL, 10);
	if (!n)
		usage();
	if (!strcmp(argv[1], "lat") && argc == 6)
		return lat(n, argv[4], argv[5]);
	if (!strcmp(argv[1], "visible") && argc >= 7)
		return visible(n, argv[4], argv[5], argv + 6, (unsigned)(argc - 6));
	usage();
}
