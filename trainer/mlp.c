/* MLP forward/backward on flat buffers with OpenBLAS (see mlp.h).
 *
 * Every layer is one sgemm over the whole batch (row-major, samples in rows):
 *   forward   Z_l  = A_{l-1} W_l^T + b_l, A_l = relu(Z_l)  (no relu on logits)
 *   backward  dW_l += D_l^T A_{l-1},  db_l += colsum(D_l),
 *             D_{l-1} = (D_l W_l) * [A_{l-1} > 0]
 * where D_L = softmax(Z_L) - onehot(y). Post-ReLU activations are kept, which
 * is enough for the ReLU derivative, so the scratch holds one matrix per layer
 * plus two ping-pong delta matrices, all in a single block that grows only
 * when a larger batch arrives.
 */
#include "mlp.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "vector_clones.h"

struct herd_mlp {
  int n_dims;
  int dims[HERD_MLP_MAX_DIMS];
  size_t weight_offset[HERD_MLP_MAX_DIMS - 1];
  size_t bias_offset[HERD_MLP_MAX_DIMS - 1];
  size_t param_count;
  int max_width;     /* widest of dims[1..]: sizes the delta matrices */
  size_t row_floats; /* scratch floats per batch row */
  int capacity;      /* batch rows the scratch holds */
  float *scratch;
  float *act[HERD_MLP_MAX_DIMS - 1]; /* layer outputs, batch x dims[l+1] */
  float *delta[2];                   /* batch x max_width */
};

#define HERD_MLP_MAX_BATCH (1 << 24)

static herd_result_t s_check_dims(const int *dims, int n_dims)
{
  if (!dims || n_dims < 2 || n_dims > HERD_MLP_MAX_DIMS)
    return herd_error_set(HERD_EINVAL, "mlp: need 2..%d layer sizes, got %d",
                          HERD_MLP_MAX_DIMS, n_dims);
  for (int i = 0; i < n_dims; i++)
    if (dims[i] < 1 || dims[i] > HERD_MLP_MAX_WIDTH)
      return herd_error_set(HERD_EINVAL, "mlp: layer size %d is %d, want 1..%d",
                            i, dims[i], HERD_MLP_MAX_WIDTH);
  if (dims[n_dims - 1] < 2)
    return herd_error_set(HERD_EINVAL, "mlp: need at least 2 classes");
  return HERD_OK;
}

/* Computes the flat layout; dims are bounded so the sums can't overflow. */
#define MLP_READY_CHUNK_FLOATS 65536

static herd_result_t s_layout(herd_mlp_t *self)
{
  size_t offset = 0;
  self->max_width = 0;
  self->row_floats = 0;
  for (int l = 0; l + 1 < self->n_dims; l++) {
    size_t n_in = (size_t)self->dims[l], n_out = (size_t)self->dims[l + 1];
    self->weight_offset[l] = offset;
    offset += n_out * n_in;
    self->bias_offset[l] = offset;
    offset += n_out;
    if (offset > HERD_MLP_MAX_PARAMS)
      return herd_error_set(HERD_ETOOBIG, "mlp: more than %zu parameters",
                            HERD_MLP_MAX_PARAMS);
    if (self->dims[l + 1] > self->max_width)
      self->max_width = self->dims[l + 1];
    self->row_floats += n_out;
  }
  self->row_floats += 2 * (size_t)self->max_width;
  self->param_count = offset;
  return HERD_OK;
}

/* Makes room for `batch` rows. On failure the old scratch stays valid. */
static herd_result_t s_reserve(herd_mlp_t *self, int batch)
{
  if (batch <= self->capacity)
    return HERD_OK;
  if (batch > HERD_MLP_MAX_BATCH)
    return herd_error_set(HERD_ETOOBIG, "mlp: batch %d above %d", batch,
                          HERD_MLP_MAX_BATCH);
  float *block = malloc((size_t)batch * self->row_floats * sizeof(float));
  if (!block)
    return herd_error_set(HERD_ENOMEM, "mlp: no memory for batch %d", batch);
  free(self->scratch);
  self->scratch = block;
  self->capacity = batch;
  for (int l = 0; l + 1 < self->n_dims; l++) {
    self->act[l] = block;
    block += (size_t)batch * (size_t)self->dims[l + 1];
  }
  self->delta[0] = block;
  self->delta[1] = block + (size_t)batch * (size_t)self->max_width;
  return HERD_OK;
}

