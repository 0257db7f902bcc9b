// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * hotplug.c - devices appearing, changing and vanishing under the engine
 * (engine.h, inventory back-ends).  The model's write lock is taken only
 * to link or unlink a device; a lent device that vanishes is torn down
 * by lend.c under its own request lock, so that no other device's
 * request, and no reader, waits for it.
 */
#include <errno.h>
#include <string.h>

#include "engine_internal.h"


/* Lend a new device to its udev-given borrower; 1 if that failed. */
static int device_autolend(struct engine *e, const struct cfg_device *c,
			   char *reason)
{
	char why[REASON_MAX];
	struct ldevice *d = model_get(e, c->id);
	bool lent = false;

	if (d) {
		pthread_mutex_lock(&d->lock);
		lent = d->state == DEV_LENT;
		pthread_mutex_unlock(&d->lock);
		model_put(e, d);
	}
	if (lent)
		return 0; /* already lent (restored from the store) */
	if (lend_autolend(e, c->id, c->borrower, why) < 0) {
		reason_set(reason, 0, "%s", why);
		return 1;
	}
	return 0;
}

int engine_device_add(struct engine *e, const struct cfg_device *c,
		      char *reason)
{
	struct notes nt = { .all = true };
	struct ldevice *d;
	int r;

	pthread_rwlock_wrlock(&e->model_lock);
	d = engine_dev(e, c->id);
	if (d && d->gone) /* removed while lent, back: the failure is over */
		r = lend_device_back(e, d, c, reason);
	else
		r = model_add(e, c, NULL, reason);
	pthread_rwlock_unlock(&e->model_lock);
	if (r < 0)
		return r;
	notes_event(&nt, EV_DEVICE_ADDED, c->id, "cause", "hotplug", NULL);
	notes_flush(e, &nt, NULL);
	return c->borrower[0] ? device_autolend(e, c, reason) : 0;
}

int engine_device_update(struct engine *e, const struct cfg_device *c,
			 char *reason)
{
	struct notes nt = { 0 };
	struct ldevice *d = model_get(e, c->id);
	int r;

	if (!d)
		return reason_set(reason, -ENODEV, "no device %s", c->id);
	pthread_mutex_lock(&d->lock);
	r = model_fill(d, c);
	if (r == 0)
		dev_touch(d);
	pthread_mutex_unlock(&d->lock);
	model_put(e, d);
	if (r < 0)
		return reason_set(reason, -ENOMEM, "out of memory");
	notes_add(&nt, c->id);
	notes_flush(e, &nt, NULL);
	return 0;
}

/*
 * Its own request lock first: a request on this device in flight ends
 * before the device goes (another device's request does not matter).
 */
int engine_device_remove(struct engine *e, const char *devid, char *reason)
{
	char borrower[BORROWER_MAX + 1];
	struct notes nt = { .all = true };
	struct ldevice *d = model_get(e, devid);
	bool lent;

	if (!d)
		return reason_set(reason, -ENODEV, "no device %s", devid);
	dev_request_begin(e, d);
	pthread_mutex_lock(&d->lock);
	lent = d->state == DEV_LENT;
	snprintf(borrower, sizeof(borrower), "%s", d->borrower);
	pthread_mutex_unlock(&d->lock);
	if (lent) {
		lend_device_gone(e, d, &nt);
		engine_report(e, "%s removed while lent to %s: lend torn down", devid,
			      borrower);
	} else {
		pthread_rwlock_wrlock(&e->model_lock);
		if (engine_dev(e, devid) == d)
			model_unlink(e, d);
		pthread_rwlock_unlock(&e->model_lock);
	}
	notes_event(&nt, EV_DEVICE_REMOVED, devid, "borrower",
		    lent ? borrower : NULL, "cause", "hotplug", NULL);
	dev_request_end(e, d);
	model_put(e, d);
	notes_flush(e, &nt, NULL);
	return 0;
}
