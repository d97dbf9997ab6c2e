/* The nccl backend on real GPUs (label gpu). Skips with exit 77 and a
 * message where no GPU is present; under mpirun each rank uses its local
 * GPU (tests/gpu/nccl.sh runs one rank per GPU, at least 2 where there are
 * 2 GPUs). Checks sum/avg/max of device buffers against a host reference;
 * that the host-memory paths (the mpi backend, fusion's packing) refuse a
 * GPU buffer with a clear error instead of reading it; and, on 2 or more
 * ranks, that herd_comm_abort from another thread ends a collective stuck
 * on a peer that never joins it. */
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herd/comm.h"

static int s_check(herd_comm_t *comm, herd_op_t op, size_t count)
{
  int rank = herd_comm_rank(comm), world = herd_comm_world_size(comm);
  float *host = malloc(count * sizeof(float));
  float *device = NULL;
  for (size_t i = 0; i < count; i++)
    host[i] = (float)((i % 17) + rank);
  cudaMalloc((void **)&device, count * sizeof(float));
  cudaMemcpy(device, host, count * sizeof(float), cudaMemcpyHostToDevice);
  herd_result_t rc = herd_comm_allreduce(comm, device, device, count,
                                         HERD_DTYPE_F32, op);
  cudaMemcpy(host, device, count * sizeof(float), cudaMemcpyDeviceToHost);
  size_t wrong = 0;
  for (size_t i = 0; i < count; i++) {
    double sum = (double)(i % 17) * world + world * (world - 1) / 2.0;
    double want = op == HERD_OP_SUM ? sum : op == HERD_OP_AVG ? sum / world
                                                              : (double)(i % 17) + world - 1;
    wrong += host[i] != (float)want;
  }
  cudaFree(device);
  free(host);
  if (rc != HERD_OK || wrong)
    fprintf(stderr, "FAIL op %d count %zu: %s, %zu wrong\n", op, count,
            herd_strerror(rc), wrong);
  return rc != HERD_OK || wrong;
}

/* GPU memory handed to the host-memory paths is refused, not read. */
static int s_check_refusals(herd_comm_t *nccl)
{
  herd_comm_config_t config = HERD_COMM_CONFIG_INIT;
  config.backend = HERD_BACKEND_MPI;
  herd_comm_t *mpi = NULL;
  float *device = NULL, host[4] = {1, 2, 3, 4};
  int failures = 0;
  if (herd_comm_new(&config, &mpi) != HERD_OK ||
      cudaMalloc((void **)&device, sizeof host) != cudaSuccess) {
    fprintf(stderr, "FAIL: set-up: %s\n", herd_error_detail());
    return 1;
  }
  herd_result_t rc = herd_comm_allreduce(mpi, device, device, 4,
                                         HERD_DTYPE_F32, HERD_OP_SUM);
  if (rc != HERD_EINVAL || !strstr(herd_error_detail(), "GPU memory")) {
    fprintf(stderr, "FAIL: mpi allreduce of GPU memory: %s (%s)\n",
            herd_strerror(rc), herd_error_detail());
    failures++;
  }
  void *bufs[1] = {device};
  size_t counts[1] = {4};
  rc = herd_comm_allreduce_tensors(nccl, bufs, counts, 1, HERD_DTYPE_F32,
                                   HERD_OP_SUM);
  if (rc != HERD_EINVAL || !strstr(herd_error_detail(), "GPU memory")) {
    fprintf(stderr, "FAIL: allreduce_tensors of GPU memory: %s (%s)\n",
            herd_strerror(rc), herd_error_detail());
    failures++;
  }
  /* Host memory still goes through (the check is not a blanket refusal). */
  if (herd_comm_allreduce(mpi, host, host, 4, HERD_DTYPE_F32, HERD_OP_SUM) !=
      HERD_OK) {
    fprintf(stderr, "FAIL: mpi allreduce of host memory: %s\n",
            herd_error_detail());
    failures++;
  }
  cudaFree(device);
  herd_comm_destroy(&mpi);
  return failures;
}

static void *s_abort_later(void *comm)
{
  struct timespec pause = {1, 0};
  nanosleep(&pause, NULL);
  herd_comm_abort(comm);
  return NULL;
}

/* Rank 0 enters an all-reduce the others never join; another thread aborts
 * it after 1 s: the call must return HERD_EABORTED soon after, not hang. */
static int s_check_abort(herd_comm_t *comm)
{
  if (herd_comm_world_size(comm) < 2)
    return 0;
  float *device = NULL;
  cudaMalloc((void **)&device, 1024 * sizeof(float));
  int failures = 0;
  if (herd_comm_rank(comm) == 0) {
    pthread_t thread;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_create(&thread, NULL, s_abort_later, comm);
    herd_result_t rc = herd_comm_allreduce(comm, device, device, 1024,
                                           HERD_DTYPE_F32, HERD_OP_SUM);
    pthread_join(thread, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) +
                     (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("nccl abort: %s after %.2f s\n", herd_strerror(rc), seconds);
    failures = rc != HERD_EABORTED || seconds > 10;
  } else {
    herd_comm_abort(comm); /* never joins; ends its side too */
  }
  cudaFree(device);
  return failures;
}

int main(void)
{
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    printf("SKIP: no CUDA GPU on this machine; the nccl backend was compiled "
           "but not run\n");
    return 77;
  }
  herd_comm_config_t config = HERD_COMM_CONFIG_INIT;
  config.backend = HERD_BACKEND_NCCL;
  herd_comm_t *comm = NULL;
  if (herd_comm_new(&config, &comm) != HERD_OK) {
    fprintf(stderr, "FAIL: herd_comm_new: %s\n", herd_error_detail());
    return 1;
  }
  int failures = 0;
  const size_t counts[] = {1, 1000, 1 << 24};
  for (size_t c = 0; c < 3; c++)
    for (int op = HERD_OP_SUM; op <= HERD_OP_MAX; op++)
      failures += s_check(comm, (herd_op_t)op, counts[c]);
  failures += s_check_refusals(comm);
  printf("nccl: %d ranks\n", herd_comm_world_size(comm));
  failures += s_check_abort(comm); /* last: the communicator is spent */
  herd_comm_destroy(&comm);
  herd_comm_global_shutdown();
  printf("nccl: %d failures\n", failures);
  return failures ? 1 : 0;
}
