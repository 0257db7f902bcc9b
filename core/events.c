// SPDX-License-Identifier: LGPL-2.1-or-later
/* events.c - the cluster's change log (events.h). */
#include "events.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"

static const char *const event_names[EV_COUNT] = {
	[EV_LENDING] = "lending",
	[EV_LENT] = "lent",
	[EV_RETURNING] = "returning",
	[EV_RETURNED] = "returned",
	[EV_FAILED] = "failed",
	[EV_TAKEN_BACK] = "taken-back",
	[EV_HOST_OFFLINE] = "host-offline",
	[EV_HOST_ONLINE] = "host-online",
	[EV_DEVICE_ADDED] = "device-added",
	[EV_DEVICE_REMOVED] = "device-removed",
	[EV_EXPIRED] = "expired",
	[EV_LEASE_SET] = "lease-set",
	[EV_COMPOSITION_LENT] = "composition-lent",
	[EV_COMPOSITION_RETURNED] = "composition-returned",
};

const char *event_name(enum event_kind k)
{
	return (unsigned)k < EV_COUNT ? event_names[k] : "unknown";
}

int64_t event_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool bare_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr(":._/@+,-", c));
}

/* Append @s to @buf (NUL-terminated, @cap bytes) as far as it fits. */
static void buf_add(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > cap)
		n = *len + 1 < cap ? cap - *len - 1 : 0;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

void event_kv(char *buf, size_t cap, const char *key, const char *value)
{
	size_t len = strnlen(buf, cap), n = strlen(value), i;
	bool bare = n > 0;
	char esc[8];

	if (len >= cap)
		return;
	for (i = 0; i < n && bare; i++)
		bare = bare_char((unsigned char)value[i]);
	buf_add(buf, cap, &len, " ", 1);
	buf_add(buf, cap, &len, key, strlen(key));
	buf_add(buf, cap, &len, bare ? "=" : "=\"", bare ? 1 : 2);
	for (i = 0; i < n && i < EVENT_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			snprintf(esc, sizeof(esc), "\\x%02x", c);
		else
			snprintf(esc, sizeof(esc), "%c", c);
		buf_add(buf, cap, &len, esc, strlen(esc));
	}
	if (n > EVENT_VALUE_MAX)
		buf_add(buf, cap, &len, "...", 3);
	if (!bare)
		buf_add(buf, cap, &len, "\"", 1);
}

bool event_text_valid(const char *text)
{
	size_t n = strnlen(text, EVENT_TEXT_MAX);

	if (n == 0 || n >= EVENT_TEXT_MAX || !strchr(text, ' '))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			return false;
	return true;
}

/* ---- the ring -------------------------------------------------------------- */

int evlog_init(struct evlog *l, unsigned retain)
{
	memset(l, 0, sizeof(*l));
	l->cap = retain ? retain : EVENT_RETAIN_DEFAULT;
	l->ring = calloc(l->cap, sizeof(*l->ring));
	if (!l->ring)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->append_lock, NULL);
	return 0;
}

void evlog_free(struct evlog *l)
{
	if (!l->ring)
		return;
	for (unsigned i = 0; i < l->cap; i++)
		free(l->ring[i].line);
	free(l->ring);
	l->ring = NULL;
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->append_lock);
}

static struct ev_line *ring_at(struct evlog *l, unsigned i)
{
	return &l->ring[(l->head + i) % l->cap];
}

/* One event into the ring (lock held); the oldest goes when it is full. */
static int ring_push(struct evlog *l, const struct event_rec *ev)
{
	struct ev_line *x;
	char *line;
	int n;

	n = asprintf(&line, "%" PRIu64 " %" PRId64 " %s\n", ev->seq, ev->time_ns,
		     ev->text);
	if (n < 0)
		return -ENOMEM;
	if (l->n == l->cap) {
		x = ring_at(l, 0);
		free(x->line);
		l->head = (l->head + 1) % l->cap;
		l->n--;
	}
	x = ring_at(l, l->n++);
	*x = (struct ev_line){ .seq = ev->seq, .off = l->end, .line = line,
			       .len = (uint32_t)n };
	l->end += (uint64_t)n;
	l->last_seq = ev->seq;
	l->last_time = ev->time_ns;
	return 0;
}

