/* herd_comm_store_t over the coordinator's rendezvous KV.
 *
 * Gloo (and nccl in elastic mode) bootstrap through the coordinator: each
 * rank publishes its addresses under generation-namespaced keys and reads its
 * peers'. This adapter is the only place collectives meet the worker
 * runtime. It lives in libherd and plugs into the collectives through their
 * public store interface (herd_comm_store_new), so the dependency points
 * one way: libherd -> herd_collectives.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "herd/comm.h"
#include "herd/worker.h"

/* A rendezvous belongs to one generation; once the coordinator hands out a
 * newer roster (another member died meanwhile) waiting on is pointless, so
 * gets wait in short slices and give up with HERD_ERECONFIG. */
#define S_SLICE_MS 100

typedef struct {
  herd_worker_t *worker;
  int64_t generation; /* the roster's when the store was made */
} s_ctx_t;

static int s_superseded(void *arg)
{
  const s_ctx_t *ctx = arg;
  herd_roster_t roster;
  /* Refused (evicted, or the job finished) ends every rendezvous too. */
  return herd_worker_roster(ctx->worker, &roster) != HERD_OK ||
         roster.generation > ctx->generation;
}

static herd_result_t s_set(void *arg, const char *key, const void *value,
                           size_t len)
{
  s_ctx_t *ctx = arg;
  return herd_worker_kv_set(ctx->worker, key, value, len);
}

static herd_result_t s_get(void *arg, const char *key, void *buf, size_t cap,
                           size_t *len, int timeout_ms)
{
  s_ctx_t *ctx = arg;
  herd_result_t rc = HERD_ETIMEDOUT;
  for (int waited = 0; rc == HERD_ETIMEDOUT && waited < timeout_ms;
       waited += S_SLICE_MS) {
    if (s_superseded(ctx))
      return herd_error_set(HERD_ERECONFIG, "rendezvous of generation %lld "
                            "superseded (a newer roster, or no longer a member)",
                            (long long)ctx->generation);
    int slice = timeout_ms - waited < S_SLICE_MS ? timeout_ms - waited
                                                 : S_SLICE_MS;
    rc = herd_worker_kv_get(ctx->worker, key, buf, cap, len, slice);
  }
  /* The store contract: a value larger than cap is not an error, *len says
   * how large it is and the caller retries with room. */
  return rc == HERD_ETOOBIG && *len > cap ? HERD_OK : rc;
}

herd_result_t herd_comm_store_from_worker(herd_worker_t *worker,
                                          herd_comm_store_t **store_out)
{
  if (!worker || !store_out)
    return herd_error_set(HERD_EINVAL, "store_from_worker: bad arguments");
  herd_roster_t roster;
  HERD_CHECK(herd_worker_roster(worker, &roster));
  static const herd_comm_store_ops_t ops = {.set = s_set, .get = s_get,
                                            .destroy = free,
                                            .superseded = s_superseded};
  s_ctx_t *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    return HERD_ENOMEM;
  *ctx = (s_ctx_t){worker, roster.generation};
  return herd_comm_store_new(&ops, ctx, herd_worker_advertise_addr(worker),
                             store_out);
}
