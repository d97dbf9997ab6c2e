/* The `nccl` backend: GPU buffers over NCCL.
 *
 * The communicator is non-blocking (ncclConfig_t.blocking = 0): init and
 * every collective return at once and this file polls for completion
 * (ncclCommGetAsyncError + cudaStreamQuery), checking the abort flag in
 * between. So herd_comm_abort() from another thread turns a collective
 * stuck on a dead peer into HERD_EABORTED promptly (ncclCommAbort), instead
 * of the hang a blocking NCCL call would be. In static mode the unique id
 * travels by MPI_Bcast; in elastic mode (a store in the config: Kubernetes,
 * srun without pmix, herd run --launcher local) rank 0 of the generation
 * publishes it in the coordinator's KV store under a per-generation key.
 */
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "herd/log.h"

typedef struct {
  ncclComm_t comm;
  cudaStream_t stream;
  int device;
} s_nccl_t;

#define S_NCCL_CHECK(call)                                                     \
  do {                                                                         \
    ncclResult_t s_rc_ = (call);                                               \
    if (s_rc_ != ncclSuccess && s_rc_ != ncclInProgress)                       \
      return herd_error_set(HERD_EBACKEND, "%s: %s", #call,                    \
                            ncclGetErrorString(s_rc_));                        \
  } while (0)

#define S_CUDA_CHECK(call)                                                     \
  do {                                                                         \
    cudaError_t s_err_ = (call);                                               \
    if (s_err_ != cudaSuccess)                                                 \
      return herd_error_set(HERD_EBACKEND, "%s: %s", #call,                    \
                            cudaGetErrorString(s_err_));                       \
  } while (0)

static ncclDataType_t s_type(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32: return ncclFloat32;
  case HERD_DTYPE_F64: return ncclFloat64;
  case HERD_DTYPE_F16: return ncclFloat16;
  case HERD_DTYPE_BF16: return ncclBfloat16;
  case HERD_DTYPE_I32: return ncclInt32;
  case HERD_DTYPE_I64: return ncclInt64;
  case HERD_DTYPE_U8: return ncclUint8;
  }
  return ncclFloat32;
}

static ncclRedOp_t s_op(herd_op_t op)
{
  return op == HERD_OP_MAX ? ncclMax : op == HERD_OP_MIN ? ncclMin
         : op == HERD_OP_AVG ? ncclAvg : ncclSum;
}

/* ncclCommAbort from the thread that drives the communicator (NCCL's
 * calls on one communicator must not overlap): it cancels the pending
 * kernels and frees the communicator, so a collective stuck on a dead peer
 * lets go of its GPU and sockets now rather than at destroy. */
static void s_abort_now(s_nccl_t *nccl)
{
  if (!nccl->comm)
    return;
  ncclCommAbort(nccl->comm);
  nccl->comm = NULL;
}

/* After an abort (s_abort_now) the communicator is gone for good. */
#define S_NCCL_LIVE(nccl)                                                      \
  do {                                                                         \
    if (!(nccl)->comm)                                                         \
      return herd_error_set(HERD_EABORTED, "nccl: communicator was aborted "  \
                            "after an error");                                 \
  } while (0)

/* Waits for the communicator's pending work, or for abort. */
static herd_result_t s_wait(herd_comm_t *comm, int check_stream)
{
  s_nccl_t *nccl = comm->backend;
  for (unsigned spins = 0;; spins++) {
    if (atomic_load(&comm->aborted)) {
      s_abort_now(nccl);
      return herd_error_set(HERD_EABORTED, "nccl: communicator aborted");
    }
    ncclResult_t state = ncclSuccess;
    S_NCCL_CHECK(ncclCommGetAsyncError(nccl->comm, &state));
    if (state != ncclSuccess && state != ncclInProgress) {
      /* NCCL: after an asynchronous error the communicator is unusable
       * and must be aborted. */
      s_abort_now(nccl);
      return herd_error_set(HERD_EPEER, "nccl: %s", ncclGetErrorString(state));
    }
    if (state == ncclSuccess) {
      if (!check_stream)
        return HERD_OK;
      cudaError_t err = cudaStreamQuery(nccl->stream);
      if (err == cudaSuccess)
        return HERD_OK;
      if (err != cudaErrorNotReady)
        return herd_error_set(HERD_EBACKEND, "cuda: %s", cudaGetErrorString(err));
    }
    if (spins > 1000)
      sched_yield();
  }
}

static herd_result_t s_allreduce(herd_comm_t *comm, const void *send,
                                 void *recv, size_t count, herd_dtype_t dtype,
                                 herd_op_t op)
{
  s_nccl_t *nccl = comm->backend;
  S_NCCL_LIVE(nccl);
  S_NCCL_CHECK(ncclAllReduce(send, recv, count, s_type(dtype), s_op(op),
                             nccl->comm, nccl->stream));
  return s_wait(comm, 1);
}

static herd_result_t s_broadcast(herd_comm_t *comm, void *buf, size_t count,
                                 herd_dtype_t dtype, int root)
{
  s_nccl_t *nccl = comm->backend;
  S_NCCL_LIVE(nccl);
  S_NCCL_CHECK(ncclBroadcast(buf, buf, count, s_type(dtype), root, nccl->comm,
                             nccl->stream));
  return s_wait(comm, 1);
}

static herd_result_t s_barrier(herd_comm_t *comm)
{
  s_nccl_t *nccl = comm->backend;
  void *one = NULL;
  S_CUDA_CHECK(cudaMallocAsync(&one, sizeof(float), nccl->stream));
  herd_result_t rc = s_allreduce(comm, one, one, 1, HERD_DTYPE_F32, HERD_OP_SUM);
  cudaFreeAsync(one, nccl->stream);
  return rc;
}

