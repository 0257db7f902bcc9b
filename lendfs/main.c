// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * main.c - the lendfs daemon: options, start-up, signals, shutdown.
 *
 *   lendfs [-c FILE] [--host NAME] [--state FILE|none] [--run-dir DIR]
 *          [--inventory config|udev] [--group NAME]
 *          [--metrics-listen ADDR:PORT] [-f] [-d] [-s] [-o OPT] MOUNTPOINT
 *   lendfs --check [-c FILE] [--state FILE|--store URL] [--run-dir DIR
 *                  [--host NAME]]
 *
 * Exit status: 0 after a clean unmount or SIGTERM/SIGINT/SIGHUP, 1 when
 * the engine or the mount cannot start, 2 for a bad command line or
 * configuration ("FILE:LINE: reason" on stderr).  --check verifies the
 * stored state against the config offline (core/check.h): 0 when clean,
 * 1 with one line per violation on stdout; with --run-dir also the sim
 * fabric's registers there against the stored lends (of --host only).
 *
 * Start-up order: configuration, engine (recovers stored lends), the
 * HTTP metrics endpoint if asked for (httpd.h; a port it cannot bind
 * exits 2, like a configuration mistake), FUSE mount, then the loop.
 * Without -f the process forks before the engine starts (its threads,
 * the HTTP endpoint's included, must live in the daemon) and the parent
 * exits only once the child has mounted, with the child's start-up status.
 *
 * Logging (log.h): with -f everything goes to stderr; without it the
 * child logs to syslog from the fork on, so the engine's recovery
 * decisions at start-up and everything after reach the system log.
 * Start-up failures ("cannot start: ...") are printed on stderr, for
 * whoever started lendfs: the parent is still waiting then.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "backend.h"
#include "check.h"
#include "cluster.h"
#include "config.h"
#include "engine.h"
#include "hashmap.h"
#include "httpd.h"
#include "inventory.h"
#include "log.h"
#include "watch.h"
#include "store_zk.h"
#include "cache.h"
#include "tmpfile.h"

#ifndef LENDFS_VERSION
#define LENDFS_VERSION "unknown"
#endif

#define SYSTEM_CONFIG "/etc/lendfs/lendfs.conf"
#define SYSTEM_STATE "/var/lib/lendfs/state.db"
#define SYSTEM_RUN_DIR "/run/lendfs"
#define TREE_CONFIG "conf/demo.ini"
#define TREE_MAX_UP 3 /* build/lendfs, build/fuse/lendfs, ... */
#define MOUNT_DEFAULTS "-odefault_permissions,fsname=lendfs,subtype=lendfs"

#define EXIT_USAGE 2

struct options {
	char *config;
	char *host;
	char *state;
	char *store;
	char *run_dir;
	char *inventory;
	char *group;
	char *metrics_listen;
	int help;
	int version;
	int check;
};

enum { KEY_HELP, KEY_VERSION };

#define OPT(t, f) { t, offsetof(struct options, f), 0 }

static const struct fuse_opt lendfs_opts[] = {
	OPT("-c %s", config),
	OPT("--config=%s", config),
	OPT("--config %s", config),
	OPT("--host=%s", host),
	OPT("--host %s", host),
	OPT("--state=%s", state),
	OPT("--state %s", state),
	OPT("--store=%s", store),
	OPT("--store %s", store),
	OPT("--run-dir=%s", run_dir),
	OPT("--run-dir %s", run_dir),
	OPT("--inventory=%s", inventory),
	OPT("--inventory %s", inventory),
	OPT("--group=%s", group),
	OPT("--group %s", group),
	OPT("--metrics-listen=%s", metrics_listen),
	OPT("--metrics-listen %s", metrics_listen),
	{ "--check", offsetof(struct options, check), 1 },
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct options *o = data;

	switch (key) {
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	default:
		return 1; /* -f, -d, -s, -o, the mount point: FUSE's */
	}
}

/* Where the defaults live: the source tree or the system. */
struct defaults {
	char config[PATH_MAX + 32];
	char state[PATH_MAX];
	char run_dir[PATH_MAX];
};

static void find_defaults(struct defaults *d)
{
	char exe[PATH_MAX], dir[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	snprintf(d->config, sizeof(d->config), "%s", SYSTEM_CONFIG);
	snprintf(d->state, sizeof(d->state), "%s", SYSTEM_STATE);
	snprintf(d->run_dir, sizeof(d->run_dir), "%s", SYSTEM_RUN_DIR);
	if (n <= 0)
		return;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0'; /* the executable's directory */
	snprintf(dir, sizeof(dir), "%s", exe);
	for (unsigned up = 0; up < TREE_MAX_UP; up++) {
		char *slash = strrchr(dir, '/');

		if (!slash || slash == dir)
			return;
		*slash = '\0';
		snprintf(probe, sizeof(probe), "%s/%s", dir, TREE_CONFIG);
		if (access(probe, R_OK) == 0) {
			snprintf(d->config, sizeof(d->config), "%s", probe);
			snprintf(d->state, sizeof(d->state),
				 "%.*s/run/state.db", PATH_MAX - 16, exe);
			snprintf(d->run_dir, sizeof(d->run_dir),
				 "%.*s/run/fabric", PATH_MAX - 16, exe);
			return;
		}
	}
}

static void usage(FILE *out, const struct defaults *d)
{
	fprintf(out,
		"usage: lendfs [options] MOUNTPOINT\n"
		"\n"
		"PCIe device lending over an NTB fabric, as a filesystem.\n"
		"\n"
		"options:\n"
		"  -c, --config=FILE        cluster configuration\n"
		"                           (default %s)\n"
		"      --host=NAME          the host this daemon runs on\n"
		"                           (default: it serves every host)\n"
		"      --state=FILE|none    lend state database, none keeps it "
		"in memory\n"
		"                           (default %s)\n"
		"      --store=URI          distributed mode: the cluster's state in\n"
		"                           ZooKeeper, zk://HOST:PORT[,...][/chroot];\n"
		"                           needs --host (see docs/STATE.md)\n"
		"      --run-dir=DIR        sim fabric files (default %s)\n"
		"      --inventory=config|udev\n"
		"                           where devices come from (default: "
		"the config's)\n"
		"      --group=NAME         group that may lend (default: the "
		"config's,\n"
		"                           lendfs); see docs/PERMISSIONS.md\n"
		"      --metrics-listen=ADDR:PORT\n"
		"                           serve GET /metrics over HTTP for "
		"Prometheus:\n"
		"                           A.B.C.D:PORT, [V6]:PORT or "
		"localhost:PORT\n"
		"                           (default: the config's "
		"metrics_listen, none)\n"
		"  -f                       stay in the foreground\n"
		"  -d                       FUSE debug output (implies -f)\n"
		"  -s                       single-threaded FUSE loop\n"
		"  -o OPT[,OPT...]          FUSE mount options (allow_other, "
		"...)\n"
		"      --check              check the stored state against the "
		"config, offline\n"
		"                           (exit 1 and one line per violation);\n"
		"                           with --run-dir also the sim fabric's\n"
		"                           registers there (of --host only)\n"
		"  -h, --help               show this help\n"
		"  -V, --version            show the version\n"
		"\n"
		"Exit status: 0 on unmount or SIGTERM, 1 if it cannot start, "
		"2 for a bad\ncommand line or configuration.\n",
		d->config, d->state, d->run_dir);
}

/* Relative paths are taken from the start directory (the daemon chdirs). */
static int absolute(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		if ((size_t)snprintf(out, len, "%s", path) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if ((size_t)snprintf(out, len, "%s/%s", cwd, path) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	return mkdir_p(dir, 0755);
}

/* ---- background start-up -------------------------------------------- */

static int ready_fd = -1;

/*
 * Fork now; the parent waits for the child's start-up status and exits
 * with it (1 if the child dies first).
 */
static int daemon_fork(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		unsigned char status = 1;

		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	lendfs_log_to_syslog(); /* stderr goes away once mounted */
	return 0;
}

/* Tell the waiting parent how start-up went; detach stdio on success. */
static void daemon_ready(int status)
{
	unsigned char s = (unsigned char)status;
	int null;

	if (ready_fd < 0)
		return;
	if (status == 0) {
		lendfs_log_fuse_to_syslog();
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			if (null > STDERR_FILENO)
				close(null);
		}
	}
	if (write(ready_fd, &s, 1) != 1)
		status = 1;
	close(ready_fd);
	ready_fd = -1;
}

/*
 * The service manager (Type=notify, contrib/lendfs.service): READY=1 once
 * the mount exists and the engine has recovered, so units ordered after
 * lendfs.service see a tree that serves; STOPPING=1 when it goes away.
 * sd_notify() does nothing without $NOTIFY_SOCKET.  Sent by the process
 * that serves (the child when lendfs forked).
 */
static void notify_ready(struct engine *e, const char *mountpoint)
{
	sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=serving %zu devices at %s",
		   (unsigned long)getpid(), engine_device_count(e), mountpoint);
}

/* ---- events --------------------------------------------------------- */

/*
 * The engine calls the watch after any visible change of a device (a
 * failed request changes last_error only).  Log state changes once each:
 * remember what was last logged per device.
 */
struct logged {
	char id[DEVICE_ID_MAX]; /* the hash key */
	enum dev_state state;
	char borrower[BORROWER_MAX + 1];
	struct logged *next;
};

struct event_log {
	struct engine *engine;
	struct lendfs_cache *cache; /* told first, before anything is logged */
	struct watches *watches;    /* then the pollers (watch.h) */
	pthread_mutex_t lock;
	struct hashmap *seen;
	struct logged *all;
};

/* Under the lock.  True when @v differs from what was logged last. */
static bool event_changed(struct event_log *el, const struct device_view *v)
{
	struct logged *l = hashmap_get(el->seen, v->id);

	/* not remembered: available and not lent (100,000 of them, mostly) */
	if (!l && v->state == DEV_AVAILABLE && !v->borrower[0])
		return false;
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l)
			return true;
		snprintf(l->id, sizeof(l->id), "%s", v->id);
		if (hashmap_put(el->seen, l->id, l) < 0) {
			free(l);
			return true;
		}
		l->next = el->all;
		el->all = l;
	} else if (l->state == v->state &&
		   strcmp(l->borrower, v->borrower) == 0) {
		return false;
	}
	l->state = v->state;
	snprintf(l->borrower, sizeof(l->borrower), "%s", v->borrower);
	return true;
}

