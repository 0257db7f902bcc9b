// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_events.c - the event log's pieces (core/events.h): escaping of
 * values, the ring as an append-only byte stream (offsets that stay
 * valid while lines are appended and trimmed), ordering by SEQ.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"

static void test_names(void **state)
{
	assert_string_equal(event_name(EV_LENDING), "lending");
	assert_string_equal(event_name(EV_TAKEN_BACK), "taken-back");
	assert_string_equal(event_name(EV_DEVICE_REMOVED), "device-removed");
	assert_string_equal(event_name(EV_COUNT), "unknown");
}

/* Plain names bare; anything else quoted, with \" \\ \xNN; cut at 200. */
static void test_kv_escaping(void **state)
{
	char buf[EVENT_TEXT_MAX] = "dev lent";
	char long_value[300];

	event_kv(buf, sizeof(buf), "borrower", "vm:nodeB/vm-1_x.y");
	assert_string_equal(buf, "dev lent borrower=vm:nodeB/vm-1_x.y");
	buf[0] = '\0';
	event_kv(buf, sizeof(buf), "value", "x\001\033[31m\"\\\n\377 y");
	assert_string_equal(buf, " value=\"x\\x01\\x1b[31m\\\"\\\\\\x0a\\xff y\"");
	buf[0] = '\0';
	event_kv(buf, sizeof(buf), "reason", "");
	assert_string_equal(buf, " reason=\"\"");
	memset(long_value, 'a', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	buf[0] = '\0';
	event_kv(buf, sizeof(buf), "v", long_value);
	assert_int_equal(strlen(buf), strlen(" v=") + EVENT_VALUE_MAX + 3);
	assert_string_equal(buf + strlen(buf) - 6, "aaa...");
	/* a full buffer stays NUL-terminated and within bounds */
	char small[16] = "dev x";
	event_kv(small, sizeof(small), "key", "a value with spaces");
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_true(event_text_valid("dev lent x=1"));
	assert_false(event_text_valid("nospace"));
	assert_false(event_text_valid("dev lent\nx"));
	assert_false(event_text_valid(""));
}

static void push(struct evlog *l, uint64_t seq, const char *text)
{
	struct event_rec ev = { .seq = seq, .time_ns = 1000 + (int64_t)seq, .text = text };

	assert_int_equal(evlog_ingest(l, &ev, 1), 1);
}

/* Offsets stay valid across appends; reads span lines; the end reads 0. */
static void test_ring_stream(void **state)
{
	struct evlog l;
	char buf[256];
	uint64_t pos = 0, begin, end, seq;
	size_t n;

	assert_int_equal(evlog_init(&l, 4), 0);
	assert_int_equal(evlog_read(&l, &pos, buf, sizeof(buf)), 0);
	push(&l, 1, "a lent");	 /* "1 1001 a lent\n": 14 bytes */
	push(&l, 2, "b lent");
	n = evlog_read(&l, &pos, buf, 20);
	assert_int_equal(n, 20);
	assert_memory_equal(buf, "1 1001 a lent\n2 1002", 20);
	pos += n;
	push(&l, 3, "c lent");
	n = evlog_read(&l, &pos, buf, sizeof(buf));
	assert_int_equal(n, 8 + 14);
	assert_memory_equal(buf, " b lent\n3 1003 c lent\n", n);
	pos += n;
	assert_int_equal(evlog_read(&l, &pos, buf, sizeof(buf)), 0);
	evlog_span(&l, &begin, &end, &seq, NULL);
	assert_int_equal(begin, 0);
	assert_int_equal(end, 42);
	assert_int_equal(seq, 3);
	/* a SEQ at or below the last is skipped (a reload, our own append) */
	struct event_rec old = { .seq = 2, .text = "b lent" };
	assert_int_equal(evlog_ingest(&l, &old, 1), 0);
	evlog_free(&l);
}

/* Retention: the oldest lines go; a reader behind them skips forward. */
static void test_ring_trim(void **state)
{
	struct evlog l;
	char buf[256], text[16];
	uint64_t pos = 0, begin, end;
	size_t n;

	assert_int_equal(evlog_init(&l, 3), 0);
	for (uint64_t s = 1; s <= 10; s++) {
		snprintf(text, sizeof(text), "d%02u x", (unsigned)s);
		push(&l, s * 2, text); /* SEQ may skip numbers */
	}
	evlog_span(&l, &begin, &end, NULL, NULL);
	assert_true(begin > 0);
	n = evlog_read(&l, &pos, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	assert_int_equal(pos, begin); /* moved to the oldest kept */
	assert_string_equal(buf, "16 1016 d08 x\n18 1018 d09 x\n20 1020 d10 x\n");
	assert_int_equal(end - begin, n);
	/* a read from the middle of a line goes on from there */
	pos = begin + 3;
	n = evlog_read(&l, &pos, buf, 5);
	assert_memory_equal(buf, "1016 ", 5);
	evlog_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_kv_escaping),
		cmocka_unit_test(test_ring_stream),
		cmocka_unit_test(test_ring_trim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
