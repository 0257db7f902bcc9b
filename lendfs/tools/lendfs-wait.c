// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lendfs-wait - wait for a file of a lendfs mount to read a value, or
 * follow one that grows, with poll(2): no busy loop (docs/ABI, watch.h).
 *
 *   lendfs-wait [-t SECONDS] FILE VALUE...   until FILE's first line is
 *                                             one of VALUE
 *   lendfs-wait -f FILE                       print FILE, then what is
 *                                             appended, until killed
 *
 * A pollable attribute reports POLLPRI|POLLERR when its content changed
 * since the descriptor last read it from offset 0; the value is then read
 * again from offset 0.  With -f, a read at the end returns 0 and POLLIN
 * says something was appended.
 *
 * Exit status: 0 reached, 1 timeout or the file went away (the reason on
 * stderr), 2 usage error.  lendctl(1) wait and events are built on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define PROG "lendfs-wait"

#include "tool.h"
#define VALUE_MAX 4096

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [-t SECONDS] FILE VALUE...\n"
		"       " PROG " -f FILE\n"
		"\n"
		"Wait with poll(2) until FILE (an attribute of a lendfs mount)\n"
		"reads one of the VALUEs, or follow FILE as it grows (-f).\n"
		"\n"
		"options:\n"
		"  -t, --timeout SECONDS  give up after SECONDS (default: never)\n"
		"  -f, --follow           print FILE and what is appended to it\n"
		"  -h, --help             show this help\n"
		"\n"
		"Exit status: 0 reached, 1 timeout or FILE went away, 2 usage error.\n");
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line of @fd, read from offset 0, into @buf; -errno. */
static int read_value(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static bool one_of(const char *v, char **values, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, values[i]) == 0)
			return true;
	return false;
}

/*
 * Poll @fd for @events until @deadline (ms, -1: none): 1 ready, 0 timed
 * out, -errno.
 */
static int wait_ready(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();
		int r;

		if (deadline >= 0 && left <= 0)
			return 0;
		r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int wait_value(const char *file, char **values, int n, int64_t deadline)
{
	char buf[VALUE_MAX];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", file, strerror(errno));
		return 1;
	}
	for (;;) {
		r = read_value(fd, buf, sizeof(buf));
		if (r < 0)
			break;
		if (one_of(buf, values, n)) {
			close(fd);
			return 0;
		}
		r = wait_ready(fd, POLLPRI | POLLERR, deadline);
		if (r <= 0)
			break;
	}
	close(fd);
	if (r == 0)
		fprintf(stderr, PROG ": timed out: %s is '%s'\n", file, buf);
	else
		fprintf(stderr, PROG ": cannot read %s: %s\n", file, strerror(-r));
	return 1;
}

/* Copy what can be read now to stdout; -errno. */
static int drain(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -EIO;
	if (n < 0)
		return -errno;
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int follow(const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", file, strerror(errno));
		return 1;
	}
	do {
		r = drain(fd);
		if (r == 0)
			r = wait_ready(fd, POLLIN, -1);
	} while (r > 0);
	close(fd);
	fprintf(stderr, PROG ": cannot follow %s: %s\n", file, strerror(-r));
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "follow", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t deadline = -1;
	bool follow_mode = false;
	char *end;
	double secs;
	int c;

	while ((c = getopt_long(argc, argv, "+t:fh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(secs >= 0) ||
			    secs > 1e9)
				return usage_error("invalid timeout '%s'", optarg);
			deadline = now_ms() + (int64_t)(secs * 1000);
			break;
		case 'f':
			follow_mode = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try '" PROG " --help' for more information.\n");
			return 2;
		}
	}
	if (follow_mode)
		return argc - optind == 1 ? follow(argv[optind])
					  : usage_error("-f takes one FILE");
	if (argc - optind < 2)
		return usage_error("need a FILE and at least one VALUE");
	return wait_value(argv[optind], argv + optind + 1, argc - optind - 1,
			  deadline);
}
