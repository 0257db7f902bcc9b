// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * qmp.c - QMP client: one reader thread owns the socket, one dispatcher
 * thread runs the callbacks (see qmp.h for the contract).
 */
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

struct pending {
	int64_t id;
	bool done;
	int err; /* transport error; 0 when a reply arrived */
	struct json_object *reply;
	struct pending *next;
};

struct evnode {
	struct json_object *msg;
	struct evnode *next;
};

struct qmp {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	int wake[2]; /* qmp_close() -> reader */
	pthread_t reader;
	pthread_t dispatcher;
	bool dispatcher_started;
	bool reader_started;

	pthread_mutex_t wlock; /* whole messages on the socket */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;  /* replies, events, greeting, death */
	pthread_cond_t dcond; /* work for the dispatcher */
	bool greeted;
	int version[3];
	bool dead;
	int dead_err;
	char dead_reason[REASON_MAX];
	char shutdown_reason[64];
	bool closing;
	bool free_on_return; /* qmp_close() from a callback */
	int64_t next_id;
	struct pending *pending;

	uint64_t ev_seq;
	struct json_object *hist[QMP_EVENT_HISTORY]; /* seq % N */
	struct evnode *qhead, *qtail;
	unsigned qlen;
	uint64_t dropped;

	qmp_event_fn event_cb;
	qmp_closed_fn closed_cb;
	void *cb_arg;
	bool closed_delivered;
};

static uint64_t deadline_after(unsigned timeout_ms)
{
	return now_ns() + (uint64_t)timeout_ms * 1000000ULL;
}

static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ns();

	if (now >= deadline)
		return 0;
	return (int)MIN((deadline - now + 999999) / 1000000, (uint64_t)INT32_MAX);
}

/* Wait on @cond until @deadline (monotonic ns); false once it passed. */
static bool cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *m,
			    uint64_t deadline)
{
	struct timespec ts;

	if (now_ns() >= deadline)
		return false;
	ts.tv_sec = (time_t)(deadline / 1000000000ULL);
	ts.tv_nsec = (long)(deadline % 1000000000ULL);
	pthread_cond_timedwait(cond, m, &ts);
	return true;
}

static void fail_pending_locked(struct qmp *q, int err)
{
	for (struct pending *p = q->pending; p; p = p->next) {
		if (!p->done) {
			p->done = true;
			p->err = err;
		}
	}
	pthread_cond_broadcast(&q->cond);
}

static void mark_dead_locked(struct qmp *q, int err, const char *fmt, ...)
	_printf_(3, 4);

static void mark_dead_locked(struct qmp *q, int err, const char *fmt, ...)
{
	va_list ap;

	if (q->dead)
		return;
	q->dead = true;
	q->dead_err = err;
	va_start(ap, fmt);
	vsnprintf(q->dead_reason, sizeof(q->dead_reason), fmt, ap);
	va_end(ap);
	fail_pending_locked(q, err);
	pthread_cond_signal(&q->dcond);
}

int qmp_error_errno(const char *klass, const char *desc)
{
	if (!klass)
		return -EIO;
	if (strcmp(klass, "DeviceNotFound") == 0)
		return -ENODEV;
	if (strcmp(klass, "CommandNotFound") == 0)
		return -ENOSYS;
	if (strcmp(klass, "KVMMissingCap") == 0)
		return -ENOTSUP;
	if (desc) {
		if (strstr(desc, "Duplicate") || strstr(desc, "duplicate") ||
		    strstr(desc, "already exists"))
			return -EEXIST;
		if (strstr(desc, "no slot") || strstr(desc, "no free"))
			return -ENOSPC;
		if (strstr(desc, "in use") || strstr(desc, "busy"))
			return -EBUSY;
	}
	return -EIO;
}

/* ---- reader thread ---- */

static void handle_greeting(struct qmp *q, struct json_object *greet)
{
	struct json_object *v, *qemu, *x;
	static const char *const keys[] = { "major", "minor", "micro" };

	if (json_object_object_get_ex(greet, "version", &v) &&
	    json_object_object_get_ex(v, "qemu", &qemu)) {
		for (unsigned i = 0; i < 3; i++)
			if (json_object_object_get_ex(qemu, keys[i], &x))
				q->version[i] = json_object_get_int(x);
	}
	q->greeted = true;
	pthread_cond_broadcast(&q->cond);
}

