// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * spank_lend.c - the lendfs SPANK plugin's work, without Slurm
 * (spank_lend.h).  It talks to lendfs only through its mount: one write(2)
 * of "VALUE\n" to devices/ID/borrower or compositions/NAME/borrower is one
 * request, its errno the outcome and last_error the reason (SPEC
 * section 4); then one write of the lease (SPEC section 9).
 *
 * A job's record, STATE_DIR/JOBID (root only), says what the job lent:
 *   h HOST     the borrower (first line)
 *   d ID       a device lent by --lend
 *   c NAME     a composition lent by --lend-composition
 *   m ID       a member of that composition (for LENDFS_DEVICES)
 * A line is appended after each lend succeeded, so the record never names
 * something the job did not lend; a lend whose line was lost (slurmstepd
 * killed in between) still ends with its lease.
 */
#include "spank_lend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_MAX 65536	/* bytes of one job's record */
#define ATTR_MAX 4096		/* bytes read from one attribute */

static int say(char *reason, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int say(char *reason, int err, const char *fmt, ...)
{
	va_list ap;

	if (reason) {
		va_start(ap, fmt);
		vsnprintf(reason, SL_REASON_MAX, fmt, ap);
		va_end(ap);
	}
	return err;
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_close_ __attribute__((cleanup(closep)))
#define MIN_INT(a, b) ((a) < (b) ? (a) : (b))

/* [A-Za-z0-9] and the bytes of @extra; @len bytes, "." and ".." refused. */
static bool name_ok(const char *s, size_t len, size_t max, const char *extra)
{
	size_t i;

	if (len == 0 || len > max)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c && strchr(extra, c))))
			return false;
	}
	return true;
}

static bool id_ok(const char *s, size_t len)
{
	return name_ok(s, len, SL_ID_MAX, ":._-");
}

static bool host_ok(const char *s, size_t len)
{
	return name_ok(s, len, SL_HOST_MAX, ":._-/");
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	unsigned long v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || n > 10)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
}

static int conf_map(struct sl_conf *conf, const char *v, char *reason)
{
	const char *eq = strchr(v, '=');
	struct sl_map *m;

	if (conf->nmaps >= SL_MAPS_MAX)
		return say(reason, -E2BIG, "more than %d map= arguments", SL_MAPS_MAX);
	if (!eq || !host_ok(v, (size_t)(eq - v)) || !host_ok(eq + 1, strlen(eq + 1)))
		return say(reason, -EINVAL, "map=%s: expected map=NODE=HOST", v);
	m = &conf->maps[conf->nmaps++];
	memcpy(m->node, v, (size_t)(eq - v));
	m->node[eq - v] = '\0';
	snprintf(m->host, sizeof(m->host), "%s", eq + 1);
	return 0;
}

static int conf_path(char *dst, const char *key, const char *v, char *reason)
{
	if (v[0] != '/' || strlen(v) >= SL_PATH_MAX)
		return say(reason, -EINVAL, "%s=%s: an absolute path of at most %d bytes",
			   key, v, SL_PATH_MAX - 1);
	snprintf(dst, SL_PATH_MAX, "%s", v);
	return 0;
}

int sl_conf_parse(struct sl_conf *conf, int argc, char **argv, char *reason)
{
	int i, err;

	memset(conf, 0, sizeof(*conf));
	conf->grace = SL_GRACE_DEFAULT;
	snprintf(conf->state_dir, sizeof(conf->state_dir), "%s", SL_STATE_DEFAULT);
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "mount=", 6))
			err = conf_path(conf->mount, "mount", a + 6, reason);
		else if (!strncmp(a, "state=", 6))
			err = conf_path(conf->state_dir, "state", a + 6, reason);
		else if (!strncmp(a, "map=", 4))
			err = conf_map(conf, a + 4, reason);
		else if (!strncmp(a, "grace=", 6)) {
			err = parse_uint(a + 6, SL_GRACE_MAX, &conf->grace);
			if (err)
				say(reason, err, "grace=%s: seconds, 0 to %d", a + 6,
				    SL_GRACE_MAX);
		} else
			err = say(reason, -EINVAL, "unknown argument '%s'", a);
		if (err)
			return err;
	}
	if (!conf->mount[0])
		return say(reason, -EINVAL, "no mount=PATH argument");
	return 0;
}