static void log_view(struct event_log *el, const struct device_view *v)
{
	bool changed;

	pthread_mutex_lock(&el->lock);
	changed = event_changed(el, v);
	pthread_mutex_unlock(&el->lock);
	if (!changed)
		return;
	switch (v->state) {
	case DEV_LENDING:
		lendfs_log(LOG_NOTICE, "%s: lending to %s", v->id, v->borrower);
		break;
	case DEV_LENT:
		lendfs_log(LOG_NOTICE, "%s: lent to %s", v->id, v->borrower);
		break;
	case DEV_RETURNING:
		lendfs_log(LOG_NOTICE, "%s: returning from %s", v->id,
			   v->borrower);
		break;
	case DEV_FAILED:
		lendfs_log(LOG_WARNING, "%s: failed: %s", v->id, v->last_error);
		break;
	default:
		lendfs_log(LOG_NOTICE, "%s: %s", v->id, dev_state_name(v->state));
		break;
	}
}

static void log_device(struct event_log *el, const char *devid)
{
	struct device_view v;

	if (engine_device_view(el->engine, devid, &v) < 0)
		return;
	log_view(el, &v);
	device_view_release(&v);
}

struct id_list {
	char (*ids)[DEVICE_ID_MAX];
	size_t n, cap;
};

static int collect_id(void *arg, const char *devid)
{
	struct id_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *p = realloc(l->ids, cap * sizeof(*l->ids));

		if (!p)
			return -ENOMEM;
		l->ids = p;
		l->cap = cap;
	}
	snprintf(l->ids[l->n++], DEVICE_ID_MAX, "%s", devid);
	return 0;
}

