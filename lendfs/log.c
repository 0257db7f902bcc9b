// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * log.c - the daemon's log lines: stderr in the foreground, syslog once
 * forked (see log.h).
 */
#include "log.h"

#include <fuse_log.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LOG_LINE_MAX 1024

static bool log_syslog; /* set once, before any other thread runs */

/* libfuse's levels are syslog's priorities. */
static void fuse_to_syslog(enum fuse_log_level level, const char *fmt,
			   va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

void lendfs_log_to_syslog(void)
{
	openlog("lendfs", LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

void lendfs_log_fuse_to_syslog(void)
{
	fuse_set_log_func(fuse_to_syslog);
}

void lendfs_log(int prio, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog)
		syslog(prio, "%s", msg);
	else
		fprintf(stderr, "lendfs: %s\n", msg);
}

void lendfs_log_value(const char *buf, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		char esc[8];
		size_t n;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			n = (size_t)snprintf(esc, sizeof(esc), "%c", c);
		else
			n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
		if (o + n + 4 > outlen) {
			snprintf(out + o, outlen - o, "...");
			return;
		}
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o] = '\0';
}
