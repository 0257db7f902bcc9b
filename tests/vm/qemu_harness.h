/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qemu_harness.h - start a throw-away QEMU for the QMP / VM tests.
 *
 *   qemu-system-x86_64 -accel tcg -machine M -m MEM -nodefaults
 *       -display none -qmp unix:DIR/a,server=on,wait=off
 *       -qmp unix:DIR/b,server=on,wait=off [EXTRA...]
 *
 * in a mktemp directory under /tmp (socket paths must stay short).
 * Socket "a" is for the code under test; socket "b" is the test's own,
 * driven by the small blocking client below, which shares no code with
 * core/qmp.c.  qemu_stop() kills QEMU (SIGKILL) and removes the directory;
 * tests call it from their teardown so nothing outlives a failed test.
 *
 * Skips (docs/TESTING.md, "Skips"): a test skips only when
 * qemu-system-x86_64 is not on PATH (NEED_QEMU()).  Every test starts its
 * own QEMU; one that exits or makes no QMP socket within
 * qemu_start_ms() fails that test, with the reason and QEMU's log in
 * qm->error.  $QEMU names another binary (the harness's own tests).
 *
 * Static inline so that each test file can include it and use a subset.
 */
#ifndef LENDFS_TESTS_QEMU_HARNESS_H
#define LENDFS_TESTS_QEMU_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define QEMU_BIN "qemu-system-x86_64"
#define QEMU_START_S 30	   /* QEMU normally needs 0.1-3 s; x2 under ASan */
#define QEMU_B_TIMEOUT_S 5 /* every read on socket b */
#define QEMU_ERROR_MAX 4096 /* the reason and the end of QEMU's log */

struct qemu {
	pid_t pid;
	char dir[64];
	char sock_a[96];
	char sock_b[96];
	char log[96];
	int fd_b;
	FILE *in_b;
	char error[QEMU_ERROR_MAX]; /* why qemu_start() failed, and its log */
};

/* The binary: $QEMU if set (the harness's own tests), else QEMU_BIN. */
static inline const char *qemu_bin(void)
{
	const char *q = getenv("QEMU");

	return q && *q ? q : QEMU_BIN;
}

/*
 * How long QEMU may take to make its QMP sockets: QEMU_START_S, or
 * $LENDFS_QEMU_START_S seconds; twice that under AddressSanitizer (the
 * rest of the test then runs slower beside it).
 */
static inline double qemu_start_ms(void)
{
	const char *env = getenv("LENDFS_QEMU_START_S");
	double s = env && atof(env) > 0 ? atof(env) : QEMU_START_S;

#if defined(__SANITIZE_ADDRESS__)
	s *= 2;
#endif
	return s * 1000;
}

/*
 * Is the binary installed: a name with a slash that is executable, or one
 * found executable in $PATH (what execvp() will run)?  If not, @why says so.
 */
static inline bool qemu_installed(char *why, size_t len)
{
	const char *bin = qemu_bin(), *path = getenv("PATH");
	char dir[4096];

	if (strchr(bin, '/')) {
		if (access(bin, X_OK) == 0)
			return true;
		snprintf(why, len, "%s is not installed: %s", bin, strerror(errno));
		return false;
	}
	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(dir, sizeof(dir), "%.*s/%s", (int)n, n ? path : ".", bin);
		if (access(dir, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	snprintf(why, len, "%s is not installed (not in PATH; Debian package "
		 "qemu-system-x86)", bin);
	return false;
}

/*
 * NEED_QEMU() at the top of a cmocka test: skip, saying why, only if the
 * binary is not installed.  A QEMU that is there but does not start is
 * the test's failure (qemu_start() < 0), never a skip.
 */
#define NEED_QEMU()                                                           \
	do {                                                                  \
		char why_[512];                                               \
		if (!qemu_installed(why_, sizeof(why_))) {                    \
			fprintf(stderr, "SKIP: %s\n", why_);                  \
			skip();                                               \
		}                                                             \
	} while (0)

static inline void qemu_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static inline double qemu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int qemu_unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { QEMU_B_TIMEOUT_S, 0 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Next non-event message on socket b (events are skipped); NULL on EOF. */
static inline struct json_object *qemu_b_read(struct qemu *qm)
{
	char *line = NULL;
	size_t cap = 0;

	for (;;) {
		struct json_object *o, *ev;

		if (getline(&line, &cap, qm->in_b) < 0) {
			free(line);
			return NULL;
		}
		o = json_tokener_parse(line);
		if (!o)
			continue;
		if (json_object_object_get_ex(o, "event", &ev)) {
			json_object_put(o);
			continue;
		}
		free(line);
		return o;
	}
}

/*
 * Run a QMP command on socket b; @json is the whole message, printf-style.
 * Returns the full reply ({"return": ...} or {"error": ...}), or NULL.
 */
static inline struct json_object *qemu_b_cmd(struct qemu *qm, const char *json,
					     ...) __attribute__((format(printf, 2, 3)));
static inline struct json_object *qemu_b_cmd(struct qemu *qm, const char *json,
					     ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, json);
	n = vsnprintf(buf, sizeof(buf) - 1, json, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) - 1)
		return NULL;
	buf[n++] = '\n';
	if (write(qm->fd_b, buf, (size_t)n) != n)
		return NULL;
	return qemu_b_read(qm);
}

/* The "return" member of a reply, or NULL (error or no reply). */
static inline struct json_object *qemu_b_return(struct json_object *reply)
{
	struct json_object *ret;

	if (reply && json_object_object_get_ex(reply, "return", &ret))
		return ret;
	return NULL;
}

/* HMP command on socket b; its output (malloc'd), "" on error. */
static inline char *qemu_b_hmp(struct qemu *qm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline char *qemu_b_hmp(struct qemu *qm, const char *fmt, ...)
{
	char cmd[512];
	struct json_object *r, *ret, *msg;
	char *out;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	msg = json_object_new_object();
	json_object_object_add(msg, "execute",
			       json_object_new_string("human-monitor-command"));
	ret = json_object_new_object();
	json_object_object_add(ret, "command-line", json_object_new_string(cmd));
	json_object_object_add(msg, "arguments", ret);
	r = qemu_b_cmd(qm, "%s", json_object_to_json_string_ext(msg,
								 JSON_C_TO_STRING_PLAIN));
	json_object_put(msg);
	ret = qemu_b_return(r);
	out = strdup(ret ? json_object_get_string(ret) : "");
	json_object_put(r);
	return out;
}

/* Is the device with this qdev id in query-pci (searching bridges)? */
static inline struct json_object *qemu_pci_find(struct json_object *devices,
						const char *qdev)
{
	size_t n = devices ? json_object_array_length(devices) : 0;

	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devices, i);
		struct json_object *id, *br, *sub, *hit;

		if (json_object_object_get_ex(d, "qdev_id", &id) &&
		    strcmp(json_object_get_string(id), qdev) == 0)
			return d;
		if (json_object_object_get_ex(d, "pci_bridge", &br) &&
		    json_object_object_get_ex(br, "devices", &sub) &&
		    (hit = qemu_pci_find(sub, qdev)))
			return hit;
	}
	return NULL;
}

/*
 * query-pci on socket b: a copy of the device's entry (caller puts it),
 * or NULL if the guest does not have it.
 */
static inline struct json_object *qemu_b_pci_device(struct qemu *qm,
						    const char *qdev)
{
	struct json_object *r = qemu_b_cmd(qm, "{\"execute\":\"query-pci\"}");
	struct json_object *ret = qemu_b_return(r), *hit = NULL;

	for (size_t i = 0; ret && i < json_object_array_length(ret) && !hit; i++) {
		struct json_object *devs;

		if (json_object_object_get_ex(json_object_array_get_idx(ret, i),
					      "devices", &devs))
			hit = qemu_pci_find(devs, qdev);
	}
	if (hit)
		hit = json_object_get(hit);
	json_object_put(r);
	return hit;
}

/* Size and address of BAR @bar in a query-pci device entry (-1: none). */
static inline int64_t qemu_pci_bar(struct json_object *dev, int bar,
				   int64_t *addr)
{
	struct json_object *regions, *v;

	if (!json_object_object_get_ex(dev, "regions", &regions))
		return -1;
	for (size_t i = 0; i < json_object_array_length(regions); i++) {
		struct json_object *r = json_object_array_get_idx(regions, i);

		if (json_object_object_get_ex(r, "bar", &v) &&
		    json_object_get_int(v) == bar) {
			if (addr && json_object_object_get_ex(r, "address", &v))
				*addr = json_object_get_int64(v);
			json_object_object_get_ex(r, "size", &v);
			return json_object_get_int64(v);
		}
	}
	return -1;
}

static inline int qemu_pci_int(struct json_object *dev, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(dev, key, &v) ? json_object_get_int(v) : -1;
}

/* Does /objects have a child named @id (a memory backend)? */
static inline bool qemu_b_has_object(struct qemu *qm, const char *id)
{
	struct json_object *r = qemu_b_cmd(qm,
		"{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/objects\"}}");
	struct json_object *ret = qemu_b_return(r), *name;
	bool found = false;

	for (size_t i = 0; ret && i < json_object_array_length(ret); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(ret, i),
					      "name", &name) &&
		    strcmp(json_object_get_string(name), id) == 0)
			found = true;
	json_object_put(r);
	return found;
}