/*
 * @devid NULL: anything may have changed (a lend completes this way, as
 * it changes the peers of other devices too): look at every device.  The
 * ids are collected first so no view is taken inside the engine's walk.
 * @who, the request that made the change, goes to the cache: the file it
 * wrote is not invalidated (cache.h).
 */
static void log_device_event(void *arg, const char *devid,
			     const struct engine_caller *who)
{
	struct event_log *el = arg;
	struct id_list l = { 0 };

	if (devid && !devid[0]) { /* compositions only: direct_io, no cache */
		watch_compos_changed(el->watches);
		return;
	}
	if (devid) { /* one view for the cache and the log */
		struct device_view v;
		bool exists = engine_device_view(el->engine, devid, &v) == 0;

		cache_device_changed(el->cache, devid, exists ? &v : NULL, who);
		watch_device_changed(el->watches, devid);
		if (exists) {
			log_view(el, &v);
			device_view_release(&v);
		}
		return;
	}
	cache_all_changed(el->cache, who);
	watch_all_changed(el->watches);
	engine_foreach_device(el->engine, collect_id, &l);
	for (size_t i = 0; i < l.n; i++)
		log_device(el, l.ids[i]);
	free(l.ids);
}

static void event_seed(struct event_log *el)
{
	struct id_list l = { 0 };

	/* the others would not be remembered (event_changed()) */
	engine_foreach_busy_device(el->engine, collect_id, &l);
	for (size_t i = 0; i < l.n; i++) {
		struct device_view v;

		if (engine_device_view(el->engine, l.ids[i], &v) == 0) {
			event_changed(el, &v);
			device_view_release(&v);
		}
	}
	free(l.ids);
}