static void s_abort(herd_comm_t *comm)
{
  /* Another thread may be polling this communicator: the driving thread
   * notices the flag in s_wait and aborts there (s_abort_now); if it is not
   * inside a collective, its next call fails at once (comm.c) and destroy
   * aborts. */
  HERD_LOG(HERD_LOG_WARN, "comm", "nccl: abort requested");
}

static void s_destroy(herd_comm_t *comm)
{
  s_nccl_t *nccl = comm->backend;
  if (!nccl)
    return;
  if (nccl->comm) {
    if (atomic_load(&comm->aborted))
      s_abort_now(nccl);
    else if (ncclCommFinalize(nccl->comm) == ncclSuccess ||
             s_wait(comm, 0) == HERD_OK)
      ncclCommDestroy(nccl->comm);
    else
      ncclCommAbort(nccl->comm);
  }
  if (nccl->stream)
    cudaStreamDestroy(nccl->stream);
  free(nccl);
  comm->backend = NULL;
}

static const herd_comm_ops_t s_nccl_ops = {
    .name = "nccl",
    .allreduce = s_allreduce,
    .broadcast = s_broadcast,
    .barrier = s_barrier,
    .abort = s_abort,
    .destroy = s_destroy,
};

/* This process's index among the ranks on its host, for the default
 * device. Static mode asks MPI (the ranks sharing memory with this one);
 * elastic mode has no host-local numbering of its own, so callers that run
 * several ranks a host pass config.cuda_device (herd-train does, from the
 * launcher's local rank in worker/env.c) and rank is the fallback. */
static herd_result_t s_local_rank(herd_comm_t *comm, int *local)
{
  if (comm->config.store) {
    *local = comm->config.rank > 0 ? comm->config.rank : 0;
    return HERD_OK;
  }
  HERD_CHECK(herd_comm_mpi_ensure());
  MPI_Comm host;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
                          MPI_INFO_NULL, &host) != MPI_SUCCESS)
    return herd_error_set(HERD_EBACKEND, "nccl: MPI_Comm_split_type failed");
  MPI_Comm_rank(host, local);
  MPI_Comm_free(&host);
  return HERD_OK;
}

static herd_result_t s_pick_device(herd_comm_t *comm, s_nccl_t *nccl)
{
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    return herd_error_set(HERD_EUNSUPPORTED, "nccl: no CUDA device found");
  int local = comm->config.cuda_device;
  if (local < 0)
    HERD_CHECK(s_local_rank(comm, &local));
  nccl->device = local % devices;
  S_CUDA_CHECK(cudaSetDevice(nccl->device));
  S_CUDA_CHECK(cudaStreamCreateWithFlags(&nccl->stream, cudaStreamNonBlocking));
  return HERD_OK;
}

/* Static mode: rank/size from MPI, the unique id by MPI_Bcast from rank 0. */
static herd_result_t s_bootstrap(herd_comm_t *comm, ncclUniqueId *id)
{
  HERD_CHECK(herd_comm_mpi_ensure());
  MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &comm->world_size);
  if (comm->rank == 0)
    S_NCCL_CHECK(ncclGetUniqueId(id));
  if (MPI_Bcast(id, sizeof *id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
    return herd_error_set(HERD_EBACKEND, "nccl: MPI_Bcast of the unique id");
  return HERD_OK;
}

/* Elastic mode: rank and world from the roster, the unique id through the
 * store under this generation's key (a new id for every generation). */
static herd_result_t s_bootstrap_store(herd_comm_t *comm, ncclUniqueId *id)
{
  const herd_comm_config_t *cfg = &comm->config;
  if (cfg->rank < 0 || cfg->world_size < 1 || cfg->rank >= cfg->world_size)
    return herd_error_set(HERD_EINVAL, "nccl: elastic mode needs rank and "
                          "world_size (got %d of %d)", cfg->rank,
                          cfg->world_size);
  comm->rank = cfg->rank;
  comm->world_size = cfg->world_size;
  char key[64];
  snprintf(key, sizeof key, "herd/nccl/g%lld/unique-id",
           (long long)cfg->generation);
  if (comm->rank == 0) {
    S_NCCL_CHECK(ncclGetUniqueId(id));
    return cfg->store->set(cfg->store->ctx, key, id, sizeof *id);
  }
  size_t len = 0;
  int timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
  HERD_CHECK(cfg->store->get(cfg->store->ctx, key, id, sizeof *id, &len,
                             timeout_ms));
  if (len != sizeof *id)
    return herd_error_set(HERD_EPROTO, "nccl: unique id of %zu bytes under "
                          "'%s' (expected %zu)", len, key, sizeof *id);
  return HERD_OK;
}

herd_result_t herd_comm_nccl_init(herd_comm_t *comm)
{
  s_nccl_t *nccl = calloc(1, sizeof *nccl);
  if (!nccl)
    return HERD_ENOMEM;
  comm->backend = nccl;
  comm->ops = &s_nccl_ops;
  ncclUniqueId id;
  herd_result_t rc = s_pick_device(comm, nccl);
  if (rc == HERD_OK)
    rc = comm->config.store ? s_bootstrap_store(comm, &id)
                            : s_bootstrap(comm, &id);
  if (rc == HERD_OK) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t nrc = ncclCommInitRankConfig(&nccl->comm, comm->world_size,
                                              id, comm->rank, &config);
    rc = nrc == ncclSuccess || nrc == ncclInProgress
             ? s_wait(comm, 0)
             : herd_error_set(HERD_EBACKEND, "ncclCommInitRankConfig: %s",
                              ncclGetErrorString(nrc));
  }
  if (rc != HERD_OK)
    s_destroy(comm);
  return rc;
}
