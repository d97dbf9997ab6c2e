/* The rendezvous store's worker side: herd_worker_kv_set / _get.
 *
 * A call takes a slot in worker->kv (under worker->lock), queues its request
 * with a fresh request_id through the same inproc queue as the reports, and
 * sleeps on worker->changed. The link thread matches the coordinator's
 * KvValue to the slot by request_id and copies the value straight into the
 * caller's buffer (worker_kv_apply), so no value is held twice. A reply that
 * arrives after the caller gave up finds no slot and is dropped. Keys are
 * namespaced by the caller's current generation.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "herd/clock.h"
#include "herd/herd.h"
#include "runtime_internal.h"

#define WORKER_KV_SET_TIMEOUT_MS 30000
#define WORKER_KV_REPLY_SLACK_MS 2000

/* Takes a free slot; returns its index or -1. Lock held. */
static int s_slot_take(herd_worker_t *worker, void *buf, size_t cap)
{
  for (int i = 0; i < WORKER_KV_SLOTS; i++) {
    worker_kv_slot_t *slot = &worker->kv[i];
    if (slot->in_use)
      continue;
    memset(slot, 0, sizeof *slot);
    slot->in_use = 1;
    slot->request_id = ++worker->next_request_id;
    slot->buf = buf;
    slot->cap = cap;
    return i;
  }
  return -1;
}

/* Waits for the slot's reply until the deadline, frees the slot. */
static herd_result_t s_slot_wait(herd_worker_t *worker, int index,
                                 int timeout_ms, int *found, size_t *len)
{
  worker_kv_slot_t *slot = &worker->kv[index];
  struct timespec deadline = herd_deadline_in(CLOCK_MONOTONIC, timeout_ms);
  int timed_out = 0;
  while (!slot->done && !worker->refused && !timed_out)
    timed_out = pthread_cond_timedwait(&worker->changed, &worker->lock,
                                       &deadline) == ETIMEDOUT;
  herd_result_t rc = slot->done ? HERD_OK : HERD_ETIMEDOUT;
  *found = slot->found;
  *len = slot->len;
  slot->in_use = 0;
  return rc;
}

static int64_t s_generation(herd_worker_t *worker)
{
  return worker->have_roster ? worker->roster.generation : 0;
}

herd_result_t herd_worker_kv_set(herd_worker_t *worker, const char *key,
                                 const void *value, size_t len)
{
  if (!worker || !key || !key[0] || strlen(key) > HERD_WORKER_KV_KEY_MAX ||
      len > HERD_WORKER_KV_VALUE_MAX || (!value && len))
    return herd_error_set(HERD_EINVAL, "KV set: bad key or value over %d "
                                       "bytes", HERD_WORKER_KV_VALUE_MAX);
  Herd__Envelope env;
  Herd__KvSet set = HERD__KV_SET__INIT;
  worker_envelope_init(worker, &env);
  set.key = (char *)key;
  set.value.data = (uint8_t *)value;
  set.value.len = len;
  env.body_case = HERD__ENVELOPE__BODY_KV_SET;
  env.kv_set = &set;
  pthread_mutex_lock(&worker->lock);
  int index = s_slot_take(worker, NULL, 0);
  set.request_id = index >= 0 ? worker->kv[index].request_id : 0;
  set.generation = s_generation(worker);
  pthread_mutex_unlock(&worker->lock);
  if (index < 0)
    return herd_error_set(HERD_ETOOBIG, "too many KV calls in flight");
  int queued = worker_queue(worker, &env);
  int found = 0;
  size_t ignored;
  pthread_mutex_lock(&worker->lock);
  herd_result_t rc = queued ? s_slot_wait(worker, index,
                                          WORKER_KV_SET_TIMEOUT_MS, &found,
                                          &ignored)
                            : HERD_EIO;
  if (!queued)
    worker->kv[index].in_use = 0;
  pthread_mutex_unlock(&worker->lock);
  if (rc == HERD_OK && !found)
    return herd_error_set(HERD_ETOOBIG, "coordinator refused KV key '%s'",
                          key);
  if (rc != HERD_OK)
    return herd_error_set(rc, "KV set of '%s' not acknowledged", key);
  return HERD_OK;
}

herd_result_t herd_worker_kv_get(herd_worker_t *worker, const char *key,
                                 void *buf, size_t cap, size_t *len,
                                 int timeout_ms)
{
  if (!worker || !key || !key[0] || strlen(key) > HERD_WORKER_KV_KEY_MAX ||
      !len || (!buf && cap) || timeout_ms < 0)
    return herd_error_set(HERD_EINVAL, "KV get: bad arguments");
  Herd__Envelope env;
  Herd__KvGet get = HERD__KV_GET__INIT;
  worker_envelope_init(worker, &env);
  get.key = (char *)key;
  get.wait_ms = timeout_ms;
  env.body_case = HERD__ENVELOPE__BODY_KV_GET;
  env.kv_get = &get;
  pthread_mutex_lock(&worker->lock);
  int index = s_slot_take(worker, buf, cap);
  get.request_id = index >= 0 ? worker->kv[index].request_id : 0;
  get.generation = s_generation(worker);
  pthread_mutex_unlock(&worker->lock);
  if (index < 0)
    return herd_error_set(HERD_ETOOBIG, "too many KV calls in flight");
  int queued = worker_queue(worker, &env);
  int found = 0;
  pthread_mutex_lock(&worker->lock);
  herd_result_t rc =
      queued ? s_slot_wait(worker, index, timeout_ms + WORKER_KV_REPLY_SLACK_MS,
                           &found, len)
             : HERD_EIO;
  if (!queued)
    worker->kv[index].in_use = 0;
  pthread_mutex_unlock(&worker->lock);
  if (rc != HERD_OK || !found)
    return herd_error_set(HERD_ETIMEDOUT, "KV key '%s' not set within %d ms",
                          key, timeout_ms);
  if (*len > cap)
    return herd_error_set(HERD_ETOOBIG, "KV value of '%s' is %zu bytes, "
                          "buffer %zu", key, *len, cap);
  return HERD_OK;
}

void worker_kv_apply(herd_worker_t *worker, const Herd__KvValue *value)
{
  pthread_mutex_lock(&worker->lock);
  for (int i = 0; i < WORKER_KV_SLOTS; i++) {
    worker_kv_slot_t *slot = &worker->kv[i];
    if (!slot->in_use || slot->done || slot->request_id != value->request_id)
      continue;
    slot->found = value->found;
    slot->len = value->value.len;
    if (slot->buf && value->found && value->value.len &&
        value->value.len <= slot->cap)
      memcpy(slot->buf, value->value.data, value->value.len);
    slot->done = 1;
    pthread_cond_broadcast(&worker->changed);
    break;
  }
  pthread_mutex_unlock(&worker->lock);
}
