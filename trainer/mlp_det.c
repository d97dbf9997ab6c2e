/* Deterministic MLP pass over feature-major activations (see mlp_det.h).
 *
 * With C loaded samples, activation and delta matrices are dims[l+1] x C, so
 * with W_l (n_out x n_in, row-major) every product is herd_det_gemm's
 * C[r][n] = init[r] + sum_k A[r][k] B[k][n]:
 *   forward   Z_l^T = W_l A_{l-1}^T + b_l       (A = W_l, B = A_{l-1}^T)
 *   deltas    D_{l-1}^T = W_l^T D_l^T * [A_{l-1} > 0]  (A = W_l read by column)
 *   gradient  dW_l = D_l^T A_{l-1}  over a shard's samples (B = the shard's
 *             inputs sample-major: x itself for layer 0, a transposed copy
 *             of the activations for the others), db_l = D_l^T 1.
 */
#include "mlp_det.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "det_gemm.h"

struct herd_mlp_det {
  const herd_mlp_t *mlp;
  int layers;
  int capacity, rows; /* samples the scratch holds / were loaded */
  const float *x;     /* the caller's samples, rows x inputs */
  float *scratch;
  float *x_t;                          /* inputs x capacity */
  float *act[HERD_MLP_MAX_DIMS - 1];   /* dims[l+1] x capacity */
  float *delta[HERD_MLP_MAX_DIMS - 1]; /* dims[l+1] x capacity */
  float *act_rows[HERD_MLP_MAX_DIMS - 1]; /* act[l] sample-major: capacity x dims[l+1] */
};

herd_result_t herd_mlp_det_new(const herd_mlp_t *mlp, herd_mlp_det_t **out)
{
  herd_mlp_det_t *det = calloc(1, sizeof(*det));
  if (!det)
    return herd_error_set(HERD_ENOMEM, "mlp: out of memory");
  det->mlp = mlp;
  det->layers = herd_mlp_n_layers(mlp);
  *out = det;
  return HERD_OK;
}

void herd_mlp_det_destroy(herd_mlp_det_t **det_p)
{
  if (!det_p || !*det_p)
    return;
  free((*det_p)->scratch);
  free(*det_p);
  *det_p = NULL;
}

static herd_result_t s_reserve(herd_mlp_det_t *det, int rows)
{
  if (rows <= det->capacity)
    return HERD_OK;
  size_t per_sample = (size_t)herd_mlp_inputs(det->mlp);
  for (int l = 0; l < det->layers; l++)
    per_sample += 3 * (size_t)herd_mlp_dim(det->mlp, l + 1);
  float *block = malloc((size_t)rows * per_sample * sizeof(float));
  if (!block)
    return herd_error_set(HERD_ENOMEM, "mlp: no memory for %d samples", rows);
  free(det->scratch);
  det->scratch = block;
  det->capacity = rows;
  det->x_t = block;
  block += (size_t)rows * (size_t)herd_mlp_inputs(det->mlp);
  for (int l = 0; l < det->layers; l++) {
    size_t floats = (size_t)rows * (size_t)herd_mlp_dim(det->mlp, l + 1);
    det->act[l] = block;
    det->delta[l] = block + floats;
    det->act_rows[l] = block + 2 * floats;
    block += 3 * floats;
  }
  return HERD_OK;
}

/* out[j][i] = in[i][j] for i < rows, j < cols (leading dimensions given). */
static void s_transpose(const float *in, size_t in_ld, float *out, size_t out_ld,
                        int rows, int cols)
{
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++)
      out[(size_t)j * out_ld + i] = in[(size_t)i * in_ld + j];
}

herd_result_t herd_mlp_det_load(herd_mlp_det_t *det, const float *x, int rows)
{
  if (rows < 1)
    return herd_error_set(HERD_EINVAL, "mlp: %d samples", rows);
  HERD_CHECK(s_reserve(det, rows));
  int inputs = herd_mlp_inputs(det->mlp);
  s_transpose(x, (size_t)inputs, det->x_t, (size_t)det->capacity, rows, inputs);
  det->x = x;
  det->rows = rows;
  return HERD_OK;
}

