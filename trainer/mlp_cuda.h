/* The reference trainer's model on one CUDA GPU: the MLP of mlp.h with
 * cuBLAS and a few kernels (mlp_cuda.cu).
 *
 * Same shapes, same flat parameter layout (W_1, b_1, W_2, b_2, ...) and the
 * same contract as mlp.h: forward_backward ADDS the per-sample gradient SUM,
 * so the CPU and GPU trainers share checkpoints, the all-reduce and the
 * divide-once-by-the-global-count rule. The differences:
 *
 *   - every float/label/index pointer passed in is DEVICE memory;
 *   - work is queued on the model's stream (herd_mlp_cuda_stream) and runs in
 *     order; a function returns once its work is queued (evaluate excepted,
 *     which returns host numbers). Callers synchronise that stream before
 *     another stream (the NCCL communicator's) reads what it wrote;
 *   - labels are not checked here (that would need a copy back per step):
 *     the caller checks them once when it uploads the data. A label >=
 *     classes gives that sample a NaN loss and no gradient, never a fault.
 *
 * Sums that feed reports (loss, correct count) are reduced per row and then
 * in one fixed order, and cuBLAS runs in its default (FP32, no TF32) math
 * mode, so a step's results do not depend on scheduling.
 *
 * Thread safety: a model belongs to one thread at a time, and to the device
 * that was current when it was created.
 */
#ifndef HERD_WORKER_MLP_CUDA_H
#define HERD_WORKER_MLP_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct herd_mlp_cuda herd_mlp_cuda_t;

/* Same dims rules as herd_mlp_new; max_batch >= 1 pre-sizes the device
 * scratch (it grows on demand). Creates the model's stream and cuBLAS
 * handle on the current device. HERD_EINVAL / HERD_ETOOBIG / HERD_ENOMEM /
 * HERD_EBACKEND (CUDA or cuBLAS failure) with a detail. Caller owns *out. */
herd_result_t herd_mlp_cuda_new(const int *dims, int n_dims, int max_batch,
                                herd_mlp_cuda_t **out);
/* Safe on NULL and twice; nulls *mlp_p. Waits for the model's work. */
void herd_mlp_cuda_destroy(herd_mlp_cuda_t **mlp_p);

size_t herd_mlp_cuda_param_count(const herd_mlp_cuda_t *mlp);
int herd_mlp_cuda_classes(const herd_mlp_cuda_t *mlp);
/* The stream all of the model's work is queued on. Owned by the model. */
cudaStream_t herd_mlp_cuda_stream(const herd_mlp_cuda_t *mlp);

/* Opens cuBLAS (dlopen, once; herd_mlp_cuda_new does it too): HERD_OK, or
 * HERD_EUNSUPPORTED naming what could not be loaded. Needs no GPU. */
herd_result_t herd_mlp_cuda_load_blas(void);

/* FLOP/s of cuBLAS sgemm (m x k by k x n) on the model's stream: the GPU's
 * peak for the model's shapes (best of 3 timed windows of 20 calls). */
herd_result_t herd_mlp_cuda_sgemm_rate(herd_mlp_cuda_t *mlp, int m, int n,
                                       int k, double *flops_out);

/* One forward and backward pass over `batch` samples (device pointers): x is
 * batch x inputs (normalised), labels[i] < classes. Adds the gradient summed
 * over the batch to grad_sum, the summed cross-entropy to *loss_sum and the
 * number of correct argmax predictions to *correct (device floats; either
 * may be NULL). batch == 0 is a no-op. HERD_EINVAL for a negative batch,
 * HERD_ENOMEM if the scratch can't grow, HERD_EBACKEND when a launch fails. */
herd_result_t herd_mlp_cuda_forward_backward(herd_mlp_cuda_t *mlp,
                                             const float *params,
                                             const float *x,
                                             const uint8_t *labels, int batch,
                                             float *grad_sum, float *loss_sum,
                                             float *correct);

/* Forward only over n samples (device x and labels), in chunks of the
 * scratch size. Adds the loss sum and correct count to the HOST *loss_sum
 * and *correct (either may be NULL), so it waits for the stream. */
herd_result_t herd_mlp_cuda_evaluate(herd_mlp_cuda_t *mlp, const float *params,
                                     const float *x, const uint8_t *labels,
                                     size_t n, double *loss_sum,
                                     int64_t *correct);

/* out[i] = (pixels[i]/255 - mean) / std for i < count, bit for bit what
 * herd_mlp_normalize_u8 computes. Device pointers. */
herd_result_t herd_mlp_cuda_normalize_u8(herd_mlp_cuda_t *mlp,
                                         const uint8_t *pixels, size_t count,
                                         float *out);

/* Device twin of herd_mlp_gather: samples indices[0..n) of `images`
 * (sample_size bytes each) into x (normalised) and their labels into
 * labels_out (may be NULL). All device pointers; every index must be in
 * range (the sampler's permutation is). */
herd_result_t herd_mlp_cuda_gather(herd_mlp_cuda_t *mlp, const uint8_t *images,
                                   const uint8_t *labels, size_t sample_size,
                                   const uint32_t *indices, size_t n, float *x,
                                   uint8_t *labels_out);

/* dst[0] = value on the device, in stream order: how the trainer puts its
 * sample count and stop flag into the gradient buffer's extra elements
 * without a copy. */
herd_result_t herd_mlp_cuda_set_f32(herd_mlp_cuda_t *mlp, float *dst,
                                    float value);
/* *flag = 1 on the device when any of values[0..n) is NaN or infinite,
 * else 0, in stream order: the GPU step's non-finite gradient check. */
herd_result_t herd_mlp_cuda_flag_nonfinite(herd_mlp_cuda_t *mlp,
                                           const float *values, size_t n,
                                           float *flag);

#ifdef __cplusplus
}
#endif
#endif
