// SPDX-License-Identifier: LGPL-2.1-or-later
#include "hashmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The hash is kept with the key: a probe compares it first and reads the
 * key (elsewhere in memory) only when it matches, so a lookup among
 * 100,000 keys touches the bucket array and one key.
 */
struct bucket {
	const char *key; /* NULL: empty; TOMBSTONE: deleted */
	void *value;
	uint64_t hash;
};

struct hashmap {
	struct bucket *b;
	size_t cap; /* power of two */
	size_t size;
	size_t used; /* size + tombstones */
};

static const char tombstone[1];
#define TOMBSTONE (&tombstone[0])

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	/*
	 * FNV-1a's low bits (the bucket index) only see the low bits of
	 * each byte: fold the high ones in.
	 */
	return h ^ (h >> 29) ^ (h >> 43);
}

struct hashmap *hashmap_new(size_t expected)
{
	struct hashmap *h = calloc(1, sizeof(*h));
	size_t cap = 16;

	if (!h)
		return NULL;
	while (cap * 7 / 10 < expected)
		cap <<= 1;
	h->b = calloc(cap, sizeof(*h->b));
	if (!h->b) {
		free(h);
		return NULL;
	}
	h->cap = cap;
	return h;
}

void hashmap_free(struct hashmap *h)
{
	hashmap_free_values(h, NULL);
}

void hashmap_free_values(struct hashmap *h, void (*free_value)(void *))
{
	if (!h)
		return;
	for (size_t i = 0; free_value && i < h->cap; i++)
		if (h->b[i].key && h->b[i].key != TOMBSTONE)
			free_value(h->b[i].value);
	free(h->b);
	free(h);
}

static struct bucket *find(const struct hashmap *h, const char *key,
			   uint64_t hash, struct bucket **free_slot)
{
	size_t mask = h->cap - 1;
	size_t i = hash & mask;

	if (free_slot)
		*free_slot = NULL;
	for (;;) {
		struct bucket *b = &h->b[i];

		if (!b->key) {
			if (free_slot && !*free_slot)
				*free_slot = b;
			return NULL;
		}
		if (b->key == TOMBSTONE) {
			if (free_slot && !*free_slot)
				*free_slot = b;
		} else if (b->hash == hash && strcmp(b->key, key) == 0) {
			return b;
		}
		i = (i + 1) & mask;
	}
}

static int grow(struct hashmap *h)
{
	struct hashmap n = { .cap = h->cap * 2 };

	if (h->size * 10 < h->cap * 4)
		n.cap = h->cap; /* mostly tombstones: rehash in place */
	n.b = calloc(n.cap, sizeof(*n.b));
	if (!n.b)
		return -ENOMEM;
	for (size_t i = 0; i < h->cap; i++) {
		struct bucket *slot;

		if (!h->b[i].key || h->b[i].key == TOMBSTONE)
			continue;
		find(&n, h->b[i].key, h->b[i].hash, &slot);
		*slot = h->b[i];
		n.size++;
	}
	free(h->b);
	n.used = n.size;
	*h = n;
	return 0;
}

int hashmap_put(struct hashmap *h, const char *key, void *value)
{
	uint64_t hash = hash_str(key);
	struct bucket *slot;

	if ((h->used + 1) * 10 > h->cap * 7) {
		int r = grow(h);

		if (r < 0)
			return r;
	}
	if (find(h, key, hash, &slot))
		return -EEXIST;
	if (!slot->key)
		h->used++;
	slot->key = key;
	slot->value = value;
	slot->hash = hash;
	h->size++;
	return 0;
}

void *hashmap_get(const struct hashmap *h, const char *key)
{
	struct bucket *b = find(h, key, hash_str(key), NULL);

	return b ? b->value : NULL;
}

void *hashmap_remove(struct hashmap *h, const char *key)
{
	struct bucket *b = find(h, key, hash_str(key), NULL);
	void *v;

	if (!b)
		return NULL;
	v = b->value;
	b->key = TOMBSTONE;
	b->value = NULL;
	h->size--;
	return v;
}

size_t hashmap_size(const struct hashmap *h)
{
	return h->size;
}
