/* herd_comm: collectives for one generation of workers.
 *
 * A communicator spans the ranks of one generation. Backends: `mpi` (CPU
 * buffers, static world, MPI_ERRORS_RETURN), `nccl` (GPU buffers: every
 * pointer passed is device memory; non-blocking communicator, abortable),
 * `gloo` (CPU buffers, elastic: a new TCP context per generation, rendezvous
 * through a key-value store, a dead peer is an error). Callers never see the
 * backend: the same calls work for all.
 *
 * Thread safety: one thread drives collectives on a communicator;
 * herd_comm_abort() may be called from any other thread, after which
 * in-flight and later operations return HERD_EABORTED.
 */
#ifndef HERD_COMM_H
#define HERD_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "herd/dtype.h"
#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HERD_OP_SUM = 0, HERD_OP_AVG, HERD_OP_MAX, HERD_OP_MIN } herd_op_t;

typedef enum {
  HERD_BACKEND_MPI = 0,
  HERD_BACKEND_GLOO,
  HERD_BACKEND_NCCL
} herd_backend_t;

/* "mpi"/"gloo"/"nccl" <-> enum; parse returns HERD_EINVAL on unknown. */
const char *herd_backend_name(herd_backend_t backend);
herd_result_t herd_backend_parse(const char *name, herd_backend_t *backend);

typedef struct herd_comm herd_comm_t;
/* A rendezvous key-value store (set, get-with-timeout) that elastic backends
 * bootstrap through; keys are namespaced by generation. */
typedef struct herd_comm_store herd_comm_store_t;
/* The worker runtime's handle (include/herd/worker.h). */
typedef struct herd_worker herd_worker_t;
/* One non-blocking collective in flight (herd_comm_iallreduce). */
typedef struct herd_comm_request herd_comm_request_t;

/* Version 1 ends at cuda_device; version 2 adds store and timeout_ms;
 * version 3 buffer_bytes. */
#define HERD_COMM_CONFIG_VERSION 3
typedef struct {
  int version;                 /* HERD_COMM_CONFIG_VERSION */
  herd_backend_t backend;
  int rank;                    /* -1: take it from the backend (mpi) */
  int world_size;              /* -1: take it from the backend (mpi) */
  int64_t generation;
  size_t bucket_bytes;         /* fusion bucket size, 0 = default 25 MiB */
  size_t first_bucket_bytes;   /* 0 = default 1 MiB */
  int cuda_device;             /* nccl: -1 = the host-local rank (static
                                  mode; rank with a store) modulo the
                                  device count */
  herd_comm_store_t *store;    /* gloo rendezvous, nccl elastic mode (the
                                  unique id travels through it; rank and
                                  world_size then given); NULL for mpi and
                                  nccl static mode (MPI_Bcast). Borrowed:
                                  must outlive herd_comm_new */
  int timeout_ms;              /* gloo: connect/op timeout, 0 = 30000 */
  size_t buffer_bytes;         /* the size of herd_comm_buffer's memory
                                  (the same on every rank); 0: none */
} herd_comm_config_t;

#define HERD_COMM_CONFIG_INIT                                                  \
  { HERD_COMM_CONFIG_VERSION, HERD_BACKEND_MPI, -1, -1, 0, 0, 0, -1, NULL, 0, 0 }

/* What a store does; collectives call these, never anything else of it. */
typedef struct {
  herd_result_t (*set)(void *ctx, const char *key, const void *value,
                       size_t len);
  /* Waits up to timeout_ms for `key`; a value larger than cap is not an
   * error: *len says how large it is, and the caller retries with room. */
  herd_result_t (*get)(void *ctx, const char *key, void *buf, size_t cap,
                       size_t *len, int timeout_ms);
  void (*destroy)(void *ctx); /* may be NULL */
  /* Whether the rendezvous this store serves has been made pointless (a
   * newer roster); asked from another thread while peers connect. May be
   * NULL. */
  int (*superseded)(void *ctx);
} herd_comm_store_ops_t;

/* A store from its operations: how a new rendezvous (the coordinator's KV
 * in libherd, a file store in the tests) plugs into the collectives. host:
 * the address this process advertises to its peers through the store ("" or
 * NULL: loopback, for stores whose ranks all run on one host; at most 63
 * bytes). ctx is the store's from here on (ops->destroy, also on failure).
 * Caller owns *store_out. */
herd_result_t herd_comm_store_new(const herd_comm_store_ops_t *ops, void *ctx,
                                  const char *host,
                                  herd_comm_store_t **store_out);

/* A store over the coordinator's rendezvous KV (herd_worker_kv_set/get).
 * The worker is borrowed and must outlive the store. Caller owns *store_out.
 * Defined in libherd (worker/comm_store.c), not in herd_collectives. */
