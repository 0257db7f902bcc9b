/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * httpd.h - the Prometheus endpoint: lendfs --metrics-listen ADDR:PORT
 * (or [cluster] metrics_listen) serves the mount's `metrics` file over
 * HTTP, for a Prometheus server to scrape (docs/ADMIN.md).
 *
 *   GET /metrics (or HEAD)  200, the text of MOUNT/metrics, rendered by
 *                           the same engine function the file uses
 *                           (engine_render_metrics()), Content-Type
 *                           text/plain; version=0.0.4; charset=utf-8
 *   any other path          404
 *   any other method        405, with Allow: GET, HEAD
 *   a request too big       libmicrohttpd's own answer (414 for a URL
 *                           beyond the per-connection memory limit,
 *                           HTTPD_CONN_MEMORY bytes); the daemon goes on
 *
 * HTTP itself is libmicrohttpd's (one internal polling thread, at most
 * HTTPD_MAX_CONNS connections, each closed after HTTPD_TIMEOUT_S idle
 * seconds); this module only binds the socket (so a bind failure has its
 * errno) and answers.  Nothing is written through it: it reads the
 * engine, like a reader of the file.
 *
 * Lifetime: started after the engine (engine_new()), stopped before the
 * engine's callbacks are turned off and the engine is freed
 * (lendfs/main.c, daemon_cleanup()).  httpd_stop() waits for the thread
 * and any request in flight.
 */
#ifndef LENDFS_HTTPD_H
#define LENDFS_HTTPD_H

#include "engine.h"
#include "listen.h"

#define HTTPD_MAX_CONNS 16
#define HTTPD_TIMEOUT_S 10
#define HTTPD_CONN_MEMORY (32u << 10)

struct httpd;

/*
 * Bind @addr (listen.h) and serve @e.  0, or -errno (EADDRINUSE,
 * EACCES, EADDRNOTAVAIL from bind(); another from libmicrohttpd) with
 * the reason in @reason (REASON_MAX bytes).
 */
int httpd_start(struct engine *e, const struct listen_addr *addr,
		struct httpd **out, char *reason);

/* Stop serving and free; NULL is fine. */
void httpd_stop(struct httpd *h);

#endif
