// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_qmp.c - the QMP client against a scripted fake server (protocol
 * corner cases) and against a real qemu-system-x86_64 (skipped, with a
 * message, only if it is not installed; a QEMU that does not start fails
 * the test with its log), and the harness's own start failures.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qmp.h"

#include "../vm/qemu_harness.h"

/* ---- a scripted fake QMP server ---- */

struct fake {
	char dir[64];
	char path[96];
	int lfd;
	int cfd;
	pthread_t th;
	void (*script)(struct fake *f);
	int64_t never_id; /* id of the command left unanswered */
};

static void fake_send(struct fake *f, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = write(f->cfd, s + off, len - off);

		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

static void fake_sendf(struct fake *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fake_sendf(struct fake *f, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fake_send(f, buf);
}

/* One request (a line); NULL on EOF or after 5 s. */
static struct json_object *fake_recv(struct fake *f)
{
	char buf[4096];
	size_t len = 0;

	while (len < sizeof(buf) - 1) {
		ssize_t n = read(f->cfd, buf + len, 1);

		if (n <= 0)
			return NULL;
		if (buf[len] == '\n') {
			buf[len] = '\0';
			return json_tokener_parse(buf);
		}
		len++;
	}
	return NULL;
}

static const char *fake_execute(struct json_object *req, int64_t *id,
				struct json_object **args)
{
	struct json_object *x;

	*id = json_object_object_get_ex(req, "id", &x) ? json_object_get_int64(x) : -1;
	if (args)
		*args = json_object_object_get_ex(req, "arguments", &x) ? x : NULL;
	return json_object_object_get_ex(req, "execute", &x) ?
		       json_object_get_string(x) :
		       "";
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct timeval tv = { 5, 0 };
	int cfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);

	/* fake_stop() reads it from the test's thread to unblock us */
	__atomic_store_n(&f->cfd, cfd, __ATOMIC_RELEASE);
	if (cfd < 0)
		return NULL;
	setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	f->script(f);
	return NULL;
}

static void fake_start(struct fake *f, void (*script)(struct fake *))
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	f->cfd = -1;
	f->script = script;
	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-qmp-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	int cfd = __atomic_load_n(&f->cfd, __ATOMIC_ACQUIRE);

	shutdown(f->lfd, SHUT_RDWR);
	if (cfd >= 0)
		shutdown(cfd, SHUT_RDWR);
	pthread_join(f->th, NULL);
	if (f->cfd >= 0)
		close(f->cfd);
	close(f->lfd);
	assert_int_equal(qemu_rm_dir(f->dir), 0);
}

#define GREETING \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 3, \"minor\": 2, " \
	"\"major\": 7}, \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* Say nothing until the client goes away. */
static void script_silent(struct fake *f)
{
	json_object_put(fake_recv(f));
}

