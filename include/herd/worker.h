/* The worker runtime (libherd).
 *
 * A training program joins the coordinator once, gets its roster and then
 * reports progress. A background thread owns the ZeroMQ DEALER socket: it
 * sends heartbeats at a steady interval and forwards queued reports, so the
 * report calls never block the training step (a full queue drops the report
 * and counts it).
 *
 * If the coordinator dies, training goes on: reports wait (bounded) in the
 * runtime while the link reconnects with backoff, and on reconnecting the
 * worker re-registers with its generation and rank, so a restarted
 * coordinator adopts it.
 *
 * Thread safety: the report and KV calls may be made from any thread,
 * concurrently.
 */
#ifndef HERD_WORKER_H
#define HERD_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct herd_worker herd_worker_t;

/* Version 1 ends at join_timeout_ms; version 2 adds iface; version 3
 * coord_public_key. */
#define HERD_WORKER_CONFIG_VERSION 3
typedef struct {
  int version;               /* HERD_WORKER_CONFIG_VERSION */
  const char *coord_endpoint; /* NULL: $HERD_COORD */
  const char *token;          /* NULL: $HERD_TOKEN */
  const char *job_id;         /* NULL: $HERD_JOB_ID, else "herd" */
  int launcher_rank;          /* rank from the launcher's env, -1: unknown */
  int launcher_world_size;    /* -1: unknown */
  int heartbeat_interval_ms;  /* 0: default 100 */
  int join_timeout_ms;        /* 0: default 120000 */
  const char *iface;          /* interface whose address peers dial (Gloo,
                                 NCCL); NULL: the one routing to the
                                 coordinator (herd/net.h) */
  const char *coord_public_key; /* the coordinator's CURVE key (Z85); NULL:
                                 $HERD_COORD_KEY; neither: plain text */
} herd_worker_config_t;

#define HERD_WORKER_CONFIG_INIT                                                \
  { HERD_WORKER_CONFIG_VERSION, NULL, NULL, NULL, -1, -1, 0, 0, NULL, NULL }

typedef struct {
  int64_t generation;
  int rank;
  int world_size;
  int state_source_rank; /* rank whose state newcomers take */
  int64_t resume_step;   /* -1: none */
  int join_timeout_ms;   /* the coordinator's wait for a generation to form,
                            so a member's for its next roster; 0: unsaid */
} herd_roster_t;

/* Connects, sends Join with the token and waits for the first roster.
 * A refusal (wrong token/job/version) returns HERD_EAUTH with the
 * coordinator's reason in herd_error_detail(). Caller owns *worker_out. */
herd_result_t herd_worker_join(const herd_worker_config_t *config,
                               herd_worker_t **worker_out);
/* The address this worker advertises to its peers (Gloo pairs, NCCL
 * bootstrap, KV entries): the config's iface's, else the local address of
 * the route to the coordinator; loopback only when the coordinator is on
 * this host. Valid as long as the worker; never NULL after a join. */
const char *herd_worker_advertise_addr(const herd_worker_t *worker);
/* The interface holding that address ("" when unknown), e.g. for
 * NCCL_SOCKET_IFNAME. */
const char *herd_worker_advertise_iface(const herd_worker_t *worker);

/* The current roster. */
herd_result_t herd_worker_roster(herd_worker_t *worker, herd_roster_t *out);

/* 1 once the coordinator said the job finished (every later call that
 * needs membership fails with HERD_ESTATE): a worker still waiting to take
 * part has nothing left to do and exits cleanly. */
int herd_worker_job_done(herd_worker_t *worker);

/* Waits up to timeout_ms for a roster of a generation above
 * after_generation (elastic training: after a peer failed, or after the
 * ranks agreed to admit newcomers). HERD_ETIMEDOUT when none comes (the job
 * fell below --min), HERD_ESTATE when this worker was evicted. */
herd_result_t herd_worker_wait_roster(herd_worker_t *worker,
                                      int64_t after_generation, int timeout_ms,
                                      herd_roster_t *out);

/* Tells the runtime this process's communicator for `generation` is up
 * (its rendezvous finished). A restarted coordinator adopts the generation
 * its workers run only when every member re-registers claiming it with
 * its communicator up: one still in the rendezvous when the old
 * coordinator died (whose keys died with that coordinator's store) makes
 * it form a new generation instead of one that can never finish. A worker
 * that never calls this is never adopted (a restart re-forms). */
