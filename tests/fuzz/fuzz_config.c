// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_config.c - the configuration parser (core/config.c).
 *
 * Each input is parsed twice: as a string (config_load_string) and as a
 * file (config_load on a memfd, which also sees NUL bytes).  Checks:
 *  - an error is -EINVAL with "NAME:LINE: reason", LINE >= 1;
 *  - a NUL byte in a file is an error (it must not cut a line short);
 *  - without NUL bytes both readers agree on the result and the message;
 *  - an accepted config keeps every promise of config.h: names valid,
 *    links between known distinct nodes, devices on known hosts, sizes
 *    powers of two, window_align <= window_max, RAM ranges sorted and
 *    disjoint, and every device id in canonical form.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define FUZZ_CONFIG_MAX (64 << 10) /* bigger inputs only slow the fuzzer */

static void check_ranges(const struct range *r, unsigned n)
{
	FUZZ_ASSERT(n >= 1 && n <= CONFIG_MAX_RAM_RANGES);
	for (unsigned i = 0; i < n; i++) {
		FUZZ_ASSERT(r[i].start <= r[i].end);
		if (i)
			FUZZ_ASSERT(r[i].start > r[i - 1].end);
	}
}

static bool is_node(const struct cluster_config *c, const char *name)
{
	for (unsigned i = 0; i < c->nhosts; i++)
		if (!strcmp(c->hosts[i].name, name))
			return true;
	for (unsigned i = 0; i < c->nswitches; i++)
		if (!strcmp(c->switches[i].name, name))
			return true;
	return false;
}

static void check_config(const struct cluster_config *c)
{
	FUZZ_ASSERT(c->nhosts >= 1);
	FUZZ_ASSERT(name_valid(c->name));
	FUZZ_ASSERT(name_valid(c->group));
	FUZZ_ASSERT(c->timeout_ms >= 1 && c->max_requests >= 1);
	for (unsigned i = 0; i < c->nhosts; i++) {
		const struct cfg_host *h = &c->hosts[i];

		FUZZ_ASSERT(name_valid(h->name));
		FUZZ_ASSERT(config_find_host(c, h->name) == h);
		FUZZ_ASSERT(is_power_of_2(h->window_max));
		FUZZ_ASSERT(is_power_of_2(h->window_align));
		FUZZ_ASSERT(h->window_align <= h->window_max);
		FUZZ_ASSERT(h->lut_entries >= 1 && h->dma_windows >= 1);
		check_ranges(h->ram, h->nram);
	}
	for (unsigned i = 0; i < c->nswitches; i++)
		FUZZ_ASSERT(name_valid(c->switches[i].name));
	for (unsigned i = 0; i < c->nlinks; i++) {
		const struct cfg_link *l = &c->links[i];

		FUZZ_ASSERT(is_node(c, l->a) && is_node(c, l->b));
		FUZZ_ASSERT(strcmp(l->a, l->b) != 0);
		FUZZ_ASSERT(l->bandwidth >= 1);
	}
	for (unsigned i = 0; i < c->ndevices; i++) {
		const struct cfg_device *d = &c->devices[i];
		char host[HOST_NAME_MAX_LEN + 1], canon[DEVICE_ID_MAX];
		char addr[16];
		struct pci_addr a;

		FUZZ_ASSERT(config_find_host(c, d->host) != NULL);
		FUZZ_ASSERT(device_id_parse(d->id, host, &a) == 0);
		FUZZ_ASSERT(!strcmp(host, d->host));
		pci_addr_format(&a, addr, sizeof(addr));
		snprintf(canon, sizeof(canon), "%s:%s", host, addr);
		FUZZ_ASSERT(!strcmp(canon, d->id));
		for (unsigned b = 0; b < PCI_NUM_BARS; b++)
			FUZZ_ASSERT(d->bar[b] == 0 ||
				    (d->bar[b] >= 16 && is_power_of_2(d->bar[b])));
	}
	for (unsigned i = 0; i < c->nvms; i++) {
		FUZZ_ASSERT(config_find_host(c, c->vms[i].host) != NULL);
		FUZZ_ASSERT(name_valid(c->vms[i].name));
		check_ranges(c->vms[i].ram, c->vms[i].nram);
	}
	for (unsigned i = 0; i < c->nautolends; i++)
		FUZZ_ASSERT(c->autolends[i].borrower[0] != '\0');
}

/* "NAME:LINE: reason"; returns the reason part. */
static const char *check_error(const char *name, const char *err)
{
	size_t n = strlen(name);
	char *end;
	unsigned long line;

	FUZZ_ASSERT(fuzz_terminated(err, ERRMSG_MAX));
	FUZZ_ASSERT(strncmp(err, name, n) == 0 && err[n] == ':');
	line = strtoul(err + n + 1, &end, 10);
	FUZZ_ASSERT(end != err + n + 1 && line >= 1);
	FUZZ_ASSERT(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
	return err + n + 1;
}

/* The same bytes through config_load(), from a memfd. */
static int load_file(const uint8_t *data, size_t size, char *path,
		     size_t pathlen, struct cluster_config **out, char *err)
{
	int fd = memfd_create("fuzz.ini", MFD_CLOEXEC);
	int r;

	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(write(fd, data, size) == (ssize_t)size);
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	r = config_load(path, out, err);
	close(fd);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char err_s[ERRMSG_MAX], err_f[ERRMSG_MAX];
	struct cluster_config *cs = NULL, *cf = NULL;
	char path[64];
	char *text;
	int rs, rf;

	if (size > FUZZ_CONFIG_MAX)
		return -1;
	text = fuzz_string(data, size);
	rs = config_load_string("fuzz.ini", text, &cs, err_s);
	rf = load_file(data, size, path, sizeof(path), &cf, err_f);

	FUZZ_ASSERT(rs == 0 || rs == -EINVAL);
	FUZZ_ASSERT(rf == 0 || rf == -EINVAL);
	FUZZ_ASSERT((rs == 0) == (cs != NULL));
	FUZZ_ASSERT((rf == 0) == (cf != NULL));
	if (rs == 0)
		check_config(cs);
	else
		check_error("fuzz.ini", err_s);
	if (rf == 0)
		check_config(cf);
	else
		check_error(path, err_f);

	/* A NUL byte anywhere in a file is refused, never truncates a line. */
	if (memchr(data, '\0', size))
		FUZZ_ASSERT(rf == -EINVAL);
	/* Without NUL bytes the two readers see the same lines. */
	if (!memchr(data, '\0', size)) {
		FUZZ_ASSERT(rs == rf);
		if (rs == 0) {
			FUZZ_ASSERT(cs->nhosts == cf->nhosts);
			FUZZ_ASSERT(cs->ndevices == cf->ndevices);
			FUZZ_ASSERT(cs->nlinks == cf->nlinks);
		} else {
			FUZZ_ASSERT(!strcmp(check_error("fuzz.ini", err_s),
					    check_error(path, err_f)));
		}
	}
	config_free(cs);
	config_free(cf);
	free(text);
	return 0;
}
