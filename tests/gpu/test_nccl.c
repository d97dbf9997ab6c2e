/* The nccl backend on real GPUs (label gpu). Skips with exit 77 and a
 * message where no GPU is present; under mpirun each rank uses its local
 * GPU. Checks sum/avg/max of device buffers against a host reference. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

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
  herd_comm_destroy(&comm);
  herd_comm_global_shutdown();
  printf("nccl: %d failures\n", failures);
  return failures ? 1 : 0;
}
