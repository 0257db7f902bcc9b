/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qmp.h - a client for the QEMU Machine Protocol (QMP) over a unix socket.
 *
 * One struct qmp is one persistent connection to one QEMU monitor.
 * qmp_connect() connects, reads the greeting and negotiates capabilities
 * (no optional capability is enabled: commands run in order, in band).
 *
 * Threads.  Every connection owns two threads:
 *
 *   reader      the only reader of the socket (poll(), non-blocking).  It
 *               parses the stream with a json-c tokener, hands each
 *               command response to the caller waiting for its "id",
 *               appends every event to a history ring and to the
 *               dispatch queue.  When QEMU exits or closes the socket it
 *               fails every pending command with -ECONNRESET and queues a
 *               "closed" notification.
 *   dispatcher  calls the event callback for each queued event, in
 *               arrival order, then the closed callback (once), with no
 *               lock held.  Callbacks may therefore call qmp_command() on
 *               the same connection, and may call qmp_close() (the
 *               connection is then freed when the callback returns).
 *
 * Any number of threads may call qmp_command(), qmp_hmp() and
 * qmp_wait_event() at the same time: messages are written whole under a
 * write lock, each with its own "id", and QEMU answers in order.
 *
 * Events are never lost between a command and the wait for its event:
 * take qmp_event_seq() before the command, pass it to qmp_wait_event(),
 * which first looks at the events received since then (the history ring
 * holds the last QMP_EVENT_HISTORY of them).
 *
 * json-c objects are never shared between threads (json-c's reference
 * counts are not atomic): replies are handed over, event data is copied.
 * Objects given to the caller are the caller's alone.
 *
 * Errors: every function returns 0 or -errno and fills @reason (REASON_MAX
 * bytes, may be NULL) with a message naming the command:
 *   -ENOENT, -ECONNREFUSED, -EACCES, -ENAMETOOLONG  qmp_connect(): socket
 *   -ETIMEDOUT    no greeting / response / event within the timeout
 *                 (a timed-out command may still run in QEMU later)
 *   -ECONNRESET   QEMU exited or closed the socket (now or earlier)
 *   -EPIPE        QEMU closed the socket while we were writing
 *   -EPROTO       QEMU sent something that is not QMP (connection closed)
 *   -ECANCELED    qmp_close() was called while the command was pending
 *   QMP errors ("error": {"class", "desc"}) map by class: DeviceNotFound
 *   -> -ENODEV, CommandNotFound -> -ENOSYS, KVMMissingCap -> -ENOTSUP,
 *   GenericError -> -EEXIST for duplicate ids ("Duplicate ...",
 *   "already exists"), -ENOSPC for "no slot" / "no free" (a full bus),
 *   -EBUSY for "in use" / "busy", else -EIO; the reason is "qmp CMD: DESC".
 */
#ifndef LENDFS_QMP_H
#define LENDFS_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "util.h"

#define QMP_EVENT_HISTORY 256	/* events qmp_wait_event() can look back on */
#define QMP_EVENT_QUEUE_MAX 4096 /* undelivered events kept for the callback */
#define QMP_MESSAGE_MAX (64u << 20) /* a bigger message is a protocol error */
#define QMP_TIMEOUT_DEFAULT_MS 5000u /* what a timeout of 0 means, see below */

struct qmp;

/* @data is the event's "data" member (NULL if none), borrowed. */
typedef void (*qmp_event_fn)(struct qmp *q, const char *event,
			     struct json_object *data, void *arg);
/* The connection died (not called after qmp_close()); @err is -errno. */
typedef void (*qmp_closed_fn)(struct qmp *q, int err, const char *reason,
			      void *arg);
/* Does this event's data (may be NULL) match what the caller waits for? */
typedef bool (*qmp_match_fn)(struct json_object *data, void *arg);

/*
 * Connect to the QMP unix socket @path, wait at most @timeout_ms for the
 * greeting and the qmp_capabilities reply (0: QMP_TIMEOUT_DEFAULT_MS).
 * A monitor that already has a client accepts the connection but sends no
 * greeting: -ETIMEDOUT.
 */
int qmp_connect(const char *path, unsigned timeout_ms, struct qmp **out,
		char *reason);

/*
 * Close the connection, fail pending commands with -ECANCELED, join the
 * threads and free @q.  Callbacks are not called any more once it
 * returns.  It may be called from a callback (then @q is freed when that
 * callback returns), but no other thread may be using @q or be about to.
 * NULL is a no-op.
 */
void qmp_close(struct qmp *q);

/*
 * Set the callbacks (any may be NULL).  Events that arrived before are
 * delivered too.  If the connection is already dead, @closed is called
 * (from the dispatcher) all the same.
 */
void qmp_set_callbacks(struct qmp *q, qmp_event_fn event, qmp_closed_fn closed,
		       void *arg);

/*
 * Execute @cmd with @args (an object, consumed even on failure; NULL for
 * none) and wait at most @timeout_ms (0: QMP_TIMEOUT_DEFAULT_MS).  On
 * success *@ret (if @ret is not NULL) receives the "return" value, owned
 * by the caller (json_object_put).
 */
int qmp_command(struct qmp *q, const char *cmd, struct json_object *args,
		unsigned timeout_ms, struct json_object **ret, char *reason);

/*
 * human-monitor-command: run the HMP command line @cmdline; *@out (if not
 * NULL) receives its output, malloc'd.  HMP reports most errors in the
 * output text, not as a QMP error.
 */
int qmp_hmp(struct qmp *q, const char *cmdline, unsigned timeout_ms, char **out,
	    char *reason);

/* Number of events received so far (the sequence number of the last). */
uint64_t qmp_event_seq(struct qmp *q);

/*
 * Wait for an event named @name received after sequence number @since
 * and for which @match (NULL: any) returns true.  @match runs with the
 * connection's lock held: it must only look at @data.  On success *@data
 * (if not NULL) receives a copy of the event's data (NULL if the event
 * has none), the caller's to json_object_put().  -ETIMEDOUT after @timeout_ms (0: only
 * look at the events already received), -ECONNRESET if the connection
 * dies first.
 */
int qmp_wait_event(struct qmp *q, uint64_t since, const char *name,
		   qmp_match_fn match, void *arg, unsigned timeout_ms,
		   struct json_object **data, char *reason);

/* False once QEMU has gone; @reason (if not NULL) then says why. */
bool qmp_alive(struct qmp *q, char *reason);

/*
 * The process at the other end of the socket (SO_PEERCRED: QEMU's pid as
 * this process sees it), or 0 if unknown (closed, another pid namespace).
 */
pid_t qmp_peer_pid(struct qmp *q);

/* The socket path given to qmp_connect(). */
const char *qmp_path(const struct qmp *q);

/* QEMU's version from the greeting, e.g. 7, 2, 22. */
void qmp_version(const struct qmp *q, int *major, int *minor, int *micro);

/* The -errno a QMP error class and description map to (see above). */
int qmp_error_errno(const char *klass, const char *desc);

#endif