/* Takes @msg: the history ring keeps it, the dispatcher gets a copy. */
static void handle_event(struct qmp *q, struct json_object *msg,
			 const char *name)
{
	struct json_object *copy = NULL;
	struct evnode *n;
	unsigned slot;

	if (strcmp(name, "SHUTDOWN") == 0) {
		struct json_object *data, *why;

		if (json_object_object_get_ex(msg, "data", &data) &&
		    json_object_object_get_ex(data, "reason", &why))
			snprintf(q->shutdown_reason, sizeof(q->shutdown_reason),
				 "%s", json_object_get_string(why));
		else
			snprintf(q->shutdown_reason, sizeof(q->shutdown_reason),
				 "shutdown");
	}

	if (json_object_deep_copy(msg, &copy, NULL) < 0)
		copy = NULL;
	q->ev_seq++;
	slot = q->ev_seq % QMP_EVENT_HISTORY;
	if (q->hist[slot])
		json_object_put(q->hist[slot]);
	q->hist[slot] = msg;

	n = copy ? calloc(1, sizeof(*n)) : NULL;
	if (n) {
		n->msg = copy;
		if (q->qtail)
			q->qtail->next = n;
		else
			q->qhead = n;
		q->qtail = n;
		q->qlen++;
		while (q->qlen > QMP_EVENT_QUEUE_MAX) {
			struct evnode *old = q->qhead;

			q->qhead = old->next;
			if (!q->qhead)
				q->qtail = NULL;
			json_object_put(old->msg);
			free(old);
			q->qlen--;
			q->dropped++;
		}
	} else {
		json_object_put(copy);
		q->dropped++;
	}
	pthread_cond_broadcast(&q->cond);
	pthread_cond_signal(&q->dcond);
}

/* Hands @msg to the waiting command and returns true, or false. */
static bool handle_reply(struct qmp *q, struct json_object *msg)
{
	struct json_object *idobj;
	int64_t id;

	if (!json_object_object_get_ex(msg, "id", &idobj) ||
	    !json_object_is_type(idobj, json_type_int))
		return false; /* not ours */
	id = json_object_get_int64(idobj);
	for (struct pending *p = q->pending; p; p = p->next) {
		if (p->id == id && !p->done) {
			p->done = true;
			p->err = 0;
			p->reply = msg;
			pthread_cond_broadcast(&q->cond);
			return true;
		}
	}
	return false; /* the reply of a command that timed out: dropped */
}

/*
 * Takes @msg.  json-c reference counts are not atomic (unless the library
 * is built with threading), so no object is ever shared between threads:
 * a reply goes to its waiter, an event stays in the history ring (only
 * touched under q->lock) and the dispatcher gets a deep copy.
 * Returns false on a protocol error.
 */
static bool handle_message(struct qmp *q, struct json_object *msg)
{
	struct json_object *x;
	bool ok = true, kept = false;

	pthread_mutex_lock(&q->lock);
	if (!json_object_is_type(msg, json_type_object)) {
		ok = false;
	} else if (json_object_object_get_ex(msg, "QMP", &x)) {
		handle_greeting(q, x);
	} else if (json_object_object_get_ex(msg, "event", &x) &&
		   json_object_is_type(x, json_type_string)) {
		handle_event(q, msg, json_object_get_string(x));
		kept = true;
	} else if (json_object_object_get_ex(msg, "return", NULL) ||
		   json_object_object_get_ex(msg, "error", NULL)) {
		kept = handle_reply(q, msg);
	}
	if (!kept)
		json_object_put(msg);
	pthread_mutex_unlock(&q->lock);
	return ok;
}

