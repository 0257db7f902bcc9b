/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * util.h - small helpers shared by every core module.
 *
 * Conventions used across core/:
 *  - functions return 0 (or a count) on success and -errno on failure;
 *  - functions that can fail for a reason a human should read take an
 *    optional `char *reason` buffer of REASON_MAX bytes and fill it with a
 *    lower-case message naming the object and the cause (git style);
 *  - nothing in core/ logs; callers decide what to print.
 */
#ifndef LENDFS_UTIL_H
#define LENDFS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define REASON_MAX 256

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand ownership of a cleanup-managed pointer to someone else. */
#define take_ptr(p)                          \
	({                                   \
		__typeof__(p) _tp_ = (p);    \
		(p) = NULL;                  \
		_tp_;                        \
	})

/*
 * Fill @reason (if not NULL) with the formatted message and return @err,
 * which must be a negative errno.  Lets a failing path read as
 * `return reason_set(reason, -ENOSPC, "no free entry on %s", name);`
 */
int reason_set(char *reason, int err, const char *fmt, ...) _printf_(3, 4);

/* "EBUSY" for -EBUSY or EBUSY; "E<n>" for numbers without a name. */
const char *errno_name(int err);

/* errno number for a name such as "EBUSY"; 0 if unknown. */
int errno_from_name(const char *name);

/*
 * Strict number parsing: the whole string must be consumed, no sign, no
 * leading/trailing space, no overflow.  Accepts decimal or 0x hex.
 */
int parse_u64(const char *s, uint64_t *out);

/*
 * A size: a number optionally followed by K, M, G or T (powers of 1024),
 * e.g. "16M", "4096", "0x1000".  Zero is allowed; overflow is -ERANGE.
 */
int parse_size(const char *s, uint64_t *out);

/* "16M" style rendering of a size when it is an exact multiple. */
void format_size(uint64_t size, char *buf, size_t len);

/* on/off, yes/no, true/false, 1/0. */
int parse_bool(const char *s, bool *out);

#define HOST_NAME_MAX_LEN 63
#define VM_NAME_MAX_LEN 63

/*
 * A host, switch or VM name: 1..63 characters of [A-Za-z0-9_-], starting
 * with a letter or digit.  '.' and ':' are excluded because they are
 * separators in device ids and borrower values.
 */
bool name_valid(const char *s);

static inline bool is_power_of_2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/*
 * The length of a value written to an attribute without its one trailing
 * newline: `echo x > file` and `printf x > file` mean the same (sysfs).
 */
static inline size_t value_len(const char *buf, size_t len)
{
	return len && buf[len - 1] == '\n' ? len - 1 : len;
}

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/* Wall clock, seconds since the epoch. */
int64_t now_wall(void);
/* Wall clock (CLOCK_REALTIME), nanoseconds since the epoch. */
int64_t now_wall_ns(void);

/* mkdir -p, mode for each created component. */
int mkdir_p(const char *path, unsigned mode);

#endif