/* Feature-major input of layer `layer`, at sample 0. */
static const float *s_input_t(const herd_mlp_det_t *det, int layer)
{
  return layer == 0 ? det->x_t : det->act[layer - 1];
}

static void s_forward(herd_mlp_det_t *det, const float *params)
{
  size_t c = (size_t)det->capacity;
  for (int l = 0; l < det->layers; l++) {
    int n_in = herd_mlp_dim(det->mlp, l), n_out = herd_mlp_dim(det->mlp, l + 1);
    size_t w_off, b_off;
    herd_mlp_layer_offsets(det->mlp, l, &w_off, &b_off);
    herd_det_gemm(&(herd_det_gemm_t){
        .rows = n_out, .cols = det->rows, .depth = n_in,
        .a = params + w_off, .a_row = (size_t)n_in, .a_depth = 1,
        .b = s_input_t(det, l), .b_depth = c, .init = params + b_off,
        .c = det->act[l], .c_row = c});
    if (l + 1 == det->layers)
      break;
    for (int o = 0; o < n_out; o++) {
      float *z = det->act[l] + (size_t)o * c;
      for (int m = 0; m < det->rows; m++)
        z[m] = z[m] > 0.0f ? z[m] : 0.0f;
    }
  }
}

/* Softmax cross-entropy and the top deltas; each shard's loss is its
 * samples' losses summed in order. */
static void s_xent(herd_mlp_det_t *det, const uint8_t *labels,
                   const int *shards, int n_shards, double *shard_loss,
                   int *correct)
{
  int classes = herd_mlp_classes(det->mlp), top = det->layers - 1;
  size_t c = (size_t)det->capacity;
  float z[256], d[256]; /* classes <= 256, checked by the caller */
  for (int k = 0; k < n_shards; k++) {
    shard_loss[k] = 0;
    for (int m = shards[k]; m < shards[k + 1]; m++) {
      for (int j = 0; j < classes; j++)
        z[j] = det->act[top][(size_t)j * c + m];
      shard_loss[k] += herd_mlp_xent_row(z, classes, labels[m], d, correct);
      for (int j = 0; j < classes; j++)
        det->delta[top][(size_t)j * c + m] = d[j];
    }
  }
}

static void s_deltas(herd_mlp_det_t *det, const float *params)
{
  size_t c = (size_t)det->capacity;
  for (int l = det->layers - 1; l > 0; l--) {
    int n_in = herd_mlp_dim(det->mlp, l), n_out = herd_mlp_dim(det->mlp, l + 1);
    size_t w_off, b_off;
    herd_mlp_layer_offsets(det->mlp, l, &w_off, &b_off);
    herd_det_gemm(&(herd_det_gemm_t){
        .rows = n_in, .cols = det->rows, .depth = n_out,
        .a = params + w_off, .a_row = 1, .a_depth = (size_t)n_in,
        .b = det->delta[l], .b_depth = c, .c = det->delta[l - 1], .c_row = c});
    for (int i = 0; i < n_in; i++) {
      const float *a = det->act[l - 1] + (size_t)i * c;
      float *d = det->delta[l - 1] + (size_t)i * c;
      for (int m = 0; m < det->rows; m++)
        d[m] = a[m] > 0.0f ? d[m] : 0.0f;
    }
  }
}

herd_result_t herd_mlp_det_forward_deltas(herd_mlp_det_t *det,
                                          const float *params,
                                          const uint8_t *labels,
                                          const int *shards, int n_shards,
                                          double *shard_loss, int *correct)
{
  int classes = herd_mlp_classes(det->mlp);
  if (classes > 256)
    return herd_error_set(HERD_EINVAL, "mlp: --deterministic takes at most "
                          "256 classes, not %d", classes);
  if (n_shards < 1 || shards[0] != 0 || shards[n_shards] != det->rows)
    return herd_error_set(HERD_EINVAL, "mlp: shards must cover the %d loaded "
                          "samples", det->rows);
  HERD_CHECK(herd_mlp_check_labels(det->mlp, labels, (size_t)det->rows));
  s_forward(det, params);
  s_xent(det, labels, shards, n_shards, shard_loss, correct);
  s_deltas(det, params);
  /* The weight gradients read hidden activations sample by sample. */
  for (int l = 0; l + 1 < det->layers; l++)
    s_transpose(det->act[l], (size_t)det->capacity, det->act_rows[l],
                (size_t)herd_mlp_dim(det->mlp, l + 1),
                herd_mlp_dim(det->mlp, l + 1), det->rows);
  return HERD_OK;
}