/* Greeting, capabilities, then a small command language. */
static void script_normal(struct fake *f)
{
	struct json_object *req;

	fake_send(f, GREETING);
	while ((req = fake_recv(f))) {
		struct json_object *args;
		int64_t id;
		const char *cmd = fake_execute(req, &id, &args);

		if (strcmp(cmd, "qmp_capabilities") == 0) {
			fake_sendf(f, "{\"return\": {}, \"id\": %" PRId64 "}\r\n", id);
		} else if (strcmp(cmd, "echo") == 0) {
			fake_sendf(f, "{\"return\": %s, \"id\": %" PRId64 "}\r\n",
				   args ? json_object_to_json_string(args) : "{}", id);
		} else if (strcmp(cmd, "split") == 0) {
			/* a reply dribbled out a byte at a time */
			char buf[256];

			snprintf(buf, sizeof(buf),
				 "{\"return\": {\"s\": \"sp\\\"lit\", \"n\": [1, 2]}, "
				 "\"id\": %" PRId64 "}\r\n", id);
			for (size_t i = 0; buf[i]; i++) {
				if (write(f->cfd, buf + i, 1) != 1)
					break;
				qemu_sleep_ms(1);
			}
		} else if (strcmp(cmd, "two") == 0) {
			/* an event and the reply in one write, no newline between */
			fake_sendf(f, "{\"event\": \"TWO\", \"data\": {\"x\": 1}, "
				      "\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}"
				      "{\"return\": 2, \"id\": %" PRId64 "}\r\n", id);
		} else if (strcmp(cmd, "never") == 0) {
			f->never_id = id;
		} else if (strcmp(cmd, "late") == 0) {
			/* answer the abandoned command first: must be dropped */
			fake_sendf(f, "{\"return\": \"stale\", \"id\": %" PRId64 "}\r\n",
				   f->never_id);
			fake_sendf(f, "{\"return\": \"fresh\", \"id\": %" PRId64 "}\r\n", id);
		} else if (strcmp(cmd, "fail") == 0) {
			fake_sendf(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
				      "\"Duplicate ID 'x' for object\"}, \"id\": %" PRId64
				      "}\r\n", id);
		} else if (strcmp(cmd, "events") == 0) {
			struct json_object *n;
			int count = 0;

			if (args && json_object_object_get_ex(args, "count", &n))
				count = json_object_get_int(n);
			for (int i = 0; i < count; i++)
				fake_sendf(f, "{\"event\": \"TICK\", \"data\": {\"n\": %d}}\r\n",
					   i);
			fake_sendf(f, "{\"return\": {}, \"id\": %" PRId64 "}\r\n", id);
		} else if (strcmp(cmd, "garbage") == 0) {
			fake_send(f, "}{ this is not json\r\n");
		} else if (strcmp(cmd, "close") == 0) {
			json_object_put(req);
			shutdown(f->cfd, SHUT_RDWR);
			return;
		}
		json_object_put(req);
	}
}

static void test_fake_no_greeting(void **state)
{
	struct fake f;
	struct qmp *q = (void *)1;
	char reason[REASON_MAX] = "";
	double t0;
	int r;

	fake_start(&f, script_silent);
	t0 = qemu_now_ms();
	r = qmp_connect(f.path, 300, &q, reason);
	assert_int_equal(r, -ETIMEDOUT);
	assert_null(q);
	assert_true(qemu_now_ms() - t0 >= 290);
	assert_true(qemu_now_ms() - t0 < 2000);
	assert_non_null(strstr(reason, "no greeting"));
	assert_non_null(strstr(reason, f.path));
	fake_stop(&f);
}

