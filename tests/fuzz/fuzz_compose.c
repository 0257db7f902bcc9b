// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_compose.c - one write(2) to compositions/NAME/devices, borrower
 * or lease (SPEC section 10), through the real engine
 * (engine_compo_write_devices(), engine_compo_write_borrower(),
 * engine_compo_write_lease()) with the memory store and the sim fabric in
 * a temporary run directory.  The first byte of the input picks the file
 * (bit 1: lease, else bit 0: borrower, else devices), the rest is the
 * write.
 *
 * Checks: the result is 0 or a negative errno of the SPEC table; a
 * refused devices write leaves the list as it was, with last_error
 * "ERRNO: ..."; an accepted one stores exactly the IDs written (one
 * trailing newline off).  A borrower write lends every device or none: a
 * refused one leaves the composition available and every member
 * available, with no windows (last_error "ERRNO: ..."); an accepted one
 * leaves every member lent to exactly the value.  A lease write goes to
 * the composition lent to b: a refused one (EINVAL) leaves no member with
 * a lease, last_error "EINVAL: ..."; an accepted one gives every member
 * the one deadline N seconds from now (none for 0 or empty), as the
 * composition shows it.  After each input the
 * composition is returned and its list put back, so every input starts
 * from the same engine state.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "fuzz_engine.h"

static const char cfg_text[] =
	"[cluster]\ntimeout_ms = 2000\n"
	"[host a]\n[host b]\n[host c]\n"
	"[link]\na = a\nb = b\n"
	"[link]\na = b\nb = c\n"
	"[device a:0000:01:00.0]\nbar0 = 16M\n"
	"[device c:0000:01:00.0]\nbar0 = 64K\n"
	"[device b:0000:01:00.0]\nbar0 = 16K\n"
	"[policy]\ndeny = b:0000:01:00.0\n";

#define NAME "fz"
#define LIST "a:0000:01:00.0\nc:0000:01:00.0"
#define OTHER "b:0000:01:00.0" /* in composition "other" */

static const char *const members[] = { "a:0000:01:00.0", "c:0000:01:00.0" };

static struct engine *engine;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char reason[REASON_MAX] = "";

	engine = fuzz_engine_up("fuzz_compose", cfg_text);
	FUZZ_ASSERT(engine_compo_create(engine, NAME, reason) == 0);
	FUZZ_ASSERT(engine_compo_write_devices(engine, NAME, LIST, strlen(LIST), NULL,
					       reason) == 0);
	FUZZ_ASSERT(engine_compo_create(engine, "other", reason) == 0);
	FUZZ_ASSERT(engine_compo_write_devices(engine, "other", OTHER, strlen(OTHER),
					       NULL, reason) == 0);
	return 0;
}

static void view(struct compo_view *v)
{
	FUZZ_ASSERT(engine_compo_view(engine, NAME, v) == 0);
	FUZZ_ASSERT(fuzz_terminated(v->last_error, sizeof(v->last_error)));
	FUZZ_ASSERT(fuzz_terminated(v->devices, sizeof(v->devices)));
}

static void check_member(const char *devid, const char *borrower)
{
	struct device_view d;

	FUZZ_ASSERT(engine_device_view(engine, devid, &d) == 0);
	FUZZ_ASSERT(d.state == (borrower[0] ? DEV_LENT : DEV_AVAILABLE));
	FUZZ_ASSERT(!strcmp(d.borrower, borrower));
	FUZZ_ASSERT(borrower[0] ? d.nwindows > 0 : d.nwindows == 0);
	device_view_release(&d);
}

static void refused(int r, const struct compo_view *before)
{
	struct compo_view *v = malloc(sizeof(*v));

	FUZZ_ASSERT(v != NULL);
	FUZZ_ASSERT(fuzz_spec_errno(r));
	view(v);
	FUZZ_ASSERT(!strncmp(v->last_error, errno_name(r), strlen(errno_name(r))));
	FUZZ_ASSERT(!strcmp(v->devices, before->devices));
	FUZZ_ASSERT(v->state == COMPO_AVAILABLE && v->borrower[0] == '\0');
	for (size_t i = 0; i < 2; i++)
		check_member(members[i], "");
	free(v);
}