/* Remove a flat directory (the test's files and sockets) and itself. */
static inline int qemu_rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(dir) < 0 ? -errno : 0;
}

static inline void qemu_stop(struct qemu *qm)
{

	if (qm->in_b)
		fclose(qm->in_b); /* a dup of fd_b */
	if (qm->fd_b >= 0)
		close(qm->fd_b);
	qm->in_b = NULL;
	qm->fd_b = -1;
	if (qm->pid > 0) {
		kill(qm->pid, SIGKILL);
		waitpid(qm->pid, NULL, 0);
		qm->pid = 0;
	}
	if (qm->dir[0]) {
		if (qemu_rm_dir(qm->dir) < 0)
			fprintf(stderr, "cannot remove %s\n", qm->dir);
		qm->dir[0] = '\0';
	}
}

/* Kill QEMU now (SIGKILL) but keep the directory; reaps the process. */
static inline void qemu_kill(struct qemu *qm)
{
	if (qm->pid > 0) {
		kill(qm->pid, SIGKILL);
		waitpid(qm->pid, NULL, 0);
		qm->pid = 0;
	}
}

/*
 * qemu_start() failed: qm->error = the reason (printf-style), then the end
 * of QEMU's log (its stdout and stderr); QEMU is killed and the directory
 * removed.  Returns -1.
 */