static void test_fake_protocol(void **state)
{
	struct fake f;
	struct qmp *q;
	struct json_object *ret = NULL, *args, *x;
	char reason[REASON_MAX] = "";
	int major, minor, micro, r;
	uint64_t seq;

	fake_start(&f, script_normal);
	assert_int_equal(qmp_connect(f.path, 2000, &q, reason), 0);
	qmp_version(q, &major, &minor, &micro);
	assert_int_equal(major, 7);
	assert_int_equal(minor, 2);
	assert_int_equal(micro, 3);
	assert_string_equal(qmp_path(q), f.path);

	/* arguments go out and come back */
	args = json_object_new_object();
	json_object_object_add(args, "k", json_object_new_string("v \"q\""));
	assert_int_equal(qmp_command(q, "echo", args, 2000, &ret, reason), 0);
	assert_true(json_object_object_get_ex(ret, "k", &x));
	assert_string_equal(json_object_get_string(x), "v \"q\"");
	json_object_put(ret);

	/* a reply that arrives a byte at a time */
	assert_int_equal(qmp_command(q, "split", NULL, 3000, &ret, reason), 0);
	assert_true(json_object_object_get_ex(ret, "s", &x));
	assert_string_equal(json_object_get_string(x), "sp\"lit");
	json_object_put(ret);

	/* an event glued to the reply */
	seq = qmp_event_seq(q);
	assert_int_equal(qmp_command(q, "two", NULL, 2000, &ret, reason), 0);
	assert_int_equal(json_object_get_int(ret), 2);
	json_object_put(ret);
	assert_int_equal(qmp_event_seq(q), seq + 1);
	assert_int_equal(qmp_wait_event(q, seq, "TWO", NULL, NULL, 0, &ret, reason), 0);
	assert_true(json_object_object_get_ex(ret, "x", &x));
	assert_int_equal(json_object_get_int(x), 1);
	json_object_put(ret);
	/* not again after its sequence number */
	assert_int_equal(qmp_wait_event(q, seq + 1, "TWO", NULL, NULL, 50, NULL,
					reason), -ETIMEDOUT);
	assert_non_null(strstr(reason, "no TWO event"));

	/* QMP errors map to errnos, the reason carries the description */
	assert_int_equal(qmp_command(q, "fail", NULL, 2000, &ret, reason), -EEXIST);
	assert_null(ret);
	assert_string_equal(reason, "qmp fail: Duplicate ID 'x' for object");

	/* a command with no reply times out; its late reply is dropped */
	r = qmp_command(q, "never", NULL, 200, &ret, reason);
	assert_int_equal(r, -ETIMEDOUT);
	assert_non_null(strstr(reason, "qmp never: no reply"));
	assert_int_equal(qmp_command(q, "late", NULL, 2000, &ret, reason), 0);
	assert_string_equal(json_object_get_string(ret), "fresh");
	json_object_put(ret);
	assert_true(qmp_alive(q, NULL));

	/* bad arguments are refused before anything is sent */
	assert_int_equal(qmp_command(q, "echo", json_object_new_int(3), 100, NULL,
				     reason), -EINVAL);
	assert_int_equal(qmp_command(q, "", NULL, 100, NULL, reason), -EINVAL);

	/* garbage kills the connection */
	r = qmp_command(q, "garbage", NULL, 2000, NULL, reason);
	assert_int_equal(r, -EPROTO);
	assert_non_null(strstr(reason, "not qmp"));
	assert_false(qmp_alive(q, reason));
	assert_int_equal(qmp_command(q, "echo", NULL, 2000, NULL, reason), -EPROTO);
	assert_non_null(strstr(reason, "qmp echo: "));
	qmp_close(q);
	fake_stop(&f);
}

struct closed_log {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int closed;
	int err;
	char reason[REASON_MAX];
	int events;
	int last_n;
	bool in_order;
	struct qmp *close_me; /* qmp_close() this from the event callback */
};

static void log_init(struct closed_log *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->last_n = -1;
	l->in_order = true;
}

static void log_destroy(struct closed_log *l)
{
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
}

static void on_event(struct qmp *q, const char *event, struct json_object *data,
		     void *arg)
{
	struct closed_log *l = arg;
	struct json_object *n;

	pthread_mutex_lock(&l->lock);
	l->events++;
	if (data && json_object_object_get_ex(data, "n", &n)) {
		if (json_object_get_int(n) != l->last_n + 1)
			l->in_order = false;
		l->last_n = json_object_get_int(n);
	}
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (l->close_me == q)
		qmp_close(q);
}

