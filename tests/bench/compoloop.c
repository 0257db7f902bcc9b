// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * compoloop.c - a composition's lend against a single lend and the
 * fdatasyncs a composition should at most add, measured in turns.
 *
 *   compoloop [-n ROUNDS] [-l LENDERS] -s SYNCDIR COMPO_BORROWER=VALUE
 *             DEVICE_BORROWER=VALUE
 *
 * Each round, in turn: the composition lent (open COMPO_BORROWER,
 * write(2) "VALUE\n", close; the write returns when every device is
 * lent) and returned ("\n"); one device lent and returned the same way
 * through DEVICE_BORROWER; and one small write + fdatasync(2) of
 * SYNCDIR/compoloop-sync (SYNCDIR: the directory of the state database,
 * the same disk).  The target of issue 19: a composition whose devices
 * are on LENDERS lenders costs at most 1.5 x (one lend + one fdatasync
 * per extra lender, LENDERS - 1 of them).
 *
 * Prints one line of medians (ns) and the ratio:
 *
 *   rounds N compo_lend_ns A compo_return_ns B lend_ns C return_ns D
 *   fdatasync_ns E floor_ns F ratio R
 *
 * where floor = lend + (LENDERS - 1) x fdatasync and ratio = compo_lend /
 * floor.  Exit 1 on the first failed write (with its errno).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define MAX_ROUNDS 10000

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One request: open, write, close; its time in ns, or exit on error. */
static double request(const char *path, const char *value)
{
	size_t len = strlen(value);
	double t0 = now_ns();
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, value, len) != (ssize_t)len) {
		fprintf(stderr, "compoloop: %s <- '%.*s': %s\n", path,
			(int)(len ? len - 1 : 0), value, strerror(errno));
		exit(1);
	}
	close(fd);
	return now_ns() - t0;
}

static double sync_once(int fd)
{
	static const char buf[64] = "compoloop";
	double t0 = now_ns();

	if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
	    fdatasync(fd) != 0) {
		perror("compoloop: fdatasync");
		exit(1);
	}
	return now_ns() - t0;
}

/* "PATH=VALUE" into @path and "VALUE\n" into @value (static buffers). */
static void split(char *arg, const char **path, char *value, size_t size)
{
	char *eq = strrchr(arg, '=');

	if (!eq) {
		fprintf(stderr, "compoloop: %s: expected PATH=VALUE\n", arg);
		exit(2);
	}
	*eq = '\0';
	*path = arg;
	snprintf(value, size, "%s\n", eq + 1);
}

int main(int argc, char **argv)
{
	static double cl[MAX_ROUNDS], cr[MAX_ROUNDS], dl[MAX_ROUNDS],
		dr[MAX_ROUNDS], fs[MAX_ROUNDS];
	char cval[300], dval[300], sync_path[4096];
	const char *cpath, *dpath, *syncdir = NULL;
	int rounds = 50, lenders = 2, opt, fd;
	double a, b, c, d, e, floor;

	while ((opt = getopt(argc, argv, "n:l:s:")) != -1) {
		if (opt == 'n')
			rounds = atoi(optarg);
		else if (opt == 'l')
			lenders = atoi(optarg);
		else if (opt == 's')
			syncdir = optarg;
		else
			return 2;
	}
	if (argc - optind != 2 || !syncdir || rounds < 1 || rounds > MAX_ROUNDS ||
	    lenders < 1) {
		fprintf(stderr, "usage: compoloop [-n ROUNDS] [-l LENDERS] -s SYNCDIR "
			"COMPO_BORROWER=VALUE DEVICE_BORROWER=VALUE\n");
		return 2;
	}
	split(argv[optind], &cpath, cval, sizeof(cval));
	split(argv[optind + 1], &dpath, dval, sizeof(dval));
	snprintf(sync_path, sizeof(sync_path), "%s/compoloop-sync", syncdir);
	fd = open(sync_path, O_RDWR | O_CREAT, 0600);
	if (fd < 0) {
		perror(sync_path);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		cl[i] = request(cpath, cval);
		cr[i] = request(cpath, "\n");
		dl[i] = request(dpath, dval);
		dr[i] = request(dpath, "\n");
		fs[i] = sync_once(fd);
	}
	close(fd);
	unlink(sync_path);
	a = median(cl, rounds);
	b = median(cr, rounds);
	c = median(dl, rounds);
	d = median(dr, rounds);
	e = median(fs, rounds);
	floor = c + (lenders - 1) * e;
	printf("rounds %d compo_lend_ns %.0f compo_return_ns %.0f lend_ns %.0f "
	       "return_ns %.0f fdatasync_ns %.0f floor_ns %.0f ratio %.2f\n",
	       rounds, a, b, c, d, e, floor, a / floor);
	return 0;
}
