/* --deterministic: gradients whose sum does not depend on the world size,
 * the backend or the reduction order (issue 9).
 *
 * Floating-point addition is not associative, so a plain all-reduce gives
 * different bits when the ranks, or the order they are summed in, change.
 * Here each virtual shard's gradient is computed on its own (a fixed
 * micro-batch: the shard's samples in sampler order, single-threaded BLAS),
 * turned into 64-bit fixed point with one scale every rank agrees on, and
 * summed as integers, which is exact and associative; only then is it
 * turned back into floats. So the result depends on the shards alone, not
 * on which rank computed which shard.
 *
 * Fixed-point format: q = round(g * 2^e) in int64, with
 *   e = 62 - ceil(log2(shards)) - E,  where max|g| over all shards < 2^E
 * (E agreed by an all-reduce MAX of the largest magnitude, which is exact).
 * The sum of all shards then stays below 2^62: no overflow is possible, and
 * a non-finite gradient fails the step loudly instead of being clipped.
 * Resolution is 2^-e, i.e. 2^(ceil(log2 shards) - 62) of the largest
 * gradient: any float within 2^-34 of the largest is represented exactly
 * (floats carry 24 bits), smaller ones are rounded to that resolution.
 * The loss rides as fixed point with e = 32, the counts as integers.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "train.h"

#define S_LOSS_EXPONENT 32

static double s_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int s_ceil_log2(int n)
{
  int bits = 0;
  while ((1 << bits) < n)
    bits++;
  return bits;
}

/* Buffers sized for all shards this rank may hold (shards <= virtual). */
static herd_result_t s_ensure_buffers(herd_train_t *train, int shards)
{
  size_t p = train->param_count;
  if (train->determ_shards >= shards)
    return HERD_OK;
  float *grads = realloc(train->determ_grads, (size_t)shards * p * sizeof(float));
  if (!grads)
    return HERD_ENOMEM;
  train->determ_grads = grads;
  if (!train->determ_sum) {
    train->determ_sum = malloc((p + HERD_TRAIN_EXTRA) * sizeof(int64_t));
    if (!train->determ_sum)
      return HERD_ENOMEM;
  }
  train->determ_shards = shards;
  return HERD_OK;
}

/* Forward/backward of each local shard into its own gradient buffer. */
static herd_result_t s_shard_gradients(herd_train_t *train, float *x,
                                       uint8_t *labels, int first, int count,
                                       double *loss, int64_t *correct,
                                       int64_t *samples, float *max_abs)
{
  const herd_data_split_t *data = &train->dataset->train;
  size_t pixels = (size_t)data->rows * (size_t)data->cols, p = train->param_count;
  size_t gb, ge, v = (size_t)train->config.virtual_shards;
  herd_sampler_global_range(data->count, (size_t)train->step_in_epoch,
                            (size_t)train->config.batch, &gb, &ge);
  for (int k = 0; k < count; k++) {
    size_t shard = (size_t)(first + k);
    size_t b = gb + shard * (ge - gb) / v, e = gb + (shard + 1) * (ge - gb) / v;
    float *g = train->determ_grads + (size_t)k * p;
    memset(g, 0, p * sizeof(float));
    herd_mlp_gather(data->images, data->labels, pixels,
                    herd_sampler_perm(train->sampler) + b, e - b, x, labels);
    int shard_correct = 0;
    double shard_loss = 0;
    if (e > b)
      HERD_CHECK(herd_mlp_forward_backward(train->mlp, train->params, x, labels,
                                           (int)(e - b), g, &shard_loss,
                                           &shard_correct));
    loss[k] = shard_loss;
    *correct += shard_correct;
    *samples += (int64_t)(e - b);
    float shard_max = 0;
    int finite = 1;
    for (size_t i = 0; i < p; i++) {
      float a = fabsf(g[i]);
      shard_max = a > shard_max ? a : shard_max;
      finite &= a <= FLT_MAX; /* false for NaN and infinity */
    }
    *max_abs = finite ? fmaxf(*max_abs, shard_max) : INFINITY;
  }
  return HERD_OK;
}