herd_result_t herd_mlp_new(const int *dims, int n_dims, int max_batch,
                           herd_mlp_t **out)
{
  herd_result_t rc = HERD_OK;
  herd_mlp_t *self = NULL;
  HERD_TRY(s_check_dims(dims, n_dims));
  if (max_batch < 1) {
    rc = herd_error_set(HERD_EINVAL, "mlp: max_batch %d < 1", max_batch);
    goto out;
  }
  self = calloc(1, sizeof(*self));
  if (!self) {
    rc = herd_error_set(HERD_ENOMEM, "mlp: out of memory");
    goto out;
  }
  self->n_dims = n_dims;
  memcpy(self->dims, dims, (size_t)n_dims * sizeof(int));
  HERD_TRY(s_layout(self));
  HERD_TRY(s_reserve(self, max_batch));
  /* One worker process per core: BLAS threads would only oversubscribe. */
  openblas_set_num_threads(1);
  *out = self;
  self = NULL;
out:
  herd_mlp_destroy(&self);
  return rc;
}

void herd_mlp_destroy(herd_mlp_t **mlp_p)
{
  if (!mlp_p || !*mlp_p)
    return;
  free((*mlp_p)->scratch);
  free(*mlp_p);
  *mlp_p = NULL;
}

size_t herd_mlp_param_count(const herd_mlp_t *mlp) { return mlp->param_count; }

int herd_mlp_n_layers(const herd_mlp_t *mlp) { return mlp->n_dims - 1; }

int herd_mlp_dim(const herd_mlp_t *mlp, int i) { return mlp->dims[i]; }

int herd_mlp_inputs(const herd_mlp_t *mlp) { return mlp->dims[0]; }

int herd_mlp_classes(const herd_mlp_t *mlp)
{
  return mlp->dims[mlp->n_dims - 1];
}

void herd_mlp_layer_offsets(const herd_mlp_t *mlp, int layer,
                            size_t *weight_offset, size_t *bias_offset)
{
  *weight_offset = mlp->weight_offset[layer];
  *bias_offset = mlp->bias_offset[layer];
}

void herd_mlp_init_params(const herd_mlp_t *mlp, float *params, herd_rng_t *rng)
{
  for (int l = 0; l + 1 < mlp->n_dims; l++) {
    size_t n_in = (size_t)mlp->dims[l], n_out = (size_t)mlp->dims[l + 1];
    /* He et al. 2015: keeps activation variance steady through ReLUs. */
    float std = sqrtf(2.0f / (float)n_in);
    float *w = params + mlp->weight_offset[l];
    for (size_t i = 0; i < n_out * n_in; i++)
      w[i] = std * herd_rng_normal_f32(rng);
    memset(params + mlp->bias_offset[l], 0, n_out * sizeof(float));
  }
}

