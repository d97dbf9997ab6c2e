/* The MLP's forward and backward pass for --deterministic (train_determ.c).
 *
 * Each virtual shard's gradient must come out bit-for-bit the same whichever
 * rank computes it, next to whichever other shards. So every product goes
 * through herd_det_gemm (shape-independent), the batch is kept feature-major
 * (one column per sample, so a shard is a range of columns and layers chain
 * without transposes), and a step runs in three phases:
 *   1. herd_mlp_det_forward_deltas: activations and deltas of every local
 *      sample at once (a sample's values do not depend on its neighbours),
 *      and each shard's loss;
 *   2. herd_mlp_det_grad_bound per layer and shard: the caller agrees on a
 *      fixed-point scale per layer (all-reduce MAX) before any weight
 *      gradient exists;
 *   3. herd_mlp_det_grad_fixed per layer, all shards in one pass: each
 *      shard's gradient goes straight into int64 sums, never stored as
 *      floats.
 *
 * Thread safety: one thread at a time per object.
 */
#ifndef HERD_WORKER_MLP_DET_H
#define HERD_WORKER_MLP_DET_H

#include <stdint.h>

#include "mlp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct herd_mlp_det herd_mlp_det_t;

/* For the shape of `mlp`, which must outlive it. HERD_ENOMEM. */
herd_result_t herd_mlp_det_new(const herd_mlp_t *mlp, herd_mlp_det_t **out);
/* Safe on NULL and twice; nulls *det_p. */
void herd_mlp_det_destroy(herd_mlp_det_t **det_p);

/* Takes the step's local samples: x is rows x inputs (normalised, kept by
 * the caller until the step ends). HERD_ENOMEM, HERD_EINVAL for rows < 1. */
herd_result_t herd_mlp_det_load(herd_mlp_det_t *det, const float *x, int rows);

/* Forward and backward deltas of all loaded samples (each sample's values
 * are its own, whatever else is loaded); labels are theirs. The samples
 * form shards k < n_shards, [shards[k], shards[k + 1]) with shards[0] = 0
 * and shards[n_shards] = the loaded count; shard_loss[k] gets the sum of
 * its samples' losses (in order), *correct the correct count added.
 * HERD_EINVAL for such shards missing, a bad label or more than 256
 * classes. */
herd_result_t herd_mlp_det_forward_deltas(herd_mlp_det_t *det,
                                          const float *params,
                                          const uint8_t *labels,
                                          const int *shards, int n_shards,
                                          double *shard_loss, int *correct);

/* An upper bound of |element| of layer `layer`'s weight and bias gradient
 * over samples [row0, row0 + batch): the largest sum over samples of
 * |delta| of one output, times max(1, largest |input|). INFINITY when a
 * value is not finite. */
float herd_mlp_det_grad_bound(herd_mlp_det_t *det, int layer, int row0,
                              int batch);

#define HERD_MLP_DET_MAX_SHARDS 4096

/* Stores in w_sum (the layer's outputs x inputs) and b_sum (its outputs)
 * the sum over shards k < n_shards, samples [shards[k], shards[k + 1]), of
 * round(g_k * scale), g_k the shard's gradient of layer `layer`: each
 * rounded on its own, never stored as floats. Returns 0 when a value
 * reached HERD_DET_FIXED_LIMIT (see det_gemm.h).
 * n_shards <= HERD_MLP_DET_MAX_SHARDS. */
int herd_mlp_det_grad_fixed(herd_mlp_det_t *det, int layer, const int *shards,
                            int n_shards, double scale, int64_t *w_sum,
                            int64_t *b_sum);

#ifdef __cplusplus
}
#endif
#endif