int sl_parse_ids(struct sl_request *req, const char *value, char *reason)
{
	size_t len = strnlen(value, SL_OPT_MAX + 1), start = 0, i, n;
	int nids = 0, j;

	if (len > SL_OPT_MAX)
		return say(reason, -E2BIG, "--lend: more than %d bytes", SL_OPT_MAX);
	for (i = 0; i <= len; i++) {
		if (i < len && value[i] != ',')
			continue;
		n = i - start;
		if (!id_ok(value + start, n))
			return say(reason, -EINVAL, "--lend: '%.*s' is not a device ID",
				   (int)MIN_INT(n, 80), value + start);
		if (req->nids + nids >= SL_IDS_MAX)
			return say(reason, -E2BIG, "--lend: more than %d devices",
				   SL_IDS_MAX);
		memcpy(req->ids[req->nids + nids], value + start, n);
		req->ids[req->nids + nids][n] = '\0';
		for (j = 0; j < req->nids + nids; j++)
			if (!strcmp(req->ids[j], req->ids[req->nids + nids]))
				return say(reason, -EINVAL, "--lend: %s given twice",
					   req->ids[j]);
		nids++;
		start = i + 1;
	}
	req->nids += nids;
	return 0;
}

int sl_parse_composition(struct sl_request *req, const char *value, char *reason)
{
	size_t len = strnlen(value, SL_NAME_MAX + 1);

	if (!name_ok(value, len, SL_NAME_MAX, "_.-"))
		return say(reason, -EINVAL,
			   "--lend-composition: '%.*s' is not a composition name "
			   "([A-Za-z0-9_.-], 1 to %d bytes)", 80, value, SL_NAME_MAX);
	memcpy(req->composition, value, len + 1);
	return 0;
}

int sl_host_of(const struct sl_conf *conf, const char *node, char *host,
	       size_t size, char *reason)
{
	const char *h = node;
	int i;

	for (i = 0; i < conf->nmaps; i++)
		if (!strcmp(conf->maps[i].node, node))
			h = conf->maps[i].host;
	if (!host_ok(h, strnlen(h, SL_HOST_MAX + 1)) || strlen(h) >= size)
		return say(reason, -EINVAL, "'%.80s' is not a lendfs host name", h);
	snprintf(host, size, "%s", h);
	return 0;
}

unsigned sl_lease_seconds(const struct sl_conf *conf, uint32_t limit_min)
{
	uint64_t s;

	if (limit_min >= 0xfffffffeu)	/* INFINITE, NO_VAL */
		return 0;
	s = (uint64_t)limit_min * 60 + conf->grace;
	return s > SL_LEASE_MAX ? SL_LEASE_MAX : (unsigned)s;
}

/* One write(2) of "VALUE\n" to MOUNT/REL: the lendfs request. */
static int attr_write(const struct sl_conf *conf, const char *rel, const char *value)
{
	char path[SL_PATH_MAX * 2], buf[ATTR_MAX];
	_cleanup_close_ int fd = -1;
	int n = snprintf(buf, sizeof(buf), "%s\n", value);
	ssize_t w;

	snprintf(path, sizeof(path), "%s/%s", conf->mount, rel);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	w = write(fd, buf, (size_t)n);
	if (w < 0)
		return -errno;
	return w == n ? 0 : -EIO;
}

/* MOUNT/REL's content, without its last newline, into @buf. */
static int attr_read(const struct sl_conf *conf, const char *rel, char *buf, size_t size)
{
	char path[SL_PATH_MAX * 2];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", conf->mount, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return 0;
}