static void on_closed(struct qmp *q, int err, const char *reason, void *arg)
{
	struct closed_log *l = arg;

	pthread_mutex_lock(&l->lock);
	l->closed++;
	l->err = err;
	snprintf(l->reason, sizeof(l->reason), "%s", reason);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* Wait until *@v (under l->lock) reaches @want, at most @ms. */
static bool log_wait(struct closed_log *l, int *v, int want, unsigned ms)
{
	double end = qemu_now_ms() + ms;
	bool ok;

	pthread_mutex_lock(&l->lock);
	while (*v < want && qemu_now_ms() < end) {
		pthread_mutex_unlock(&l->lock);
		qemu_sleep_ms(5);
		pthread_mutex_lock(&l->lock);
	}
	ok = *v >= want;
	pthread_mutex_unlock(&l->lock);
	return ok;
}

static bool match_n(struct json_object *data, void *arg)
{
	struct json_object *n;

	return data && json_object_object_get_ex(data, "n", &n) &&
	       json_object_get_int(n) == *(int *)arg;
}

static void test_fake_events(void **state)
{
	struct fake f;
	struct qmp *q;
	static struct closed_log l; /* outlives a failed test's callbacks */
	struct json_object *args;
	char reason[REASON_MAX] = "";
	int want;

	log_init(&l);
	fake_start(&f, script_normal);
	assert_int_equal(qmp_connect(f.path, 2000, &q, reason), 0);
	args = json_object_new_object();
	json_object_object_add(args, "count", json_object_new_int(300));
	/* events that arrive before the callback is set are kept */
	assert_int_equal(qmp_command(q, "events", args, 3000, NULL, reason), 0);
	assert_int_equal(qmp_event_seq(q), 300);
	/* the history is bounded, the newest are in it */
	want = 299;
	assert_int_equal(qmp_wait_event(q, 0, "TICK", match_n, &want, 0, NULL,
					reason), 0);
	want = 10;
	assert_int_equal(qmp_wait_event(q, 0, "TICK", match_n, &want, 0, NULL,
					reason), -ETIMEDOUT);
	qmp_set_callbacks(q, on_event, on_closed, &l);
	assert_true(log_wait(&l, &l.events, 300, 3000));
	assert_true(l.in_order);
	assert_int_equal(l.last_n, 299);
	assert_int_equal(l.closed, 0);

	/* the server goes away in the middle of a command */
	assert_int_equal(qmp_command(q, "close", NULL, 2000, NULL, reason), -ECONNRESET);
	assert_non_null(strstr(reason, "closed the qmp connection"));
	assert_true(log_wait(&l, &l.closed, 1, 2000));
	assert_int_equal(l.err, -ECONNRESET);
	assert_non_null(strstr(l.reason, f.path));
	assert_int_equal(qmp_command(q, "echo", NULL, 2000, NULL, reason), -ECONNRESET);
	assert_int_equal(qmp_wait_event(q, qmp_event_seq(q), "TICK", NULL, NULL, 1000,
					NULL, reason), -ECONNRESET);
	qmp_close(q);
	assert_int_equal(l.closed, 1); /* once */
	fake_stop(&f);
	log_destroy(&l);
}

static void test_fake_close_from_callback(void **state)
{
	struct fake f;
	struct qmp *q;
	static struct closed_log l; /* outlives a failed test's callbacks */
	struct json_object *args;
	char reason[REASON_MAX] = "";

	log_init(&l);
	fake_start(&f, script_normal);
	assert_int_equal(qmp_connect(f.path, 2000, &q, reason), 0);
	args = json_object_new_object();
	json_object_object_add(args, "count", json_object_new_int(1));
	assert_int_equal(qmp_command(q, "events", args, 3000, NULL, reason), 0);
	/* no other thread uses @q from here: the callback may close it */
	l.close_me = q;
	qmp_set_callbacks(q, on_event, on_closed, &l);
	/* the callback closed and (on return) freed the connection */
	assert_true(log_wait(&l, &l.events, 1, 2000));
	qemu_sleep_ms(50);
	assert_int_equal(l.closed, 0); /* a deliberate close is not reported */
	fake_stop(&f);
	log_destroy(&l);
}

static void test_bad_paths(void **state)
{
	struct qmp *q;
	char reason[REASON_MAX] = "", dir[64], path[100], longp[200];
	int fd;

	assert_int_equal(qmp_connect("/nonexistent/lendfs/qmp.sock", 500, &q, reason),
			 -ENOENT);
	assert_null(q);
	assert_string_equal(reason,
			    "qmp /nonexistent/lendfs/qmp.sock: cannot connect: "
			    "No such file or directory");

	snprintf(dir, sizeof(dir), "/tmp/lendfs-qmp-XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* a socket nobody listens on any more */
	snprintf(path, sizeof(path), "%s/dead.sock", dir);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
	}
	assert_int_equal(qmp_connect(path, 500, &q, reason), -ECONNREFUSED);
	assert_non_null(strstr(reason, "is qemu running?"));
	/* a regular file */
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(qmp_connect(path, 500, &q, reason), -ECONNREFUSED);
	unlink(path);
	unlink(path);
	snprintf(path, sizeof(path), "%s/dead.sock", dir);
	unlink(path);
	rmdir(dir);

	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(qmp_connect(longp, 500, &q, reason), -ENAMETOOLONG);
	assert_int_equal(qmp_connect("", 500, &q, reason), -EINVAL);
}

/* ---- real QEMU ---- */

static struct qemu qm;

static int qemu_setup(void **state)
{
	static const char *const no_extra[] = { NULL };
	char why[512];

	qm.pid = 0;
	qm.dir[0] = '\0';
	qm.fd_b = -1;
	if (!qemu_installed(why, sizeof(why)))
		return 0; /* the test skips (NEED_QEMU) */
	if (qemu_start(&qm, "pc", "256", no_extra) < 0) {
		fprintf(stderr, "qemu: %s\n", qm.error); /* the test fails */
		return -1;
	}
	return 0;
}

static int qemu_teardown(void **state)
{
	qemu_stop(&qm);
	return 0;
}

static void test_qemu_connect(void **state)
{
	struct qmp *q, *q2 = NULL;
	char *out = NULL;
	struct json_object *ret = NULL, *x, *args;
	char reason[REASON_MAX] = "";
	int major;

	NEED_QEMU();
	assert_int_equal(qmp_connect(qm.sock_a, 3000, &q, reason), 0);
	qmp_version(q, &major, NULL, NULL);
	assert_true(major >= 2);
	assert_int_equal(qmp_command(q, "query-status", NULL, 2000, &ret, reason), 0);
	assert_true(json_object_object_get_ex(ret, "status", &x));
	assert_string_equal(json_object_get_string(x), "running");
	json_object_put(ret);

	assert_int_equal(qmp_command(q, "no-such-command", NULL, 2000, NULL, reason),
			 -ENOSYS);
	assert_string_equal(reason,
			    "qmp no-such-command: The command no-such-command has "
			    "not been found");
	args = json_object_new_object();
	json_object_object_add(args, "id", json_object_new_string("nope"));
	assert_int_equal(qmp_command(q, "device_del", args, 2000, NULL, reason), -ENODEV);
	assert_string_equal(reason, "qmp device_del: Device 'nope' not found");

	assert_int_equal(qmp_hmp(q, "info pci", 2000, &out, reason), 0);
	assert_non_null(strstr(out, "Host bridge"));
	free(out);

	/* the monitor takes one client at a time: a second one gets no greeting */
	assert_int_equal(qmp_connect(qm.sock_a, 300, &q2, reason), -ETIMEDOUT);
	assert_non_null(strstr(reason, "another client"));
	assert_null(q2);
	qmp_close(q);
}

static void test_qemu_events(void **state)
{
	struct qmp *q;
	static struct closed_log l; /* outlives a failed test's callbacks */
	char reason[REASON_MAX] = "";
	uint64_t seq;

	NEED_QEMU();
	log_init(&l);
	assert_int_equal(qmp_connect(qm.sock_a, 3000, &q, reason), 0);
	qmp_set_callbacks(q, on_event, on_closed, &l);
	seq = qmp_event_seq(q);
	assert_int_equal(qmp_command(q, "stop", NULL, 2000, NULL, reason), 0);
	assert_int_equal(qmp_wait_event(q, seq, "STOP", NULL, NULL, 2000, NULL, reason),
			 0);
	/* an event caused by the other monitor arrives too (while idle) */
	json_object_put(qemu_b_cmd(&qm, "{\"execute\":\"cont\"}"));
	assert_int_equal(qmp_wait_event(q, seq, "RESUME", NULL, NULL, 2000, NULL,
					reason), 0);
	assert_true(log_wait(&l, &l.events, 2, 2000));
	qmp_close(q);
	log_destroy(&l);
}

struct hammer {
	struct qmp *q;
	int ok;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < 25; i++) {
		struct json_object *ret = NULL, *args = json_object_new_object();
		char reason[REASON_MAX];

		/* alternate two properties with different reply types: a mixed-up
		 * reply would have the wrong type */
		json_object_object_add(args, "path", json_object_new_string("/machine"));
		json_object_object_add(args, "property",
				       json_object_new_string(i % 2 ? "type" : "memory"));
		if (qmp_command(h->q, "qom-get", args, 5000, &ret, reason) == 0 &&
		    (i % 2 ? json_object_is_type(ret, json_type_string) :
			     json_object_is_type(ret, json_type_object)))
			h->ok++;
		json_object_put(ret);
	}
	return NULL;
}

