// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_borrower.c - one write(2) to devices/ID/borrower, to
 * devices/ID/lease (of a lent device, and of one that is not lent) and to
 * hosts/HOST/state, through the real engine (engine_write_borrower(),
 * engine_write_lease(), engine_write_host_state()) with the memory store
 * and the sim fabric in a temporary run directory.
 *
 * Checks (SPEC section 4): the result is 0 or a negative errno of the
 * SPEC table; a failure leaves the device exactly as it was (available,
 * no windows, no borrower) with last_error "ERRNO: reason"; a success
 * lends to exactly the written value minus one newline (or returns for
 * an empty one).  A lease write (SPEC section 9) gives 0 or EINVAL; a
 * refused one leaves the lease as it was; an accepted one was 0 to
 * 31536000 in digits, at most 16 bytes, and the lend now ends that many
 * seconds from now (or has no lease for 0 and empty); on a device that is
 * not lent it is always EINVAL.  After each input the device is returned
 * and the host put back online, so every input starts from the same
 * engine state.
 *
 * Before each write of a value the write path accepts as a name, the
 * plan of it (engine_plan(), devices/ID/plans/HOST) changes nothing (the
 * device's generation stays) and says what the write then does: "ok"
 * for a success, else the write's errno and exactly its last_error.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_engine.h"

static const char cfg_text[] =
	"[cluster]\ntimeout_ms = 2000\n"
	"[host a]\niommu = on\n"
	"[host b]\nram = 0x0-0x7fffffff\n"
	"[host c]\n"
	"[link]\na = a\nb = b\n"
	"[link]\na = b\nb = c\n"
	"[device a:0000:01:00.0]\nbar0 = 16M\nbar2 = 64K\n"
	"[device a:0000:02:00.0]\nbar0 = 16K\n"
	"[vm b/vm1]\nram = 0x0-0x3fffffff\n"
	"[policy]\ndeny = a:0000:02:00.0\n";

#define DEV "a:0000:01:00.0"
#define DENIED "a:0000:02:00.0"

static struct engine *engine;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	engine = fuzz_engine_up("fuzz_borrower", cfg_text);
	return 0;
}

/* The value a successful write stands for: one trailing newline off. */
static void expected_value(const uint8_t *data, size_t size, char *out)
{
	if (size && data[size - 1] == '\n')
		size--;
	FUZZ_ASSERT(size <= BORROWER_MAX);
	memcpy(out, data, size);
	out[size] = '\0';
	/* a successful value has no NUL, space or control byte */
	FUZZ_ASSERT(strlen(out) == size);
}

static void check_available(const char *devid)
{
	struct device_view v;

	FUZZ_ASSERT(engine_device_view(engine, devid, &v) == 0);
	FUZZ_ASSERT(v.state == DEV_AVAILABLE);
	FUZZ_ASSERT(v.nwindows == 0 && v.borrower[0] == '\0');
	FUZZ_ASSERT(!v.has_route);
	device_view_release(&v);
}

/* A value the write path takes as a name (not refused as bytes): a plan's. */
static bool plannable(const uint8_t *data, size_t size, char *out)
{
	if (size && data[size - 1] == '\n')
		size--;
	if (size == 0 || size > BORROWER_MAX)
		return false;
	for (size_t i = 0; i < size; i++)
		if (data[i] < 0x21 || data[i] > 0x7e)
			return false;
	memcpy(out, data, size);
	out[size] = '\0';
	return true;
}

/* The plan of @value for @devid into @text (its outcome returned); nothing changes. */
static int plan_of(const char *devid, const char *value, char *text, size_t cap)
{
	struct device_view before, after;
	FILE *out = fmemopen(text, cap, "w");
	int r;

	FUZZ_ASSERT(out != NULL);
	FUZZ_ASSERT(engine_device_view(engine, devid, &before) == 0);
	r = engine_plan(engine, devid, value, out, NULL);
	FUZZ_ASSERT(fclose(out) == 0);
	FUZZ_ASSERT(engine_device_view(engine, devid, &after) == 0);
	FUZZ_ASSERT(before.generation == after.generation);
	FUZZ_ASSERT(!strcmp(before.last_error, after.last_error));
	device_view_release(&before);
	device_view_release(&after);
	FUZZ_ASSERT(r <= 0);
	return r;
}

/* The plan's first line is "ok" or exactly the write's last_error. */
static void check_plan(const char *devid, int planned, const char *text, int r)
{
	struct device_view v;
	size_t n = strcspn(text, "\n");

	FUZZ_ASSERT(planned == r);
	if (r == 0) {
		FUZZ_ASSERT(n == 2 && !strncmp(text, "ok", 2));
		return;
	}
	FUZZ_ASSERT(engine_device_view(engine, devid, &v) == 0);
	FUZZ_ASSERT(strlen(v.last_error) == n && !strncmp(v.last_error, text, n));
	device_view_release(&v);
}