/* Largest |v| over n floats, INFINITY if one is not finite. Compares the
 * bit patterns of |v|, which order like the values (and put NaN above
 * infinity), so the loop vectorises without reassociating anything. */
static float s_max_abs(const float *v, size_t n, size_t stride, size_t count)
{
  uint32_t top = 0;
  for (size_t j = 0; j < count; j++)
    for (size_t i = 0; i < n; i++) {
      uint32_t bits;
      memcpy(&bits, &v[j * stride + i], sizeof(bits));
      bits &= 0x7fffffffu;
      top = bits > top ? bits : top;
    }
  if (top >= 0x7f800000u)
    return INFINITY;
  float out;
  memcpy(&out, &top, sizeof(out));
  return out;
}

float herd_mlp_det_grad_bound(herd_mlp_det_t *det, int layer, int row0,
                              int batch)
{
  int n_in = herd_mlp_dim(det->mlp, layer), n_out = herd_mlp_dim(det->mlp, layer + 1);
  size_t c = (size_t)det->capacity;
  float in_max = layer == 0
                     ? s_max_abs(det->x + (size_t)row0 * n_in,
                                 (size_t)batch * n_in, 0, 1)
                     : s_max_abs(det->act[layer - 1] + row0, (size_t)batch, c,
                                 (size_t)n_in);
  float column_max = 0.0f;
  for (int o = 0; o < n_out; o++) {
    const float *d = det->delta[layer] + (size_t)o * c + row0;
    float column = 0.0f;
    for (int m = 0; m < batch; m++) /* in order: the bound must not vary */
      column += fabsf(d[m]);
    column_max = column > column_max || isnan(column) ? column : column_max;
  }
  if (!isfinite(column_max) || !isfinite(in_max))
    return INFINITY;
  return column_max * (in_max > 1.0f ? in_max : 1.0f);
}

int herd_mlp_det_grad_fixed(herd_mlp_det_t *det, int layer, const int *shards,
                            int n_shards, double scale, int64_t *w_sum,
                            int64_t *b_sum)
{
  int n_in = herd_mlp_dim(det->mlp, layer), n_out = herd_mlp_dim(det->mlp, layer + 1);
  int row0 = shards[0], pieces[HERD_MLP_DET_MAX_SHARDS + 1];
  for (int k = 0; k <= n_shards; k++)
    pieces[k] = shards[k] - row0;
  const float *in = layer == 0 ? det->x : det->act_rows[layer - 1];
  const float *d = det->delta[layer] + row0;
  static const float one = 1.0f;
  int ok = herd_det_gemm(&(herd_det_gemm_t){
      .rows = n_out, .cols = n_in, .depth = pieces[n_shards],
      .a = d, .a_row = (size_t)det->capacity, .a_depth = 1,
      .b = in + (size_t)row0 * n_in, .b_depth = (size_t)n_in,
      .fixed = w_sum, .fixed_row = (size_t)n_in, .scale = scale, .assign = 1,
      .pieces = pieces, .n_pieces = n_shards});
  ok &= herd_det_gemm(&(herd_det_gemm_t){
      .rows = n_out, .cols = 1, .depth = pieces[n_shards],
      .a = d, .a_row = (size_t)det->capacity, .a_depth = 1, .b = &one,
      .b_depth = 0, .fixed = b_sum, .fixed_row = 1, .scale = scale,
      .assign = 1, .pieces = pieces, .n_pieces = n_shards});
  return ok;
}
