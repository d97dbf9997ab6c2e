/* --deterministic: gradients whose sum does not depend on the world size,
 * the backend or the reduction order (issue 9).
 *
 * Floating-point addition is not associative, so a plain all-reduce gives
 * different bits when the ranks, or the order they are summed in, change.
 * Here each virtual shard's gradient is computed on its own (its samples in
 * sampler order, through shape-independent products: mlp_det.h,
 * det_gemm.h), turned into 64-bit fixed point with one scale per layer that
 * every rank agrees on, and summed as integers, which is exact and
 * associative; only then is it turned back into floats. So the result
 * depends on the shards alone, not on which rank computed which shard, nor
 * on the CPU's vector width.
 *
 * Fixed-point format, per layer l (its weights and bias):
 *   q = round-half-even(g * 2^e_l) in int64,  e_l = 50 - E_l,
 * where 2^E_l > 2 * B_l and B_l bounds |g| for every shard: the largest
 * sum of |delta| of one output times the largest |input|
 * (herd_mlp_det_grad_bound), agreed by an all-reduce MAX (exact). The bound
 * exists before any weight gradient, so each shard's gradient goes straight
 * into the integer sums, never stored as floats. Each shard's |q| < 2^50
 * and at most 4096 shards are summed, so the sum stays below 2^62: no
 * overflow is possible; a conversion that finds |q| >= 2^50 anyway (a
 * non-finite gradient) fails the step loudly instead of clipping.
 * Precision: steps of 2^-e_l, i.e. 2^-50 of 2^E_l; a gradient within 2^-26
 * of the bound keeps all 24 bits of its float, smaller ones are rounded to
 * that step (2^-50 of the bound: far below float resolution for any
 * gradient that matters). The loss rides as fixed point with e = 32, the
 * counts as integers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "herd/clock.h"
#include "det_gemm.h"
#include "mlp_det.h"
#include "train.h"

#define S_LOSS_EXPONENT 32
#define S_SHARD_BITS 50 /* log2(HERD_DET_FIXED_LIMIT) */

/* This step's local shards (herd_sampler_shard_range): count of them,
 * permutation positions from b0, shard k at local sample row[k],
 * row[k + 1] - row[k] long; and the step's global range, for the report. */
typedef struct {
  int count;
  size_t global_begin, global_end, b0;
  int row[HERD_MLP_DET_MAX_SHARDS + 1];
} s_shards_t;

static void s_local_shards(const herd_train_t *train, s_shards_t *s)
{
  int v = (int)train->config.virtual_shards, first = 0;
  size_t step = (size_t)train->step_in_epoch, batch = (size_t)train->config.batch;
  size_t end, b, e;
  herd_sampler_global_range(train->dataset->train.count, step, batch,
                            &s->global_begin, &s->global_end);
  herd_sampler_shard_range(train->sampler, step, batch, train->rank,
                           train->world_size, v, &s->b0, &end, &first,
                           &s->count);
  for (int k = 0; k < s->count; k++) { /* shard first + k alone */
    herd_sampler_shard_range(train->sampler, step, batch, first + k, v, v, &b,
                             &e, NULL, NULL);
    s->row[k] = (int)(b - s->b0);
  }
  s->row[s->count] = (int)(end - s->b0);
}

static herd_result_t s_ensure_buffers(herd_train_t *train)
{
  if (!train->determ) {
    HERD_CHECK(herd_mlp_det_new(train->mlp, &train->determ));
    HERD_LOG(HERD_LOG_INFO, "train", "--deterministic: %s arithmetic",
             herd_det_gemm_path());
  }
  if (!train->determ_sum)
    train->determ_sum = malloc((train->param_count + HERD_STEP_TAIL_LEN) *
                               sizeof(int64_t));
  if (!train->determ_sum)
    return herd_error_set(HERD_ENOMEM, "--deterministic: out of memory");
  return HERD_OK;
}

/* Forward and backward deltas of every local sample; the loss of each
 * shard and the correct count. */
