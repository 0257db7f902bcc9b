// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mounttime.c - how long a filesystem daemon takes to serve.
 *
 *   mounttime FILE TIMEOUT_S COMMAND [ARGS...]
 *
 * Starts COMMAND (a daemon in the foreground, e.g. lendfs -f ...) and
 * polls every 200 us until FILE can be read.  Prints
 *
 *   ms N pid P
 *
 * (from just before exec to the first successful read) and exits 0,
 * leaving the daemon running (its stdout goes to our stderr).  Exit 1
 * if the daemon exits or TIMEOUT_S passes first (the daemon is then
 * killed).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int readable(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0;
}

int main(int argc, char *argv[])
{
	const struct timespec tick = { 0, 200000 };
	double t0, limit;
	pid_t pid;

	if (argc < 4) {
		fprintf(stderr, "usage: mounttime FILE TIMEOUT_S COMMAND [ARGS...]\n");
		return 2;
	}
	limit = strtod(argv[2], NULL) * 1e3;
	t0 = now_ms();
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		/* the daemon must not hold our stdout: the caller reads it to EOF */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	for (;;) {
		int status;

		if (readable(argv[1])) {
			printf("ms %.1f pid %d\n", now_ms() - t0, (int)pid);
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "mounttime: %s exited before %s was readable\n",
				argv[3], argv[1]);
			return 1;
		}
		if (now_ms() - t0 > limit) {
			fprintf(stderr, "mounttime: %s not readable after %s s\n",
				argv[1], argv[2]);
			kill(pid, SIGTERM);
			return 1;
		}
		nanosleep(&tick, NULL);
	}
}
