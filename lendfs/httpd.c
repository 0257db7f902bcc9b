// SPDX-License-Identifier: LGPL-2.1-or-later
/* httpd.c - GET /metrics over HTTP with libmicrohttpd (httpd.h). */
#include "httpd.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define LISTEN_BACKLOG 16

struct httpd {
	struct MHD_Daemon *mhd;
	struct engine *engine;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, body, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO; /* the connection is closed */
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status,
				  const char *text)
{
	return reply(c, status, "text/plain; charset=utf-8", (char *)text,
		     strlen(text), MHD_RESPMEM_PERSISTENT);
}

/* The text of MOUNT/metrics, from the function the file uses. */
static enum MHD_Result serve_metrics(struct httpd *h, struct MHD_Connection *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r;

	if (!f)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "out of memory\n");
	r = engine_render_metrics(h->engine, f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(buf);
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "cannot render the metrics\n");
	}
	return reply(c, MHD_HTTP_OK, METRICS_TYPE, buf, len,
		     MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct httpd *h = cls;

	/*
	 * Answered on the first call, before any body is read: a POST's
	 * body is never looked at (libmicrohttpd closes the connection).
	 */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "only GET and HEAD\n");
	if (strcmp(url, "/metrics") != 0)
		return reply_text(c, MHD_HTTP_NOT_FOUND,
				  "not found: only /metrics\n");
	return serve_metrics(h, c);
}

/* A listening socket on @a, or -errno with the reason. */
static int bind_socket(const struct listen_addr *a, char *reason)
{
	int one = 1;
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return reason_set(reason, -errno, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		close(fd);
		return reason_set(reason, r, "%s", strerror(-r));
	}
	return fd;
}

int httpd_start(struct engine *e, const struct listen_addr *addr,
		struct httpd **out, char *reason)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	struct httpd *h;
	int fd;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return reason_set(reason, -ENOMEM, "out of memory");
	h->engine = e;
	fd = bind_socket(addr, reason);
	if (fd < 0) {
		free(h);
		return fd;
	}
	if (addr->family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, h,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)HTTPD_MAX_CONNS,
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)HTTPD_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				  (size_t)HTTPD_CONN_MEMORY,
				  MHD_OPTION_END);
	if (!h->mhd) {
		close(fd);
		free(h);
		return reason_set(reason, -EIO,
				  "libmicrohttpd could not start");
	}
	*out = h;
	return 0;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd); /* joins its thread, closes the socket */
	free(h);
}
