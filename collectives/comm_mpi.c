/* The `mpi` backend: CPU buffers over Open MPI.
 *
 * A static world: the communicator is a dup of MPI_COMM_WORLD with
 * MPI_ERRORS_RETURN, so MPI failures come back as HERD_EBACKEND instead of
 * killing the process. An MPI collective in flight cannot be interrupted;
 * abort only fails later calls, and a dead peer ends the generation (herd run
 * restarts the job from its newest checkpoint).
 * MPI has no 16-bit float types, so f16/bf16 travel as uint16 with
 * user-defined ops that reduce in float.
 */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "comm_internal.h"
#include "comm_mpi_shm.h"
#include "herd/log.h"

/* Per-call element cap so counts always fit MPI's int arguments. */
#define HERD_MPI_MAX_CHUNK ((size_t)1 << 30)

typedef struct {
  MPI_Comm comm;
  herd_mpi_shm_t *shm; /* NULL: every all-reduce goes to MPI_Allreduce */
} s_mpi_t;

static int s_we_initialized;
static int s_ops_created;
static MPI_Op s_half_ops[2][3]; /* [bf16][sum,max,min] */

static herd_result_t s_mpi_error(int code, const char *what)
{
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return herd_error_set(HERD_EBACKEND, "%s failed: %s", what, text);
}

#define HERD_HALF_OP(fn, is_bf16, op)                                          \
  static void fn(void *in, void *inout, int *len, MPI_Datatype *type)          \
  {                                                                            \
    (void)type;                                                                \
    herd_reduce_into(inout, in, (size_t)*len,                                  \
                     is_bf16 ? HERD_DTYPE_BF16 : HERD_DTYPE_F16, op);          \
  }
HERD_HALF_OP(s_f16_sum, 0, HERD_OP_SUM)
HERD_HALF_OP(s_f16_max, 0, HERD_OP_MAX)
HERD_HALF_OP(s_f16_min, 0, HERD_OP_MIN)
HERD_HALF_OP(s_bf16_sum, 1, HERD_OP_SUM)
HERD_HALF_OP(s_bf16_max, 1, HERD_OP_MAX)
HERD_HALF_OP(s_bf16_min, 1, HERD_OP_MIN)

herd_result_t herd_comm_mpi_ensure(void)
{
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized)
    return herd_error_set(HERD_ESTATE, "MPI was already finalized");
  if (!initialized) {
    int provided = 0;
    int code = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (code != MPI_SUCCESS)
      return herd_error_set(HERD_EBACKEND, "MPI_Init_thread failed (%d)", code);
    s_we_initialized = 1;
  }
  if (s_ops_created)
    return HERD_OK;
  /* Also when the application initialised MPI itself. */
  MPI_User_function *fns[2][3] = {{s_f16_sum, s_f16_max, s_f16_min},
                                  {s_bf16_sum, s_bf16_max, s_bf16_min}};
  for (int b = 0; b < 2; b++)
    for (int o = 0; o < 3; o++)
      MPI_Op_create(fns[b][o], 1, &s_half_ops[b][o]);
  s_ops_created = 1;
  return HERD_OK;
}

static MPI_Datatype s_datatype(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
    return MPI_FLOAT;
  case HERD_DTYPE_F64:
    return MPI_DOUBLE;
  case HERD_DTYPE_I32:
    return MPI_INT32_T;
  case HERD_DTYPE_I64:
    return MPI_INT64_T;
  case HERD_DTYPE_U8:
    return MPI_UINT8_T;
  case HERD_DTYPE_F16:
  case HERD_DTYPE_BF16:
    return MPI_UINT16_T;
  }
  return MPI_DATATYPE_NULL;
}

static MPI_Op s_mpi_op(herd_dtype_t dtype, herd_op_t op)
{
  int index = op == HERD_OP_MAX ? 1 : op == HERD_OP_MIN ? 2 : 0;
  if (dtype == HERD_DTYPE_F16 || dtype == HERD_DTYPE_BF16)
    return s_half_ops[dtype == HERD_DTYPE_BF16][index];
  return index == 1 ? MPI_MAX : index == 2 ? MPI_MIN : MPI_SUM;
}