/* 0 when MOUNT/REL exists, or -errno. */
static int access_rel(const struct sl_conf *conf, const char *rel)
{
	char path[SL_PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", conf->mount, rel);
	return access(path, F_OK) ? -errno : 0;
}

/* "KIND/NAME: " + last_error (or strerror) for a failed request. */
static int lend_failed(const struct sl_conf *conf, const char *kind, const char *name,
		       const char *what, int err, char *reason)
{
	char rel[SL_PATH_MAX], last[ATTR_MAX] = "";

	snprintf(rel, sizeof(rel), "%s/%s/last_error", kind, name);
	if (attr_read(conf, rel, last, sizeof(last)) < 0 || !last[0])
		snprintf(last, sizeof(last), "%s", strerror(-err));
	return say(reason, err, "cannot %s %s: %s", what, name, last);
}

/* Lend KIND/NAME (devices/ID or compositions/NAME) to @host, then its lease. */
static int lend_one(const struct sl_conf *conf, const char *kind, const char *name,
		    const char *host, unsigned lease, char *reason)
{
	char rel[SL_PATH_MAX], cur[ATTR_MAX], num[16];
	int err;

	snprintf(rel, sizeof(rel), "%s/%s/borrower", kind, name);
	err = attr_read(conf, rel, cur, sizeof(cur));
	if (err == -ENOENT)
		return say(reason, err, "cannot lend %s: no such %s on %s", name,
			   kind[0] == 'd' ? "device" : "composition", conf->mount);
	if (err)
		return say(reason, err, "cannot lend %s: %s: %s", name, rel, strerror(-err));
	if (!strcmp(cur, host))	/* lendfs would take it as a no-op */
		return say(reason, -EBUSY, "cannot lend %s: EBUSY: already lent to %s "
			   "(not by this job)", name, host);
	err = attr_write(conf, rel, host);
	if (err)
		return lend_failed(conf, kind, name, "lend", err, reason);
	snprintf(rel, sizeof(rel), "%s/%s/lease", kind, name);
	if (!lease || (kind[0] == 'c' && access_rel(conf, rel) == -ENOENT))
		return 0;
	snprintf(num, sizeof(num), "%u", lease);
	err = attr_write(conf, rel, num);
	if (!err)
		return 0;
	lend_failed(conf, kind, name, "set the lease of", err, reason);
	snprintf(rel, sizeof(rel), "%s/%s/borrower", kind, name);
	attr_write(conf, rel, "");
	return err;
}

static void record_path(const struct sl_conf *conf, uint32_t job, char *path, size_t size)
{
	snprintf(path, size, "%s/%u", conf->state_dir, job);
}

/* Append "TAG VALUE\n" to job @job's record (created 0600 on first use). */
static int record_add(const struct sl_conf *conf, uint32_t job, char tag, const char *value)
{
	char path[SL_PATH_MAX + 16], line[ATTR_MAX];
	_cleanup_close_ int fd = -1;
	int n = snprintf(line, sizeof(line), "%c %s\n", tag, value);

	if (mkdir(conf->state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	record_path(conf, job, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (n < 0 || (size_t)n >= sizeof(line))
		return -E2BIG;
	return write(fd, line, (size_t)n) == n ? 0 : -EIO;
}

/* Job @job's record into @buf (NUL-terminated); "" when it has none. */
static int record_read(const struct sl_conf *conf, uint32_t job, char *buf, size_t size)
{
	char path[SL_PATH_MAX + 16];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	buf[0] = '\0';
	record_path(conf, job, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* A composition's members, as "m ID" lines of the record. */
static int record_members(const struct sl_conf *conf, uint32_t job, const char *name)
{
	char rel[SL_PATH_MAX], list[ATTR_MAX], *line, *save = NULL;
	int err;

	snprintf(rel, sizeof(rel), "compositions/%s/devices", name);
	err = attr_read(conf, rel, list, sizeof(list));
	for (line = strtok_r(list, "\n", &save); !err && line;
	     line = strtok_r(NULL, "\n", &save))
		if (id_ok(line, strlen(line)))
			err = record_add(conf, job, 'm', line);
	return err;
}

int sl_lend_job(const struct sl_conf *conf, uint32_t job, const char *host,
		const struct sl_request *req, unsigned lease, char *reason)
{
	int i, err = 0;

	sl_return_job(conf, job, NULL);	/* a prolog run again: start afresh */
	err = record_add(conf, job, 'h', host);
	if (err)
		return say(reason, err, "cannot write the record of job %u in %s: %s",
			   job, conf->state_dir, strerror(-err));
	for (i = 0; !err && i < req->nids; i++) {
		err = lend_one(conf, "devices", req->ids[i], host, lease, reason);
		if (!err)
			err = record_add(conf, job, 'd', req->ids[i]);
	}
	if (!err && req->composition[0]) {
		err = lend_one(conf, "compositions", req->composition, host, lease,
			       reason);
		if (!err)
			err = record_add(conf, job, 'c', req->composition);
		if (!err)
			err = record_members(conf, job, req->composition);
	}
	if (err)
		sl_return_job(conf, job, NULL);
	return err;
}

/* Return KIND/NAME if it is still lent to @host (not re-lent since). */
static int return_one(const struct sl_conf *conf, const char *kind, const char *name,
		      const char *host, char *reason)
{
	char rel[SL_PATH_MAX], cur[ATTR_MAX];
	int err;

	snprintf(rel, sizeof(rel), "%s/%s/borrower", kind, name);
	err = attr_read(conf, rel, cur, sizeof(cur));
	if (err == -ENOENT || (!err && strcmp(cur, host)))
		return 0;	/* gone, returned, or lent elsewhere since */
	if (!err)
		err = attr_write(conf, rel, "");
	if (err)
		return lend_failed(conf, kind, name, "return", err, reason);
	return 0;
}

int sl_return_job(const struct sl_conf *conf, uint32_t job, char *reason)
{
	char rec[RECORD_MAX], host[SL_HOST_MAX + 1] = "", *line, *save = NULL;
	char path[SL_PATH_MAX + 16];
	int err, first = 0;

	err = record_read(conf, job, rec, sizeof(rec));
	if (err)
		return say(reason, err, "cannot read the record of job %u: %s", job,
			   strerror(-err));
	for (line = strtok_r(rec, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *v = line + 2;

		if (strlen(line) < 3 || line[1] != ' ')
			continue;
		if (line[0] == 'h' && host_ok(v, strlen(v)))
			snprintf(host, sizeof(host), "%s", v);
		else if (line[0] == 'd' && host[0] && id_ok(v, strlen(v)))
			err = return_one(conf, "devices", v, host, first ? NULL : reason);
		else if (line[0] == 'c' && host[0] && id_ok(v, strlen(v)))
			err = return_one(conf, "compositions", v, host,
					 first ? NULL : reason);
		if (err && !first)
			first = err;
		err = 0;
	}
	record_path(conf, job, path, sizeof(path));
	if (!first && unlink(path) < 0 && errno != ENOENT)
		first = say(reason, -errno, "cannot remove %s: %s", path, strerror(errno));
	return first;
}

int sl_held_devices(const struct sl_conf *conf, uint32_t job, char *buf,
		    size_t size, char *reason)
{
	char rec[RECORD_MAX], *line, *save = NULL;
	size_t used = 0;
	int err = record_read(conf, job, rec, sizeof(rec));

	if (err)
		return say(reason, err, "cannot read the record of job %u: %s", job,
			   strerror(-err));
	buf[0] = '\0';
	for (line = strtok_r(rec, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);

		if (n < 3 || line[1] != ' ' || (line[0] != 'd' && line[0] != 'm') ||
		    !id_ok(line + 2, n - 2))
			continue;
		if (used + n - 2 + 2 > size)
			return say(reason, -E2BIG, "LENDFS_DEVICES: more than %zu bytes",
				   size - 1);
		used += (size_t)sprintf(buf + used, "%s%s", used ? "," : "", line + 2);
	}
	return 0;
}
