/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hashmap.h - string-keyed hash map (open addressing, FNV-1a).
 *
 * Keys are borrowed, not copied: they must live as long as their entry
 * (in practice they point into the value).  Lookups are O(1); the map
 * grows at 70% load.  Not thread-safe.
 */
#ifndef LENDFS_HASHMAP_H
#define LENDFS_HASHMAP_H

#include <stddef.h>

struct hashmap;

struct hashmap *hashmap_new(size_t expected);
void hashmap_free(struct hashmap *h);
/* The same, calling @free_value on every value first (keys live in them). */
void hashmap_free_values(struct hashmap *h, void (*free_value)(void *));

/* -EEXIST if the key is present, -ENOMEM. */
int hashmap_put(struct hashmap *h, const char *key, void *value);
void *hashmap_get(const struct hashmap *h, const char *key);
/* Returns the removed value, or NULL. */
void *hashmap_remove(struct hashmap *h, const char *key);
size_t hashmap_size(const struct hashmap *h);

#endif