static void write_devices(const uint8_t *data, size_t size,
			  const struct compo_view *before)
{
	char reason[REASON_MAX] = "";
	struct compo_view *v;
	int r;

	r = engine_compo_write_devices(engine, NAME, (const char *)data, size, NULL,
				       reason);
	FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -EBUSY);
		refused(r, before);
		return;
	}
	FUZZ_ASSERT(r == 0);
	v = malloc(sizeof(*v));
	FUZZ_ASSERT(v != NULL);
	view(v);
	if (size && data[size - 1] == '\n')
		size--;
	FUZZ_ASSERT(strlen(v->devices) == size && !memcmp(v->devices, data, size));
	FUZZ_ASSERT(strstr(v->devices, OTHER) == NULL);
	free(v);
	FUZZ_ASSERT(engine_compo_write_devices(engine, NAME, LIST, strlen(LIST),
					       NULL, reason) == 0);
}

static void write_borrower(const uint8_t *data, size_t size,
			   const struct compo_view *before)
{
	char reason[REASON_MAX] = "", value[BORROWER_MAX + 1];
	struct compo_view *v;
	int r;

	r = engine_compo_write_borrower(engine, NAME, (const char *)data, size,
					NULL, reason);
	FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
	if (r < 0) {
		refused(r, before);
		return;
	}
	FUZZ_ASSERT(r == 0);
	if (size && data[size - 1] == '\n')
		size--;
	FUZZ_ASSERT(size <= BORROWER_MAX);
	memcpy(value, data, size);
	value[size] = '\0';
	FUZZ_ASSERT(strlen(value) == size);
	v = malloc(sizeof(*v));
	FUZZ_ASSERT(v != NULL);
	view(v);
	FUZZ_ASSERT(v->state == (value[0] ? COMPO_LENT : COMPO_AVAILABLE));
	FUZZ_ASSERT(!strcmp(v->borrower, value));
	free(v);
	for (size_t i = 0; i < 2; i++)
		check_member(members[i], value);
	FUZZ_ASSERT(engine_compo_write_borrower(engine, NAME, "\n", 1, NULL,
						reason) == 0);
	for (size_t i = 0; i < 2; i++)
		check_member(members[i], "");
}

/* The deadline every member has (wall ns, 0 none): all the same. */
static int64_t members_lease(void)
{
	struct device_view d;
	int64_t at = 0;

	for (size_t i = 0; i < 2; i++) {
		FUZZ_ASSERT(engine_device_view(engine, members[i], &d) == 0);
		FUZZ_ASSERT(d.state == DEV_LENT);
		FUZZ_ASSERT(i == 0 || d.lease == at);
		at = d.lease;
		device_view_release(&d);
	}
	return at;
}

static void write_lease(const uint8_t *data, size_t size)
{
	char reason[REASON_MAX] = "", digits[32];
	struct compo_view *v = malloc(sizeof(*v));
	int64_t t0, at;
	uint64_t n = 0;
	int r;

	FUZZ_ASSERT(v != NULL);
	FUZZ_ASSERT(engine_compo_write_borrower(engine, NAME, "b", 1, NULL,
						reason) == 0);
	t0 = now_wall_ns();
	r = engine_compo_write_lease(engine, NAME, (const char *)data, size, NULL,
				     reason);
	FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
	view(v);
	at = members_lease();
	FUZZ_ASSERT(v->lease == at && v->state == COMPO_LENT);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL && at == 0);
		FUZZ_ASSERT(!strncmp(v->last_error, "EINVAL: ", 8));
	} else {
		FUZZ_ASSERT(r == 0 && v->last_error[0] == '\0');
		if (size && data[size - 1] == '\n')
			size--;
		FUZZ_ASSERT(size < sizeof(digits));
		for (size_t i = 0; i < size; i++) {
			FUZZ_ASSERT(data[i] >= '0' && data[i] <= '9');
			n = n * 10 + (data[i] - '0');
		}
		FUZZ_ASSERT(n <= LEASE_MAX_S);
		FUZZ_ASSERT(n ? at >= t0 + (int64_t)n * 1000000000LL &&
				at <= now_wall_ns() + (int64_t)n * 1000000000LL
			      : at == 0);
	}
	free(v);
	FUZZ_ASSERT(engine_compo_write_borrower(engine, NAME, "\n", 1, NULL,
						reason) == 0);
	for (size_t i = 0; i < 2; i++)
		check_member(members[i], "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct compo_view *before;

	if (size == 0)
		return 0;
	before = malloc(sizeof(*before));
	FUZZ_ASSERT(before != NULL);
	view(before);
	FUZZ_ASSERT(before->state == COMPO_AVAILABLE);
	if (data[0] & 2)
		write_lease(data + 1, size - 1);
	else if (data[0] & 1)
		write_borrower(data + 1, size - 1, before);
	else
		write_devices(data + 1, size - 1, before);
	free(before);
	return 0;
}
