/* herd_comm: collectives for one generation of workers.
 *
 * A communicator spans the ranks of one generation. Backends: `mpi` (CPU
 * buffers, static world, MPI_ERRORS_RETURN), `nccl` (GPU buffers: every
 * pointer passed is device memory; non-blocking communicator, abortable),
 * later `gloo`. Callers never see the backend: the same calls work for all.
 *
 * Thread safety: one thread drives collectives on a communicator;
 * herd_comm_abort() may be called from any other thread, after which
 * in-flight and later operations return HERD_EABORTED.
 */
#ifndef HERD_COMM_H
#define HERD_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HERD_DTYPE_F32 = 0,
  HERD_DTYPE_F64,
  HERD_DTYPE_F16,
  HERD_DTYPE_BF16,
  HERD_DTYPE_I32,
  HERD_DTYPE_I64,
  HERD_DTYPE_U8
} herd_dtype_t;

typedef enum { HERD_OP_SUM = 0, HERD_OP_AVG, HERD_OP_MAX, HERD_OP_MIN } herd_op_t;

typedef enum {
  HERD_BACKEND_MPI = 0,
  HERD_BACKEND_GLOO,
  HERD_BACKEND_NCCL
} herd_backend_t;

/* Bytes of one element of `dtype`. */
size_t herd_dtype_size(herd_dtype_t dtype);
/* "mpi"/"gloo"/"nccl" <-> enum; parse returns HERD_EINVAL on unknown. */
const char *herd_backend_name(herd_backend_t backend);
herd_result_t herd_backend_parse(const char *name, herd_backend_t *backend);

typedef struct herd_comm herd_comm_t;

#define HERD_COMM_CONFIG_VERSION 1
typedef struct {
  int version;                 /* HERD_COMM_CONFIG_VERSION */
  herd_backend_t backend;
  int rank;                    /* -1: take it from the backend (mpi) */
  int world_size;              /* -1: take it from the backend (mpi) */
  int64_t generation;
  size_t bucket_bytes;         /* fusion bucket size, 0 = default 25 MiB */
  size_t first_bucket_bytes;   /* 0 = default 1 MiB */
  int cuda_device;             /* nccl: -1 = local rank modulo device count */
} herd_comm_config_t;

#define HERD_COMM_CONFIG_INIT                                                  \
  { HERD_COMM_CONFIG_VERSION, HERD_BACKEND_MPI, -1, -1, 0, 0, 0, -1 }

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
herd_result_t herd_comm_broadcast(herd_comm_t *comm, void *buf, size_t count,
                                  herd_dtype_t dtype, int root);
herd_result_t herd_comm_barrier(herd_comm_t *comm);
/* Makes in-flight and later operations fail with HERD_EABORTED.
 * Callable from any thread; idempotent. */
herd_result_t herd_comm_abort(herd_comm_t *comm);

#ifdef __cplusplus
}
#endif
#endif