static inline int qemu_fail(struct qemu *qm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int qemu_fail(struct qemu *qm, const char *fmt, ...)
{
	size_t n, room;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(qm->error, sizeof(qm->error), fmt, ap);
	va_end(ap);
	qemu_kill(qm);
	n = strlen(qm->error);
	f = qm->log[0] ? fopen(qm->log, "r") : NULL;
	if (f) {
		long size;

		n += snprintf(qm->error + n, sizeof(qm->error) - n,
			      "\n---- %s (stdout and stderr of %s) ----\n", qm->log,
			      qemu_bin());
		if (n > sizeof(qm->error) - 1) /* truncated */
			n = sizeof(qm->error) - 1;
		room = sizeof(qm->error) - 1 - n;
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		if (size > (long)room) /* the end says why */
			fseek(f, size - (long)room, SEEK_SET);
		else
			rewind(f);
		n += fread(qm->error + n, 1, room, f);
		qm->error[n] = '\0';
		if (size == 0 && room > 0)
			snprintf(qm->error + n, sizeof(qm->error) - n, "(empty)\n");
		fclose(f);
	}
	qemu_stop(qm);
	return -1;
}

/* Fork and exec QEMU, its stdout and stderr to qm->log. */
static inline int qemu_spawn(struct qemu *qm, const char *const *argv)
{
	int logfd = open(qm->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (logfd < 0)
		return qemu_fail(qm, "open %s: %s", qm->log, strerror(errno));
	qm->pid = fork();
	if (qm->pid < 0) {
		qm->pid = 0;
		close(logfd);
		return qemu_fail(qm, "fork: %s", strerror(errno));
	}
	if (qm->pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execvp(argv[0], (char **)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	return 0;
}

/*
 * Wait until both sockets exist, and b takes a connection (the socket
 * file appears at bind(), a moment before listen()): 0, or -1 through
 * qemu_fail() if QEMU exits or the time is up.  QEMU sets the monitors
 * up in command-line order, so once b accepts, a does too.
 */
static inline int qemu_wait_sockets(struct qemu *qm, double t0, double limit)
{
	struct stat st;
	int status;

	for (;;) {
		if (waitpid(qm->pid, &status, WNOHANG) == qm->pid) {
			qm->pid = 0;
			if (WIFSIGNALED(status))
				return qemu_fail(qm, "%s was killed by signal %d after %.1f s",
						 qemu_bin(), WTERMSIG(status),
						 (qemu_now_ms() - t0) / 1000);
			return qemu_fail(qm, "%s exited with status %d after %.1f s, "
					 "before its qmp sockets were up", qemu_bin(),
					 WEXITSTATUS(status), (qemu_now_ms() - t0) / 1000);
		}
		if (qemu_now_ms() - t0 > limit)
			return qemu_fail(qm, "%s made no qmp sockets (%s) within %.0f s; "
					 "killed", qemu_bin(), stat(qm->sock_a, &st) ?
					 qm->sock_a : qm->sock_b, limit / 1000);
		if (stat(qm->sock_a, &st) == 0 && stat(qm->sock_b, &st) == 0) {
			qm->fd_b = qemu_unix_connect(qm->sock_b);
			if (qm->fd_b >= 0)
				return 0;
			if (qm->fd_b != -ECONNREFUSED)
				return qemu_fail(qm, "connect %s: %s", qm->sock_b,
						 strerror(-qm->fd_b));
		}
		qemu_sleep_ms(10);
	}
}

/*
 * Start QEMU.  @machine "pc" or "q35", @mem "512", "3G"; @extra: NULL
 * terminated extra arguments (may be NULL).  0, or -1 with qm->error set
 * (the reason and QEMU's log): the caller's test fails with it.
 */
static inline int qemu_start(struct qemu *qm, const char *machine,
			     const char *mem, const char *const *extra)
{
	char qa[128], qb[128];
	const char *argv[64];
	unsigned argc = 0;
	struct json_object *greeting, *caps;
	double t0;

	memset(qm, 0, sizeof(*qm));
	qm->fd_b = -1;
	snprintf(qm->dir, sizeof(qm->dir), "/tmp/lendfs-vm-XXXXXX");
	if (!mkdtemp(qm->dir)) {
		qm->dir[0] = '\0';
		return qemu_fail(qm, "mkdtemp: %s", strerror(errno));
	}
	snprintf(qm->sock_a, sizeof(qm->sock_a), "%s/a", qm->dir);
	snprintf(qm->sock_b, sizeof(qm->sock_b), "%s/b", qm->dir);
	snprintf(qm->log, sizeof(qm->log), "%s/qemu.log", qm->dir);
	snprintf(qa, sizeof(qa), "unix:%s,server=on,wait=off", qm->sock_a);
	snprintf(qb, sizeof(qb), "unix:%s,server=on,wait=off", qm->sock_b);

	argv[argc++] = qemu_bin();
	argv[argc++] = "-accel";
	argv[argc++] = "tcg"; /* not KVM: see "-accel tcg" in qemu-guest.sh */
	argv[argc++] = "-machine";
	argv[argc++] = machine;
	argv[argc++] = "-m";
	argv[argc++] = mem;
	argv[argc++] = "-nodefaults";
	argv[argc++] = "-display";
	argv[argc++] = "none";
	argv[argc++] = "-qmp";
	argv[argc++] = qa;
	argv[argc++] = "-qmp";
	argv[argc++] = qb;
	for (unsigned i = 0; extra && extra[i] && argc < 62; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	t0 = qemu_now_ms();
	if (qemu_spawn(qm, argv) < 0 || qemu_wait_sockets(qm, t0, qemu_start_ms()) < 0)
		return -1;
	qm->in_b = fdopen(dup(qm->fd_b), "r");
	greeting = qm->in_b ? qemu_b_read(qm) : NULL;
	caps = greeting ? qemu_b_cmd(qm, "{\"execute\":\"qmp_capabilities\"}") : NULL;
	json_object_put(greeting);
	if (!qemu_b_return(caps)) {
		json_object_put(caps);
		return qemu_fail(qm, "no qmp greeting on %s within %d s", qm->sock_b,
				 QEMU_B_TIMEOUT_S);
	}
	json_object_put(caps);
	return 0;
}

/*
 * Play the guest's ACPI eject on -machine pc for the device in @slot of
 * pci.0 (bsel 0): PCI hot-plug register block at 0xae00, B0EJ at 0xae08.
 */
static inline void qemu_b_acpi_eject_pc(struct qemu *qm, int slot)
{
	free(qemu_b_hmp(qm, "o /w 0xae10 0"));
	free(qemu_b_hmp(qm, "o /w 0xae08 0x%x", 1u << slot));
}

/*
 * Play the guest's OS on -machine pc: read which slots of pci.0 QEMU asks
 * to eject (the "down" bitmap at 0xae04) and eject each (0xae08 takes
 * one slot per write).  Returns that bitmap.
 */
static inline unsigned qemu_b_acpi_eject_pending_pc(struct qemu *qm)
{
	char *text;
	const char *eq;
	unsigned down = 0;

	free(qemu_b_hmp(qm, "o /w 0xae10 0"));
	text = qemu_b_hmp(qm, "i /w 0xae04"); /* "port 0xae04 = 0x00000004" */
	eq = text ? strchr(text, '=') : NULL;
	if (eq)
		down = (unsigned)strtoul(eq + 1, NULL, 16);
	free(text);
	for (int slot = 0; slot < 32; slot++)
		if (down & (1u << slot))
			qemu_b_acpi_eject_pc(qm, slot);
	return down;
}

/* q35 (ICH9): register block 0xcc0; select the bus (bsel), then eject. */
static inline void qemu_b_acpi_eject_q35(struct qemu *qm, int bsel, int slot)
{
	free(qemu_b_hmp(qm, "o /w 0xcd0 %d", bsel));
	free(qemu_b_hmp(qm, "o /w 0xcc8 0x%x", 1u << slot));
}

/*
 * Play the guest's BIOS: program BAR @bar (64-bit memory BAR) of the
 * device at bus 0 / @slot with @addr and enable memory decoding, through
 * the legacy config ports 0xcf8/0xcfc.
 */
static inline void qemu_b_program_bar64(struct qemu *qm, int slot, int bar,
					uint64_t addr)
{
	unsigned base = 0x80000000u | ((unsigned)slot << 11);
	unsigned reg = 0x10 + 4 * (unsigned)bar;

	free(qemu_b_hmp(qm, "o /w 0xcf8 0x%x", base | reg));
	free(qemu_b_hmp(qm, "o /w 0xcfc 0x%x", (unsigned)(addr & 0xffffffffu)));
	free(qemu_b_hmp(qm, "o /w 0xcf8 0x%x", base | (reg + 4)));
	free(qemu_b_hmp(qm, "o /w 0xcfc 0x%x", (unsigned)(addr >> 32)));
	free(qemu_b_hmp(qm, "o /w 0xcf8 0x%x", base | 0x04));
	free(qemu_b_hmp(qm, "o /h 0xcfc 0x2")); /* command: memory space */
}

#endif
