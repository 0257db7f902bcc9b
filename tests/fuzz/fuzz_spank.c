// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_spank.c - what the Slurm plugin (contrib/slurm/spank_lend.c) takes
 * from users and administrators: --lend values, --lend-composition names
 * (written to the mount by the prolog, as root) and plugstack.conf
 * arguments (the input's lines).
 *
 * Checked against an independent statement of each rule: an accepted
 * --lend is exactly its IDs joined by commas, each a safe file name, at
 * most SL_IDS_MAX and none twice; a refused one changes nothing and says
 * why; errno values are the documented ones.
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "spank_lend.h"

#define ARGS_MAX 80

/* One path component of [A-Za-z0-9] and @extra, not "." or "..". */
static bool safe_name(const char *s, size_t n, size_t max, const char *extra)
{
	if (n < 1 || n > max || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c && strchr(extra, c))))
			return false;
	}
	return true;
}

static void check_ids(const char *s)
{
	static struct sl_request req;
	char reason[SL_REASON_MAX] = "", joined[SL_OPT_MAX + 2] = "";
	int r;

	memset(&req, 0, sizeof(req));
	r = sl_parse_ids(&req, s, reason);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -E2BIG);
		FUZZ_ASSERT(req.nids == 0 && reason[0]);
		FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
		return;
	}
	FUZZ_ASSERT(req.nids >= 1 && req.nids <= SL_IDS_MAX);
	for (int i = 0; i < req.nids; i++) {
		FUZZ_ASSERT(safe_name(req.ids[i], strlen(req.ids[i]), SL_ID_MAX, ":._-"));
		for (int j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(req.ids[i], req.ids[j]));
		strcat(joined, i ? "," : "");
		strcat(joined, req.ids[i]);
	}
	FUZZ_ASSERT(!strcmp(joined, s));
}

static void check_composition(const char *s)
{
	static struct sl_request req;
	char reason[SL_REASON_MAX] = "";
	int r;

	memset(&req, 0, sizeof(req));
	r = sl_parse_composition(&req, s, reason);
	FUZZ_ASSERT(r == 0 || r == -EINVAL);
	FUZZ_ASSERT((r == 0) == safe_name(s, strlen(s), SL_NAME_MAX, "_.-"));
	FUZZ_ASSERT(r ? !req.composition[0] : !strcmp(req.composition, s));
}

/* The input's lines as plugstack.conf arguments. */
static void check_conf(char *s)
{
	static struct sl_conf conf;
	char *argv[ARGS_MAX], reason[SL_REASON_MAX] = "", *save = NULL, *a;
	int argc = 0, r;

	for (a = strtok_r(s, "\n", &save); a && argc < ARGS_MAX; a = strtok_r(NULL, "\n", &save))
		argv[argc++] = a;
	r = sl_conf_parse(&conf, argc, argv, reason);
	FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -ERANGE || r == -E2BIG);
		FUZZ_ASSERT(reason[0]);
		return;
	}
	FUZZ_ASSERT(conf.mount[0] == '/' && conf.state_dir[0] == '/');
	FUZZ_ASSERT(conf.grace <= SL_GRACE_MAX);
	FUZZ_ASSERT(conf.nmaps >= 0 && conf.nmaps <= SL_MAPS_MAX);
	for (int i = 0; i < conf.nmaps; i++) {
		char host[SL_HOST_MAX + 1];

		FUZZ_ASSERT(sl_host_of(&conf, conf.maps[i].node, host, sizeof(host),
				       reason) == 0);
		FUZZ_ASSERT(safe_name(host, strlen(host), SL_HOST_MAX, ":._-/"));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > SL_OPT_MAX + 64)
		return -1;
	s = fuzz_string(data, size);
	check_ids(s);
	check_composition(s);
	check_conf(s);
	free(s);
	return 0;
}
