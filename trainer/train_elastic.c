/* Elastic membership for herd-train: what a rank does when the worker set
 * changes (DESIGN.md, Generations).
 *
 * A generation is one communicator over one roster. Two things end it:
 *  - a failure: a collective returns a peer error (gloo sees the dead
 *    peer's connection close within milliseconds), or the coordinator's new
 *    roster drops members and the roster hook aborts the communicator (a
 *    hung rank). The step in flight is discarded: parameters change only
 *    after a successful all-reduce, so every survivor still holds the last
 *    committed step (or, if the all-reduce finished on some ranks only, the
 *    one after; the state sync below takes the newest);
 *  - an admission: the coordinator hands out a roster with newcomers. Ranks
 *    that already have it set `reconfigure` in the step tail of the gradient
 *    all-reduce, so every rank switches after the same step at no extra
 *    round trip.
 * Either way every member of the new roster opens the new communicator and
 * enters the generation: the member with the newest step broadcasts the
 * model, optimizer and sampler state, so newcomers and survivors continue
 * from the same bits. Only when no member holds a state (a whole new job)
 * does it fall back to the newest checkpoint.
 */
#include <stdio.h>
#include <stdlib.h>

#include "herd/settings.h"
#include "train.h"

#define S_ROSTER_WAIT_MS_DEFAULT 120000

int herd_train_is_elastic(const herd_train_t *train)
{
  return train->worker && train->comm &&
         herd_comm_backend(train->comm) == HERD_BACKEND_GLOO;
}

int herd_train_recoverable(herd_result_t rc)
{
  return rc == HERD_EPEER || rc == HERD_EABORTED || rc == HERD_ETIMEDOUT ||
         rc == HERD_EBACKEND;
}

/* Link thread: a roster that loses members or moves this rank makes the
 * current communicator useless; abort it so a blocked collective returns.
 * Rosters that only add members are switched to at the agreed step. */
static void s_on_roster(void *arg, const herd_roster_t *roster)
{
  herd_train_t *train = arg;
  pthread_mutex_lock(&train->comm_lock);
  if (train->comm && roster->generation > train->generation &&
      (roster->world_size < train->world_size || roster->rank != train->rank))
    herd_comm_abort(train->comm);
  pthread_mutex_unlock(&train->comm_lock);
}

static void s_close_comm(herd_train_t *train)
{
  pthread_mutex_lock(&train->comm_lock);
  herd_comm_t *comm = train->comm;
  train->comm = NULL;
  pthread_mutex_unlock(&train->comm_lock);
  herd_comm_destroy(&comm);
}

herd_result_t herd_train_open_comm(herd_train_t *train,
                                   const herd_roster_t *roster)
{
  herd_comm_config_t cc = HERD_COMM_CONFIG_INIT;
  cc.backend = HERD_BACKEND_GLOO;
  cc.rank = roster->rank;
  cc.world_size = roster->world_size;
  cc.generation = roster->generation;
  herd_comm_t *comm = NULL;
  if (roster->world_size > 1) /* a single rank needs no rendezvous */
    HERD_CHECK(herd_comm_store_from_worker(train->worker, &cc.store));
  herd_result_t rc = herd_comm_new(&cc, &comm);
  herd_comm_store_destroy(&cc.store);
  HERD_CHECK(rc);
  pthread_mutex_lock(&train->comm_lock);
  train->comm = comm;
  train->rank = roster->rank;
  train->world_size = roster->world_size;
  train->generation = roster->generation;
  pthread_mutex_unlock(&train->comm_lock);
  herd_log_set_context(train->rank, train->generation);
  herd_worker_on_roster(train->worker, s_on_roster, train);
  herd_worker_generation_formed(train->worker, roster->generation);
  return HERD_OK;
}

/* The newest state any member holds, broadcast by the lowest rank holding
 * it; the newest checkpoint when no member holds one. */