/* Events were appended: pollers of `events` wake (watch.h). */
static void events_appended(void *arg)
{
	struct event_log *el = arg;

	watch_path_changed(el->watches, "/events");
}

/* Start watching @e, knowing the state it recovered (not logged again). */
static int event_log_start(struct event_log *el, struct engine *e)
{
	el->engine = e;
	el->seen = hashmap_new(64); /* devices not simply available */
	if (!el->seen)
		return -ENOMEM;
	pthread_mutex_init(&el->lock, NULL);
	event_seed(el);
	engine_set_watch(e, log_device_event, el);
	engine_set_event_watch(e, events_appended, el);
	return 0;
}

static void event_log_stop(struct event_log *el)
{
	if (!el->seen)
		return;
	engine_set_watch(el->engine, NULL, NULL);
	engine_set_event_watch(el->engine, NULL, NULL);
	while (el->all) {
		struct logged *l = el->all;

		el->all = l->next;
		free(l);
	}
	hashmap_free(el->seen);
	el->seen = NULL;
	pthread_mutex_destroy(&el->lock);
}

/* ---- main ----------------------------------------------------------- */

struct daemon {
	struct options opt;
	struct fuse_args args;
	struct fuse_cmdline_opts fopt;
	struct cluster_config *cfg;
	struct lendfs fs;
	struct event_log events;
	struct fuse *fuse;
	bool mounted;
	bool signals;
	const struct inventory_ops *inv_ops; /* udev inventory, if chosen */
	void *inv;
	struct inventory_thread *hotplug;
	struct httpd *httpd;
	struct listen_addr metrics_at; /* valid when metrics_on */
	bool metrics_on;
};

static void daemon_cleanup(struct daemon *d)
{
	if (d->signals)
		fuse_remove_signal_handlers(fuse_get_session(d->fuse));
	/* it reads the engine: gone before anything of the engine goes */
	httpd_stop(d->httpd);
	d->httpd = NULL;
	/*
	 * The engine's threads (hot-plug, the ZooKeeper session) notify
	 * the kernel through the FUSE session's descriptor until its
	 * callbacks are off: before the unmount closes it.
	 */
	inventory_thread_stop(d->hotplug);
	event_log_stop(&d->events);
	if (d->mounted)
		fuse_unmount(d->fuse);
	if (d->fuse)
		fuse_destroy(d->fuse);
	engine_free(d->fs.engine);
	if (d->inv)
		d->inv_ops->close(d->inv);
	tmpfiles_free(d->fs.tmp);
	cache_free(d->fs.cache);
	watches_free(d->fs.watches);
	config_free(d->cfg);
	free(d->opt.config);
	free(d->opt.host);
	free(d->opt.state);
	free(d->opt.store);
	free(d->opt.run_dir);
	free(d->opt.inventory);
	free(d->opt.group);
	free(d->opt.metrics_listen);
	free(d->fopt.mountpoint);
	fuse_opt_free_args(&d->args);
}

