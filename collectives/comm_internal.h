/* Private to collectives/: the backend interface behind herd_comm_t.
 *
 * comm.c validates arguments, handles abort state and fusion buckets once;
 * each backend (comm_mpi.c, later gloo and nccl) only moves bytes.
 */
#ifndef HERD_COMM_INTERNAL_H
#define HERD_COMM_INTERNAL_H

#include <stdatomic.h>

#include "herd/comm.h"

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
} herd_comm_ops_t;

struct herd_comm {
  const herd_comm_ops_t *ops;
  herd_comm_config_t config;
  int rank;
  int world_size;
  atomic_int aborted;
  void *backend; /* owned by the backend */
};

/* Backend constructors: fill comm->ops, rank, world_size, backend. */
herd_result_t herd_comm_mpi_init(herd_comm_t *comm);
void herd_comm_mpi_shutdown(void);
/* MPI_Init if needed (the nccl backend bootstraps over MPI in static mode). */
herd_result_t herd_comm_mpi_ensure(void);
#ifdef HERD_HAVE_NCCL
herd_result_t herd_comm_nccl_init(herd_comm_t *comm);
#endif

/* Elementwise helpers shared by backends that reduce on the host. */
float herd_half_to_float(uint16_t half);
uint16_t herd_float_to_half(float value);
float herd_bf16_to_float(uint16_t value);
uint16_t herd_float_to_bf16(float value);
/* dst[i] = op(dst[i], src[i]) for count elements (AVG behaves as SUM). */
void herd_reduce_into(void *dst, const void *src, size_t count,
                      herd_dtype_t dtype, herd_op_t op);
/* buf[i] /= divisor, for AVG after a SUM. */
void herd_scale_down(void *buf, size_t count, herd_dtype_t dtype, int divisor);

#endif