static int ingest(struct evlog *l, const struct event_rec *ev, unsigned n,
		  bool next)
{
	int added = 0, r = 0;

	pthread_mutex_lock(&l->lock);
	if (next && n && ev[0].seq > l->last_seq + 1)
		r = -EAGAIN;
	for (unsigned i = 0; i < n && r == 0; i++) {
		if (ev[i].seq <= l->last_seq)
			continue;
		r = ring_push(l, &ev[i]);
		added += r == 0;
	}
	pthread_mutex_unlock(&l->lock);
	return r < 0 ? r : added;
}

int evlog_ingest(struct evlog *l, const struct event_rec *ev, unsigned n)
{
	return ingest(l, ev, n, false);
}

int evlog_ingest_next(struct evlog *l, const struct event_rec *ev, unsigned n)
{
	return ingest(l, ev, n, true);
}

/* The index of the line holding offset @pos (lock held, @pos in range). */
static unsigned ring_find(struct evlog *l, uint64_t pos)
{
	unsigned lo = 0, hi = l->n;

	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;

		if (ring_at(l, mid)->off <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

size_t evlog_read(struct evlog *l, uint64_t *pos, char *buf, size_t size)
{
	size_t done = 0;

	pthread_mutex_lock(&l->lock);
	if (l->n && *pos < ring_at(l, 0)->off)
		*pos = ring_at(l, 0)->off; /* trimmed meanwhile: gone */
	if (l->n && *pos < l->end) {
		for (unsigned i = ring_find(l, *pos); i < l->n && done < size; i++) {
			struct ev_line *x = ring_at(l, i);
			uint64_t skip = *pos + done - x->off;
			size_t n = (size_t)MIN((uint64_t)(size - done), x->len - skip);

			memcpy(buf + done, x->line + skip, n);
			done += n;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return done;
}

void evlog_span(struct evlog *l, uint64_t *begin, uint64_t *end,
		uint64_t *last_seq, int64_t *last_time)
{
	pthread_mutex_lock(&l->lock);
	*begin = l->n ? ring_at(l, 0)->off : l->end;
	*end = l->end;
	if (last_seq)
		*last_seq = l->last_seq;
	if (last_time)
		*last_time = l->last_time;
	pthread_mutex_unlock(&l->lock);
}

/* ---- the engine's side ------------------------------------------------------ */

/* The writer of a request: this mount's host, uid, pid, comm. */
static void caller_details(const struct notes *nt, char *text, size_t cap)
{
	const struct engine_caller *who = nt->who;
	char num[24];

	if (!who)
		return;
	if (nt->host)
		event_kv(text, cap, "host", nt->host);
	snprintf(num, sizeof(num), "%" PRIu32, who->uid);
	event_kv(text, cap, "uid", num);
	snprintf(num, sizeof(num), "%" PRIu32, who->pid);
	event_kv(text, cap, "pid", num);
	if (who->comm[0])
		event_kv(text, cap, "comm", who->comm);
}

void notes_event(struct notes *nt, enum event_kind k, const char *subject, ...)
{
	struct note_event *ev;
	const char *key;
	va_list ap;

	if (nt->nev == nt->evcap) {
		unsigned cap = nt->evcap ? nt->evcap * 2 : 4;
		void *v = realloc(nt->evs, cap * sizeof(*nt->evs));

		if (!v)
			return; /* no memory: this event is not logged */
		nt->evs = v;
		nt->evcap = cap;
	}
	ev = &nt->evs[nt->nev];
	ev->kind = k;
	ev->stored = false;
	ev->time_ns = event_now();
	snprintf(ev->text, sizeof(ev->text), "%s %s", subject, event_name(k));
	va_start(ap, subject);
	while ((key = va_arg(ap, const char *))) {
		const char *value = va_arg(ap, const char *);

		if (value) /* a NULL value leaves its key out */
			event_kv(ev->text, sizeof(ev->text), key, value);
	}
	va_end(ap);
	caller_details(nt, ev->text, sizeof(ev->text));
	nt->nev++;
}

void notes_caller(struct notes *nt, struct engine *e,
		  const struct engine_caller *who)
{
	nt->who = who;
	nt->host = who && who->host ? who->host : e->self ? e->self->name : NULL;
}

void notes_event_drop(struct notes *nt)
{
	if (nt->nev)
		nt->nev--;
}

void evlog_attach(struct notes *nt, struct lend_txn *txn, struct event_rec *buf)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nt->nev && n < EVLOG_ATTACH_MAX; i++)
		if (!nt->evs[i].stored)
			buf[n++] = (struct event_rec){ .time_ns = nt->evs[i].time_ns,
						       .text = nt->evs[i].text };
	txn->events = buf;
	txn->nevents = n;
	txn->events_stored = false;
}

void evlog_attached(struct notes *nt, struct lend_txn *txn)
{
	unsigned n = 0;

	for (unsigned i = 0; txn->events_stored && i < nt->nev && n < txn->nevents; i++) {
		if (!nt->evs[i].stored) {
			nt->evs[i].stored = true;
			n++;
		}
	}
	txn->events = NULL;
	txn->nevents = 0;
	txn->events_stored = false;
}

void evlog_carry(struct notes *nt, const struct note_event *next,
		 struct lend_txn *txn, struct event_rec *buf)
{
	unsigned n = 0, max = EVLOG_ATTACH_MAX - (next != NULL);

	for (unsigned i = 0; i < nt->nev && n < max; i++)
		if (!nt->evs[i].stored)
			buf[n++] = (struct event_rec){ .time_ns = nt->evs[i].time_ns,
						       .text = nt->evs[i].text };
	if (next)
		buf[n++] = (struct event_rec){ .time_ns = next->time_ns,
					       .text = next->text };
	txn->carry = buf;
	txn->ncarry = n;
}

void evlog_carried(struct notes *nt, unsigned n, bool next)
{
	if (next && n && nt->nev) {
		nt->evs[nt->nev - 1].stored = true; /* the commit's own event */
		n--;
	}
	for (unsigned i = 0; i + (next ? 1 : 0) < nt->nev && n; i++) {
		if (!nt->evs[i].stored) {
			nt->evs[i].stored = true;
			n--;
		}
	}
}

void evlog_sink(void *arg, const struct event_rec *ev, unsigned n)
{
	struct engine *e = arg;

	evlog_ingest(&e->events, ev, n);
}

/* The front-end's callback: the log grew (engine_set_event_watch()). */
static void events_appended(struct engine *e)
{
	pthread_rwlock_rdlock(&e->watch_lock);
	if (e->event_watch)
		e->event_watch(e->event_watch_arg);
	pthread_rwlock_unlock(&e->watch_lock);
}

/* Append the events no commit carried; -errno. */
static int append_rest(struct engine *e, const struct note_event *evs,
		       unsigned n, char *reason)
{
	_cleanup_free_ struct event_rec *recs = calloc(n ? n : 1, sizeof(*recs));
	unsigned m = 0;
	int r;

	if (!recs)
		return reason_set(reason, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++)
		if (!evs[i].stored)
			recs[m++] = (struct event_rec){ .time_ns = evs[i].time_ns,
							.text = evs[i].text };
	if (!m)
		return 0;
	/*
	 * sqlite, memory: the store numbers them and hands them to
	 * evlog_sink() under its lock, in order.  zk: the store numbers
	 * them for the cluster; they go to the ring at once when it has
	 * everything before them, else they are read back in order with
	 * whatever came before (evlog_ingest() skips what the ring has).
	 */
	pthread_mutex_lock(&e->events.append_lock);
	r = e->store->event_append(e->store_ctx, recs, m, e->event_retain, reason);
	if (r == 0 && e->store->event_shared) {
		r = evlog_ingest_next(&e->events, recs, m);
		if (r == -EAGAIN)
			r = evlog_load(e, reason);
		r = r == -ENOMEM ? reason_set(reason, r, "out of memory") : MIN(r, 0);
	}
	pthread_mutex_unlock(&e->events.append_lock);
	return r;
}

void evlog_commit(struct engine *e, struct note_event *evs, unsigned n,
		  const struct engine_caller *who)
{
	char reason[REASON_MAX];
	int r;

	if (!n || !e->store->event_append)
		return;
	r = append_rest(e, evs, n, reason);
	if (r < 0 && e->log) { /* the change stands; its events are lost */
		char msg[REASON_MAX + 64];

		snprintf(msg, sizeof(msg), "events not logged: %s", reason);
		e->log(e->log_arg, msg);
	}
	for (unsigned i = 0; i < n; i++)
		if (r >= 0 || evs[i].stored)
			__atomic_add_fetch(&e->event_counts[evs[i].kind], 1,
					   __ATOMIC_RELAXED);
	events_appended(e);
}

static int load_cb(void *arg, const struct event_rec *ev)
{
	return evlog_ingest(arg, ev, 1) < 0 ? -ENOMEM : 0;
}

int evlog_load(struct engine *e, char *reason)
{
	uint64_t last;

	if (!e->store->event_load)
		return 0;
	pthread_mutex_lock(&e->events.lock);
	last = e->events.last_seq;
	pthread_mutex_unlock(&e->events.lock);
	return e->store->event_load(e->store_ctx, last, load_cb, &e->events, reason);
}

void evlog_follow(struct engine *e)
{
	char reason[REASON_MAX];
	uint64_t before, after;

	pthread_mutex_lock(&e->events.lock);
	before = e->events.last_seq;
	pthread_mutex_unlock(&e->events.lock);
	if (evlog_load(e, reason) < 0 && e->log) {
		char msg[REASON_MAX + 64];

		snprintf(msg, sizeof(msg), "cannot read the event log: %s", reason);
		e->log(e->log_arg, msg);
	}
	pthread_mutex_lock(&e->events.lock);
	after = e->events.last_seq;
	pthread_mutex_unlock(&e->events.lock);
	if (after != before)
		events_appended(e);
}

void evlog_render_metrics(struct engine *e, FILE *out)
{
	metrics_header(out, "lendfs_events_total", "counter",
		       "Events appended to the event log by this daemon, by event.");
	for (unsigned k = 0; k < EV_COUNT; k++)
		fprintf(out, "lendfs_events_total{event=\"%s\"} %" PRIu64 "\n",
			event_name(k),
			__atomic_load_n(&e->event_counts[k], __ATOMIC_RELAXED));
}

/* ---- engine.h ------------------------------------------------------------------ */

void engine_set_event_watch(struct engine *e, engine_event_cb cb, void *arg)
{
	pthread_rwlock_wrlock(&e->watch_lock);
	e->event_watch_arg = arg;
	e->event_watch = cb;
	pthread_rwlock_unlock(&e->watch_lock);
}

size_t engine_events_read(struct engine *e, uint64_t *pos, char *buf,
			  size_t size)
{
	return evlog_read(&e->events, pos, buf, size);
}

void engine_events_span(struct engine *e, uint64_t *begin, uint64_t *end,
			uint64_t *last_seq, int64_t *last_time)
{
	evlog_span(&e->events, begin, end, last_seq, last_time);
}