static int fail(struct daemon *d, int status)
{
	daemon_ready(status);
	daemon_cleanup(d);
	return status;
}

/*
 * Engine events (recovery decisions, reroutes, take-backs, autolend,
 * ZooKeeper) go to the log: stderr with -f, syslog once forked.
 */
static void log_engine_event(void *arg, const char *msg)
{
	lendfs_log(LOG_NOTICE, "%s", msg);
}

/*
 * With the udev inventory: open the monitor first (so no event is lost),
 * then merge the local host's real PCI devices into the config, so the
 * engine recovers their stored lends and auto-lends LENDFS_BORROWER ones.
 */
static int start_inventory(struct daemon *d)
{
	char host[HOST_NAME_MAX_LEN + 1], reason[REASON_MAX] = "";
	struct inventory_args ia = { .cfg = d->cfg };
	int r;

	if (strcmp(d->cfg->inventory, "udev") != 0)
		return 0;
	d->inv_ops = &inventory_udev_ops;
	r = inventory_local_host(d->opt.host, host, sizeof(host), reason);
	if (r == 0) {
		ia.local_host = host;
		r = d->inv_ops->open(&ia, &d->inv, reason);
	}
	if (r == 0)
		r = inventory_coldplug(d->cfg, host, d->inv_ops, d->inv,
				       log_engine_event, NULL, reason);
	if (r < 0)
		fprintf(stderr, "lendfs: cannot start: %s\n",
			reason[0] ? reason : strerror(-r));
	return r < 0 ? r : 0;
}

static int start_engine(struct daemon *d, const struct defaults *def)
{
	char state[PATH_MAX], run_dir[PATH_MAX], reason[REASON_MAX];
	struct engine_options eo = { 0 };
	const char *where = d->opt.state ? d->opt.state : def->state;
	int r;

	r = start_inventory(d);
	if (r < 0)
		return r;
	eo.cfg = d->cfg;
	eo.local_host = d->opt.host;
	eo.log = log_engine_event;
	eo.fabric = fabric_find(d->cfg->fabric);
	if (!eo.fabric) {
		fprintf(stderr, "lendfs: cannot start: unknown fabric back-end "
			"'%s'\n", d->cfg->fabric);
		return -EINVAL;
	}
	if (d->opt.store) {
		eo.store = &store_zk_ops;
		eo.coord = &coord_zk_ops;
		eo.store_where = d->opt.store;
	} else if (strcmp(where, "none") == 0) {
		eo.store = &store_memory_ops;
		eo.store_where = "none";
	} else {
		r = absolute(where, state, sizeof(state));
		if (r == 0)
			r = make_parent(state);
		if (r < 0) {
			fprintf(stderr, "lendfs: cannot start: cannot create the "
				"directory of %s: %s\n", where, strerror(-r));
			return r;
		}
		eo.store = &store_sqlite_ops;
		eo.store_where = state;
	}
	where = d->opt.run_dir ? d->opt.run_dir : def->run_dir;
	r = absolute(where, run_dir, sizeof(run_dir));
	if (r == 0)
		r = mkdir_p(run_dir, 0755);
	if (r < 0) {
		fprintf(stderr, "lendfs: cannot start: cannot create %s: %s\n",
			where, strerror(-r));
		return r;
	}
	eo.run_dir = run_dir;

	reason[0] = '\0';
	r = engine_new(&eo, &d->fs.engine, reason);
	if (r < 0) {
		d->fs.engine = NULL;
		fprintf(stderr, "lendfs: cannot start: %s\n",
			reason[0] ? reason : strerror(-r));
	}
	return r;
}

/*
 * --metrics-listen wins over [cluster] metrics_listen; neither: no
 * endpoint.  0, or EXIT_USAGE with the reason on stderr.
 */
static int check_metrics_args(struct daemon *d)
{
	const char *text = d->opt.metrics_listen;
	char why[REASON_MAX];

	if (!text) {
		if (!d->cfg->metrics_listen[0])
			return 0;
		text = d->cfg->metrics_listen;
	}
	if (listen_parse(text, &d->metrics_at, why) < 0) {
		fprintf(stderr, "lendfs: --metrics-listen: %s\n", why);
		return EXIT_USAGE;
	}
	d->metrics_on = true;
	return 0;
}

