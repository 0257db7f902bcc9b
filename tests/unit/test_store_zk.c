// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_store_zk.c - the pure parts of the ZooKeeper store: zk:// URIs,
 * the record text (both ways), and the sole-peer rule of the protocol.
 * The store against a real server is tests/bats/cluster.bats.
 */
#include <errno.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine_internal.h"
#include "store_zk.h"

static void uri_ok(void **state)
{
	char hosts[ZK_HOSTS_MAX], root[ZK_ROOT_MAX], reason[REASON_MAX];

	(void)state;
	assert_int_equal(zk_uri_parse("zk://h1:2181,h2:2181,10.0.0.3:2181/lab",
				      hosts, sizeof(hosts), root, sizeof(root),
				      reason), 0);
	assert_string_equal(hosts, "h1:2181,h2:2181,10.0.0.3:2181");
	assert_string_equal(root, "/lab");
	assert_int_equal(zk_uri_parse("zk://127.0.0.1:2181", hosts, sizeof(hosts),
				      root, sizeof(root), reason), 0);
	assert_string_equal(root, ZK_DEFAULT_ROOT);
	assert_int_equal(zk_uri_parse("zk://h:1/a/b-c.d", hosts, sizeof(hosts),
				      root, sizeof(root), reason), 0);
	assert_string_equal(root, "/a/b-c.d");
	assert_true(zk_uri_is("zk://x"));
	assert_false(zk_uri_is("/var/lib/lendfs/state.db"));
}

static void uri_bad(void **state)
{
	static const struct {
		const char *uri, *why;
	} bad[] = {
		{ "sqlite:///x", "not a zk:// URI" },
		{ "zk://", "no ZooKeeper servers" },
		{ "zk:///root", "no ZooKeeper servers" },
		{ "zk://h:1,,h:2/r", "empty server" },
		{ "zk://,h:1/r", "empty server" },
		{ "zk://h:1,/r", "empty server" },
		{ "zk://h 1/r", "invalid character" },
		{ "zk://h:1/a//b", "malformed chroot" },
		{ "zk://h:1/a/", "malformed chroot" },
		{ "zk://h:1/a b", "malformed chroot" },
	};
	char hosts[ZK_HOSTS_MAX], root[ZK_ROOT_MAX], reason[REASON_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reason[0] = '\0';
		assert_int_equal(zk_uri_parse(bad[i].uri, hosts, sizeof(hosts), root,
					      sizeof(root), reason), -EINVAL);
		if (!strstr(reason, bad[i].why))
			fail_msg("%s: reason '%s' lacks '%s'", bad[i].uri, reason,
				 bad[i].why);
	}
}

static struct window win(enum window_kind k, const char *host, uint32_t index,
			 const char *next, const char *domain, const char *tag)
{
	struct window w = {
		.kind = k, .index = index, .count = 1,
		.local = 0x200000000000ULL + index * 0x1000000ULL,
		.size = 0x1000000, .target = 0x380000000000ULL,
	};

	snprintf(w.host, sizeof(w.host), "%s", host);
	snprintf(w.next, sizeof(w.next), "%s", next);
	snprintf(w.domain, sizeof(w.domain), "%s", domain);
	snprintf(w.tag, sizeof(w.tag), "%s", tag);
	return w;
}

