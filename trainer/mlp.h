/* The reference trainer's model: a multi-layer perceptron on the CPU.
 *
 * dims = {784, 256, 128, 10} means 784 inputs, hidden layers of 256 and 128
 * (ReLU) and 10 logits trained with softmax cross-entropy. The model object
 * holds only the shape and scratch space; parameters and gradients are flat
 * float buffers owned by the caller, laid out layer by layer as
 *   W_1 (dims[1] x dims[0], row-major), b_1 (dims[1]), W_2, b_2, ...
 * so all-reduce, the optimizer and checkpoints each see one contiguous array.
 *
 * forward_backward ADDS the per-sample gradient SUM (not the mean) into the
 * caller's gradient buffer: workers holding uneven slices of a global batch
 * can all-reduce their sums and divide once by the global sample count.
 *
 * All matrix work is batched through cblas_sgemm (OpenBLAS, one thread per
 * process, since each worker is one process per core). Scratch activations
 * are sized for max_batch at creation and grow on demand, so a training step
 * allocates nothing.
 *
 * Thread safety: a model's scratch space belongs to one thread at a time.
 */
#ifndef HERD_WORKER_MLP_H
#define HERD_WORKER_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"
#include "sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_MLP_INPUTS 784 /* 28 x 28 Fashion-MNIST pixels */
#define HERD_MLP_CLASSES 10
#define HERD_MLP_MAX_DIMS 16                  /* input + hidden + output */
#define HERD_MLP_MAX_WIDTH (1 << 20)          /* per layer */
#define HERD_MLP_MAX_PARAMS ((size_t)1 << 30) /* 4 GiB of floats */

/* Fashion-MNIST training-set pixel statistics (after scaling to [0,1]). */
#define HERD_MLP_PIXEL_MEAN 0.2860f
#define HERD_MLP_PIXEL_STD 0.3530f

typedef struct herd_mlp herd_mlp_t;

/* dims[0] inputs, dims[n_dims-1] classes (>= 2), n_dims in
 * [2, HERD_MLP_MAX_DIMS], each dim in [1, HERD_MLP_MAX_WIDTH], total
 * parameters <= HERD_MLP_MAX_PARAMS; max_batch >= 1 pre-sizes the scratch.
 * HERD_EINVAL / HERD_ETOOBIG / HERD_ENOMEM with a detail. Also pins OpenBLAS
 * to one thread. Caller owns *out. */
herd_result_t herd_mlp_new(const int *dims, int n_dims, int max_batch,
                           herd_mlp_t **out);
/* Safe on NULL and twice; nulls *mlp_p. */
void herd_mlp_destroy(herd_mlp_t **mlp_p);

/* FLOP per sample of one training step: forward, weight gradients and the
 * input gradients of every layer but the first (peak.c). */
double herd_mlp_flops_per_sample(const herd_mlp_t *mlp);
/* sgemm (m x k by k x n, as the forward pass calls it) FLOP/s with OpenBLAS
 * on all cores, best of three ~0.1 s windows after a warm-up; leaves
 * OpenBLAS on one thread, as herd_mlp_new set it (flops.c). */
double herd_sgemm_cpu_flops(int m, int n, int k);
size_t herd_mlp_param_count(const herd_mlp_t *mlp);
int herd_mlp_n_layers(const herd_mlp_t *mlp);   /* weight layers = n_dims - 1 */
int herd_mlp_dim(const herd_mlp_t *mlp, int i); /* dims[i], 0 <= i <= layers */
int herd_mlp_inputs(const herd_mlp_t *mlp);
int herd_mlp_classes(const herd_mlp_t *mlp);
/* Offsets (in floats) of layer `layer`'s (0-based) W and b in the flat
 * buffer. */
void herd_mlp_layer_offsets(const herd_mlp_t *mlp, int layer,
                            size_t *weight_offset, size_t *bias_offset);

/* He (Kaiming-normal) init: W ~ N(0, 2/fan_in), b = 0, drawn from `rng` in
 * buffer order, so (seed, dims) fixes the initial model. Can't fail. */
void herd_mlp_init_params(const herd_mlp_t *mlp, float *params,
                          herd_rng_t *rng);

/* One forward and backward pass over `batch` samples. x is batch x inputs
 * (normalised), labels[i] < classes. Adds the gradient summed over the batch
 * to grad_sum, adds the summed cross-entropy to *loss_sum and the number of
 * correct argmax predictions to *correct (either pointer may be NULL).
 * batch == 0 is a no-op. HERD_EINVAL for a bad label, HERD_ENOMEM if the
 * scratch can't grow; grad_sum is untouched on failure. */
herd_result_t herd_mlp_forward_backward(herd_mlp_t *mlp, const float *params,
                                        const float *x, const uint8_t *labels,
                                        int batch, float *grad_sum,
                                        double *loss_sum, int *correct);

/* Called during the backward pass each time a range [begin, end) of the
 * gradient buffer (in floats) is final for this batch. Ranges come back to
 * front without gaps: the first ends at param_count, each next one ends
 * where the previous began, the last begins at 0. The sequence depends on
 * the layer sizes only (never on the batch), so every rank sees the same. */
typedef void (*herd_mlp_ready_fn)(void *arg, size_t begin, size_t end);

/* herd_mlp_forward_backward that calls ready() as gradient ranges become
 * final, so their all-reduce can start while the lower layers compute.
 * With batch == 0 it still calls ready() for every range (nothing to add). */
herd_result_t herd_mlp_forward_backward_ready(
    herd_mlp_t *mlp, const float *params, const float *x, const uint8_t *labels,
    int batch, float *grad_sum, double *loss_sum, int *correct,
    herd_mlp_ready_fn ready, void *ready_arg);

/* HERD_EINVAL (naming the sample) unless every labels[i] < classes. */
herd_result_t herd_mlp_check_labels(const herd_mlp_t *mlp, const uint8_t *labels,
                                    size_t n);

/* Cross-entropy of one row of logits z (classes of them); writes
 * softmax - onehot(label) to d when d != NULL and counts a correct argmax
 * into *correct. Max-subtraction keeps exp() in range. */
double herd_mlp_xent_row(const float *z, int classes, int label, float *d,
                         int *correct);

/* Forward only over n samples, in chunks of the scratch size. Adds the loss
 * sum and correct count like forward_backward. */
herd_result_t herd_mlp_evaluate(herd_mlp_t *mlp, const float *params,
                                const float *x, const uint8_t *labels, size_t n,
                                double *loss_sum, int64_t *correct);

/* out[i] = (pixels[i]/255 - mean) / std for i < count. Can't fail. */
void herd_mlp_normalize_u8(const uint8_t *pixels, size_t count, float *out);

/* Gathers samples indices[0..n) of `images` (sample_size bytes each) into x
 * (normalised, n x sample_size) and their labels into labels_out (may be
 * NULL). The caller guarantees every index is in range. Can't fail. */
void herd_mlp_gather(const uint8_t *images, const uint8_t *labels,
                     size_t sample_size, const uint32_t *indices, size_t n,
                     float *x, uint8_t *labels_out);

#ifdef __cplusplus
}
#endif
#endif
