/* herd_comm_store_t over the coordinator's rendezvous KV.
 *
 * Gloo (and nccl in elastic mode) bootstrap through the coordinator: each
 * rank publishes its addresses under generation-namespaced keys and reads its
 * peers'. This adapter is the only place collectives meet the worker
 * runtime, in its own library so that libherd_collectives does not depend on
 * libherd (which depends on it).
 */
#include <stdlib.h>

#include "comm_internal.h"
#include "herd/worker.h"

#ifdef HERD_WORKER_HAS_KV
static herd_result_t s_set(void *ctx, const char *key, const void *value,
                           size_t len)
{
  return herd_worker_kv_set(ctx, key, value, len);
}

static herd_result_t s_get(void *ctx, const char *key, void *buf, size_t cap,
                           size_t *len, int timeout_ms)
{
  herd_result_t rc = herd_worker_kv_get(ctx, key, buf, cap, len, timeout_ms);
  /* The store contract: a value larger than cap is not an error, *len says
   * how large it is and the caller retries with room. */
  return rc == HERD_ETOOBIG && *len > cap ? HERD_OK : rc;
}

herd_result_t herd_comm_store_from_worker(herd_worker_t *worker,
                                          herd_comm_store_t **store_out)
{
  if (!worker || !store_out)
    return herd_error_set(HERD_EINVAL, "store_from_worker: bad arguments");
  herd_comm_store_t *store = calloc(1, sizeof *store);
  if (!store)
    return HERD_ENOMEM;
  *store = (herd_comm_store_t){.set = s_set, .get = s_get, .ctx = worker};
  *store_out = store;
  return HERD_OK;
}
#else
herd_result_t herd_comm_store_from_worker(herd_worker_t *worker,
                                          herd_comm_store_t **store_out)
{
  (void)worker;
  if (store_out)
    *store_out = NULL;
  return herd_error_set(HERD_EUNSUPPORTED,
                        "this build's worker runtime has no KV store");
}
#endif
