// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for contrib/slurm/spank_lend.c, the Slurm plugin's work
 * without Slurm: plugstack.conf arguments, the checks of --lend and
 * --lend-composition (the prolog writes them to the mount as root, so no
 * value may name another path), the host mapping, the lease, and the
 * job's record.  Lending through a real mount: tests/bats/slurm.bats.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spank_lend.h"

#define GPU "nodeA:0000:65:00.0"

static int conf_of(struct sl_conf *conf, const char *a, const char *b, const char *c)
{
	char *argv[3] = { (char *)a, (char *)b, (char *)c };
	int argc = c ? 3 : b ? 2 : a ? 1 : 0;
	char reason[SL_REASON_MAX] = "";

	return sl_conf_parse(conf, argc, argv, reason);
}

static void test_conf(void **state)
{
	struct sl_conf conf;
	char host[SL_HOST_MAX + 1], reason[SL_REASON_MAX];

	assert_int_equal(conf_of(&conf, "mount=/lend", NULL, NULL), 0);
	assert_string_equal(conf.mount, "/lend");
	assert_int_equal(conf.grace, SL_GRACE_DEFAULT);
	assert_string_equal(conf.state_dir, SL_STATE_DEFAULT);
	assert_int_equal(conf_of(&conf, "mount=/lend", "grace=0", "map=sn1=nodeB"), 0);
	assert_int_equal(conf.grace, 0);
	assert_int_equal(sl_host_of(&conf, "sn1", host, sizeof(host), reason), 0);
	assert_string_equal(host, "nodeB");
	assert_int_equal(sl_host_of(&conf, "nodeC", host, sizeof(host), reason), 0);
	assert_string_equal(host, "nodeC");	/* no map=: the node's own name */
	assert_int_equal(sl_host_of(&conf, "bad name", host, sizeof(host), reason),
			 -EINVAL);

	assert_int_equal(conf_of(&conf, NULL, NULL, NULL), -EINVAL);	/* no mount= */
	assert_int_equal(conf_of(&conf, "mount=lend", NULL, NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "colour=red", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "grace=86401", NULL), -ERANGE);
	assert_int_equal(conf_of(&conf, "mount=/lend", "grace=-1", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "grace=", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "grace=99999999999", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "map=sn1", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "map==nodeB", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "map=sn1=", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "map=sn1=node B", NULL), -EINVAL);
	assert_int_equal(conf_of(&conf, "mount=/lend", "state=run", NULL), -EINVAL);
}

static void test_conf_bounds(void **state)
{
	char *argv[SL_MAPS_MAX + 2], maps[SL_MAPS_MAX + 1][32], reason[SL_REASON_MAX];
	char longpath[SL_PATH_MAX + 16];
	struct sl_conf conf;
	int i;

	argv[0] = "mount=/lend";
	for (i = 0; i <= SL_MAPS_MAX; i++) {
		snprintf(maps[i], sizeof(maps[i]), "map=n%d=h%d", i, i);
		argv[i + 1] = maps[i];
	}
	assert_int_equal(sl_conf_parse(&conf, SL_MAPS_MAX + 1, argv, reason), 0);
	assert_int_equal(conf.nmaps, SL_MAPS_MAX);
	assert_int_equal(sl_conf_parse(&conf, SL_MAPS_MAX + 2, argv, reason), -E2BIG);
	snprintf(longpath, sizeof(longpath), "mount=/%0*d", SL_PATH_MAX, 0);
	assert_int_equal(conf_of(&conf, longpath, NULL, NULL), -EINVAL);
}

static int ids_of(struct sl_request *req, const char *value)
{
	char reason[SL_REASON_MAX];

	memset(req, 0, sizeof(*req));
	return sl_parse_ids(req, value, reason);
}

