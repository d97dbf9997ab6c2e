/* Private to collectives/: the backend interface behind herd_comm_t.
 *
 * comm.c validates arguments, handles abort state and fusion buckets once;
 * each backend (comm_mpi.c, comm_gloo.cc, comm_nccl.c) only moves bytes.
 */
#ifndef HERD_COMM_INTERNAL_H
#define HERD_COMM_INTERNAL_H

#include <pthread.h>

#include "herd/comm.h"

/* The shim in comm_gloo.cc is C++; both views of the flag are one int. */
#ifdef __cplusplus
#include <atomic>
typedef std::atomic<int> herd_atomic_int_t;
#else
#include <stdatomic.h>
typedef atomic_int herd_atomic_int_t;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The rendezvous store behind herd_comm_store_t: plain function pointers so
 * any key-value service (the coordinator KV, a test's file store) fits.
 * get waits up to timeout_ms for the key; *len is the full value length even
 * when it exceeds cap (then only cap bytes are copied). Returns HERD_ETIMEDOUT
 * when the key never appeared. */
struct herd_comm_store {
  herd_result_t (*set)(void *ctx, const char *key, const void *value,
                       size_t len);
  herd_result_t (*get)(void *ctx, const char *key, void *buf, size_t cap,
                       size_t *len, int timeout_ms);
  void (*destroy)(void *ctx);
  int (*superseded)(void *ctx);
  void *ctx;
  /* The address this process advertises to its peers through the store
   * (the worker's route to the coordinator, herd/net.h); "" = loopback,
   * for stores whose ranks all run on one host. */
  char host[64];
};

typedef struct herd_comm_ops {
  const char *name;
  herd_result_t (*allreduce)(herd_comm_t *comm, const void *send, void *recv,
                             size_t count, herd_dtype_t dtype, herd_op_t op);
  herd_result_t (*broadcast)(herd_comm_t *comm, void *buf, size_t count,
                             herd_dtype_t dtype, int root);
  herd_result_t (*barrier)(herd_comm_t *comm);
  /* Wakes in-flight operations where the backend can; may be NULL. */
  void (*abort)(herd_comm_t *comm);
  void (*destroy)(herd_comm_t *comm);
  /* herd_comm_buffer; may be NULL. */
  void *(*buffer)(herd_comm_t *comm);
} herd_comm_ops_t;

/* The progress thread behind herd_comm_iallreduce (comm_async.c). */
typedef struct herd_comm_async herd_comm_async_t;

struct herd_comm {
  const herd_comm_ops_t *ops;
  herd_comm_config_t config;
  int rank;
  int world_size;
  herd_atomic_int_t aborted;
  void *backend;            /* owned by the backend */
  herd_comm_async_t *async; /* started on first iallreduce; NULL before */
  char *stage[2];           /* fusion staging buckets, kept between calls */
  size_t stage_bytes;
};

/* comm_async.c: waits until every queued request has run (blocking calls do
 * this first); stops and frees the thread. */
void herd_comm_async_drain(herd_comm_t *comm);
void herd_comm_async_stop(herd_comm_t *comm);
/* comm.c: argument checks of an allreduce; and the call itself with the
 * abort checks, for callers that already drained the queue. */
herd_result_t herd_comm_allreduce_args(herd_comm_t *comm, const void *send,
                                       void *recv, size_t count,
                                       herd_dtype_t dtype, herd_op_t op);
herd_result_t herd_comm_allreduce_now(herd_comm_t *comm, const void *send,
                                      void *recv, size_t count,
                                      herd_dtype_t dtype, herd_op_t op);

/* 1 when ptr is CUDA device memory (not managed), as the CUDA driver says
 * if this process loaded it; 0 otherwise, without loading CUDA
 * (comm_memory.c). */
int herd_comm_is_device_memory(const void *ptr);

/* Backend constructors: fill comm->ops, rank, world_size, backend. */
herd_result_t herd_comm_mpi_init(herd_comm_t *comm);
void herd_comm_mpi_shutdown(void);
/* MPI_Init if needed (the nccl backend bootstraps over MPI in static mode). */
herd_result_t herd_comm_mpi_ensure(void);
#ifdef HERD_HAVE_NCCL
herd_result_t herd_comm_nccl_init(herd_comm_t *comm);
#endif
#ifdef HERD_HAVE_GLOO
herd_result_t herd_comm_gloo_init(herd_comm_t *comm);
#endif

/* Elementwise helpers shared by backends that reduce on the host. */
float herd_half_to_float(uint16_t half);
uint16_t herd_float_to_half(float value);
/* dst[i] = op(dst[i], src[i]) for count elements (AVG behaves as SUM). */
void herd_reduce_into(void *dst, const void *src, size_t count,
                      herd_dtype_t dtype, herd_op_t op);
/* buf[i] /= divisor, for AVG after a SUM. */
void herd_scale_down(void *buf, size_t count, herd_dtype_t dtype, int divisor);

#ifdef __cplusplus
}
#endif

#endif
