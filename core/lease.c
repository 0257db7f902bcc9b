// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lease.c - leases (SPEC section 9): the value of a lease write, and the
 * timer that ends lends on time.
 *
 * A lend's lease is its deadline, wall-clock ns (struct ldevice.lease,
 * the record's `expires`), set with the lend ([cluster] default_lease)
 * or by a lease request (lend.c).  The timer is one thread: it sleeps on
 * e->lease_cond until the earliest deadline it knows of (e->lease_next),
 * or until a request sets an earlier one (lease_kick()); then it walks
 * the devices once, returns those of this daemon whose deadline passed
 * (lend_lease_expire(): the return path of an empty borrower write) and
 * computes the next deadline.  A member of a lent composition does not
 * go alone: compose_lease_expire() returns the whole composition once
 * the earliest deadline of its members passed (a composition's lease is
 * its members', set together).  Each device's lease is read under its
 * d->lock, which is dropped before its return; e->lease_lock is a leaf,
 * held only to read or write the fields of the timer.  The condition
 * variable waits on CLOCK_REALTIME, the clock of the deadlines.
 *
 * Only this daemon's own devices are returned: in distributed mode the
 * lender's daemon enforces the lease; the other mounts show it from the
 * record.  A daemon that starts after a deadline returns the device while
 * it recovers (lease_expire_due(), cause=recovery).  What requests need
 * of the timer (lease_kick()) and the value of a lease write
 * (lease_parse()) are in lend.c, below it.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"

#define LEASE_RETRY_NS 1000000000LL /* a failed return is tried again */

/*
 * Return every device of this daemon whose lease passed; the earliest
 * deadline still ahead (0: none).
 */
int64_t lease_expire_due(struct engine *e, const char *cause)
{
	struct ldevice **devs;
	int64_t next = 0;
	unsigned n;

	if (model_pin_all(e, &devs, &n) < 0)
		return now_wall_ns() + LEASE_RETRY_NS;
	for (unsigned i = 0; i < n; i++) {
		struct ldevice *d = devs[i];
		int64_t at, now = now_wall_ns();
		bool lent;

		pthread_mutex_lock(&d->lock);
		at = d->lease;
		lent = d->state == DEV_LENT && !lend_remote(e, d);
		pthread_mutex_unlock(&d->lock);
		if (!lent || !at)
			continue;
		if (at <= now && compose_lease_expire(e, d, cause) < 0)
			at = now + LEASE_RETRY_NS;
		else if (at <= now)
			continue; /* returned (or not lent any more) */
		if (!next || at < next)
			next = at;
	}
	model_put_all(e, devs, n);
	return next;
}

static void *lease_thread(void *arg)
{
	struct engine *e = arg;

	pthread_mutex_lock(&e->lease_lock);
	while (!e->lease_stop) {
		int64_t next;

		e->lease_kicked = false;
		pthread_mutex_unlock(&e->lease_lock);
		next = lease_expire_due(e, "lease");
		pthread_mutex_lock(&e->lease_lock);
		if (e->lease_kicked)
			continue; /* an earlier deadline came meanwhile */
		e->lease_next = next;
		while (!e->lease_stop && !e->lease_kicked) {
			struct timespec ts = { next / 1000000000LL, next % 1000000000LL };

			if (!next)
				pthread_cond_wait(&e->lease_cond, &e->lease_lock);
			else if (pthread_cond_timedwait(&e->lease_cond, &e->lease_lock,
							&ts) == ETIMEDOUT)
				break;
		}
	}
	pthread_mutex_unlock(&e->lease_lock);
	return NULL;
}

void lease_init(struct engine *e)
{
	pthread_mutex_init(&e->lease_lock, NULL);
	pthread_cond_init(&e->lease_cond, NULL); /* CLOCK_REALTIME */
}

int lease_start(struct engine *e, char *reason)
{
	int r = pthread_create(&e->lease_thread, NULL, lease_thread, e);

	if (r)
		return reason_set(reason, -r, "cannot start the lease timer: %s",
				  strerror(r));
	e->lease_running = true;
	return 0;
}

void lease_stop(struct engine *e)
{
	if (!e->lease_running)
		return;
	pthread_mutex_lock(&e->lease_lock);
	e->lease_stop = true;
	pthread_cond_signal(&e->lease_cond);
	pthread_mutex_unlock(&e->lease_lock);
	pthread_join(e->lease_thread, NULL);
	e->lease_running = false;
}

void lease_free(struct engine *e)
{
	pthread_cond_destroy(&e->lease_cond);
	pthread_mutex_destroy(&e->lease_lock);
}