/* The peer closed the socket (@n is 0) or reading it failed (@n < 0). */
static void reader_closed(struct qmp *q, ssize_t n)
{
	/* a peer that dies with unread data resets instead */
	int err = n < 0 && errno != ECONNRESET ? errno : 0;

	pthread_mutex_lock(&q->lock);
	if (q->shutdown_reason[0])
		mark_dead_locked(q, -ECONNRESET,
				 "qemu shut down (%s) and closed the qmp "
				 "connection at %s",
				 q->shutdown_reason, q->path);
	else if (err)
		mark_dead_locked(q, -ECONNRESET,
				 "qmp connection at %s failed: %s",
				 q->path, strerror(err));
	else
		mark_dead_locked(q, -ECONNRESET,
				 "qemu closed the qmp connection at %s",
				 q->path);
	pthread_mutex_unlock(&q->lock);
}

/*
 * Feeds @n bytes read to the tokener and handles every message they
 * complete; *@partial counts the bytes of a message not complete yet.
 * Returns false when the bytes are not qmp.
 */
static bool reader_parse(struct qmp *q, struct json_tokener *tok,
			 const char *buf, size_t n, size_t *partial)
{
	size_t off = 0;

	while (off < n) {
		struct json_object *msg;
		enum json_tokener_error jerr;
		size_t used;

		msg = json_tokener_parse_ex(tok, buf + off, (int)(n - off));
		jerr = json_tokener_get_error(tok);
		if (jerr == json_tokener_continue) {
			*partial += n - off;
			return true;
		}
		if (jerr != json_tokener_success || !msg)
			return false;
		used = json_tokener_get_parse_end(tok);
		off += used ? used : n - off;
		*partial = 0;
		json_tokener_reset(tok);
		if (!handle_message(q, msg))
			return false;
	}
	return true;
}

static void *reader_main(void *arg)
{
	struct qmp *q = arg;
	struct json_tokener *tok = json_tokener_new();
	size_t partial = 0; /* bytes of the message being parsed */
	char buf[65536];

	if (!tok) {
		pthread_mutex_lock(&q->lock);
		mark_dead_locked(q, -ENOMEM, "out of memory reading qmp at %s",
				 q->path);
		pthread_mutex_unlock(&q->lock);
		return NULL;
	}
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = q->fd, .events = POLLIN },
			{ .fd = q->wake[0], .events = POLLIN },
		};
		ssize_t n;
		bool bad;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pthread_mutex_lock(&q->lock);
			mark_dead_locked(q, -errno, "poll on qmp socket %s: %s",
					 q->path, strerror(errno));
			pthread_mutex_unlock(&q->lock);
			break;
		}
		if (pfd[1].revents)
			break;
		if (!pfd[0].revents)
			continue;
		n = read(q->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			reader_closed(q, n);
			break;
		}
		bad = !reader_parse(q, tok, buf, (size_t)n, &partial);
		if (!bad && partial > QMP_MESSAGE_MAX) {
			pthread_mutex_lock(&q->lock);
			mark_dead_locked(q, -EPROTO,
					 "qemu sent a qmp message over %u bytes at %s",
					 QMP_MESSAGE_MAX, q->path);
			pthread_mutex_unlock(&q->lock);
			break;
		}
		if (bad) {
			pthread_mutex_lock(&q->lock);
			mark_dead_locked(q, -EPROTO,
					 "qemu sent something that is not qmp at %s",
					 q->path);
			pthread_mutex_unlock(&q->lock);
			break;
		}
	}
	json_tokener_free(tok);
	shutdown(q->fd, SHUT_RDWR);
	return NULL;
}

/* ---- dispatcher thread ---- */

static void qmp_free(struct qmp *q)
{
	struct evnode *n;

	while ((n = q->qhead)) {
		q->qhead = n->next;
		json_object_put(n->msg);
		free(n);
	}
	for (unsigned i = 0; i < QMP_EVENT_HISTORY; i++)
		if (q->hist[i])
			json_object_put(q->hist[i]);
	if (q->fd >= 0)
		close(q->fd);
	if (q->wake[0] >= 0)
		close(q->wake[0]);
	if (q->wake[1] >= 0)
		close(q->wake[1]);
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->wlock);
	pthread_cond_destroy(&q->cond);
	pthread_cond_destroy(&q->dcond);
	free(q);
}

