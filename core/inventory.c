// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * inventory.c - what every inventory back-end shares (inventory.h): the
 * local host name, coldplug into the configuration, the hot-plug thread,
 * and the `config` back-end itself.  The lookup by name is in
 * core/backend.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "inventory.h"

_printf_(3, 4) static void say(engine_log_cb log, void *arg, const char *fmt, ...)
{
	char msg[REASON_MAX * 2];
	va_list ap;

	if (!log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log(arg, msg);
}

int inventory_local_host(const char *opt, char *buf, size_t len, char *reason)
{
	char name[256];

	if (opt) {
		if (!name_valid(opt))
			return reason_set(reason, -EINVAL,
					  "invalid host name '%s' (1-63 of A-Z a-z 0-9 _ -)",
					  opt);
		snprintf(buf, len, "%s", opt);
		return 0;
	}
	if (gethostname(name, sizeof(name)) < 0)
		return reason_set(reason, -errno, "cannot get the host name: %s",
				  strerror(errno));
	name[sizeof(name) - 1] = '\0';
	name[strcspn(name, ".")] = '\0';
	if (!name_valid(name))
		return reason_set(reason, -EINVAL,
				  "host name '%.64s' is not a valid lendfs name; use --host NAME",
				  name);
	snprintf(buf, len, "%s", name);
	return 0;
}

/* ---- coldplug ------------------------------------------------------------ */

struct merge {
	struct cluster_config *cfg;
	engine_log_cb log;
	void *log_arg;
	char *reason;
	unsigned n;
};

static int add_host(struct cluster_config *cfg, const char *name, char *reason)
{
	struct cfg_host *hosts = realloc(cfg->hosts, (cfg->nhosts + 1) * sizeof(*hosts));
	struct cfg_host *h;

	if (!hosts)
		return reason_set(reason, -ENOMEM, "out of memory");
	cfg->hosts = hosts;
	h = &hosts[cfg->nhosts++];
	cfg_host_defaults(h, name);
	return 0;
}

static int add_autolend(struct merge *m, const struct cfg_device *dev)
{
	struct cluster_config *cfg = m->cfg;
	struct cfg_autolend *a;

	for (unsigned i = 0; i < cfg->nautolends; i++) {
		a = &cfg->autolends[i];
		if (strcmp(a->device, dev->id) != 0)
			continue;
		if (strcmp(a->borrower, dev->borrower) != 0)
			say(m->log, m->log_arg,
			    "coldplug: %s: [policy] autolend -> %s overrides LENDFS_BORROWER=%s",
			    dev->id, a->borrower, dev->borrower);
		return 0;
	}
	a = realloc(cfg->autolends, (cfg->nautolends + 1) * sizeof(*a));
	if (!a)
		return reason_set(m->reason, -ENOMEM, "out of memory");
	cfg->autolends = a;
	a = &a[cfg->nautolends++];
	memset(a, 0, sizeof(*a));
	snprintf(a->device, sizeof(a->device), "%s", dev->id);
	snprintf(a->borrower, sizeof(a->borrower), "%s", dev->borrower);
	say(m->log, m->log_arg, "coldplug: %s has LENDFS_BORROWER=%s: lending it at start",
	    dev->id, dev->borrower);
	return 0;
}

static int merge_one(void *arg, const struct cfg_device *dev)
{
	struct merge *m = arg;
	struct cluster_config *cfg = m->cfg;
	struct cfg_device *slot = NULL;

	for (unsigned i = 0; i < cfg->ndevices && !slot; i++)
		if (!strcmp(cfg->devices[i].id, dev->id))
			slot = &cfg->devices[i];
	if (slot == dev) {
		m->n++; /* the config back-end: already there */
		return 0;
	}
	if (slot) {
		unsigned line = slot->line;

		say(m->log, m->log_arg,
		    "coldplug: %s (%s:%u) is replaced by the real device", dev->id,
		    cfg->path[0] ? cfg->path : "config", line);
		*slot = *dev;
		slot->line = line;
	} else {
		slot = realloc(cfg->devices, (cfg->ndevices + 1) * sizeof(*slot));
		if (!slot)
			return reason_set(m->reason, -ENOMEM, "out of memory");
		cfg->devices = slot;
		cfg->devices[cfg->ndevices++] = *dev;
	}
	m->n++;
	if (dev->borrower[0])
		return add_autolend(m, dev);
	return 0;
}

int inventory_coldplug(struct cluster_config *cfg, const char *host,
		       const struct inventory_ops *ops, void *ctx,
		       engine_log_cb log, void *log_arg, char *reason)
{
	struct merge m = { cfg, log, log_arg, reason, 0 };
	int r;

	if (!config_find_host(cfg, host)) {
		r = add_host(cfg, host, reason);
		if (r < 0)
			return r;
		say(log, log_arg,
		    "coldplug: host %s is not in the config: "
		    "added with the [host] defaults and no links", host);
	}
	r = ops->enumerate(ctx, merge_one, &m, reason);
	if (r < 0)
		return r;
	say(log, log_arg, "coldplug: %u devices on %s from the %s inventory", m.n, host,
	    ops->name);
	return (int)m.n;
}

/* ---- events -------------------------------------------------------------- */

int inventory_apply_event(struct engine *e, const struct inventory_event *ev,
			  engine_log_cb log, void *log_arg)
{
	const struct cfg_device *dev = &ev->dev;
	char why[REASON_MAX] = "";
	int r;

	switch (ev->action) {
	case INVENTORY_ADD:
		r = engine_device_add(e, dev, why);
		if (r == -EEXIST) {
			/* coldplug saw it already, or a repeated add: refresh */
			r = engine_device_update(e, dev, why);
			if (r < 0)
				say(log, log_arg, "hot-plug: cannot update %s: %s", dev->id, why);
			return r;
		}
		if (r < 0) {
			say(log, log_arg, "hot-plug: cannot add %s: %s", dev->id, why);
			return r;
		}
		say(log, log_arg, "hot-plug: added %s (%04x:%04x class 0x%06x%s%s%s%s)",
		    dev->id, dev->vendor, dev->device, dev->class,
		    dev->deny_reason[0] ? "; never lent: it " : "", dev->deny_reason,
		    dev->borrower[0] ? "; LENDFS_BORROWER=" : "", dev->borrower);
		return 0; /* an auto-lend failure (1) was reported by the engine */
	case INVENTORY_REMOVE:
		r = engine_device_remove(e, dev->id, why);
		if (r == -ENODEV)
			return 0; /* never known, or already gone */
		if (r < 0)
			say(log, log_arg, "hot-plug: cannot remove %s: %s", dev->id, why);
		else
			say(log, log_arg, "hot-plug: removed %s", dev->id);
		return r;
	case INVENTORY_CHANGE:
		r = engine_device_update(e, dev, why);
		if (r == -ENODEV) {
			/* its add was missed: add it now, without auto-lending */
			struct inventory_event add = *ev;

			add.action = INVENTORY_ADD;
			add.dev.borrower[0] = '\0';
			return inventory_apply_event(e, &add, log, log_arg);
		}
		if (r < 0)
			say(log, log_arg, "hot-plug: cannot update %s: %s", dev->id, why);
		else
			say(log, log_arg, "hot-plug: %s changed (driver %s)", dev->id,
			    dev->driver[0] ? dev->driver : "none");
		return r;
	}
	return -EINVAL;
}

/* ---- the hot-plug thread -------------------------------------------------- */

struct inventory_thread {
	struct engine *e;
	const struct inventory_ops *ops;
	void *ctx;
	engine_log_cb log;
	void *log_arg;
	int fd;
	int wake[2];
	pthread_t tid;
};

static int thread_event(void *arg, const struct inventory_event *ev)
{
	struct inventory_thread *t = arg;

	inventory_apply_event(t->e, ev, t->log, t->log_arg);
	return 0; /* one bad event never stops the others */
}

static void *thread_main(void *arg)
{
	struct inventory_thread *t = arg;
	struct pollfd p[2] = {
		{ .fd = t->fd, .events = POLLIN },
		{ .fd = t->wake[0], .events = POLLIN },
	};

	for (;;) {
		char why[REASON_MAX] = "";
		int r = poll(p, 2, -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say(t->log, t->log_arg,
			    "hot-plug: poll failed: %s; events are no longer followed",
			    strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & POLLNVAL) {
			say(t->log, t->log_arg,
			    "hot-plug: the monitor is closed; events are no longer followed");
			break;
		}
		r = t->ops->dispatch(t->ctx, thread_event, t, why);
		if (r < 0) {
			struct timespec pause = { 0, 100 * 1000 * 1000 };

			say(t->log, t->log_arg, "hot-plug: %s",
			    why[0] ? why : strerror(-r));
			nanosleep(&pause, NULL); /* never spin on a broken socket */
		}
	}
	return NULL;
}

int inventory_thread_start(struct engine *e, const struct inventory_ops *ops,
			   void *ctx, engine_log_cb log, void *log_arg,
			   struct inventory_thread **out, char *reason)
{
	struct inventory_thread *t;
	sigset_t all, old;
	int fd = ops->monitor_fd(ctx);
	int r;

	*out = NULL;
	if (fd < 0)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return reason_set(reason, -ENOMEM, "out of memory");
	*t = (struct inventory_thread){ e, ops, ctx, log, log_arg, fd, { -1, -1 }, 0 };
	if (pipe2(t->wake, O_CLOEXEC) < 0) {
		r = -errno;
		free(t);
		return reason_set(reason, r, "cannot create a pipe: %s", strerror(-r));
	}
	/* signals belong to the daemon's main loop, not to this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&t->tid, NULL, thread_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		close(t->wake[0]);
		close(t->wake[1]);
		free(t);
		return reason_set(reason, r, "cannot start the hot-plug thread: %s",
				  strerror(-r));
	}
	*out = t;
	return 0;
}

void inventory_thread_stop(struct inventory_thread *t)
{
	if (!t)
		return;
	while (write(t->wake[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(t->tid, NULL);
	close(t->wake[0]);
	close(t->wake[1]);
	free(t);
}

/* ---- the config back-end -------------------------------------------------- */

struct config_inv {
	const struct cluster_config *cfg;
	char host[HOST_NAME_MAX_LEN + 1]; /* "": every host */
};

static int config_open(const struct inventory_args *args, void **ctx,
		       char *reason)
{
	struct config_inv *c;

	if (!args->cfg)
		return reason_set(reason, -EINVAL, "the config inventory needs a config");
	c = calloc(1, sizeof(*c));
	if (!c)
		return reason_set(reason, -ENOMEM, "out of memory");
	c->cfg = args->cfg;
	if (args->local_host)
		snprintf(c->host, sizeof(c->host), "%s", args->local_host);
	*ctx = c;
	return 0;
}

static int config_enumerate(void *ctx, inventory_device_cb cb, void *arg,
			    char *reason)
{
	struct config_inv *c = ctx;
	int r = 0;

	for (unsigned i = 0; i < c->cfg->ndevices && r == 0; i++) {
		const struct cfg_device *d = &c->cfg->devices[i];

		if (!c->host[0] || !strcmp(d->host, c->host))
			r = cb(arg, d);
	}
	return r < 0 ? r : 0;
}

static int config_monitor_fd(void *ctx)
{
	return -1;
}

static int config_dispatch(void *ctx, inventory_event_cb cb, void *arg,
			   char *reason)
{
	return 0;
}

static void config_close(void *ctx)
{
	free(ctx);
}

const struct inventory_ops inventory_config_ops = {
	.name = "config",
	.open = config_open,
	.enumerate = config_enumerate,
	.monitor_fd = config_monitor_fd,
	.dispatch = config_dispatch,
	.close = config_close,
};