static herd_result_t s_allreduce(herd_comm_t *comm, const void *send,
                                 void *recv, size_t count, herd_dtype_t dtype,
                                 herd_op_t op)
{
  s_mpi_t *mpi = comm->backend;
  size_t elem = herd_dtype_size(dtype);
  for (size_t done = 0; done < count; done += HERD_MPI_MAX_CHUNK) {
    size_t n = count - done < HERD_MPI_MAX_CHUNK ? count - done
                                                 : HERD_MPI_MAX_CHUNK;
    char *out = (char *)recv + done * elem;
    const char *from = (const char *)send + done * elem;
    int code;
    if (mpi->shm)
      code = herd_mpi_shm_allreduce(mpi->shm, from, out, n, dtype, op,
                                    s_datatype(dtype), s_mpi_op(dtype, op));
    else
      code = MPI_Allreduce(send == recv ? MPI_IN_PLACE : from, out, (int)n,
                           s_datatype(dtype), s_mpi_op(dtype, op), mpi->comm);
    if (code != MPI_SUCCESS)
      return s_mpi_error(code, "MPI_Allreduce");
  }
  if (op == HERD_OP_AVG)
    herd_scale_down(recv, count, dtype, comm->world_size);
  return HERD_OK;
}

static herd_result_t s_broadcast(herd_comm_t *comm, void *buf, size_t count,
                                 herd_dtype_t dtype, int root)
{
  s_mpi_t *mpi = comm->backend;
  size_t elem = herd_dtype_size(dtype);
  for (size_t done = 0; done < count; done += HERD_MPI_MAX_CHUNK) {
    size_t n = count - done < HERD_MPI_MAX_CHUNK ? count - done
                                                 : HERD_MPI_MAX_CHUNK;
    int code = MPI_Bcast((char *)buf + done * elem, (int)n, s_datatype(dtype),
                         root, mpi->comm);
    if (code != MPI_SUCCESS)
      return s_mpi_error(code, "MPI_Bcast");
  }
  return HERD_OK;
}

static herd_result_t s_barrier(herd_comm_t *comm)
{
  s_mpi_t *mpi = comm->backend;
  int code = MPI_Barrier(mpi->comm);
  return code == MPI_SUCCESS ? HERD_OK : s_mpi_error(code, "MPI_Barrier");
}

static void s_destroy(herd_comm_t *comm)
{
  s_mpi_t *mpi = comm->backend;
  if (mpi) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      herd_mpi_shm_destroy(mpi->shm);
    if (!finalized && mpi->comm != MPI_COMM_NULL)
      MPI_Comm_free(&mpi->comm);
    free(mpi);
  }
  comm->backend = NULL;
}

static void *s_buffer(herd_comm_t *comm)
{
  s_mpi_t *mpi = comm->backend;
  return herd_mpi_shm_buffer(mpi->shm);
}

static const herd_comm_ops_t s_mpi_ops = {
    .name = "mpi",
    .allreduce = s_allreduce,
    .broadcast = s_broadcast,
    .barrier = s_barrier,
    .abort = NULL,
    .destroy = s_destroy,
    .buffer = s_buffer,
};

herd_result_t herd_comm_mpi_init(herd_comm_t *comm)
{
  HERD_CHECK(herd_comm_mpi_ensure());
  s_mpi_t *mpi = calloc(1, sizeof *mpi);
  if (!mpi)
    return HERD_ENOMEM;
  int code = MPI_Comm_dup(MPI_COMM_WORLD, &mpi->comm);
  if (code != MPI_SUCCESS) {
    free(mpi);
    return s_mpi_error(code, "MPI_Comm_dup");
  }
  MPI_Comm_set_errhandler(mpi->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(mpi->comm, &comm->rank);
  MPI_Comm_size(mpi->comm, &comm->world_size);
  if ((comm->config.rank >= 0 && comm->config.rank != comm->rank) ||
      (comm->config.world_size >= 0 &&
       comm->config.world_size != comm->world_size)) {
    HERD_LOG(HERD_LOG_WARN, "comm",
             "mpi: roster says rank %d/%d, MPI says %d/%d; using MPI's",
             comm->config.rank, comm->config.world_size, comm->rank,
             comm->world_size);
  }
  mpi->shm = herd_mpi_shm_new(mpi->comm, comm->config.buffer_bytes);
  HERD_LOG(HERD_LOG_DEBUG, "comm", "mpi: all-reduce %s",
           mpi->shm ? "through host shared memory" : "by MPI_Allreduce");
  comm->backend = mpi;
  comm->ops = &s_mpi_ops;
  return HERD_OK;
}

void herd_comm_mpi_shutdown(void)
{
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!s_we_initialized || !initialized || finalized)
    return;
  for (int b = 0; b < 2 && s_ops_created; b++)
    for (int o = 0; o < 3; o++)
      MPI_Op_free(&s_half_ops[b][o]);
  s_ops_created = 0;
  MPI_Finalize();
}