static void *dispatcher_main(void *arg)
{
	struct qmp *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		bool want_event = q->qhead && q->event_cb;
		bool want_closed = q->dead && !q->closing && q->closed_cb &&
				   !q->closed_delivered;

		if (q->closing || q->free_on_return)
			break;
		if (!want_event && !want_closed) {
			pthread_cond_wait(&q->dcond, &q->lock);
			continue;
		}
		if (want_event) {
			struct evnode *n = q->qhead;
			qmp_event_fn cb = q->event_cb;
			void *cbarg = q->cb_arg;
			struct json_object *name, *data = NULL;

			q->qhead = n->next;
			if (!q->qhead)
				q->qtail = NULL;
			q->qlen--;
			pthread_mutex_unlock(&q->lock);
			json_object_object_get_ex(n->msg, "event", &name);
			json_object_object_get_ex(n->msg, "data", &data);
			cb(q, json_object_get_string(name), data, cbarg);
			json_object_put(n->msg);
			free(n);
			pthread_mutex_lock(&q->lock);
		} else {
			qmp_closed_fn cb = q->closed_cb;
			void *cbarg = q->cb_arg;
			int err = q->dead_err;
			char why[REASON_MAX];

			q->closed_delivered = true;
			snprintf(why, sizeof(why), "%s", q->dead_reason);
			pthread_mutex_unlock(&q->lock);
			cb(q, err, why, cbarg);
			pthread_mutex_lock(&q->lock);
		}
	}
	if (q->free_on_return) {
		pthread_mutex_unlock(&q->lock);
		pthread_detach(pthread_self());
		qmp_free(q);
		return NULL;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* ---- writing ---- */

static int write_all(struct qmp *q, const char *buf, size_t len,
		     uint64_t deadline, const char *cmd, char *reason)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(q->fd, buf + off, len - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
		int left, err;

		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		err = errno;
		if (err == EINTR)
			continue;
		if (err != EAGAIN) {
			pthread_mutex_lock(&q->lock);
			mark_dead_locked(q, err == EPIPE ? -EPIPE : -ECONNRESET,
					 "writing to qmp at %s failed: %s",
					 q->path, strerror(err));
			pthread_mutex_unlock(&q->lock);
			return reason_set(reason, err == EPIPE ? -EPIPE : -ECONNRESET,
					  "qmp %s: writing to %s failed: %s", cmd,
					  q->path, strerror(err));
		}
		left = ms_left(deadline);
		if (left == 0 || poll(&pfd, 1, left) == 0) {
			if (off == 0)
				return reason_set(reason, -ETIMEDOUT,
						  "qmp %s: qemu at %s does not read its socket",
						  cmd, q->path);
			/* half a message is on the wire: the stream is lost */
			pthread_mutex_lock(&q->lock);
			mark_dead_locked(q, -ETIMEDOUT,
					 "qemu at %s stopped reading in the middle of a message",
					 q->path);
			pthread_mutex_unlock(&q->lock);
			shutdown(q->fd, SHUT_RDWR);
			return reason_set(reason, -ETIMEDOUT,
					  "qmp %s: qemu at %s stopped reading its socket",
					  cmd, q->path);
		}
	}
	return 0;
}