static void test_qemu_concurrent(void **state)
{
	struct qmp *q;
	char reason[REASON_MAX] = "";
	struct hammer h[4];
	pthread_t t[4];

	NEED_QEMU();
	assert_int_equal(qmp_connect(qm.sock_a, 3000, &q, reason), 0);
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .q = q };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].ok, 25);
	}
	qmp_close(q);
}

static void test_qemu_killed(void **state)
{
	struct qmp *q;
	static struct closed_log l; /* outlives a failed test's callbacks */
	char reason[REASON_MAX] = "";

	NEED_QEMU();
	log_init(&l);
	assert_int_equal(qmp_connect(qm.sock_a, 3000, &q, reason), 0);
	qmp_set_callbacks(q, on_event, on_closed, &l);
	qemu_kill(&qm);
	assert_true(log_wait(&l, &l.closed, 1, 3000));
	assert_int_equal(l.err, -ECONNRESET);
	assert_non_null(strstr(l.reason, "qemu closed the qmp connection at"));
	assert_false(qmp_alive(q, reason));
	assert_int_equal(qmp_command(q, "query-status", NULL, 2000, NULL, reason),
			 -ECONNRESET);
	assert_non_null(strstr(reason, "qmp query-status: qemu closed the qmp connection"));
	qmp_close(q);
	log_destroy(&l);
}

