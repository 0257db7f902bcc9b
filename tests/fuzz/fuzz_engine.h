/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_engine.h - the fuzz targets that write through a real engine
 * (fuzz_borrower, fuzz_compose): one engine for the whole run, with the
 * memory store and the sim fabric in a temporary run directory that is
 * removed at exit, and the errno values SPEC section 4 allows a write.
 */
#ifndef LENDFS_FUZZ_ENGINE_H
#define LENDFS_FUZZ_ENGINE_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "engine.h"
#include "fabric_sim.h"
#include "fuzz.h"

static struct {
	const char *target;
	struct cluster_config *cfg;
	struct engine *engine;
	char run_dir[64];
} fuzz_eng;

static void fuzz_engine_down(void)
{
	char cmd[128];

	engine_free(fuzz_eng.engine);
	config_free(fuzz_eng.cfg);
	if (fuzz_eng.run_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_eng.run_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "%s: cannot remove %s\n", fuzz_eng.target,
				fuzz_eng.run_dir);
	}
}

/* The engine of @cfg_text for @target (its name, for messages); aborts. */
static inline struct engine *fuzz_engine_up(const char *target,
					    const char *cfg_text)
{
	struct engine_options opt = { 0 };
	char err[ERRMSG_MAX], reason[REASON_MAX] = "", run[96];

	fuzz_eng.target = target;
	unsetenv("LENDFS_FAULT");
	unsetenv("LENDFS_DELAY");
	snprintf(fuzz_eng.run_dir, sizeof(fuzz_eng.run_dir),
		 "/tmp/lendfs-fuzz-XXXXXX");
	FUZZ_ASSERT(mkdtemp(fuzz_eng.run_dir) != NULL);
	snprintf(run, sizeof(run), "%s/run", fuzz_eng.run_dir);
	if (config_load_string("fuzz.ini", cfg_text, &fuzz_eng.cfg, err) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	opt.cfg = fuzz_eng.cfg;
	opt.fabric = &fabric_sim_ops;
	opt.run_dir = run;
	opt.store = &store_memory_ops;
	opt.store_where = "fuzz";
	if (engine_new(&opt, &fuzz_eng.engine, reason) < 0) {
		fprintf(stderr, "engine_new: %s\n", reason);
		abort();
	}
	atexit(fuzz_engine_down);
	return fuzz_eng.engine;
}

/* Is @r one of the errnos SPEC section 4 allows a write to return? */
static inline bool fuzz_spec_errno(int r)
{
	static const int ok[] = { EINVAL, EBUSY, ENODEV, EHOSTDOWN, ENOSPC,
				  ETIMEDOUT, EACCES, EPERM, ENOTSUP };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (r == -ok[i])
			return true;
	return false;
}

#endif