void herd_worker_generation_formed(herd_worker_t *worker, int64_t generation);

/* Called on the worker's link thread right after each roster arrives: keep
 * it short and thread-safe (e.g. herd_comm_abort() of a communicator the
 * new roster makes obsolete). NULL removes it. */
typedef void (*herd_worker_roster_hook_t)(void *arg,
                                          const herd_roster_t *roster);
void herd_worker_on_roster(herd_worker_t *worker,
                           herd_worker_roster_hook_t hook, void *arg);

typedef struct {
  int64_t step;            /* global step number just committed (1-based) */
  int64_t epoch;
  int64_t generation;
  int world_size;
  double loss;             /* mean loss of the step over the global batch */
  int64_t samples;         /* samples in the step (global) */
  double samples_per_second; /* global throughput, recent window */
  double step_seconds, compute_seconds, comm_seconds, data_seconds;
  int64_t sample_begin, sample_end; /* epoch sample-range of the step */
  int64_t total_steps;     /* steps the job runs in all, 0 unknown (ETA) */
  double flops_per_sample; /* the model's, forward + backward; 0 unknown */
  double host_peak_flops;  /* this host's peak FLOP/s, 0: not measured here */
} herd_step_report_t;

typedef struct {
  int64_t final_step;
  int64_t epochs;
  double test_accuracy;
  double samples_per_second;
  int world_size;
  int64_t resumed_from_step; /* -1: fresh start */
  char param_sha256[65];     /* hex SHA-256 of the final parameters, or "" */
} herd_done_report_t;

/* Non-blocking reports; never fail the caller (drops are counted). Step
 * reports travel in batches, at most one every 20 ms (the first after a
 * quiet spell at once), so a fast loop costs the coordinator one wake-up
 * per batch, not per step; every other report goes at once, after the
 * step reports queued before it. */
void herd_worker_report_step(herd_worker_t *worker,
                             const herd_step_report_t *report);
void herd_worker_report_epoch(herd_worker_t *worker, int64_t epoch,
                              double test_accuracy, double test_loss);
void herd_worker_report_checkpoint(herd_worker_t *worker, int64_t step,
                                   const char *path);
/* The same, with what the save cost (0: unknown), for the coordinator's
 * herd_checkpoint_* metrics. */
typedef struct {
  int64_t step;
  const char *path;
  double duration_seconds; /* background write + commit */
  int64_t bytes;           /* size of the committed file */
  double stall_seconds;    /* time the save blocked the training step */
} herd_ckpt_report_t;
void herd_worker_report_checkpoint_stats(herd_worker_t *worker,
                                         const herd_ckpt_report_t *report);
void herd_worker_report_done(herd_worker_t *worker,
                             const herd_done_report_t *report);

/* ---- rendezvous store ----------------------------------------------------
 * A small key-value store in the coordinator through which collective
 * backends exchange bootstrap data. Keys are namespaced by the caller's
 * current generation (herd_worker_roster), so every generation starts with
 * an empty store. Both calls block the calling thread only; the background
 * thread carries the request. */
#define HERD_WORKER_KV_KEY_MAX 256      /* bytes, without the NUL */
#define HERD_WORKER_KV_VALUE_MAX 65536  /* bytes */

/* Stores `len` bytes under the NUL-terminated `key` and waits (bounded,
 * 30 s) for the coordinator's acknowledgement. HERD_EINVAL: empty or too
 * long key, len above HERD_WORKER_KV_VALUE_MAX; HERD_ETOOBIG: the
 * coordinator's store is full; HERD_ETIMEDOUT: no acknowledgement. */
herd_result_t herd_worker_kv_set(herd_worker_t *worker, const char *key,
                                 const void *value, size_t len);
/* Waits up to timeout_ms for `key` to be set (in this generation) and
 * copies its value into buf. *len gets the value's size. HERD_ETIMEDOUT:
 * not set in time; HERD_ETOOBIG: the value is larger than cap (*len says
 * how large; nothing copied). */
herd_result_t herd_worker_kv_get(herd_worker_t *worker, const char *key,
                                 void *buf, size_t cap, size_t *len,
                                 int timeout_ms);

/* Flushes queued reports (bounded wait), sends Leave, stops the thread,
 * NULLs *worker_p. Accepts NULL. */
void herd_worker_leave(herd_worker_t **worker_p);

#ifdef __cplusplus
}
#endif
#endif