static void record_round_trip(void **state)
{
	struct window w[2] = {
		win(WIN_LUT, "nodeB", 0, "nodeA", "", "bar0"),
		win(WIN_IOMMU, "nodeA", 0, "nodeA", "nodeA:0000:65:00.0", "ram0"),
	};
	struct lend_record rec = {
		.device = "nodeA:0000:65:00.0",
		.borrower = "nodeB",
		.state = REC_LENDING,
		.since = 1732550000,
		.epoch = 42,
		.expires = 1796517458866315959LL,
		.windows = w,
		.nwindows = 2,
	};
	struct lend_record back;
	char reason[REASON_MAX], *text, *extra;

	(void)state;
	text = store_zk_format(&rec);
	assert_non_null(text);
	assert_int_equal(strncmp(text, "state lending\n", 14), 0);
	assert_int_equal(store_zk_parse(rec.device, text, &back, reason), 0);
	assert_string_equal(back.borrower, "nodeB");
	assert_int_equal(back.state, REC_LENDING);
	assert_int_equal(back.epoch, 42);
	assert_int_equal(back.since, 1732550000);
	assert_true(back.expires == 1796517458866315959LL);
	assert_int_equal(back.nwindows, 2);
	assert_memory_equal(&back.windows[0], &w[0], sizeof(w[0]));
	assert_memory_equal(&back.windows[1], &w[1], sizeof(w[1]));
	lend_record_release(&back);
	free(text);

	/* no lease: no line, as an older daemon's record has none */
	rec.expires = 0;
	text = store_zk_format(&rec);
	assert_non_null(text);
	assert_null(strstr(text, "expires"));
	assert_int_equal(store_zk_parse(rec.device, text, &back, reason), 0);
	assert_true(back.expires == 0);
	lend_record_release(&back);

	/* the protocol's lines (cluster.c) are not part of the record */
	assert_true(asprintf(&extra, "%sanswer /lendfs/requests/x\nfenced nodeA\n",
			     text) > 0);
	assert_int_equal(store_zk_parse(rec.device, extra, &back, reason), 0);
	assert_int_equal(back.nwindows, 2);
	lend_record_release(&back);
	free(extra);
	free(text);
}

static void record_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"state lent\n", /* no borrower */
		"borrower nodeB\n", /* no state */
		"state maybe\nborrower nodeB\n",
		"state lent\nborrower nodeB\nwindow lut nodeB x\n",
		"state lent\nborrower nodeB\ncolour blue\n",
		"state lent\nborrower nodeB\nepoch -1\n",
		"state lent\nborrower no de\n", /* not a borrower name */
		"state lent\nborrower nodeB\nexpires -1\n",
		"state lent\nborrower nodeB\nexpires soon\n",
		"state lent\nborrower nodeB\nexpires 9223372036854775808\n",
		/* the events an intent's commit carries (lend_txn.carry) */
		"state lending\nborrower nodeB\nevent\n",
		"state lending\nborrower nodeB\nevent 12\n",
		"state lending\nborrower nodeB\nevent 12 \n",
		"state lending\nborrower nodeB\nevent -1 x lent\n",
		"state lending\nborrower nodeB\nevent soon x lent\n",
		"state lending\nborrower nodeB\nevent 99999999999999999999 x lent\n",
		"state lending\nborrower nodeB\nevent 12 x \x01lent\n",
	};
	struct lend_record back;
	char reason[REASON_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reason[0] = '\0';
		if (store_zk_parse("nodeA:0000:65:00.0", bad[i], &back, reason) != -EIO)
			fail_msg("accepted: '%s'", bad[i]);
		assert_true(reason[0] != '\0');
	}
}

/*
 * An intent's `event` lines: the record parses with them (the events
 * are not part of it), and zks_carried_split() takes them out, in order,
 * leaving the record's other lines as they were.
 */