HERD_VECTOR_CLONES static void s_relu(float *z, size_t n)
{
  for (size_t i = 0; i < n; i++)
    z[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

/* d where the ReLU let its input through, else 0. A select, not a
 * conditional store: it vectorises (the branch was 5 % of a step). in[] is
 * a ReLU output, never NaN. */
HERD_VECTOR_CLONES static void s_relu_mask(float *d, const float *in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    d[i] = in[i] > 0.0f ? d[i] : 0.0f;
}

/* gb += the column sums of d (batch rows of n): row by row, so each
 * column adds in the same order on any vector width. */
HERD_VECTOR_CLONES static void s_bias_grad(float *gb, const float *d,
                                           int batch, int n)
{
  for (int i = 0; i < batch; i++)
    for (int j = 0; j < n; j++)
      gb[j] += d[(size_t)i * n + j];
}

/* Leaves the logits in act[L-1] and hidden activations in act[0..L-2]. */
static void s_forward(herd_mlp_t *self, const float *params, const float *x,
                      int batch)
{
  const float *in = x;
  int layers = self->n_dims - 1;
  for (int l = 0; l < layers; l++) {
    int n_in = self->dims[l], n_out = self->dims[l + 1];
    const float *w = params + self->weight_offset[l];
    const float *b = params + self->bias_offset[l];
    float *z = self->act[l];
    for (int i = 0; i < batch; i++)
      memcpy(z + (size_t)i * n_out, b, (size_t)n_out * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n_out, n_in,
                1.0f, in, n_in, w, n_in, 1.0f, z, n_out);
    if (l + 1 < layers)
      s_relu(z, (size_t)batch * (size_t)n_out);
    in = z;
  }
}

#define MLP_XENT_KEEP 64

double herd_mlp_xent_row(const float *z, int classes, int label, float *d,
                         int *correct)
{
  int argmax = 0;
  for (int j = 1; j < classes; j++)
    if (z[j] > z[argmax])
      argmax = j;
  float max = z[argmax];
  double sum = 0.0, e[MLP_XENT_KEEP];
  int keep = classes <= MLP_XENT_KEEP; /* exp once per logit when it fits */
  for (int j = 0; j < classes; j++) {
    double ej = exp((double)(z[j] - max));
    if (keep)
      e[j] = ej;
    sum += ej;
  }
  if (argmax == label)
    (*correct)++;
  if (d) {
    for (int j = 0; j < classes; j++)
      d[j] = (float)((keep ? e[j] : exp((double)(z[j] - max))) / sum);
    d[label] -= 1.0f;
  }
  return log(sum) - (double)(z[label] - max);
}

static void s_xent(herd_mlp_t *self, const uint8_t *labels, int batch,
                   float *delta, double *loss_sum, int *correct)
{
  int classes = herd_mlp_classes(self);
  const float *logits = self->act[self->n_dims - 2];
  double loss = 0.0;
  int right = 0;
  for (int i = 0; i < batch; i++) {
    size_t row = (size_t)i * (size_t)classes;
    loss += herd_mlp_xent_row(logits + row, classes, labels[i],
                       delta ? delta + row : NULL, &right);
  }
  if (loss_sum)
    *loss_sum += loss;
  if (correct)
    *correct += right;
}

/* Rows of W per ready() range: about 256 KiB of gradient at a time. */
static int s_chunk_rows(int n_in)
{
  int rows = MLP_READY_CHUNK_FLOATS / n_in;
  return rows > 0 ? rows : 1;
}

/* Layer l's gradient: db, then dW in row chunks from the last row down, so
 * the ranges given to ready() run back to front without gaps. With ready
 * NULL, dW is one GEMM. With batch 0 (d unused) only the ranges are told. */
static void s_layer_grad(herd_mlp_t *self, int l, const float *d,
                         const float *in, int batch, float *grad,
                         herd_mlp_ready_fn ready, void *arg)
{
  int n_in = self->dims[l], n_out = self->dims[l + 1];
  size_t w_at = self->weight_offset[l], b_at = self->bias_offset[l];
  s_bias_grad(grad + b_at, d, batch, n_out);
  if (!ready) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, batch,
                1.0f, d, n_out, in, n_in, 1.0f, grad + w_at, n_in);
    return;
  }
  ready(arg, b_at, b_at + (size_t)n_out);
  int chunk = s_chunk_rows(n_in);
  for (int hi = n_out; hi > 0; hi -= chunk) {
    int lo = hi > chunk ? hi - chunk : 0;
    if (batch > 0) /* rows lo..hi of dW = d[:, lo..hi]^T in */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, n_in,
                  batch, 1.0f, d + lo, n_out, in, n_in, 1.0f,
                  grad + w_at + (size_t)lo * n_in, n_in);
    ready(arg, w_at + (size_t)lo * n_in, w_at + (size_t)hi * n_in);
  }
}

/* Accumulates dW, db for every layer from the top delta in delta[0]. */
static void s_backward(herd_mlp_t *self, const float *params, const float *x,
                       int batch, float *grad, herd_mlp_ready_fn ready,
                       void *arg)
{
  float *d = self->delta[0], *d_next = self->delta[1];
  for (int l = self->n_dims - 2; l >= 0; l--) {
    int n_in = self->dims[l], n_out = self->dims[l + 1];
    const float *in = l > 0 ? self->act[l - 1] : x;
    const float *w = params + self->weight_offset[l];
    s_layer_grad(self, l, d, in, batch, grad, ready, arg);
    if (l == 0)
      break;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, n_in, n_out,
                1.0f, d, n_out, w, n_in, 0.0f, d_next, n_in);
    s_relu_mask(d_next, in, (size_t)batch * (size_t)n_in);
    float *tmp = d;
    d = d_next;
    d_next = tmp;
  }
}