/* The HTTP endpoint (httpd.h), once the engine runs: 0 or EXIT_USAGE. */
static int start_httpd(struct daemon *d)
{
	char why[REASON_MAX] = "";
	const char *text = d->opt.metrics_listen ? d->opt.metrics_listen
						 : d->cfg->metrics_listen;

	if (!d->metrics_on)
		return 0;
	if (httpd_start(d->fs.engine, &d->metrics_at, &d->httpd, why) < 0) {
		fprintf(stderr, "lendfs: cannot start: metrics endpoint %s: "
			"%s\n", text, why);
		return EXIT_USAGE;
	}
	return 0;
}

/* lendfs --check: the store against the config, without mounting. */
static int run_check(struct daemon *d, const struct defaults *def)
{
	const char *where = d->opt.state ? d->opt.state : def->state;
	const struct store_ops *ops = &store_sqlite_ops;
	char reason[REASON_MAX] = "";
	int r;

	if (d->opt.store) {
		ops = &store_zk_ops;
		where = d->opt.store;
	} else if (strcmp(where, "none") == 0) {
		fprintf(stderr, "lendfs: --check needs a state file, not none\n");
		return EXIT_USAGE;
	}
	r = lendfs_check(d->cfg, ops, where, stdout, reason);
	if (r >= 0 && d->opt.run_dir) {
		int hw = lendfs_check_regs(d->cfg, ops, where, d->opt.run_dir,
					   d->opt.host, stdout, reason);

		r = hw < 0 ? hw : r + hw;
		if (hw < 0)
			where = d->opt.run_dir;
	}
	fflush(stdout);
	if (r < 0) {
		fprintf(stderr, "lendfs: cannot check %s: %s\n", where,
			reason[0] ? reason : strerror(-r));
		return 1;
	}
	if (r > 0)
		fprintf(stderr, "lendfs: %s: %d violation%s\n", where, r,
			r == 1 ? "" : "s");
	return r > 0 ? 1 : 0;
}

/* --store zk://...: 0, or EXIT_USAGE with the reason on stderr. */
static int check_store_args(const struct daemon *d)
{
	char hosts[ZK_HOSTS_MAX], root[ZK_ROOT_MAX], why[REASON_MAX];

	if (zk_uri_parse(d->opt.store, hosts, sizeof(hosts), root,
			 sizeof(root), why) < 0) {
		fprintf(stderr, "lendfs: --store: %s\n", why);
		return EXIT_USAGE;
	}
	if (d->opt.state) {
		fprintf(stderr, "lendfs: --store and --state exclude each other\n");
		return EXIT_USAGE;
	}
	if (!d->opt.host && !d->opt.check) {
		fprintf(stderr, "lendfs: --store zk://... needs --host NAME: "
			"one daemon per host\n");
		return EXIT_USAGE;
	}
	return 0;
}

/*
 * The command line and the configuration.  -1 to go on and mount, or
 * the exit status: --help, --version, --check, or a mistake (on stderr).
 */
static int setup_args(struct daemon *d, const struct defaults *def)
{
	char err[ERRMSG_MAX];

	if (fuse_opt_parse(&d->args, &d->opt, lendfs_opts, opt_proc) < 0)
		return EXIT_USAGE;
	if (d->opt.help) {
		usage(stdout, def);
		return 0;
	}
	if (d->opt.version) {
		printf("lendfs %s\n", LENDFS_VERSION);
		return 0;
	}
	if (fuse_parse_cmdline(&d->args, &d->fopt) < 0)
		return EXIT_USAGE;
	if (!d->fopt.mountpoint && !d->opt.check) {
		fprintf(stderr, "lendfs: no mount point given\n"
			"Try 'lendfs --help' for more information.\n");
		return EXIT_USAGE;
	}
	if (d->opt.inventory && strcmp(d->opt.inventory, "config") != 0 &&
	    strcmp(d->opt.inventory, "udev") != 0) {
		fprintf(stderr, "lendfs: --inventory: '%s' is neither config "
			"nor udev\n", d->opt.inventory);
		return EXIT_USAGE;
	}
	if (d->opt.store && check_store_args(d) != 0)
		return EXIT_USAGE;
	if (config_load(d->opt.config ? d->opt.config : def->config, &d->cfg,
			err) < 0) {
		d->cfg = NULL;
		fprintf(stderr, "lendfs: %s\n", err);
		return EXIT_USAGE;
	}
	if (d->opt.inventory)
		snprintf(d->cfg->inventory, sizeof(d->cfg->inventory), "%s",
			 d->opt.inventory);
	if (d->opt.check)
		return run_check(d, def);
	if (check_metrics_args(d) != 0)
		return EXIT_USAGE;
	return -1;
}