static void carried_lines(void **state)
{
	static const char text[] =
		"state lending\nborrower nodeB\nepoch 7\n"
		"event 100 nodeA:0000:65:00.0 lending borrower=nodeB host=nodeA uid=0\n"
		"answer /lendfs/requests/x\n"
		"event 101 nodeA:0000:65:00.0 lent borrower=nodeB\n";
	struct event_rec ev[ZK_CARRY_MAX];
	struct lend_record back;
	char reason[REASON_MAX], *rest, *strings, *many;
	unsigned n;

	(void)state;
	assert_int_equal(store_zk_parse("nodeA:0000:65:00.0", text, &back, reason), 0);
	assert_int_equal(back.epoch, 7);
	lend_record_release(&back);
	assert_int_equal(zks_carried_split(text, &rest, &strings, ev, ZK_CARRY_MAX, &n), 0);
	assert_int_equal(n, 2);
	assert_true(ev[0].time_ns == 100 && ev[1].time_ns == 101);
	assert_string_equal(ev[0].text,
			    "nodeA:0000:65:00.0 lending borrower=nodeB host=nodeA uid=0");
	assert_string_equal(ev[1].text, "nodeA:0000:65:00.0 lent borrower=nodeB");
	assert_string_equal(rest, "state lending\nborrower nodeB\nepoch 7\n"
				  "answer /lendfs/requests/x\n");
	free(rest);
	free(strings);
	/* none: the text back as it was */
	assert_int_equal(zks_carried_split("state lent\nborrower nodeB", &rest, &strings,
					   ev, ZK_CARRY_MAX, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(rest, "state lent\nborrower nodeB\n");
	free(rest);
	free(strings);
	/* more than the commit can carry, or a malformed one: refused */
	assert_int_equal(zks_carried_split(text, &rest, &strings, ev, 1, &n), -EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(zks_carried_split("state lending\nevent 1 \x7f\n", &rest,
					   &strings, ev, ZK_CARRY_MAX, &n), -EINVAL);
	assert_true(asprintf(&many, "state lending\n%s", "") > 0);
	for (int i = 0; i <= ZK_CARRY_MAX; i++) {
		char *more;

		assert_true(asprintf(&more, "%sevent %d x lent\n", many, i) > 0);
		free(many);
		many = more;
	}
	assert_int_equal(zks_carried_split(many, &rest, &strings, ev, ZK_CARRY_MAX, &n),
			 -EINVAL);
	free(many);
}

static void comp_round_trip(void **state)
{
	static const char *const cases[][2] = {
		{ "", "" },
		{ "", "nodeA:0000:65:00.0" },
		{ "!nodeC", "nodeA:0000:65:00.0\nnodeB:0000:17:00.0" },
		{ "vm:nodeB/g1", "nodeC:0000:5e:00.0" },
	};
	char borrower[REASON_MAX];
	const char *devices;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = store_zk_comp_format(cases[i][0], cases[i][1]);

		assert_non_null(text);
		assert_int_equal(store_zk_comp_parse("job", text, borrower, &devices,
						     NULL), 0);
		assert_string_equal(borrower, cases[i][0]);
		assert_string_equal(devices, cases[i][1]);
		free(text);
	}
}

static void comp_bad(void **state)
{
	static const char *const bad[] = {
		"",				  /* no borrower line */
		"nodeC",			  /* no newline */
		"no de\n",			  /* a space in the borrower */
		"\nnodeA:0000:65:00.0\n",	  /* a trailing newline */
		"\nnodeA:0000:65:00.0\n\nnodeB:0000:17:00.0", /* an empty line */
		"\nnot-an-id",			  /* no HOST: */
		"\nnodeA:0000:65:00.0 x",	  /* a space in an ID */
	};
	char borrower[REASON_MAX], reason[REASON_MAX], big[REASON_MAX + 8];
	const char *devices;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reason[0] = '\0';
		if (store_zk_comp_parse("job", bad[i], borrower, &devices, reason) != -EIO)
			fail_msg("accepted: '%s'", bad[i]);
		assert_true(reason[0] != '\0');
	}
	memset(big, 'b', sizeof(big) - 2); /* a borrower line too long */
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_zk_comp_parse("job", big, borrower, &devices, NULL),
			 -EIO);
	assert_int_equal(store_zk_comp_parse("a/b", "\n", borrower, &devices, NULL),
			 -EIO);
	assert_int_equal(store_zk_comp_parse("job", NULL, borrower, &devices, NULL),
			 -EIO);
}

static void sole_peer(void **state)
{
	struct window direct[3] = {
		win(WIN_LUT, "nodeB", 0, "nodeA", "", "bar0"),
		win(WIN_DMA, "nodeA", 0, "nodeB", "", "ram0"),
		win(WIN_IOMMU, "nodeA", 0, "nodeA", "nodeA:0000:65:00.0", "ram0"),
	};
	struct window hop[3] = {
		win(WIN_LUT, "nodeC", 0, "nodeA", "", "bar0"),
		win(WIN_LUT, "nodeB", 0, "nodeC", "", "bar0"),
		win(WIN_DMA, "nodeA", 0, "nodeC", "", "ram0"),
	};

	(void)state;
	assert_true(lend_sole_peer("nodeA", direct, 3, "nodeB"));
	assert_false(lend_sole_peer("nodeA", direct, 3, "nodeC"));
	assert_false(lend_sole_peer("nodeA", hop, 3, "nodeB"));
	assert_false(lend_sole_peer("nodeA", hop, 3, "nodeC"));
	assert_false(lend_sole_peer("nodeA", direct + 1, 2, "nodeB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uri_ok),
		cmocka_unit_test(uri_bad),
		cmocka_unit_test(record_round_trip),
		cmocka_unit_test(record_bad),
		cmocka_unit_test(carried_lines),
		cmocka_unit_test(sole_peer),
		cmocka_unit_test(comp_round_trip),
		cmocka_unit_test(comp_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