herd_result_t herd_mlp_check_labels(const herd_mlp_t *self,
                                    const uint8_t *labels, size_t n)
{
  int classes = herd_mlp_classes(self);
  for (size_t i = 0; i < n; i++)
    if (labels[i] >= classes)
      return herd_error_set(HERD_EINVAL, "mlp: label %d of sample %zu >= %d",
                            labels[i], i, classes);
  return HERD_OK;
}

herd_result_t herd_mlp_forward_backward_ready(
    herd_mlp_t *mlp, const float *params, const float *x, const uint8_t *labels,
    int batch, float *grad_sum, double *loss_sum, int *correct,
    herd_mlp_ready_fn ready, void *ready_arg)
{
  if (batch < 0)
    return herd_error_set(HERD_EINVAL, "mlp: negative batch %d", batch);
  if (batch == 0) {
    for (int l = mlp->n_dims - 2; ready && l >= 0; l--)
      s_layer_grad(mlp, l, NULL, NULL, 0, grad_sum, ready, ready_arg);
    return HERD_OK;
  }
  HERD_CHECK(herd_mlp_check_labels(mlp, labels, (size_t)batch));
  HERD_CHECK(s_reserve(mlp, batch));
  s_forward(mlp, params, x, batch);
  s_xent(mlp, labels, batch, mlp->delta[0], loss_sum, correct);
  s_backward(mlp, params, x, batch, grad_sum, ready, ready_arg);
  return HERD_OK;
}

herd_result_t herd_mlp_forward_backward(herd_mlp_t *mlp, const float *params,
                                        const float *x, const uint8_t *labels,
                                        int batch, float *grad_sum,
                                        double *loss_sum, int *correct)
{
  return herd_mlp_forward_backward_ready(mlp, params, x, labels, batch,
                                         grad_sum, loss_sum, correct, NULL,
                                         NULL);
}

herd_result_t herd_mlp_evaluate(herd_mlp_t *mlp, const float *params,
                                const float *x, const uint8_t *labels, size_t n,
                                double *loss_sum, int64_t *correct)
{
  HERD_CHECK(herd_mlp_check_labels(mlp, labels, n));
  size_t inputs = (size_t)herd_mlp_inputs(mlp);
  for (size_t first = 0; first < n; first += (size_t)mlp->capacity) {
    size_t left = n - first;
    int chunk = left < (size_t)mlp->capacity ? (int)left : mlp->capacity;
    int right = 0;
    s_forward(mlp, params, x + first * inputs, chunk);
    s_xent(mlp, labels + first, chunk, NULL, loss_sum, &right);
    if (correct)
      *correct += right;
  }
  return HERD_OK;
}

/* Arithmetic, not a table lookup per byte: the compiler vectorises it
 * (the gather was 4 % of a step). The CUDA kernel's formula, same bits. */
HERD_VECTOR_CLONES static void s_normalize_row(const uint8_t *src,
                                               size_t count, float *dst)
{
  for (size_t k = 0; k < count; k++)
    dst[k] = ((float)src[k] / 255.0f - HERD_MLP_PIXEL_MEAN) / HERD_MLP_PIXEL_STD;
}

void herd_mlp_normalize_u8(const uint8_t *pixels, size_t count, float *out)
{
  s_normalize_row(pixels, count, out);
}

void herd_mlp_gather(const uint8_t *images, const uint8_t *labels,
                     size_t sample_size, const uint32_t *indices, size_t n,
                     float *x, uint8_t *labels_out)
{
  for (size_t i = 0; i < n; i++) {
    const uint8_t *src = images + (size_t)indices[i] * sample_size;
    s_normalize_row(src, sample_size, x + i * sample_size);
    if (labels_out)
      labels_out[i] = labels[indices[i]];
  }
}
