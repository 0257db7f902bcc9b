// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for core/fault.c: the LENDFS_FAULT / LENDFS_DELAY specs,
 * every way to get them wrong, and the crash action: _exit() with
 * FAULT_CRASH_STATUS at exactly the Nth pass, with no atexit handler and
 * no stdio flush.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"
#include "util.h"

static int init_with(const char *fault, const char *delay, char *reason)
{
	if (fault)
		setenv("LENDFS_FAULT", fault, 1);
	else
		unsetenv("LENDFS_FAULT");
	if (delay)
		setenv("LENDFS_DELAY", delay, 1);
	else
		unsetenv("LENDFS_DELAY");
	reason[0] = '\0';
	return fault_init(reason);
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("LENDFS_FAULT");
	unsetenv("LENDFS_DELAY");
	fault_reset();
	return 0;
}

static void test_eio_at_nth_pass(void **state)
{
	char reason[REASON_MAX];

	(void)state;
	assert_int_equal(init_with("ntb_map:2", NULL, reason), 0);
	assert_int_equal(fault_check("ntb_map", reason), 0);
	assert_int_equal(fault_check("ntb_map", reason), -EIO);
	assert_string_equal(reason, "injected fault at ntb_map #2");
	assert_int_equal(fault_check("ntb_map", reason), 0);
	assert_int_equal(fault_count("ntb_map"), 3);
	/* `:eio` is the same action, spelt out; passes count per point */
	assert_int_equal(init_with("store_commit:1:eio,route:3", NULL, reason), 0);
	assert_int_equal(fault_count("ntb_map"), 0);
	assert_int_equal(fault_check("store_commit", reason), -EIO);
	assert_int_equal(fault_check("route", reason), 0);
	fault_pass("lend.done");
	assert_int_equal(fault_count("lend.done"), 1);
	assert_int_equal(fault_count("no.such.point"), 0);
}

static void test_bad_specs(void **state)
{
	static const struct {
		const char *fault, *delay, *reason;
	} bad[] = {
		{ "ntb_map", NULL, "malformed entry 'ntb_map'" },
		{ "ntb_map:0", NULL, "malformed entry" },
		{ "ntb_map:x", NULL, "malformed entry" },
		{ ":3", NULL, "malformed entry" },
		{ "ntb_map:1:boom", NULL, "malformed entry" },
		{ "ntb_map:1000001", NULL, "malformed entry" },
		{ "nosuch:1", NULL, "unknown point 'nosuch'" },
		{ "nosuch:1:crash", NULL, "unknown point 'nosuch'" },
		{ "lend.done:1", NULL, "point 'lend.done' cannot fail, only crash" },
		{ "vm.plug.done:2:eio", NULL, "cannot fail" },
		{ NULL, "ntb_map:1:crash", "malformed entry" },
		{ NULL, "nosuch:5", "unknown point" },
	};
	char reason[REASON_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (init_with(bad[i].fault, bad[i].delay, reason) != -EINVAL)
			fail_msg("'%s' / '%s' was accepted", bad[i].fault ? bad[i].fault : "",
				 bad[i].delay ? bad[i].delay : "");
		if (!strstr(reason, bad[i].reason))
			fail_msg("'%s': reason '%s', not '%s'", bad[i].fault ? bad[i].fault
				 : bad[i].delay, reason, bad[i].reason);
	}
	assert_int_equal(init_with("lend.done:1:crash,ntb_map:1:crash", "lend.plan:1", reason),
			 0);
}

static const char *atexit_file;

static void on_exit_mark(void)
{
	int fd = open(atexit_file, O_WRONLY | O_CREAT, 0600);

	if (fd >= 0)
		close(fd);
}

/*
 * In a child: pass @point @passes times, with an atexit handler and
 * buffered stdout going to @out.  Returns the child's wait status.
 */
static int child_passes(const char *spec, const char *point, unsigned passes,
			int out)
{
	char reason[REASON_MAX];
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out, STDOUT_FILENO);
		dup2(out, STDERR_FILENO);
		setvbuf(stdout, NULL, _IOFBF, 4096);
		atexit(on_exit_mark);
		if (init_with(spec, NULL, reason) < 0)
			_exit(2);
		for (unsigned i = 1; i <= passes; i++) {
			printf("pass %u;", i); /* buffered: lost in a crash */
			fault_pass(point);
		}
		exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_crash(void **state)
{
	char dir[] = "/tmp/lendfs-fault-XXXXXX", path[64], mark[64], buf[256] = "";
	int fd, status;
	ssize_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(mark, sizeof(mark), "%s/atexit", dir);
	snprintf(path, sizeof(path), "%s/out", dir);
	atexit_file = mark;

	/* the third pass ends the process: status 86, no atexit, no flush */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	status = child_passes("lend.done:3:crash", "lend.done", 5, fd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), FAULT_CRASH_STATUS);
	assert_int_equal(access(mark, F_OK), -1);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, "lendfs: injected crash at lend.done #3\n");
	close(fd);

	/* a point that can fail crashes too when asked to */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	status = child_passes("store_commit:1:crash", "store_commit", 1, fd);
	assert_int_equal(WEXITSTATUS(status), FAULT_CRASH_STATUS);
	close(fd);

	/* never reached: a normal exit, flushed, atexit run */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	status = child_passes("lend.done:9:crash", "lend.done", 5, fd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(access(mark, F_OK), 0);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	assert_string_equal(buf, "pass 1;pass 2;pass 3;pass 4;pass 5;");
	close(fd);

	unlink(mark);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_eio_at_nth_pass, teardown),
		cmocka_unit_test_teardown(test_bad_specs, teardown),
		cmocka_unit_test_teardown(test_crash, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