static void test_ids(void **state)
{
	static const char *const bad[] = {
		"", ",", "a,", ",a", "a,,b", ".", "..", "../hosts", "a/b", "/a",
		"a b", "a\tb", "a\nb", "a\001b", "a\377b", GPU "," GPU,
	};
	char big[SL_OPT_MAX + 2], many[SL_IDS_MAX * 4 + 8] = "";
	struct sl_request req;
	size_t i;

	assert_int_equal(ids_of(&req, GPU ",nodeC:0000:5e:00.0"), 0);
	assert_int_equal(req.nids, 2);
	assert_string_equal(req.ids[0], GPU);
	assert_string_equal(req.ids[1], "nodeC:0000:5e:00.0");
	assert_int_equal(ids_of(&req, "a.b_c-d"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ids_of(&req, bad[i]), -EINVAL);
		assert_int_equal(req.nids, 0);
	}
	memset(big, 'a', SL_ID_MAX + 1);
	big[SL_ID_MAX + 1] = '\0';
	assert_int_equal(ids_of(&req, big), -EINVAL);		/* 256 bytes */
	big[SL_ID_MAX] = '\0';
	assert_int_equal(ids_of(&req, big), 0);			/* 255 bytes */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ids_of(&req, big), -E2BIG);
	for (i = 0; i < SL_IDS_MAX; i++)
		sprintf(many + strlen(many), "%sd%zu", i ? "," : "", i);
	assert_int_equal(ids_of(&req, many), 0);
	assert_int_equal(req.nids, SL_IDS_MAX);
	strcat(many, ",x");
	assert_int_equal(ids_of(&req, many), -E2BIG);
}

static void test_composition(void **state)
{
	char name[SL_NAME_MAX + 2], reason[SL_REASON_MAX];
	struct sl_request req = { 0 };

	assert_int_equal(sl_parse_composition(&req, "job1.gpu-pair_2", reason), 0);
	assert_string_equal(req.composition, "job1.gpu-pair_2");
	assert_int_equal(sl_parse_composition(&req, "", reason), -EINVAL);
	assert_int_equal(sl_parse_composition(&req, "..", reason), -EINVAL);
	assert_int_equal(sl_parse_composition(&req, "a/b", reason), -EINVAL);
	assert_int_equal(sl_parse_composition(&req, "a:b", reason), -EINVAL);
	memset(name, 'c', SL_NAME_MAX);
	name[SL_NAME_MAX] = '\0';
	assert_int_equal(sl_parse_composition(&req, name, reason), 0);
	name[SL_NAME_MAX] = 'c';
	name[SL_NAME_MAX + 1] = '\0';
	assert_int_equal(sl_parse_composition(&req, name, reason), -EINVAL);
	assert_string_equal(req.composition, name + 1);	/* the last good one */
}

static void test_lease(void **state)
{
	struct sl_conf conf = { .grace = 300 };

	assert_int_equal(sl_lease_seconds(&conf, 1), 360);
	assert_int_equal(sl_lease_seconds(&conf, 0), 300);
	assert_int_equal(sl_lease_seconds(&conf, 0xffffffffu), 0);	/* INFINITE */
	assert_int_equal(sl_lease_seconds(&conf, 0xfffffffeu), 0);	/* NO_VAL */
	assert_int_equal(sl_lease_seconds(&conf, 0xfffffffdu), SL_LEASE_MAX);
	conf.grace = 0;
	assert_int_equal(sl_lease_seconds(&conf, 2), 120);
}

/* The record: only well-formed d and m lines make LENDFS_DEVICES. */
static void test_record(void **state)
{
	char dir[] = "/tmp/test_spank_lendXXXXXX", path[SL_PATH_MAX + 16];
	char held[256], reason[SL_REASON_MAX];
	struct sl_conf conf = { 0 };
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(conf.mount, sizeof(conf.mount), "%s/mnt", dir);	/* empty */
	snprintf(conf.state_dir, sizeof(conf.state_dir), "%s/state", dir);
	assert_int_equal(sl_held_devices(&conf, 7, held, sizeof(held), reason), 0);
	assert_string_equal(held, "");		/* no record */
	assert_int_equal(mkdir(conf.state_dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/7", conf.state_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("h nodeB\nd " GPU "\nc job1\nm nodeC:0000:5e:00.0\nd ../etc\nx y\nd\n"
	      "m nodeD:0000:3b:00.0\n", f);
	fclose(f);
	assert_int_equal(sl_held_devices(&conf, 7, held, sizeof(held), reason), 0);
	assert_string_equal(held, GPU ",nodeC:0000:5e:00.0,nodeD:0000:3b:00.0");
	assert_int_equal(sl_held_devices(&conf, 7, held, 20, reason), -E2BIG);
	/* a return finds nothing of it in the (empty) mount: gone, so done */
	assert_int_equal(sl_return_job(&conf, 7, reason), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(rmdir(conf.state_dir), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_conf_bounds),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_composition),
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