static herd_result_t s_deltas(herd_train_t *train, float *x, uint8_t *labels,
                              const s_shards_t *s, double *loss,
                              int64_t *correct)
{
  const herd_data_split_t *data = &train->dataset->train;
  size_t pixels = (size_t)data->rows * (size_t)data->cols;
  int rows = s->row[s->count], right = 0;
  herd_mlp_gather(data->images, data->labels, pixels,
                  herd_sampler_perm(train->sampler) + s->b0, (size_t)rows, x,
                  labels);
  HERD_CHECK(herd_mlp_det_load(train->determ, x, rows));
  HERD_CHECK(herd_mlp_det_forward_deltas(train->determ, train->params, labels,
                                         s->row, s->count, loss, &right));
  *correct = right;
  return HERD_OK;
}

/* a + round(x), held within +-2^62: a loss too large for the fixed-point
 * sum (a diverging run, on its way to a non-finite step that is refused)
 * must not overflow a signed integer, which C leaves undefined. */
static int64_t s_add_saturating(int64_t a, double x)
{
  const double limit = 4611686018427387904.0; /* 2^62 */
  double v = x > limit ? limit : x < -limit ? -limit : x;
  int64_t out;
  if (__builtin_add_overflow(a, (int64_t)llrint(v), &out))
    return a > 0 ? INT64_MAX / 2 : INT64_MIN / 2;
  return out;
}

/* The agreed exponent of each layer, or an error for a non-finite loss or
 * gradient. Either makes a bound infinite (fmaxf would drop a NaN, and a
 * MAX over NaN is up to the backend), so every rank refuses the step. */
static herd_result_t s_agree_exponents(herd_train_t *train, const s_shards_t *s,
                                       const double *loss, int *exponent)
{
  int layers = herd_mlp_n_layers(train->mlp);
  float bound[HERD_MLP_MAX_DIMS] = {0};
  for (int k = 0; k < s->count; k++)
    for (int l = 0; l < layers; l++) {
      float b = herd_mlp_det_grad_bound(train->determ, l, s->row[k],
                                        s->row[k + 1] - s->row[k]);
      bound[l] =
          isfinite(b) && isfinite(loss[k]) ? fmaxf(bound[l], b) : INFINITY;
    }
  HERD_CHECK(herd_comm_allreduce(train->comm, bound, bound, (size_t)layers,
                                 HERD_DTYPE_F32, HERD_OP_MAX));
  for (int l = 0; l < layers; l++) {
    if (!isfinite(bound[l]))
      return herd_error_set(HERD_ENONFINITE,
                            "step %lld: the loss or gradient is not finite "
                            "(--deterministic); stopping before it reaches "
                            "the parameters or a checkpoint (lower --lr, or "
                            "check the data)",
                            (long long)train->step + 1);
    int magnitude = 0;
    /* 2 * bound < 2^magnitude: the margin covers float rounding in the
     * gradient and in the bound itself. */
    frexp(bound[l] > 0 ? 2.0 * bound[l] : 1.0, &magnitude);
    /* Within float range (det_gemm.h); only gradients below 2^-77 reach
     * the upper clamp, and a float bound cannot reach the lower one. */
    exponent[l] = S_SHARD_BITS - magnitude;
    exponent[l] = exponent[l] > 127 ? 127 : exponent[l] < -126 ? -126 : exponent[l];
  }
  return HERD_OK;
}

/* Every local shard's gradient summed into the integer sums, one pass per
 * layer over all local shards (det_gemm's pieces). */
static herd_result_t s_to_fixed(herd_train_t *train, const s_shards_t *s,
                                const int *exponent)
{
  if (s->count == 0) {
    memset(train->determ_sum, 0, train->param_count * sizeof(int64_t));
    return HERD_OK;
  }
  for (int l = 0; l < herd_mlp_n_layers(train->mlp); l++) {
    size_t w_off, b_off;
    herd_mlp_layer_offsets(train->mlp, l, &w_off, &b_off);
    if (!herd_mlp_det_grad_fixed(train->determ, l, s->row, s->count,
                                 ldexp(1.0, exponent[l]),
                                 train->determ_sum + w_off,
                                 train->determ_sum + b_off))
      return herd_error_set(HERD_EINVAL, "--deterministic: gradient of layer "
                            "%d out of fixed-point range at step %lld", l + 1,
                            (long long)train->step + 1);
  }
  return HERD_OK;
}