static void unlink_pending_locked(struct qmp *q, struct pending *p)
{
	for (struct pending **pp = &q->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

/* Registers @p to wait for a reply, unless the connection is closing/dead. */
static int pending_add(struct qmp *q, struct pending *p, const char *cmd,
		       char *reason)
{
	int r = 0;

	pthread_mutex_lock(&q->lock);
	if (q->closing) {
		r = reason_set(reason, -ECANCELED,
			       "qmp %s: connection to %s is being closed", cmd,
			       q->path);
	} else if (q->dead) {
		r = reason_set(reason, q->dead_err, "qmp %s: %s", cmd,
			       q->dead_reason);
	} else {
		p->id = ++q->next_id;
		p->next = q->pending;
		q->pending = p;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* Unregisters @p before anything was sent or waited for. */
static void pending_drop(struct qmp *q, struct pending *p)
{
	pthread_mutex_lock(&q->lock);
	unlink_pending_locked(q, p);
	pthread_mutex_unlock(&q->lock);
	if (p->reply)
		json_object_put(p->reply);
}

/*
 * Waits until @deadline for @p's reply, then unregisters it: 0 when the
 * reply is in p->reply, -ETIMEDOUT, or the transport's error.
 */
static int pending_wait(struct qmp *q, struct pending *p, const char *cmd,
			unsigned timeout_ms, uint64_t deadline, char *reason)
{
	int r = 0;

	pthread_mutex_lock(&q->lock);
	while (!p->done && cond_wait_until(&q->cond, &q->lock, deadline))
		;
	unlink_pending_locked(q, p);
	if (!p->done)
		r = reason_set(reason, -ETIMEDOUT,
			       "qmp %s: no reply from qemu at %s within %u ms",
			       cmd, q->path, timeout_ms);
	else if (p->err == -ECANCELED)
		r = reason_set(reason, p->err,
			       "qmp %s: connection to %s closed by lendfs",
			       cmd, q->path);
	else if (p->err)
		r = reason_set(reason, p->err, "qmp %s: %s", cmd,
			       q->dead_reason);
	pthread_mutex_unlock(&q->lock);
	return r;
}

/*
 * The line to send, {"execute", "arguments", "id"} and a newline; takes
 * @args.  NULL when out of memory.
 */
static char *command_line(const char *cmd, struct json_object *args,
			  int64_t id)
{
	struct json_object *msg = json_object_new_object();
	const char *text;
	char *line = NULL;

	if (!msg) {
		json_object_put(args);
		return NULL;
	}
	json_object_object_add(msg, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(msg, "arguments", args);
	json_object_object_add(msg, "id", json_object_new_int64(id));
	text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	if (!text || asprintf(&line, "%s\n", text) < 0)
		line = NULL;
	json_object_put(msg);
	return line;
}

/* A reply's "return" into *@ret, or its "error" as -errno; takes @reply. */
static int command_reply(struct json_object *reply, const char *cmd,
			 struct json_object **ret, char *reason)
{
	struct json_object *err, *val;
	int r;

	if (json_object_object_get_ex(reply, "error", &err)) {
		struct json_object *k = NULL, *d = NULL;
		const char *klass, *desc;

		json_object_object_get_ex(err, "class", &k);
		json_object_object_get_ex(err, "desc", &d);
		klass = k ? json_object_get_string(k) : NULL;
		desc = d ? json_object_get_string(d) : "unknown error";
		r = reason_set(reason, qmp_error_errno(klass, desc), "qmp %s: %s",
			       cmd, desc);
	} else {
		if (ret && json_object_object_get_ex(reply, "return", &val))
			*ret = json_object_get(val);
		r = 0;
	}
	json_object_put(reply);
	return r;
}

int qmp_command(struct qmp *q, const char *cmd, struct json_object *args,
		unsigned timeout_ms, struct json_object **ret, char *reason)
{
	unsigned tmo = timeout_ms ? timeout_ms : QMP_TIMEOUT_DEFAULT_MS;
	struct pending p = { 0 };
	_cleanup_free_ char *line = NULL;
	uint64_t deadline;
	int r;

	if (ret)
		*ret = NULL;
	if (!cmd || !*cmd) {
		json_object_put(args);
		return reason_set(reason, -EINVAL, "qmp: empty command name");
	}
	if (args && !json_object_is_type(args, json_type_object)) {
		json_object_put(args);
		return reason_set(reason, -EINVAL,
				  "qmp %s: arguments must be an object", cmd);
	}
	deadline = deadline_after(tmo);

	r = pending_add(q, &p, cmd, reason);
	if (r < 0) {
		json_object_put(args);
		return r;
	}
	line = command_line(cmd, args, p.id);
	if (!line) {
		pending_drop(q, &p);
		return reason_set(reason, -ENOMEM, "qmp %s: out of memory",
				  cmd);
	}
	pthread_mutex_lock(&q->wlock);
	r = write_all(q, line, strlen(line), deadline, cmd, reason);
	pthread_mutex_unlock(&q->wlock);
	if (r < 0) {
		pending_drop(q, &p);
		return r;
	}
	r = pending_wait(q, &p, cmd, tmo, deadline, reason);
	if (r < 0)
		return r;
	return command_reply(p.reply, cmd, ret, reason);
}

int qmp_hmp(struct qmp *q, const char *cmdline, unsigned timeout_ms, char **out,
	    char *reason)
{
	struct json_object *args = json_object_new_object(), *ret = NULL;
	int r;

	if (out)
		*out = NULL;
	if (!args)
		return reason_set(reason, -ENOMEM, "qmp: out of memory");
	json_object_object_add(args, "command-line",
			       json_object_new_string(cmdline));
	r = qmp_command(q, "human-monitor-command", args, timeout_ms, &ret,
			reason);
	if (r < 0)
		return r;
	if (out) {
		const char *s = ret && json_object_is_type(ret, json_type_string) ?
					json_object_get_string(ret) :
					"";

		*out = strdup(s);
		if (!*out)
			r = reason_set(reason, -ENOMEM, "qmp: out of memory");
	}
	json_object_put(ret);
	return r;
}

uint64_t qmp_event_seq(struct qmp *q)
{
	uint64_t seq;

	pthread_mutex_lock(&q->lock);
	seq = q->ev_seq;
	pthread_mutex_unlock(&q->lock);
	return seq;
}

int qmp_wait_event(struct qmp *q, uint64_t since, const char *name,
		   qmp_match_fn match, void *arg, unsigned timeout_ms,
		   struct json_object **data, char *reason)
{
	uint64_t deadline = deadline_after(timeout_ms);
	uint64_t checked = since;
	int r;

	if (data)
		*data = NULL;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		uint64_t first = checked + 1;

		if (q->ev_seq >= QMP_EVENT_HISTORY &&
		    first < q->ev_seq - QMP_EVENT_HISTORY + 1)
			first = q->ev_seq - QMP_EVENT_HISTORY + 1;
		for (uint64_t s = first; s <= q->ev_seq; s++) {
			struct json_object *msg = q->hist[s % QMP_EVENT_HISTORY];
			struct json_object *ev, *d = NULL;

			if (!msg || !json_object_object_get_ex(msg, "event", &ev) ||
			    strcmp(json_object_get_string(ev), name) != 0)
				continue;
			json_object_object_get_ex(msg, "data", &d);
			if (match && !match(d, arg))
				continue;
			/* a copy: the ring's objects stay in this thread */
			if (data && d && json_object_deep_copy(d, data, NULL) < 0)
				*data = NULL;
			pthread_mutex_unlock(&q->lock);
			return 0;
		}
		checked = MAX(checked, q->ev_seq);
		if (q->closing) {
			r = reason_set(reason, -ECANCELED,
				       "qmp: waiting for %s: connection to %s closed by lendfs",
				       name, q->path);
			break;
		}
		if (q->dead) {
			r = reason_set(reason, q->dead_err, "qmp: waiting for %s: %s",
				       name, q->dead_reason);
			break;
		}
		if (!cond_wait_until(&q->cond, &q->lock, deadline)) {
			r = reason_set(reason, -ETIMEDOUT,
				       "qmp: no %s event from qemu at %s within %u ms",
				       name, q->path, timeout_ms);
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

pid_t qmp_peer_pid(struct qmp *q)
{
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);

	if (q->fd < 0 ||
	    getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	return cred.pid;
}

bool qmp_alive(struct qmp *q, char *reason)
{
	bool alive;

	pthread_mutex_lock(&q->lock);
	alive = !q->dead && !q->closing;
	if (!alive)
		reason_set(reason, q->dead ? q->dead_err : -ECANCELED, "%s",
			   q->dead ? q->dead_reason : "connection closed by lendfs");
	pthread_mutex_unlock(&q->lock);
	return alive;
}

const char *qmp_path(const struct qmp *q)
{
	return q->path;
}

void qmp_version(const struct qmp *q, int *major, int *minor, int *micro)
{
	if (major)
		*major = q->version[0];
	if (minor)
		*minor = q->version[1];
	if (micro)
		*micro = q->version[2];
}

void qmp_set_callbacks(struct qmp *q, qmp_event_fn event, qmp_closed_fn closed,
		       void *arg)
{
	pthread_mutex_lock(&q->lock);
	q->event_cb = event;
	q->closed_cb = closed;
	q->cb_arg = arg;
	pthread_cond_signal(&q->dcond);
	pthread_mutex_unlock(&q->lock);
}

/* ---- connect / close ---- */

static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	/* helper threads take no signals: the daemon handles them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

static int qmp_alloc(const char *path, struct qmp **out)
{
	struct qmp *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	if (!q)
		return -ENOMEM;
	q->fd = -1;
	q->wake[0] = q->wake[1] = -1;
	snprintf(q->path, sizeof(q->path), "%s", path);
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->wlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_cond_init(&q->dcond, &ca);
	pthread_condattr_destroy(&ca);
	if (pipe2(q->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		int err = -errno;

		qmp_free(q);
		return err;
	}
	*out = q;
	return 0;
}

static int open_socket(const char *path, char *reason)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return reason_set(reason, -ENAMETOOLONG,
				  "qmp %s: socket path longer than %zu bytes",
				  path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return reason_set(reason, -errno, "qmp %s: socket: %s", path,
				  strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		err = errno;
		close(fd);
		if (err == EAGAIN)
			err = ECONNREFUSED; /* listen backlog full */
		return reason_set(reason, -err, "qmp %s: cannot connect: %s%s",
				  path, strerror(err),
				  err == ECONNREFUSED ? " (is qemu running?)" : "");
	}
	return fd;
}

int qmp_connect(const char *path, unsigned timeout_ms, struct qmp **out,
		char *reason)
{
	struct qmp *q = NULL;
	uint64_t deadline;
	unsigned tmo = timeout_ms ? timeout_ms : QMP_TIMEOUT_DEFAULT_MS;
	int fd, r, left;

	*out = NULL;
	if (!path || !*path)
		return reason_set(reason, -EINVAL, "qmp: empty socket path");
	deadline = deadline_after(tmo);
	fd = open_socket(path, reason);
	if (fd < 0)
		return fd;
	r = qmp_alloc(path, &q);
	if (r < 0) {
		close(fd);
		return reason_set(reason, r, "qmp %s: cannot allocate: %s", path,
				  strerror(-r));
	}
	q->fd = fd;
	r = start_thread(&q->reader, reader_main, q);
	if (r < 0) {
		qmp_free(q);
		return reason_set(reason, r, "qmp %s: cannot start reader: %s",
				  path, strerror(-r));
	}
	q->reader_started = true;
	r = start_thread(&q->dispatcher, dispatcher_main, q);
	if (r < 0) {
		qmp_close(q);
		return reason_set(reason, r, "qmp %s: cannot start dispatcher: %s",
				  path, strerror(-r));
	}
	q->dispatcher_started = true;

	pthread_mutex_lock(&q->lock);
	while (!q->greeted && !q->dead &&
	       cond_wait_until(&q->cond, &q->lock, deadline))
		;
	if (!q->greeted) {
		if (q->dead)
			r = reason_set(reason, q->dead_err,
				       "qmp %s: no greeting: %s", path,
				       q->dead_reason);
		else
			r = reason_set(reason, -ETIMEDOUT,
				       "qmp %s: no greeting from qemu within %u ms "
				       "(is another client connected to this monitor?)",
				       path, tmo);
		pthread_mutex_unlock(&q->lock);
		qmp_close(q);
		return r;
	}
	pthread_mutex_unlock(&q->lock);

	left = ms_left(deadline);
	r = qmp_command(q, "qmp_capabilities", NULL, left ? (unsigned)left : 1,
			NULL, reason);
	if (r < 0) {
		qmp_close(q);
		return r;
	}
	*out = q;
	return 0;
}

void qmp_close(struct qmp *q)
{
	bool from_callback;
	ssize_t _unused_ n;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->closing = true;
	fail_pending_locked(q, -ECANCELED);
	pthread_cond_signal(&q->dcond);
	from_callback = q->dispatcher_started &&
			pthread_equal(pthread_self(), q->dispatcher);
	pthread_mutex_unlock(&q->lock);

	n = write(q->wake[1], "x", 1);
	if (q->reader_started)
		pthread_join(q->reader, NULL);
	if (from_callback) {
		pthread_mutex_lock(&q->lock);
		q->free_on_return = true;
		pthread_mutex_unlock(&q->lock);
		return;
	}
	if (q->dispatcher_started)
		pthread_join(q->dispatcher, NULL);
	qmp_free(q);
}
