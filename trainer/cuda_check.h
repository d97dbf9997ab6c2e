/* Error handling for CUDA runtime calls in the worker's GPU code
 * (mlp_cuda.cu, optim_cuda.cu, train_cuda.c). */
#ifndef HERD_WORKER_CUDA_CHECK_H
#define HERD_WORKER_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "herd/result.h"

/* HERD_ENOMEM for out of device memory, else HERD_EBACKEND; the detail
 * names `what` and CUDA's message. */
static inline herd_result_t herd_cuda_error(cudaError_t err, const char *what)
{
  return herd_error_set(err == cudaErrorMemoryAllocation ? HERD_ENOMEM
                                                         : HERD_EBACKEND,
                        "cuda: %s: %s", what, cudaGetErrorString(err));
}

/* Returns herd_cuda_error() from the enclosing function when `call` fails. */
#define HERD_CUDA_CHECK(call)                                                  \
  do {                                                                         \
    cudaError_t herd_cuda_err_ = (call);                                       \
    if (herd_cuda_err_ != cudaSuccess)                                         \
      return herd_cuda_error(herd_cuda_err_, #call);                           \
  } while (0)

#endif