static void write_borrower(const char *devid, const uint8_t *data,
			   size_t size)
{
	char reason[REASON_MAX] = "", value[BORROWER_MAX + 1];
	char plan[4096];
	bool planned = plannable(data, size, value);
	int pr = planned ? plan_of(devid, value, plan, sizeof(plan)) : 0;
	struct device_view v;
	int r;

	r = engine_write_borrower(engine, devid, (const char *)data, size, NULL,
				  reason);
	if (planned)
		check_plan(devid, pr, plan, r);
	FUZZ_ASSERT(r <= 0);
	FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
	if (r < 0) {
		FUZZ_ASSERT(fuzz_spec_errno(r));
		FUZZ_ASSERT(reason[0] != '\0');
		FUZZ_ASSERT(engine_device_view(engine, devid, &v) == 0);
		FUZZ_ASSERT(fuzz_terminated(v.last_error, sizeof(v.last_error)));
		FUZZ_ASSERT(!strncmp(v.last_error, errno_name(r),
				     strlen(errno_name(r))));
		device_view_release(&v);
		check_available(devid);
		return;
	}
	expected_value(data, size, value);
	FUZZ_ASSERT(engine_device_view(engine, devid, &v) == 0);
	if (value[0] == '\0') {
		FUZZ_ASSERT(v.state == DEV_AVAILABLE);
	} else {
		FUZZ_ASSERT(strcmp(devid, DENIED) != 0);
		FUZZ_ASSERT(v.state == DEV_LENT);
		FUZZ_ASSERT(!strcmp(v.borrower, value));
		FUZZ_ASSERT(v.nwindows > 0);
	}
	device_view_release(&v);
	if (value[0]) {
		FUZZ_ASSERT(engine_return(engine, devid, reason) == 0);
		check_available(devid);
	}
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The seconds an accepted lease write stands for (digits only), or -1. */
static int64_t lease_value(const uint8_t *data, size_t size)
{
	int64_t v = 0;

	if (size && data[size - 1] == '\n')
		size--;
	if (size > 16)
		return -1;
	for (size_t i = 0; i < size; i++) {
		if (data[i] < '0' || data[i] > '9')
			return -1;
		v = v * 10 + (data[i] - '0');
	}
	return v <= 31536000 ? v : -1;
}

static int64_t lease_of(const char *devid, char *last_error, size_t n)
{
	struct device_view v;
	int64_t at;

	FUZZ_ASSERT(engine_device_view(engine, devid, &v) == 0);
	at = v.lease;
	if (last_error)
		snprintf(last_error, n, "%s", v.last_error);
	device_view_release(&v);
	return at;
}

static void write_lease(const uint8_t *data, size_t size)
{
	char reason[REASON_MAX] = "", err[REASON_MAX + 16];
	int64_t want = lease_value(data, size), t0, at;
	int r;

	/* not lent: refused whatever the value */
	r = engine_write_lease(engine, DENIED, (const char *)data, size, NULL, reason);
	FUZZ_ASSERT(r == -EINVAL);
	FUZZ_ASSERT(lease_of(DENIED, NULL, 0) == 0);

	FUZZ_ASSERT(engine_lend(engine, DEV, "b", reason) == 0);
	FUZZ_ASSERT(engine_write_lease(engine, DEV, "3600", 4, NULL, reason) == 0);
	at = lease_of(DEV, NULL, 0);
	t0 = wall_ns();
	r = engine_write_lease(engine, DEV, (const char *)data, size, NULL, reason);
	FUZZ_ASSERT(r == 0 || r == -EINVAL);
	FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
	FUZZ_ASSERT((r == 0) == (want >= 0));
	if (r < 0) {
		FUZZ_ASSERT(lease_of(DEV, err, sizeof(err)) == at);
		FUZZ_ASSERT(!strncmp(err, "EINVAL: ", 8));
	} else if (want == 0) {
		FUZZ_ASSERT(lease_of(DEV, NULL, 0) == 0);
	} else {
		at = lease_of(DEV, NULL, 0);
		FUZZ_ASSERT(at >= t0 + want * 1000000000LL);
		FUZZ_ASSERT(at <= wall_ns() + want * 1000000000LL);
	}
	FUZZ_ASSERT(engine_return(engine, DEV, reason) == 0);
	check_available(DEV);
	FUZZ_ASSERT(lease_of(DEV, NULL, 0) == 0);
}

static void write_host_state(const uint8_t *data, size_t size)
{
	char reason[REASON_MAX] = "";
	struct host_view hv;
	int r;

	r = engine_write_host_state(engine, "b", (const char *)data, size, NULL,
				    reason);
	FUZZ_ASSERT(r == 0 || r == -EINVAL);
	FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
	FUZZ_ASSERT(engine_host_view(engine, "b", &hv) == 0);
	if (r < 0) {
		FUZZ_ASSERT(hv.online);
		return;
	}
	/* exactly one of the two words, and at most one newline */
	if (size && data[size - 1] == '\n')
		size--;
	FUZZ_ASSERT((size == 6 && !memcmp(data, "online", 6)) ||
		    (size == 7 && !memcmp(data, "offline", 7)));
	if (!hv.online)
		FUZZ_ASSERT(engine_write_host_state(engine, "b", "online", 6, NULL,
						    reason) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4 * BORROWER_MAX)
		return -1; /* all the same: too long */
	write_borrower(DEV, data, size);
	write_borrower(DENIED, data, size);
	write_lease(data, size);
	write_host_state(data, size);
	return 0;
}
