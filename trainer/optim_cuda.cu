/* SGD / AdamW on device buffers (see optim_cuda.h).
 *
 * One grid-stride kernel per optimizer, a line-for-line copy of optim.c's
 * element loop; the scalars that depend on the step (bias corrections, the
 * decay factor) are computed on the host in double as optim.c does and
 * passed by value. This file is compiled with --fmad=false so that nvcc does
 * not fuse a*b+c where the CPU rounds twice. The config is validated by
 * herd_optim_new itself (a one-element host optimizer), so the rules live in
 * one place.
 */
#include "optim_cuda.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>

#include "cuda_check.h"

struct herd_optim_cuda {
  herd_optim_config_t config;
  size_t count;
  int64_t step_count;
  int n_state;
  float *state[HERD_OPTIM_MAX_STATE]; /* device */
};

#define S_THREADS 256

#define S_GRID_STRIDE(i, n)                                                    \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);      \
       i += (size_t)gridDim.x * blockDim.x)

__device__ static float s_inverse(const float *divisor)
{
  return divisor ? 1.0f / *divisor : 1.0f;
}

__global__ void s_sgd(float *params, const float *grad, const float *divisor,
                      float *buf, size_t n, float lr, float wd, float mu,
                      int nesterov)
{
  float inverse = s_inverse(divisor);
  S_GRID_STRIDE(i, n)
  {
    float g = grad[i] * inverse + wd * params[i];
    if (buf) {
      buf[i] = mu * buf[i] + g;
      g = nesterov ? g + mu * buf[i] : buf[i];
    }
    params[i] -= lr * g;
  }
}

__global__ void s_adamw(float *params, const float *grad, const float *divisor,
                        float *m, float *v, size_t n, float b1, float b2,
                        float step_size, float inv_sqrt_bc2, float decay,
                        float eps)
{
  float inverse = s_inverse(divisor);
  S_GRID_STRIDE(i, n)
  {
    float g = grad[i] * inverse;
    params[i] *= decay;
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    params[i] -= step_size * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
  }
}

herd_result_t herd_optim_cuda_new(const herd_optim_config_t *config,
                                  size_t count, herd_optim_cuda_t **out)
{
  herd_optim_t *probe = NULL;
  HERD_CHECK(herd_optim_new(config, 1, &probe)); /* validates config */
  int n_state = herd_optim_state_buffers(probe);
  herd_optim_destroy(&probe);
  if (count == 0 || count > SIZE_MAX / sizeof(float))
    return herd_error_set(HERD_EINVAL, "optim_cuda: bad count %zu", count);
  herd_optim_cuda_t *self = (herd_optim_cuda_t *)calloc(1, sizeof(*self));
  if (!self)
    return herd_error_set(HERD_ENOMEM, "optim_cuda: out of memory");
  self->config = *config;
  self->count = count;
  self->n_state = n_state;
  for (int i = 0; i < n_state; i++) {
    cudaError_t err =
        cudaMalloc((void **)&self->state[i], count * sizeof(float));
    if (err == cudaSuccess)
      err = cudaMemset(self->state[i], 0, count * sizeof(float));
    if (err != cudaSuccess) {
      herd_optim_cuda_destroy(&self);
      return herd_error_set(HERD_ENOMEM, "optim_cuda: %zu floats: %s", count,
                            cudaGetErrorString(err));
    }
  }
  *out = self;
  return HERD_OK;
}

void herd_optim_cuda_destroy(herd_optim_cuda_t **optim_p)
{
  if (!optim_p || !*optim_p)
    return;
  for (int i = 0; i < HERD_OPTIM_MAX_STATE; i++)
    cudaFree((*optim_p)->state[i]);
  free(*optim_p);
  *optim_p = NULL;
}

static unsigned s_blocks(size_t n)
{
  size_t blocks = (n + S_THREADS - 1) / S_THREADS;
  return (unsigned)(blocks > 8192 ? 8192 : blocks);
}

herd_result_t herd_optim_cuda_step(herd_optim_cuda_t *optim, float *params,
                                   const float *grad_sum, const float *divisor,
                                   float lr, cudaStream_t stream)
{
  const herd_optim_config_t *c = &optim->config;
  optim->step_count++;
  unsigned blocks = s_blocks(optim->count);
  if (c->kind == HERD_OPTIM_ADAMW) {
    double t = (double)optim->step_count; /* 1-based, as in optim.c */
    float step_size = (float)((double)lr / (1.0 - pow((double)c->beta1, t)));
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow((double)c->beta2, t)));
    float decay = 1.0f - lr * c->weight_decay;
    s_adamw<<<blocks, S_THREADS, 0, stream>>>(
        params, grad_sum, divisor, optim->state[0], optim->state[1],
        optim->count, c->beta1, c->beta2, step_size, inv_sqrt_bc2, decay,
        c->eps);
  } else {
    s_sgd<<<blocks, S_THREADS, 0, stream>>>(
        params, grad_sum, divisor, optim->state[0], optim->count, lr,
        c->weight_decay, c->momentum, c->nesterov);
  }
  HERD_CUDA_CHECK(cudaGetLastError());
  return HERD_OK;
}

int64_t herd_optim_cuda_step_count(const herd_optim_cuda_t *optim)
{
  return optim->step_count;
}

float *herd_optim_cuda_state(herd_optim_cuda_t *optim, int i)
{
  return i >= 0 && i < optim->n_state ? optim->state[i] : NULL;
}

static herd_result_t s_check_twin(const herd_optim_cuda_t *optim,
                                  const herd_optim_t *host)
{
  if (herd_optim_kind(host) != optim->config.kind ||
      herd_optim_count(host) != optim->count ||
      herd_optim_state_buffers(host) != optim->n_state)
    return herd_error_set(HERD_EINVAL, "optim_cuda: host optimizer differs");
  return HERD_OK;
}

herd_result_t herd_optim_cuda_download(herd_optim_cuda_t *optim,
                                       herd_optim_t *host, cudaStream_t stream)
{
  HERD_CHECK(s_check_twin(optim, host));
  for (int i = 0; i < optim->n_state; i++)
    HERD_CUDA_CHECK(cudaMemcpyAsync(herd_optim_state(host, i), optim->state[i],
                           optim->count * sizeof(float), cudaMemcpyDeviceToHost,
                           stream));
  HERD_CUDA_CHECK(cudaStreamSynchronize(stream));
  herd_optim_set_step_count(host, optim->step_count);
  return HERD_OK;
}

herd_result_t herd_optim_cuda_upload(herd_optim_cuda_t *optim,
                                     herd_optim_t *host, cudaStream_t stream)
{
  HERD_CHECK(s_check_twin(optim, host));
  /* On `stream`, so the next step's kernels see the copy whatever the
   * stream's flags (a plain cudaMemcpy from pageable memory may still be
   * in flight when it returns). */
  for (int i = 0; i < optim->n_state; i++)
    HERD_CUDA_CHECK(cudaMemcpyAsync(optim->state[i], herd_optim_state(host, i),
                           optim->count * sizeof(float), cudaMemcpyHostToDevice,
                           stream));
  HERD_CUDA_CHECK(cudaStreamSynchronize(stream));
  optim->step_count = herd_optim_step_count(host);
  return HERD_OK;
}
