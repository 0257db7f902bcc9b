// SPDX-License-Identifier: LGPL-2.1-or-later
/* listen.c - "ADDR:PORT" to a socket address (listen.h). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "util.h"

/* "1".."65535", decimal digits only. */
static int parse_port(const char *s, uint16_t *port, char *reason)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0)
		return reason_set(reason, -EINVAL, "no port after ':'");
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return reason_set(reason, -EINVAL,
					  "port '%s' is not a decimal number", s);
		if (i >= 5) /* 6 digits: out of range, whatever they are */
			return reason_set(reason, -ERANGE,
					  "port %s is out of range (1-65535)", s);
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return reason_set(reason, -ERANGE,
				  "port %s is out of range (1-65535)", s);
	*port = (uint16_t)v;
	return 0;
}

static int host_v6(const char *text, struct listen_addr *out,
		   const char **port, char *reason)
{
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->ss;
	const char *end = strchr(text, ']');
	char host[LISTEN_TEXT_MAX];

	if (!end || end[1] != ':')
		return reason_set(reason, -EINVAL,
				  "'%s' is not [IPV6]:PORT", text);
	memcpy(host, text + 1, (size_t)(end - text - 1));
	host[end - text - 1] = '\0';
	if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
		return reason_set(reason, -EINVAL,
				  "'%s' is not an IPv6 address", host);
	a->sin6_family = AF_INET6;
	out->family = AF_INET6;
	out->len = sizeof(*a);
	*port = end + 2;
	return 0;
}

static int host_v4(const char *text, struct listen_addr *out,
		   const char **port, char *reason)
{
	struct sockaddr_in *a = (struct sockaddr_in *)&out->ss;
	const char *colon = strrchr(text, ':');
	char host[LISTEN_TEXT_MAX];

	if (!colon)
		return reason_set(reason, -EINVAL,
				  "'%s' has no port (expected ADDR:PORT)", text);
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	if (strcmp(host, "localhost") == 0) {
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
		return reason_set(reason, -EINVAL,
				  "'%s' is not an IPv4 address, [IPv6] or "
				  "localhost", host);
	}
	a->sin_family = AF_INET;
	out->family = AF_INET;
	out->len = sizeof(*a);
	*port = colon + 1;
	return 0;
}

int listen_parse(const char *text, struct listen_addr *out, char *reason)
{
	const char *port = "";
	uint16_t p = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (!text || !*text)
		return reason_set(reason, -EINVAL,
				  "empty address (expected ADDR:PORT)");
	if (strnlen(text, LISTEN_TEXT_MAX) >= LISTEN_TEXT_MAX)
		return reason_set(reason, -ENAMETOOLONG,
				  "address longer than %d bytes",
				  LISTEN_TEXT_MAX - 1);
	if (text[0] == '[')
		r = host_v6(text, out, &port, reason);
	else
		r = host_v4(text, out, &port, reason);
	if (r == 0)
		r = parse_port(port, &p, reason);
	if (r < 0) {
		memset(out, 0, sizeof(*out));
		return r;
	}
	if (out->family == AF_INET6)
		((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(p);
	else
		((struct sockaddr_in *)&out->ss)->sin_port = htons(p);
	return 0;
}
