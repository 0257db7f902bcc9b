/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * events.h - the cluster's change log (SPEC section 8, docs/ABI/events).
 *
 * One event per change of lend state: a sequence number (SEQ), the wall
 * clock when it happened (TIME_NS, UTC, nanoseconds), its subject (a
 * device id, `host:NAME`, later `composition:NAME`), its name (enum
 * event_kind) and key=value details.  The `events` file shows one line
 * per event, oldest first:
 *
 *   SEQ TIME_NS SUBJECT EVENT key=value...
 *
 * Who made the change: for a write through a mount, that mount's host
 * (`host=`, distributed mode) and the writer's `uid= pid= comm=` (struct
 * engine_caller); for changes nobody wrote, `cause=hotplug|take-back|
 * recovery|host|guest|session`.  A `failed` event carries `errno=EBUSY
 * reason="..."`.
 *
 * Escaping (event_kv()): a value made only of letters, digits and
 * `:._/@+,-` is written bare; any other is quoted, `"` and `\` escaped
 * with a backslash, and every byte outside 0x20..0x7e written as \xNN.
 * A line therefore never holds a raw byte of a refused write, a second
 * line or a NUL.  Values are cut at EVENT_VALUE_MAX bytes ("..." added).
 *
 * Where events come from (core/lend.c, hotplug.c, recover.c, replica.c):
 * the code that changes lend state adds an event to its notification
 * batch with notes_event() (engine_internal.h), which adds the writer the
 * batch names (notes_caller()).  The commit that completes a lend or a
 * return carries the batch's events in its own transaction where the
 * store can (evlog_attach(), lend_txn.events: sqlite), so they cost no
 * write of their own and are exactly as durable as the lend; a commit
 * that fails stores none, and its `lent`/`returned` is dropped.
 * notes_flush() then hands the batch to evlog_commit(): what no commit
 * carried is appended on its own (store.h event_append), the counters of
 * lendfs_events_total move, and the front-end's event watch is called.
 * The store numbers events (SEQ) and hands them to the ring
 * (evlog_sink()) under the lock that numbered them, so the ring is in
 * SEQ order.  In distributed mode only the daemon that made a change
 * appends its event; every daemon reads the shared log back (evlog_load(),
 * evlog_follow() from the ZooKeeper watch), so every mount lists the same
 * events in the same order.
 *
 * Retention: the store keeps at least the last `[cluster] event_retention`
 * events (default EVENT_RETAIN_DEFAULT); the ring in memory holds the same
 * number, loaded from the store at start (evlog_load()).
 *
 * Reading: the log is an append-only byte stream.  Every event's line has
 * a byte offset that never changes (counted from the start of this
 * daemon's ring, so offsets stay valid for a reader while events are
 * appended and old ones trimmed): evlog_read() copies bytes from an
 * offset; a reader behind the oldest retained line is moved forward to
 * it (those events are gone).
 */
#ifndef LENDFS_EVENTS_H
#define LENDFS_EVENTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum event_kind {
	EV_LENDING,
	EV_LENT,
	EV_RETURNING,
	EV_RETURNED,
	EV_FAILED,
	EV_TAKEN_BACK,
	EV_HOST_OFFLINE,
	EV_HOST_ONLINE,
	EV_DEVICE_ADDED,
	EV_DEVICE_REMOVED,
	EV_EXPIRED,   /* a lease ran out (SPEC section 9) */
	EV_LEASE_SET, /* a lease set, renewed or removed */
	EV_COMPOSITION_LENT,	 /* every device of a composition lent */
	EV_COMPOSITION_RETURNED, /* ... returned */
	EV_COUNT,
};

const char *event_name(enum event_kind k);

#define EVENT_RETAIN_DEFAULT 10000 /* events kept, at least */
#define EVENT_RETAIN_MIN 10
#define EVENT_RETAIN_MAX 1000000
#define EVENT_TEXT_MAX 1024 /* "SUBJECT EVENT details" of one event, bytes */
#define EVENT_VALUE_MAX 200 /* bytes of one value before escaping */
#define EVENT_LINE_MAX (EVENT_TEXT_MAX + 48) /* with SEQ, TIME_NS, '\n' */

/*
 * An event as the store keeps it: @text is "SUBJECT EVENT details"
 * (printable, no newline); @seq is assigned by the store's append.
 */
struct event_rec {
	uint64_t seq;
	int64_t time_ns;
	const char *text;
};

/* Append " key=value" to @buf (of @cap bytes, NUL-terminated), escaped. */
void event_kv(char *buf, size_t cap, const char *key, const char *value);

/* Wall clock (UTC) in nanoseconds since the epoch. */
int64_t event_now(void);

/* Is @text a well-formed stored event text?  (store back-ends) */
bool event_text_valid(const char *text);

/* ---- the engine's ring ------------------------------------------------- */

struct ev_line {
	uint64_t seq;
	uint64_t off; /* byte offset of the line in the stream */
	char *line;   /* "SEQ TIME_NS TEXT\n" */
	uint32_t len;
};

struct evlog {
	pthread_mutex_t lock; /* the ring */
	pthread_mutex_t append_lock; /* one append to the store at a time */
	struct ev_line *ring;
	unsigned cap, head, n; /* oldest at head */
	uint64_t end;	       /* offset after the last line */
	uint64_t last_seq;
	int64_t last_time;
};

int evlog_init(struct evlog *l, unsigned retain);
void evlog_free(struct evlog *l);

/*
 * Add stored events to the ring, in SEQ order; events at or below the
 * last SEQ already there are skipped (a reload, or our own append seen
 * again through the store).  How many were added, or -ENOMEM.
 */
int evlog_ingest(struct evlog *l, const struct event_rec *ev, unsigned n);

/*
 * The same for this daemon's own append to a shared log, unless the ring
 * lacks events numbered before it (another daemon's, not read yet):
 * then -EAGAIN, and nothing is added (read the store instead).
 */
int evlog_ingest_next(struct evlog *l, const struct event_rec *ev, unsigned n);

/*
 * Copy up to @size bytes of the stream from offset *@pos (moved to the
 * oldest retained line first if it is below it) into @buf; returns the
 * number of bytes (0: at the end).
 */
size_t evlog_read(struct evlog *l, uint64_t *pos, char *buf, size_t size);

/* The stream's extent [*begin, *end) and its last event. */
void evlog_span(struct evlog *l, uint64_t *begin, uint64_t *end,
		uint64_t *last_seq, int64_t *last_time);

#endif