static herd_result_t s_sync_state(herd_train_t *train)
{
  int64_t newest = train->has_state ? train->step : -1;
  HERD_CHECK(herd_comm_allreduce(train->comm, &newest, &newest, 1,
                                 HERD_DTYPE_I64, HERD_OP_MAX));
  if (newest < 0)
    return herd_train_resume(train);
  int32_t source = train->has_state && train->step == newest ? train->rank
                                                             : INT32_MAX;
  HERD_CHECK(herd_comm_allreduce(train->comm, &source, &source, 1,
                                 HERD_DTYPE_I32, HERD_OP_MIN));
  /* --device cuda: the state lives on the GPU; the host copy is refreshed
   * only for checkpoints, so the source sends a fresh one and every rank
   * takes what it received back to its GPU (else a survivor would go on
   * from its own, and a newcomer from a stale, copy: replicas would
   * diverge). */
  if (train->cuda && source == train->rank)
    HERD_CHECK(herd_train_cuda_download(train));
  int64_t header[HERD_TRAIN_HEADER_LEN] = {
      1, train->step, train->epoch, train->step_in_epoch,
      train->optim ? herd_optim_step_count(train->optim) : 0};
  HERD_CHECK(herd_train_broadcast_state(train, source, header));
  if (train->cuda)
    HERD_CHECK(herd_train_cuda_upload(train));
  if (!train->has_state)
    fprintf(stderr, "herd-train: rank %d joined generation %lld at step %lld "
                    "(state from rank %d)\n", train->rank,
            (long long)train->generation, (long long)train->step, source);
  train->has_state = 1;
  return HERD_OK;
}

herd_result_t herd_train_enter_generation(herd_train_t *train,
                                          herd_result_t local_rc)
{
  HERD_CHECK(herd_train_agree(train, local_rc));
  return s_sync_state(train);
}

int herd_train_join_timeout_ms(herd_train_t *train)
{
  /* The coordinator's, once a roster said it: it decides how long a
   * generation may take to form. Before, the setting (herd run passes its
   * --join-timeout on), which the registry bounds to a day, so the
   * milliseconds fit an int. */
  herd_roster_t roster;
  if (train && train->worker &&
      herd_worker_roster(train->worker, &roster) == HERD_OK &&
      roster.join_timeout_ms > 0)
    return roster.join_timeout_ms;
  double seconds = 0;
  if (herd_setting_double(HERD_S_JOIN_TIMEOUT, &seconds) != HERD_OK ||
      seconds <= 0)
    return S_ROSTER_WAIT_MS_DEFAULT;
  return (int)(seconds * 1000);
}

/* One attempt: the next roster after `after`, its communicator, the state. */
static herd_result_t s_join_next(herd_train_t *train, int64_t after,
                                 int *no_roster)
{
  herd_roster_t roster;
  herd_result_t rc = herd_worker_wait_roster(
      train->worker, after, herd_train_join_timeout_ms(train), &roster);
  *no_roster = rc != HERD_OK;
  if (rc != HERD_OK) {
    if (train->rank == 0 && train->has_state)
      herd_train_save(train); /* something to resume from */
    return rc;
  }
  rc = herd_train_open_comm(train, &roster);
  if (rc == HERD_OK) {
    HERD_LOG(HERD_LOG_INFO, "train", "generation %lld: rank %d of %d",
             (long long)train->generation, train->rank, train->world_size);
    rc = herd_train_enter_generation(train, HERD_OK);
  }
  train->generation = roster.generation; /* a retry waits past this one */
  return rc;
}

herd_result_t herd_train_reconfigure(herd_train_t *train, herd_result_t why)
{
  if (why != HERD_OK)
    HERD_LOG(HERD_LOG_WARN, "train", "generation %lld lost a member (%s); "
             "discarding step %lld", (long long)train->generation,
             herd_error_detail(), (long long)train->step + 1);
  /* Members may keep dying while a generation forms (two kills a few ms
   * apart give two rosters): a rendezvous or state sync that fails that way
   * is retried with the next roster. Each wait is bounded, and so are the
   * attempts. */
  herd_result_t rc = HERD_ERECONFIG;
  for (int attempt = 0; attempt < 64; attempt++) {
    s_close_comm(train);
    int no_roster = 0;
    rc = s_join_next(train, train->generation, &no_roster);
    if (rc == HERD_OK || no_roster ||
        !(herd_train_recoverable(rc) || rc == HERD_ERECONFIG))
      break;
    HERD_LOG(HERD_LOG_WARN, "train", "generation %lld did not form (%s); "
             "waiting for the next", (long long)train->generation,
             herd_error_detail());
  }
  return rc;
}