herd_result_t herd_comm_store_from_worker(herd_worker_t *worker,
                                          herd_comm_store_t **store_out);
/* Destroys and NULLs *store_p; accepts NULL. */
void herd_comm_store_destroy(herd_comm_store_t **store_p);

/* 1 when this build has the gloo backend (libgloo-dev found at build). */
int herd_comm_have_gloo(void);
/* 1 when this build has the nccl backend (CUDA toolkit found at build). */
int herd_comm_have_nccl(void);

/* Creates a communicator; for `mpi` initialises MPI on first use (threaded).
 * Caller owns *comm_out; returns HERD_EBACKEND/HERD_EUNSUPPORTED on failure. */
herd_result_t herd_comm_new(const herd_comm_config_t *config,
                            herd_comm_t **comm_out);
/* Destroys and NULLs *comm_p; accepts NULL. Does not finalize MPI. */
void herd_comm_destroy(herd_comm_t **comm_p);
/* Call once at process end (finalizes MPI if herd initialised it). */
void herd_comm_global_shutdown(void);

/* config.buffer_bytes of memory that all-reduces in place (any range of
 * it, send == recv) without first being copied into the backend: the mpi
 * backend's host shared memory when a host runs several ranks. NULL where
 * the backend has none; any buffer then does as well. Owned by the
 * communicator: valid until herd_comm_destroy. */
void *herd_comm_buffer(herd_comm_t *comm);

int herd_comm_rank(const herd_comm_t *comm);
int herd_comm_world_size(const herd_comm_t *comm);
herd_backend_t herd_comm_backend(const herd_comm_t *comm);

/* recv = reduce(send) over all ranks; send == recv means in place.
 * count 0 is allowed and still synchronises nothing. */
herd_result_t herd_comm_allreduce(herd_comm_t *comm, const void *send,
                                  void *recv, size_t count, herd_dtype_t dtype,
                                  herd_op_t op);
/* In-place all-reduce of one flat buffer in fusion buckets of the configured
 * size (first bucket smaller); equal result to herd_comm_allreduce. */
herd_result_t herd_comm_allreduce_buckets(herd_comm_t *comm, void *buf,
                                          size_t count, herd_dtype_t dtype,
                                          herd_op_t op);
/* All-reduce of n separate tensors (bufs[i] holds counts[i] elements), each
 * reduced in place. Adjacent tensors that are contiguous in memory are
 * reduced where they lie; the rest are packed into buckets of the configured
 * size, one collective per bucket, and unpacked. */
herd_result_t herd_comm_allreduce_tensors(herd_comm_t *comm, void **bufs,
                                          const size_t *counts, size_t n,
                                          herd_dtype_t dtype, herd_op_t op);
/* Non-blocking all-reduce: queued on the communicator's progress thread (in
 * call order) and returns at once; the buffers must stay untouched until
 * herd_comm_wait. Blocking calls on the same communicator first wait for
 * queued ones, so every rank sees the same order. Caller owns *req_out. */
herd_result_t herd_comm_iallreduce(herd_comm_t *comm, const void *send,
                                   void *recv, size_t count, herd_dtype_t dtype,
                                   herd_op_t op, herd_comm_request_t **req_out);
/* Waits for *req_p, frees it, NULLs the pointer; returns its result. */
herd_result_t herd_comm_wait(herd_comm_request_t **req_p);
/* herd_comm_wait that also says when the collective ran on the progress
 * thread (CLOCK_MONOTONIC seconds; either pointer may be NULL). */
herd_result_t herd_comm_wait_timed(herd_comm_request_t **req_p,
                                   double *started_s, double *finished_s);
herd_result_t herd_comm_broadcast(herd_comm_t *comm, void *buf, size_t count,
                                  herd_dtype_t dtype, int root);
herd_result_t herd_comm_barrier(herd_comm_t *comm);
/* Makes in-flight and later operations fail with HERD_EABORTED.
 * Callable from any thread; idempotent. */
herd_result_t herd_comm_abort(herd_comm_t *comm);

/* Waiting on peers, process-wide. Every blocking call above (allreduce,
 * broadcast, barrier, wait) marks the calling thread as waiting for its
 * duration; code that waits on something other than its own computation
 * (a checkpoint write rank 0's peers cannot help) marks itself with
 * begin/end, which nest. herd_comm_waiting_ms says for how long a thread
 * has been waiting now, 0 when none is. The worker runtime sends it with
 * every heartbeat: when all ranks but one wait in a collective and that one
 * does not, it is the one hung (the coordinator's progress watchdog). */
void herd_comm_wait_begin(void);
void herd_comm_wait_end(void);
int64_t herd_comm_waiting_ms(void);

#ifdef __cplusplus
}
#endif
#endif
