/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * listen.h - a TCP address to listen on, "ADDR:PORT" (the HTTP endpoint
 * of lendfs --metrics-listen and [cluster] metrics_listen).
 *
 * Accepted forms, nothing else:
 *
 *   A.B.C.D:PORT      an IPv4 address in dotted-quad form (inet_pton)
 *   [V6]:PORT         an IPv6 address in brackets (inet_pton, no zone)
 *   localhost:PORT    127.0.0.1
 *
 * PORT is 1..65535 in decimal, no sign, no space.  No name is resolved
 * (no DNS at start-up).  The text is at most LISTEN_TEXT_MAX bytes; a
 * NUL byte ends it (callers that take bytes check for NULs themselves).
 */
#ifndef LENDFS_LISTEN_H
#define LENDFS_LISTEN_H

#include <sys/socket.h>

/* "[" 45-char IPv6 "]:" 5-digit port: 53, with room to spare */
#define LISTEN_TEXT_MAX 64

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int family; /* AF_INET or AF_INET6 */
};

/*
 * Parse @text into @out.  0, or -EINVAL (malformed address), -ERANGE
 * (port out of range) or -ENAMETOOLONG (longer than LISTEN_TEXT_MAX - 1),
 * with the reason in @reason (REASON_MAX bytes, may be NULL).
 */
int listen_parse(const char *text, struct listen_addr *out, char *reason);

#endif
