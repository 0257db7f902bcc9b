// SPDX-License-Identifier: LGPL-2.1-or-later
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int reason_set(char *reason, int err, const char *fmt, ...)
{
	if (reason) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(reason, REASON_MAX, fmt, ap);
		va_end(ap);
	}
	return err;
}

static const struct {
	int num;
	const char *name;
} errno_names[] = {
	{ EPERM, "EPERM" },	     { ENOENT, "ENOENT" },
	{ EIO, "EIO" },		     { ENXIO, "ENXIO" },
	{ E2BIG, "E2BIG" },	     { EBADF, "EBADF" },
	{ EAGAIN, "EAGAIN" },	     { ENOMEM, "ENOMEM" },
	{ EACCES, "EACCES" },	     { EFAULT, "EFAULT" },
	{ EBUSY, "EBUSY" },	     { EEXIST, "EEXIST" },
	{ EXDEV, "EXDEV" },	     { ENODEV, "ENODEV" },
	{ ENOTDIR, "ENOTDIR" },	     { EISDIR, "EISDIR" },
	{ EINVAL, "EINVAL" },	     { ENFILE, "ENFILE" },
	{ EMFILE, "EMFILE" },	     { ENOTTY, "ENOTTY" },
	{ EFBIG, "EFBIG" },	     { ENOSPC, "ENOSPC" },
	{ EROFS, "EROFS" },	     { ERANGE, "ERANGE" },
	{ ENAMETOOLONG, "ENAMETOOLONG" }, { ENOSYS, "ENOSYS" },
	{ ENOTEMPTY, "ENOTEMPTY" },  { ENODATA, "ENODATA" },
	{ EPROTO, "EPROTO" },	     { EBADMSG, "EBADMSG" },
	{ EOVERFLOW, "EOVERFLOW" },  { ENOTSUP, "ENOTSUP" },
	{ ECONNREFUSED, "ECONNREFUSED" }, { ECONNRESET, "ECONNRESET" },
	{ ENOTCONN, "ENOTCONN" },    { ETIMEDOUT, "ETIMEDOUT" },
	{ EHOSTDOWN, "EHOSTDOWN" },  { EHOSTUNREACH, "EHOSTUNREACH" },
	{ EALREADY, "EALREADY" },    { EINPROGRESS, "EINPROGRESS" },
	{ ECANCELED, "ECANCELED" },  { ESTALE, "ESTALE" },
	{ EDQUOT, "EDQUOT" },	     { ENOLCK, "ENOLCK" },
	{ ETIME, "ETIME" }, /* a lease ran out (last_error) */
};

const char *errno_name(int err)
{
	static __thread char buf[16];

	if (err < 0)
		err = -err;
	for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++)
		if (errno_names[i].num == err)
			return errno_names[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

int errno_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++)
		if (strcmp(errno_names[i].name, name) == 0)
			return errno_names[i].num;
	return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return -EINVAL;
	}
	for (; *s; s++) {
		unsigned d;

		if (isdigit((unsigned char)*s))
			d = *s - '0';
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = tolower((unsigned char)*s) - 'a' + 10;
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	char buf[64];
	size_t len;
	unsigned shift = 0;
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	len = strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len + 1);
	/* A suffix only after a decimal number: "0x1000K" is refused. */
	if (!(len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X'))) {
		const char *p = strchr(suffixes, toupper((unsigned char)buf[len - 1]));

		if (p && buf[len - 1] != '\0') {
			shift = 10 * (unsigned)(p - suffixes + 1);
			buf[--len] = '\0';
		}
	}
	r = parse_u64(buf, &v);
	if (r < 0)
		return r;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

void format_size(uint64_t size, char *buf, size_t len)
{
	static const char suffixes[] = "TGMK";

	for (unsigned i = 0; i < 4; i++) {
		unsigned shift = 10 * (4 - i);

		if (size && (size & ((1ULL << shift) - 1)) == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(size >> shift), suffixes[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)size);
}

int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "on", "yes", "true" };
	static const char *const no[] = { "0", "off", "no", "false" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

bool name_valid(const char *s)
{
	size_t n = 0;

	if (!s || !isalnum((unsigned char)s[0]))
		return false;
	for (; s[n]; n++) {
		unsigned char c = s[n];

		if (n >= HOST_NAME_MAX_LEN)
			return false;
		if (!(isalnum(c) || c == '-' || c == '_') || c > 127)
			return false;
	}
	return true;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t now_wall(void)
{
	return (int64_t)time(NULL);
}

int64_t now_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int mkdir_p(const char *path, unsigned mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}