static void test_qemu_quit(void **state)
{
	struct qmp *q;
	static struct closed_log l; /* outlives a failed test's callbacks */
	char reason[REASON_MAX] = "";

	NEED_QEMU();
	log_init(&l);
	assert_int_equal(qmp_connect(qm.sock_a, 3000, &q, reason), 0);
	qmp_set_callbacks(q, on_event, on_closed, &l);
	json_object_put(qemu_b_cmd(&qm, "{\"execute\":\"quit\"}"));
	assert_true(log_wait(&l, &l.closed, 1, 3000));
	assert_int_equal(l.err, -ECONNRESET);
	assert_non_null(strstr(l.reason, "qemu shut down (host-qmp-quit)"));
	assert_int_equal(qmp_wait_event(q, 0, "SHUTDOWN", NULL, NULL, 0, NULL, reason),
			 0);
	qmp_close(q);
	log_destroy(&l);
}

/* ---- the harness: a QEMU that does not start fails, never skips ---- */

/* $QEMU and $LENDFS_QEMU_START_S as the caller set them, put back after. */
static char *saved_qemu, *saved_start;

static char *env_dup(const char *name)
{
	const char *v = getenv(name);

	return v ? strdup(v) : NULL;
}

static void env_restore(const char *name, char **saved)
{
	if (*saved)
		setenv(name, *saved, 1);
	else
		unsetenv(name);
	free(*saved);
	*saved = NULL;
}