/* The agreed exponent e, or an error when a gradient is not finite. */
static herd_result_t s_agree_exponent(herd_train_t *train, float local_max,
                                      int *exponent)
{
  float global_max = isfinite(local_max) ? local_max : INFINITY;
  HERD_CHECK(herd_comm_allreduce(train->comm, &global_max, &global_max, 1,
                                 HERD_DTYPE_F32, HERD_OP_MAX));
  if (!isfinite(global_max))
    return herd_error_set(HERD_EINVAL, "--deterministic: non-finite "
                          "gradient at step %lld (lower --lr?)",
                          (long long)train->step + 1);
  int magnitude = 0;
  frexp(global_max > 0 ? global_max : 1.0f, &magnitude); /* max < 2^magnitude */
  *exponent = 62 - s_ceil_log2((int)train->config.virtual_shards) - magnitude;
  return HERD_OK;
}

/* Integer sum of this rank's shards; the extras go after the gradient. */
static void s_to_fixed(herd_train_t *train, int count, const double *loss,
                       int exponent)
{
  size_t p = train->param_count;
  int64_t *sum = train->determ_sum;
  memset(sum, 0, (p + HERD_TRAIN_EXTRA) * sizeof(int64_t));
  /* Multiplying by a power of two is exact in double (a float has 24
   * bits), so only the rounding to an integer loses anything, the same way
   * on every rank. lrint() inlines to one instruction (-fno-math-errno). */
  const double scale = ldexp(1.0, exponent);
  for (int k = 0; k < count; k++) {
    const float *g = train->determ_grads + (size_t)k * p;
    for (size_t i = 0; i < p; i++)
      sum[i] += (int64_t)lrint((double)g[i] * scale);
    sum[p] += llrint(ldexp(loss[k], S_LOSS_EXPONENT));
  }
}

herd_result_t herd_train_step_deterministic(herd_train_t *train, float *x,
                                            uint8_t *labels, int stop,
                                            float reconfigure,
                                            herd_step_report_t *report)
{
  int v = (int)train->config.virtual_shards, w = train->world_size;
  int first = train->rank * v / w, count = (train->rank + 1) * v / w - first;
  HERD_CHECK(s_ensure_buffers(train, count > 0 ? count : 1));
  double t0 = s_now(), loss[4096];
  int64_t correct = 0, samples = 0;
  float max_abs = 0;
  HERD_CHECK(s_shard_gradients(train, x, labels, first, count, loss, &correct,
                               &samples, &max_abs));
  double t1 = s_now();
  int exponent = 0;
  HERD_CHECK(s_agree_exponent(train, max_abs, &exponent));
  s_to_fixed(train, count, loss, exponent);
  size_t p = train->param_count;
  int64_t *sum = train->determ_sum;
  sum[p + 1] = samples;
  sum[p + 2] = correct;
  sum[p + HERD_TRAIN_STOP_SLOT] = stop;
  sum[p + HERD_TRAIN_RECONFIG_SLOT] = reconfigure > 0;
  HERD_CHECK(herd_comm_allreduce_buckets(train->comm, sum, p + HERD_TRAIN_EXTRA,
                                         HERD_DTYPE_I64, HERD_OP_SUM));
  double t2 = s_now();
  train->stop_requested = sum[p + HERD_TRAIN_STOP_SLOT] > 0;
  train->reconfigure_requested = sum[p + HERD_TRAIN_RECONFIG_SLOT] > 0;
  double inverse = 1.0 / (double)sum[p + 1], unscale = ldexp(1.0, -exponent);
  for (size_t i = 0; i < p; i++)
    train->grad[i] = (float)((double)sum[i] * unscale * inverse);
  herd_optim_step(train->optim, train->params, train->grad,
                  (float)herd_lr_at(&train->schedule, train->step));
  size_t gb, ge;
  herd_sampler_global_range(train->dataset->train.count,
                            (size_t)train->step_in_epoch,
                            (size_t)train->config.batch, &gb, &ge);
  *report = (herd_step_report_t){
      .step = train->step + 1, .epoch = train->epoch,
      .generation = train->generation, .world_size = train->world_size,
      .loss = ldexp((double)sum[p], -S_LOSS_EXPONENT) * inverse,
      .samples = sum[p + 1], .compute_seconds = (t1 - t0) + (s_now() - t2),
      .comm_seconds = t2 - t1, .step_seconds = s_now() - t0,
      .sample_begin = (int64_t)gb, .sample_end = (int64_t)ge};
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
