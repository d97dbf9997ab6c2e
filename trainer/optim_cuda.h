/* The optimizers of optim.h on device buffers, for herd-train --device cuda.
 *
 * Same update formulas, same per-step scalars (computed on the host in
 * double, exactly as optim.c does) and the same element order of operations,
 * compiled without FMA contraction: given the same inputs a step gives the
 * same bits as herd_optim_step on the CPU. The state buffers (momentum;
 * exp_avg, exp_avg_sq) live in device memory; the step count lives here, on
 * the host. A checkpoint goes through a host herd_optim_t of the same config
 * (herd_optim_cuda_download / _upload), so checkpoints are the CPU trainer's.
 *
 * Thread safety: none; an optimizer belongs to one thread.
 */
#ifndef HERD_WORKER_OPTIM_CUDA_H
#define HERD_WORKER_OPTIM_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct herd_optim_cuda herd_optim_cuda_t;

/* Zeroed device state and step count 0, on the current device. HERD_EINVAL
 * for a config herd_optim_new rejects, HERD_ENOMEM, HERD_EBACKEND. Caller
 * owns *out. */
herd_result_t herd_optim_cuda_new(const herd_optim_config_t *config,
                                  size_t count, herd_optim_cuda_t **out);
/* Safe on NULL and twice; nulls *optim_p. */
void herd_optim_cuda_destroy(herd_optim_cuda_t **optim_p);

/* Queues one update on `stream` and increments the step count:
 *   params -= update(grad_sum / *divisor)
 * divisor is a DEVICE float (the all-reduced sample count, read on the
 * device, so a step needs no host round trip), or NULL for 1. params,
 * grad_sum: count device floats. HERD_EBACKEND when the launch fails. */
herd_result_t herd_optim_cuda_step(herd_optim_cuda_t *optim, float *params,
                                   const float *grad_sum, const float *divisor,
                                   float lr, cudaStream_t stream);

int64_t herd_optim_cuda_step_count(const herd_optim_cuda_t *optim);
/* Device state buffer i (count floats); NULL if out of range. */
float *herd_optim_cuda_state(herd_optim_cuda_t *optim, int i);

/* Device state and step count -> host, and back, both in `stream` order
 * (waiting for it).
 * `host` must have the same kind and count. HERD_EINVAL on a mismatch,
 * HERD_EBACKEND on a failed copy. */
herd_result_t herd_optim_cuda_download(herd_optim_cuda_t *optim,
                                       herd_optim_t *host, cudaStream_t stream);
herd_result_t herd_optim_cuda_upload(herd_optim_cuda_t *optim,
                                     herd_optim_t *host, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
