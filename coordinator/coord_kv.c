/* The rendezvous store: a small key-value map through which collective
 * backends exchange bootstrap data (NCCL unique ids, Gloo addresses).
 *
 * Keys live in per-generation namespaces (the generation a worker's request
 * names), so a rendezvous of generation g can never read a stale value of
 * g-1; when a generation forms, older namespaces are dropped, which also
 * keeps the store's size proportional to one rendezvous. A get may wait:
 * it is parked in `waits` until the key is set or its deadline passes, and
 * answered by the coordinator thread (coord_handlers.c), never blocking it.
 *
 * Everything is bounded: key and value length, number of keys, total bytes,
 * number of parked gets. Runs with coord->lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "herd/herd.h"

#define KV_BUCKETS 1024

herd_result_t coord_kv_init(coord_kv_t *kv)
{
  memset(kv, 0, sizeof *kv);
  kv->buckets = calloc(KV_BUCKETS, sizeof *kv->buckets);
  if (!kv->buckets)
    return herd_error_set(HERD_ENOMEM, "no memory for the KV store");
  kv->n_buckets = KV_BUCKETS;
  return HERD_OK;
}

static void s_entry_free(coord_kv_entry_t *e)
{
  free(e->key);
  free(e->value);
  free(e);
}

void coord_kv_free(coord_kv_t *kv)
{
  for (size_t b = 0; kv->buckets && b < kv->n_buckets; b++)
    for (coord_kv_entry_t *e = kv->buckets[b], *next; e; e = next) {
      next = e->next;
      s_entry_free(e);
    }
  free(kv->buckets);
  free(kv->waits);
  memset(kv, 0, sizeof *kv);
}

static size_t s_bucket(const coord_kv_t *kv, int64_t generation,
                       const char *key)
{
  uint64_t h = 1469598103934665603ull ^ (uint64_t)generation;
  for (const char *p = key; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return (size_t)(h ^ (h >> 31)) & (kv->n_buckets - 1);
}

static coord_kv_entry_t **s_find(const coord_kv_t *kv, int64_t generation,
                                 const char *key)
{
  coord_kv_entry_t **link = &kv->buckets[s_bucket(kv, generation, key)];
  for (; *link; link = &(*link)->next)
    if ((*link)->generation == generation && strcmp((*link)->key, key) == 0)
      return link;
  return link;
}

const coord_kv_entry_t *coord_kv_get(const coord_kv_t *kv, int64_t generation,
                                     const char *key)
{
  return *s_find(kv, generation, key);
}

herd_result_t coord_kv_set(coord_kv_t *kv, int64_t generation, const char *key,
                           const void *value, size_t len)
{
  size_t key_len = strlen(key);
  if (key_len == 0 || key_len > COORD_KV_KEY_MAX || len > COORD_KV_VALUE_MAX)
    return herd_error_set(HERD_ETOOBIG, "KV key or value too long");
  coord_kv_entry_t **link = s_find(kv, generation, key);
  coord_kv_entry_t *e = *link;
  size_t old_len = e ? e->len : 0;
  if (!e && kv->count >= COORD_KV_MAX_KEYS)
    return herd_error_set(HERD_ETOOBIG, "KV store full (%d keys)",
                          COORD_KV_MAX_KEYS);
  if (kv->bytes - old_len + len > COORD_KV_MAX_BYTES)
    return herd_error_set(HERD_ETOOBIG, "KV store full (bytes)");
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return HERD_ENOMEM;
  if (len)
    memcpy(copy, value, len);
  if (!e) {
    e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
      free(e);
      free(copy);
      return HERD_ENOMEM;
    }
    e->generation = generation;
    *link = e;
    kv->count++;
  }
  free(e->value);
  e->value = copy;
  e->len = len;
  kv->bytes = kv->bytes - old_len + len;
  return HERD_OK;
}

void coord_kv_prune(coord_kv_t *kv, int64_t generation)
{
  for (size_t b = 0; b < kv->n_buckets; b++) {
    coord_kv_entry_t **link = &kv->buckets[b];
    while (*link) {
      coord_kv_entry_t *e = *link;
      if (e->generation >= generation) {
        link = &e->next;
        continue;
      }
      *link = e->next;
      kv->count--;
      kv->bytes -= e->len;
      s_entry_free(e);
    }
  }
}

herd_result_t coord_kv_wait_add(coord_kv_t *kv, const coord_kv_wait_t *wait)
{
  if (kv->n_waits == kv->cap_waits) {
    size_t cap = kv->cap_waits ? kv->cap_waits * 2 : 16;
    if (cap > COORD_KV_MAX_WAITS)
      return herd_error_set(HERD_ETOOBIG, "too many waiting KV gets");
    coord_kv_wait_t *grown = realloc(kv->waits, cap * sizeof *grown);
    if (!grown)
      return HERD_ENOMEM;
    kv->waits = grown;
    kv->cap_waits = cap;
  }
  kv->waits[kv->n_waits++] = *wait;
  return HERD_OK;
}

int coord_kv_wait_take(coord_kv_t *kv, int64_t now_ms, int64_t min_generation,
                       coord_kv_wait_t *out)
{
  for (size_t i = 0; i < kv->n_waits; i++) {
    coord_kv_wait_t *w = &kv->waits[i];
    if (w->deadline_ms > now_ms && w->generation >= min_generation &&
        !coord_kv_get(kv, w->generation, w->key))
      continue;
    *out = *w;
    kv->waits[i] = kv->waits[--kv->n_waits];
    return 1;
  }
  return 0;
}