int main(int argc, char *argv[])
{
	struct daemon d = { .args = FUSE_ARGS_INIT(argc, argv) };
	struct defaults def;
	int r;

	clock_gettime(CLOCK_REALTIME, &d.fs.start);
	find_defaults(&def);
	r = setup_args(&d, &def);
	if (r >= 0)
		return fail(&d, r);

	if (!d.fopt.foreground && (r = daemon_fork()) < 0) {
		fprintf(stderr, "lendfs: cannot start: fork: %s\n",
			strerror(-r));
		return fail(&d, 1);
	}
	sd_notify(0, "STATUS=recovering stored lends");
	if (start_engine(&d, &def) < 0)
		return fail(&d, 1);
	r = start_httpd(&d);
	if (r != 0)
		return fail(&d, r);
	if (!d.inv) {
		/*
		 * The engine holds its own copy of every device: the config's
		 * list (664 bytes a device, 66 MB for 100,000) is not needed
		 * again.  The udev inventory keeps its list.
		 */
		free(d.cfg->devices);
		d.cfg->devices = NULL;
		d.cfg->ndevices = 0;
	}
	r = tmpfiles_new(&d.fs.tmp);
	if (r == 0)
		r = cache_new(d.fs.engine, &d.fs.cache);
	if (r == 0)
		r = watches_new(lendfs_watch_render, &d.fs, &d.fs.watches);
	if (r < 0) {
		fprintf(stderr, "lendfs: cannot start: %s\n", strerror(-r));
		return fail(&d, 1);
	}
	/* a missing group is logged; writing is then the owner's alone */
	lendfs_set_group(&d.fs, d.opt.group ? d.opt.group : d.cfg->group);

	if (fuse_opt_insert_arg(&d.args, 1, MOUNT_DEFAULTS) < 0)
		return fail(&d, 1);
	d.fuse = fuse_new(&d.args, &lendfs_ops, sizeof(lendfs_ops), &d.fs);
	if (!d.fuse)
		return fail(&d, EXIT_USAGE); /* libfuse said why */
	if (fuse_mount(d.fuse, d.fopt.mountpoint) < 0) {
		fprintf(stderr, "lendfs: cannot mount %s\n",
			d.fopt.mountpoint);
		return fail(&d, 1);
	}
	d.mounted = true;
	if (fuse_set_signal_handlers(fuse_get_session(d.fuse)) < 0)
		return fail(&d, 1);
	d.signals = true;
	d.events.cache = d.fs.cache;
	d.events.watches = d.fs.watches;
	if (event_log_start(&d.events, d.fs.engine) < 0)
		return fail(&d, 1);
	if (d.inv) {
		char reason[REASON_MAX] = "";

		r = inventory_thread_start(d.fs.engine, d.inv_ops, d.inv,
					   log_engine_event, NULL, &d.hotplug, reason);
		if (r < 0) {
			fprintf(stderr, "lendfs: cannot start: %s\n", reason);
			return fail(&d, 1);
		}
	}

	fuse_daemonize(1); /* we forked already: this only chdirs to / */
	daemon_ready(0);
	notify_ready(d.fs.engine, d.fopt.mountpoint);
	if (d.fopt.singlethread)
		r = fuse_loop(d.fuse);
	else
		r = fuse_loop_mt(d.fuse, d.fopt.clone_fd);

	/* A terminating signal is a clean shutdown, like an unmount. */
	if (r == SIGTERM || r == SIGINT || r == SIGHUP)
		r = 0;
	if (r != 0)
		lendfs_log(LOG_ERR, "FUSE loop failed: %s",
			   strerror(r < 0 ? -r : r));
	sd_notify(0, "STOPPING=1\nSTATUS=unmounting");
	daemon_cleanup(&d);
	return r == 0 ? 0 : 1;
}