/* A fake QEMU: a shell script @body in a new directory; its path in @bin. */
static void fake_qemu(const char *body, char *dir, size_t dlen, char *bin,
		      size_t blen)
{
	FILE *f;

	saved_qemu = env_dup("QEMU");
	saved_start = env_dup("LENDFS_QEMU_START_S");

	snprintf(dir, dlen, "/tmp/lendfs-fakeqemu-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(bin, blen, "%s/qemu-system-x86_64", dir);
	f = fopen(bin, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(bin, 0755), 0);
}

static void fake_qemu_remove(const char *dir, const char *bin)
{
	unlink(bin);
	rmdir(dir);
	env_restore("QEMU", &saved_qemu);
	env_restore("LENDFS_QEMU_START_S", &saved_start);
}

static void test_harness_qemu_exits(void **state)
{
	char dir[64], bin[128];
	struct qemu q;

	fake_qemu("echo \"qemu: cannot set up guest memory 'pc.ram': $*\" >&2; exit 1",
		  dir, sizeof(dir), bin, sizeof(bin));
	setenv("QEMU", bin, 1);
	assert_int_equal(qemu_start(&q, "pc", "256", NULL), -1);
	fake_qemu_remove(dir, bin);
	fprintf(stderr, "harness: %s\n", q.error);
	/* the reason, then the log: what the failing test prints */
	assert_non_null(strstr(q.error, "exited with status 1 after"));
	assert_non_null(strstr(q.error, "before its qmp sockets were up"));
	assert_non_null(strstr(q.error, "(stdout and stderr of "));
	assert_non_null(strstr(q.error, "cannot set up guest memory 'pc.ram': "
					"-accel tcg -machine pc -m 256"));
	assert_int_equal(q.pid, 0);
	assert_int_equal(q.dir[0], '\0'); /* removed */
}

static void test_harness_qemu_hangs(void **state)
{
	char dir[64], bin[128];
	struct qemu q;
	double t0;

	/* up, logging, but never a socket: killed after the time allowed */
	fake_qemu("echo 'qemu: still loading firmware'; exec sleep 600",
		  dir, sizeof(dir), bin, sizeof(bin));
	setenv("QEMU", bin, 1);
	setenv("LENDFS_QEMU_START_S", "1", 1);
	assert_true(qemu_start_ms() >= 1000 && qemu_start_ms() <= 2000);
	t0 = qemu_now_ms();
	assert_int_equal(qemu_start(&q, "pc", "256", NULL), -1);
	assert_true(qemu_now_ms() - t0 >= 1000);
	fake_qemu_remove(dir, bin);
	fprintf(stderr, "harness: %s\n", q.error);
	assert_non_null(strstr(q.error, "made no qmp sockets ("));
	assert_non_null(strstr(q.error, "killed"));
	assert_non_null(strstr(q.error, "qemu: still loading firmware"));
	assert_int_equal(q.pid, 0);
	/* not set: the default, never under 30 s */
	saved_start = env_dup("LENDFS_QEMU_START_S");
	unsetenv("LENDFS_QEMU_START_S");
	assert_true(qemu_start_ms() >= QEMU_START_S * 1000);
	env_restore("LENDFS_QEMU_START_S", &saved_start);
}

static void test_harness_not_installed(void **state)
{
	char why[512], *path = env_dup("PATH");

	/* the one condition that skips */
	saved_qemu = env_dup("QEMU");
	setenv("QEMU", "/nonexistent/qemu-system-x86_64", 1);
	assert_false(qemu_installed(why, sizeof(why)));
	assert_non_null(strstr(why, "/nonexistent/qemu-system-x86_64 is not installed"));
	setenv("QEMU", "lendfs-no-such-qemu", 1);
	assert_false(qemu_installed(why, sizeof(why)));
	assert_non_null(strstr(why, "lendfs-no-such-qemu is not installed (not in PATH"));
	setenv("QEMU", "sh", 1);
	assert_true(qemu_installed(why, sizeof(why)));
	setenv("PATH", "/nonexistent", 1);
	assert_false(qemu_installed(why, sizeof(why)));
	env_restore("PATH", &path);
	env_restore("QEMU", &saved_qemu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_harness_qemu_exits),
		cmocka_unit_test(test_harness_qemu_hangs),
		cmocka_unit_test(test_harness_not_installed),
		cmocka_unit_test(test_fake_no_greeting),
		cmocka_unit_test(test_fake_protocol),
		cmocka_unit_test(test_fake_events),
		cmocka_unit_test(test_fake_close_from_callback),
		cmocka_unit_test(test_bad_paths),
		cmocka_unit_test_setup_teardown(test_qemu_connect, qemu_setup,
						qemu_teardown),
		cmocka_unit_test_setup_teardown(test_qemu_events, qemu_setup,
						qemu_teardown),
		cmocka_unit_test_setup_teardown(test_qemu_concurrent, qemu_setup,
						qemu_teardown),
		cmocka_unit_test_setup_teardown(test_qemu_killed, qemu_setup,
						qemu_teardown),
		cmocka_unit_test_setup_teardown(test_qemu_quit, qemu_setup,
						qemu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
