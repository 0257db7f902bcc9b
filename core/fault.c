// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define FAULT_MAX_POINTS 32

struct point {
	char name[32];
	unsigned fail_at; /* 0: never */
	unsigned delay_ms;
	unsigned passes;
};

static struct point points[FAULT_MAX_POINTS];
static unsigned npoints;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct point *lookup(const char *name, bool create)
{
	for (unsigned i = 0; i < npoints; i++)
		if (!strcmp(points[i].name, name))
			return &points[i];
	if (!create || npoints == FAULT_MAX_POINTS ||
	    strlen(name) >= sizeof(points[0].name))
		return NULL;
	snprintf(points[npoints].name, sizeof(points[0].name), "%s", name);
	return &points[npoints++];
}

static int parse_spec(const char *env, bool delay, char *reason)
{
	const char *spec = getenv(env);
	_cleanup_free_ char *copy = NULL;
	char *save = NULL;

	if (!spec || !*spec)
		return 0;
	copy = strdup(spec);
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':');
		struct point *p;
		uint64_t n;

		if (!colon || colon == tok || parse_u64(colon + 1, &n) < 0 ||
		    n == 0 || n > 1000000)
			return reason_set(reason, -EINVAL,
					  "%s: malformed entry '%s' (expected point:N)",
					  env, tok);
		*colon = '\0';
		p = lookup(tok, true);
		if (!p)
			return reason_set(reason, -EINVAL, "%s: too many points", env);
		if (delay)
			p->delay_ms = (unsigned)n;
		else
			p->fail_at = (unsigned)n;
	}
	return 0;
}

int fault_init(char *reason)
{
	int r;

	pthread_mutex_lock(&lock);
	npoints = 0;
	memset(points, 0, sizeof(points));
	r = parse_spec("LENDFS_FAULT", false, reason);
	if (r == 0)
		r = parse_spec("LENDFS_DELAY", true, reason);
	pthread_mutex_unlock(&lock);
	return r;
}

int fault_check(const char *point, char *reason)
{
	struct point *p;
	unsigned delay = 0, pass = 0;
	bool fail = false;

	pthread_mutex_lock(&lock);
	p = lookup(point, true);
	if (p) {
		pass = ++p->passes;
		fail = p->fail_at && pass == p->fail_at;
		delay = p->delay_ms;
	}
	pthread_mutex_unlock(&lock);
	if (delay) {
		struct timespec ts = { delay / 1000, (long)(delay % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (fail)
		return reason_set(reason, -EIO, "injected fault at %s #%u", point,
				  pass);
	return 0;
}

unsigned fault_count(const char *point)
{
	struct point *p;
	unsigned n;

	pthread_mutex_lock(&lock);
	p = lookup(point, false);
	n = p ? p->passes : 0;
	pthread_mutex_unlock(&lock);
	return n;
}

void fault_reset(void)
{
	pthread_mutex_lock(&lock);
	npoints = 0;
	memset(points, 0, sizeof(points));
	pthread_mutex_unlock(&lock);
}