/* Back to floats: the mean gradient over the global batch. */
static void s_from_fixed(herd_train_t *train, const int *exponent,
                         double inverse_samples)
{
  for (int l = 0; l < herd_mlp_n_layers(train->mlp); l++) {
    size_t w_off, b_off;
    herd_mlp_layer_offsets(train->mlp, l, &w_off, &b_off);
    size_t end = b_off + (size_t)herd_mlp_dim(train->mlp, l + 1);
    herd_det_from_fixed(train->determ_sum + w_off, train->grad + w_off,
                        end - w_off, ldexp(1.0, -exponent[l]) * inverse_samples);
  }
}

herd_result_t herd_train_step_deterministic(herd_train_t *train, float *x,
                                            uint8_t *labels, int stop,
                                            int reconfigure,
                                            herd_step_report_t *report)
{
  static s_shards_t shards; /* one trainer per process; 16 KiB off the stack */
  s_local_shards(train, &shards);
  HERD_CHECK(s_ensure_buffers(train));
  size_t p = train->param_count;
  double t0 = herd_mono_s(), loss[HERD_MLP_DET_MAX_SHARDS];
  int64_t correct = 0, *sum = train->determ_sum;
  int exponent[HERD_MLP_MAX_DIMS];
  if (shards.row[shards.count] > 0)
    HERD_CHECK(s_deltas(train, x, labels, &shards, loss, &correct));
  else
    shards.count = 0;
  double t1 = herd_mono_s();
  HERD_CHECK(s_agree_exponents(train, &shards, loss, exponent));
  double t2 = herd_mono_s();
  HERD_CHECK(s_to_fixed(train, &shards, exponent));
  herd_step_tail_t tail = {.samples = shards.row[shards.count],
                           .correct = correct,
                           .stop = stop,
                           .reconfigure = reconfigure};
  for (int k = 0; k < shards.count; k++)
    tail.loss_fixed = s_add_saturating(tail.loss_fixed,
                                       ldexp(loss[k], S_LOSS_EXPONENT));
  herd_step_tail_encode_i64(&tail, sum + p);
  double t3 = herd_mono_s();
  HERD_CHECK(herd_comm_allreduce_buckets(train->comm, sum,
                                         p + HERD_STEP_TAIL_LEN,
                                         HERD_DTYPE_I64, HERD_OP_SUM));
  double t4 = herd_mono_s();
  herd_step_tail_decode_i64(sum + p, &tail);
  if (tail.samples <= 0) /* the same sums on every rank: all stop here */
    return herd_error_set(HERD_ENONFINITE,
                          "step %lld: the global batch has no samples; "
                          "stopping",
                          (long long)train->step + 1);
  train->stop_requested = tail.stop;
  train->reconfigure_requested = tail.reconfigure;
  double inverse = 1.0 / (double)tail.samples;
  s_from_fixed(train, exponent, inverse);
  herd_optim_step(train->optim, train->params, train->grad,
                  (float)herd_lr_at(&train->schedule, train->step));
  *report = (herd_step_report_t){
      .step = train->step + 1, .epoch = train->epoch,
      .generation = train->generation, .world_size = train->world_size,
      .loss = ldexp((double)tail.loss_fixed, -S_LOSS_EXPONENT) * inverse,
      .samples = tail.samples,
      .compute_seconds = (t1 - t0) + (t3 - t2) + (herd_mono_s() - t4),
      .comm_seconds = (t2 - t1) + (t4 - t3), .step_seconds = herd_mono_s() - t0,
      .sample_begin = (int64_t)shards.global_begin,
      .sample_end = (int64_t)shards.global_end};
  return HERD_OK;
}

void herd_train_param_sha256(const herd_train_t *train, char *out)
{
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  out[0] = '\0';
  if (!EVP_Digest(train->params, train->param_count * sizeof(float), digest,
                  &len, EVP_sha256(), NULL) || len != 32)
    return;
  for (unsigned int i = 0; i < len; i++)
    snprintf(out + 2 * i, 3, "%02x", digest[i]);
}
