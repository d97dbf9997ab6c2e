/* MLP forward/backward on one GPU with cuBLAS (see mlp_cuda.h).
 *
 * The same algebra as mlp.c. cuBLAS is column-major, so a row-major matrix
 * M (r x c) is read as M^T (c x r) with leading dimension c and every
 * product is taken transposed:
 *   forward   Z^T = W . A^T            gemm(T, N, out, batch, in)
 *             then bias (+ ReLU below the logits) in one kernel
 *   backward  dW^T += A^T . D          gemm(N, T, in, out, batch), beta 1
 *             db += colsum(D)          s_bias_grad
 *             D_prev^T = W^T . D^T     gemm(N, N, in, batch, out)
 *             D_prev *= [A_prev > 0]   s_relu_backward
 * with D_L = softmax(Z_L) - onehot(y) from s_xent, which also leaves each
 * row's loss and hit in row_stats; s_sum_rows adds those up in one block,
 * in a fixed order. The shape, layout and argument checks are mlp.c's own:
 * the model keeps a host herd_mlp_t of batch 1 for them.
 */
#include "mlp_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "mlp.h"

struct herd_mlp_cuda {
  herd_mlp_t *shape; /* host model of batch 1: dims, offsets, checks */
  int layers;
  int max_width;
  size_t row_floats; /* scratch floats per batch row */
  int capacity;      /* batch rows the scratch holds */
  float *scratch;    /* device: act[l] and delta[0..1] */
  float *act[HERD_MLP_MAX_DIMS - 1];
  float *delta[2];
  double *row_stats; /* device: loss of each row, then hit (0/1) of each */
  double *eval_sums; /* device: evaluate's loss sum and correct count */
  cudaStream_t stream;
  cublasHandle_t blas;
};

#define S_MAX_BATCH (1 << 24)
#define S_THREADS 256

/* cuBLAS is opened with dlopen on first use, not linked: loading it (and
 * cuBLASLt behind it) costs a process about 200 MiB of memory, which every
 * herd-train on the CPU would pay for nothing. Six functions are used. */
namespace {
struct s_cublas_api {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSgemm_v2) sgemm;
  decltype(&cublasGetStatusString) status_string;
};
s_cublas_api s_cublas;
pthread_once_t s_cublas_once = PTHREAD_ONCE_INIT;
char s_cublas_error[512];

void *s_cublas_open(void)
{
  /* The library this build was configured with, then by its soname. */
  char soname[64];
  snprintf(soname, sizeof soname, "libcublas.so.%d", CUDART_VERSION / 1000);
  const char *names[] = {HERD_CUBLAS_PATH, soname, "libcublas.so"};
  for (const char *name : names) {
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib)
      return lib;
    snprintf(s_cublas_error, sizeof s_cublas_error, "%s", dlerror());
  }
  return NULL;
}

template <typename F> bool s_cublas_sym(void *lib, const char *name, F *fn)
{
  *fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!*fn)
    snprintf(s_cublas_error, sizeof s_cublas_error, "%s: %s", name, dlerror());
  return *fn != NULL;
}

void s_cublas_load(void)
{
  void *lib = s_cublas_open();
  s_cublas_api api;
  if (lib && s_cublas_sym(lib, "cublasCreate_v2", &api.create) &&
      s_cublas_sym(lib, "cublasDestroy_v2", &api.destroy) &&
      s_cublas_sym(lib, "cublasSetStream_v2", &api.set_stream) &&
      s_cublas_sym(lib, "cublasSetMathMode", &api.set_math_mode) &&
      s_cublas_sym(lib, "cublasSgemm_v2", &api.sgemm) &&
      s_cublas_sym(lib, "cublasGetStatusString", &api.status_string))
    s_cublas = api;
}
} // namespace

static herd_result_t s_cublas_ready(void)
{
  pthread_once(&s_cublas_once, s_cublas_load);
  if (!s_cublas.sgemm)
    return herd_error_set(HERD_EUNSUPPORTED, "cannot load cuBLAS: %s",
                          s_cublas_error);
  return HERD_OK;
}

herd_result_t herd_mlp_cuda_load_blas(void) { return s_cublas_ready(); }

#define S_BLAS(call)                                                           \
  do {                                                                         \
    cublasStatus_t s_st_ = (call);                                             \
    if (s_st_ != CUBLAS_STATUS_SUCCESS)                                        \
      return herd_error_set(HERD_EBACKEND, "cublas: %s: %s", #call,            \
                            s_cublas.status_string(s_st_));                    \
  } while (0)

/* Blocks for a grid-stride loop over n elements. */
static unsigned s_blocks(size_t n)
{
  size_t blocks = (n + S_THREADS - 1) / S_THREADS;
  return (unsigned)(blocks < 1 ? 1 : blocks > 8192 ? 8192 : blocks);
}

/* ---- kernels ---- */

#define S_GRID_STRIDE(i, n)                                                    \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);      \
       i += (size_t)gridDim.x * blockDim.x)

/* z[i][j] += b[j]; then max(z, 0) when relu. */
__global__ void s_bias_act(float *z, const float *b, size_t rows, int cols,
                           int relu)
{
  S_GRID_STRIDE(i, rows * (size_t)cols)
  {
    float v = z[i] + b[i % (size_t)cols];
    z[i] = relu && !(v > 0.0f) ? 0.0f : v;
  }
}

__global__ void s_relu_backward(float *d, const float *a, size_t n)
{
  S_GRID_STRIDE(i, n)
  {
    if (a[i] <= 0.0f)
      d[i] = 0.0f;
  }
}

/* The (value, index) of the larger logit; ties go to the smaller index, as
 * mlp.c's strict `>` scan does. */
__device__ static void s_argmax_merge(float *value, int *index, float v, int j)
{
  if (v > *value || (v == *value && j < *index)) {
    *value = v;
    *index = j;
  }
}

/* One warp per row: loss (double, as mlp.c) and hit into row_stats; and the
 * delta softmax - onehot when d != NULL. */
__global__ void s_xent(const float *z, const uint8_t *labels, int rows,
                       int classes, float *d, double *row_loss, double *row_hit)
{
  int row = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32);
  int lane = threadIdx.x % 32;
  if (row >= rows)
    return;
  const float *zr = z + (size_t)row * classes;
  float max = -INFINITY;
  int argmax = classes;
  for (int j = lane; j < classes; j += 32)
    s_argmax_merge(&max, &argmax, zr[j], j);
  for (int off = 16; off > 0; off /= 2) {
    float v = __shfl_xor_sync(0xffffffffu, max, off);
    int j = __shfl_xor_sync(0xffffffffu, argmax, off);
    s_argmax_merge(&max, &argmax, v, j);
  }
  if (argmax == classes) /* every logit NaN */
    argmax = 0, max = zr[0];
  double sum = 0.0;
  for (int j = lane; j < classes; j += 32)
    sum += exp((double)(zr[j] - max));
  for (int off = 16; off > 0; off /= 2)
    sum += __shfl_xor_sync(0xffffffffu, sum, off);
  int label = labels[row];
  int valid = label < classes;
  if (d) {
    float *dr = d + (size_t)row * classes;
    for (int j = lane; j < classes; j += 32)
      dr[j] = !valid       ? 0.0f
              : j == label ? (float)(exp((double)(zr[j] - max)) / sum) - 1.0f
                           : (float)(exp((double)(zr[j] - max)) / sum);
  }
  if (lane == 0) {
    row_loss[row] = valid ? log(sum) - (double)(zr[label] - max) : NAN;
    row_hit[row] = valid && argmax == label ? 1.0 : 0.0;
  }
}

/* One block: *loss_out += sum(row_loss), *hits_out += sum(row_hit), in a
 * fixed order whatever the timing. T is float (the gradient buffer's extra
 * elements) or double (evaluate). */
template <typename T>
__global__ void s_sum_rows(const double *row_loss, const double *row_hit,
                           int rows, T *loss_out, T *hits_out)
{
  __shared__ double loss[S_THREADS], hits[S_THREADS];
  double l = 0.0, h = 0.0;
  for (int i = threadIdx.x; i < rows; i += blockDim.x) {
    l += row_loss[i];
    h += row_hit[i];
  }
  loss[threadIdx.x] = l;
  hits[threadIdx.x] = h;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) {
      loss[threadIdx.x] += loss[threadIdx.x + half];
      hits[threadIdx.x] += hits[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (loss_out)
      *loss_out += (T)loss[0];
    if (hits_out)
      *hits_out += (T)hits[0];
  }
}

/* db[j] += sum_i d[i][j]: 32 columns per block (coalesced rows), 8 row
 * stripes summed through shared memory. */
__global__ void s_bias_grad(const float *d, int rows, int cols, float *db)
{
  __shared__ float part[8][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  float sum = 0.0f;
  if (j < cols)
    for (int i = threadIdx.y; i < rows; i += 8)
      sum += d[(size_t)i * cols + j];
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    for (int k = 1; k < 8; k++)
      sum += part[k][threadIdx.x];
    db[j] += sum;
  }
}

__device__ static float s_pixel(uint8_t v)
{
  return ((float)v / 255.0f - HERD_MLP_PIXEL_MEAN) / HERD_MLP_PIXEL_STD;
}

__global__ void s_normalize(const uint8_t *pixels, size_t count, float *out)
{
  S_GRID_STRIDE(i, count) { out[i] = s_pixel(pixels[i]); }
}

__global__ void s_gather(const uint8_t *images, const uint8_t *labels,
                         size_t sample_size, const uint32_t *indices, size_t n,
                         float *x, uint8_t *labels_out)
{
  S_GRID_STRIDE(i, n * sample_size)
  {
    size_t sample = i / sample_size, k = i % sample_size;
    size_t src = (size_t)indices[sample];
    x[i] = s_pixel(images[src * sample_size + k]);
    if (labels_out && k == 0)
      labels_out[sample] = labels[src];
  }
}

__global__ void s_set(float *dst, float value) { *dst = value; }

/* *flag = 1 when any value is NaN or infinite (every writer writes the
 * same 1, so the race is benign). */
__global__ void s_flag_nonfinite(const float *values, size_t n, float *flag)
{
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    if (!isfinite(values[i]))
      *flag = 1.0f;
}

/* ---- model ---- */

/* Makes room for `batch` rows. On failure the old scratch stays valid. */
static herd_result_t s_reserve(herd_mlp_cuda_t *self, int batch)
{
  if (batch <= self->capacity)
    return HERD_OK;
  if (batch > S_MAX_BATCH)
    return herd_error_set(HERD_ETOOBIG, "mlp_cuda: batch %d above %d", batch,
                          S_MAX_BATCH);
  float *block = NULL;
  double *stats = NULL;
  cudaError_t err = cudaMalloc(
      (void **)&block, (size_t)batch * self->row_floats * sizeof(float));
  if (err == cudaSuccess)
    err = cudaMalloc((void **)&stats, 2 * (size_t)batch * sizeof(double));
  if (err != cudaSuccess) {
    cudaFree(block);
    return herd_cuda_error(err, "scratch");
  }
  cudaFree(self->scratch); /* waits for queued work that still uses it */
  cudaFree(self->row_stats);
  self->scratch = block;
  self->row_stats = stats;
  self->capacity = batch;
  for (int l = 0; l < self->layers; l++) {
    self->act[l] = block;
    block += (size_t)batch * (size_t)herd_mlp_dim(self->shape, l + 1);
  }
  self->delta[0] = block;
  self->delta[1] = block + (size_t)batch * (size_t)self->max_width;
  return HERD_OK;
}

static herd_result_t s_init_device(herd_mlp_cuda_t *self, int max_batch)
{
  HERD_CUDA_CHECK(cudaStreamCreateWithFlags(&self->stream, cudaStreamNonBlocking));
  HERD_CHECK(s_cublas_ready());
  S_BLAS(s_cublas.create(&self->blas));
  S_BLAS(s_cublas.set_stream(self->blas, self->stream));
  /* FP32 as on the CPU: TF32 would break the 1e-3 agreement with mlp.c. */
  S_BLAS(s_cublas.set_math_mode(self->blas, CUBLAS_DEFAULT_MATH));
  HERD_CUDA_CHECK(cudaMalloc((void **)&self->eval_sums, 2 * sizeof(double)));
  return s_reserve(self, max_batch);
}

herd_result_t herd_mlp_cuda_new(const int *dims, int n_dims, int max_batch,
                                herd_mlp_cuda_t **out)
{
  herd_result_t rc = HERD_OK;
  herd_mlp_cuda_t *self = NULL;
  if (max_batch < 1) {
    rc = herd_error_set(HERD_EINVAL, "mlp_cuda: max_batch %d < 1", max_batch);
    goto out;
  }
  self = (herd_mlp_cuda_t *)calloc(1, sizeof(*self));
  if (!self) {
    rc = herd_error_set(HERD_ENOMEM, "mlp_cuda: out of memory");
    goto out;
  }
  HERD_TRY(herd_mlp_new(dims, n_dims, 1, &self->shape));
  self->layers = herd_mlp_n_layers(self->shape);
  for (int l = 1; l <= self->layers; l++) {
    int width = herd_mlp_dim(self->shape, l);
    self->row_floats += (size_t)width;
    self->max_width = width > self->max_width ? width : self->max_width;
  }
  self->row_floats += 2 * (size_t)self->max_width;
  HERD_TRY(s_init_device(self, max_batch));
  *out = self;
  self = NULL;
out:
  herd_mlp_cuda_destroy(&self);
  return rc;
}

void herd_mlp_cuda_destroy(herd_mlp_cuda_t **mlp_p)
{
  if (!mlp_p || !*mlp_p)
    return;
  herd_mlp_cuda_t *self = *mlp_p;
  if (self->stream)
    cudaStreamSynchronize(self->stream);
  if (self->blas)
    s_cublas.destroy(self->blas);
  cudaFree(self->scratch);
  cudaFree(self->row_stats);
  cudaFree(self->eval_sums);
  if (self->stream)
    cudaStreamDestroy(self->stream);
  herd_mlp_destroy(&self->shape);
  free(self);
  *mlp_p = NULL;
}

size_t herd_mlp_cuda_param_count(const herd_mlp_cuda_t *mlp)
{
  return herd_mlp_param_count(mlp->shape);
}

int herd_mlp_cuda_classes(const herd_mlp_cuda_t *mlp)
{
  return herd_mlp_classes(mlp->shape);
}

cudaStream_t herd_mlp_cuda_stream(const herd_mlp_cuda_t *mlp)
{
  return mlp->stream;
}

herd_result_t herd_mlp_cuda_sgemm_rate(herd_mlp_cuda_t *self, int m, int n,
                                       int k, double *flops_out)
{
  const float one = 1.0f, zero = 0.0f;
  float *a = NULL, *b = NULL, *c = NULL;
  cudaEvent_t start = NULL, stop = NULL;
  herd_result_t rc = HERD_OK;
  double best = 0;
  *flops_out = 0;
  if (cudaMalloc(&a, (size_t)m * k * sizeof *a) != cudaSuccess ||
      cudaMalloc(&b, (size_t)k * n * sizeof *b) != cudaSuccess ||
      cudaMalloc(&c, (size_t)m * n * sizeof *c) != cudaSuccess ||
      cudaEventCreate(&start) != cudaSuccess ||
      cudaEventCreate(&stop) != cudaSuccess) {
    rc = herd_error_set(HERD_ENOMEM, "no GPU memory to measure sgemm");
    goto out;
  }
  cudaMemsetAsync(a, 0, (size_t)m * k * sizeof *a, self->stream);
  cudaMemsetAsync(b, 0, (size_t)k * n * sizeof *b, self->stream);
  for (int window = 0; window < 4 && rc == HERD_OK; window++) {
    cudaEventRecord(start, self->stream);
    for (int i = 0; i < 20; i++)
      if (s_cublas.sgemm(self->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, b,
                      k, a, k, &zero, c, n) != CUBLAS_STATUS_SUCCESS)
        rc = herd_error_set(HERD_EBACKEND, "cublasSgemm failed");
    cudaEventRecord(stop, self->stream);
    float ms = 0;
    if (cudaEventSynchronize(stop) != cudaSuccess ||
        cudaEventElapsedTime(&ms, start, stop) != cudaSuccess || ms <= 0)
      rc = herd_error_set(HERD_EBACKEND, "timing sgemm on the GPU failed");
    double rate = rc == HERD_OK ? 2.0 * m * n * k * 20 / (ms / 1e3) : 0;
    if (window > 0 && rate > best) /* the first warms up */
      best = rate;
  }
  *flops_out = best;
out:
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  if (start)
    cudaEventDestroy(start);
  if (stop)
    cudaEventDestroy(stop);
  return rc;
}

/* Logits in act[layers-1], hidden activations in act[0..layers-2]. */
static herd_result_t s_forward(herd_mlp_cuda_t *self, const float *params,
                               const float *x, int batch)
{
  const float one = 1.0f, zero = 0.0f;
  const float *in = x;
  for (int l = 0; l < self->layers; l++) {
    int n_in = herd_mlp_dim(self->shape, l);
    int n_out = herd_mlp_dim(self->shape, l + 1);
    size_t w_off, b_off;
    herd_mlp_layer_offsets(self->shape, l, &w_off, &b_off);
    float *z = self->act[l];
    S_BLAS(s_cublas.sgemm(self->blas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, batch, n_in,
                       &one, params + w_off, n_in, in, n_in, &zero, z, n_out));
    size_t n = (size_t)batch * (size_t)n_out;
    s_bias_act<<<s_blocks(n), S_THREADS, 0, self->stream>>>(
        z, params + b_off, (size_t)batch, n_out, l + 1 < self->layers);
    HERD_CUDA_CHECK(cudaGetLastError());
    in = z;
  }
  return HERD_OK;
}

/* Row losses and hits into row_stats; the top delta into d unless NULL. */
static herd_result_t s_loss(herd_mlp_cuda_t *self, const uint8_t *labels,
                            int batch, float *d)
{
  int classes = herd_mlp_classes(self->shape);
  const int rows_per_block = S_THREADS / 32;
  unsigned blocks = (unsigned)((batch + rows_per_block - 1) / rows_per_block);
  s_xent<<<blocks, S_THREADS, 0, self->stream>>>(
      self->act[self->layers - 1], labels, batch, classes, d, self->row_stats,
      self->row_stats + self->capacity);
  HERD_CUDA_CHECK(cudaGetLastError());
  return HERD_OK;
}

static herd_result_t s_backward(herd_mlp_cuda_t *self, const float *params,
                                const float *x, int batch, float *grad)
{
  const float one = 1.0f, zero = 0.0f;
  float *d = self->delta[0], *d_next = self->delta[1];
  for (int l = self->layers - 1; l >= 0; l--) {
    int n_in = herd_mlp_dim(self->shape, l);
    int n_out = herd_mlp_dim(self->shape, l + 1);
    size_t w_off, b_off;
    herd_mlp_layer_offsets(self->shape, l, &w_off, &b_off);
    const float *in = l > 0 ? self->act[l - 1] : x;
    S_BLAS(s_cublas.sgemm(self->blas, CUBLAS_OP_N, CUBLAS_OP_T, n_in, n_out, batch,
                       &one, in, n_in, d, n_out, &one, grad + w_off, n_in));
    dim3 block(32, 8);
    s_bias_grad<<<(unsigned)((n_out + 31) / 32), block, 0, self->stream>>>(
        d, batch, n_out, grad + b_off);
    HERD_CUDA_CHECK(cudaGetLastError());
    if (l == 0)
      break;
    S_BLAS(s_cublas.sgemm(self->blas, CUBLAS_OP_N, CUBLAS_OP_N, n_in, batch, n_out,
                       &one, params + w_off, n_in, d, n_out, &zero, d_next,
                       n_in));
    size_t n = (size_t)batch * (size_t)n_in;
    s_relu_backward<<<s_blocks(n), S_THREADS, 0, self->stream>>>(d_next, in, n);
    HERD_CUDA_CHECK(cudaGetLastError());
    float *tmp = d;
    d = d_next;
    d_next = tmp;
  }
  return HERD_OK;
}

herd_result_t
herd_mlp_cuda_forward_backward(herd_mlp_cuda_t *mlp, const float *params,
                               const float *x, const uint8_t *labels, int batch,
                               float *grad_sum, float *loss_sum, float *correct)
{
  if (batch < 0)
    return herd_error_set(HERD_EINVAL, "mlp_cuda: negative batch %d", batch);
  if (batch == 0)
    return HERD_OK;
  HERD_CHECK(s_reserve(mlp, batch));
  HERD_CHECK(s_forward(mlp, params, x, batch));
  HERD_CHECK(s_loss(mlp, labels, batch, mlp->delta[0]));
  if (loss_sum || correct) {
    s_sum_rows<float><<<1, S_THREADS, 0, mlp->stream>>>(
        mlp->row_stats, mlp->row_stats + mlp->capacity, batch, loss_sum,
        correct);
    HERD_CUDA_CHECK(cudaGetLastError());
  }
  return s_backward(mlp, params, x, batch, grad_sum);
}

herd_result_t herd_mlp_cuda_evaluate(herd_mlp_cuda_t *mlp, const float *params,
                                     const float *x, const uint8_t *labels,
                                     size_t n, double *loss_sum,
                                     int64_t *correct)
{
  size_t inputs = (size_t)herd_mlp_inputs(mlp->shape);
  double sums[2] = {0.0, 0.0};
  HERD_CUDA_CHECK(cudaMemsetAsync(mlp->eval_sums, 0, sizeof sums, mlp->stream));
  for (size_t first = 0; first < n; first += (size_t)mlp->capacity) {
    size_t left = n - first;
    int chunk = left < (size_t)mlp->capacity ? (int)left : mlp->capacity;
    HERD_CHECK(s_forward(mlp, params, x + first * inputs, chunk));
    HERD_CHECK(s_loss(mlp, labels + first, chunk, NULL));
    s_sum_rows<double><<<1, S_THREADS, 0, mlp->stream>>>(
        mlp->row_stats, mlp->row_stats + mlp->capacity, chunk, mlp->eval_sums,
        mlp->eval_sums + 1);
    HERD_CUDA_CHECK(cudaGetLastError());
  }
  HERD_CUDA_CHECK(cudaMemcpyAsync(sums, mlp->eval_sums, sizeof sums,
                         cudaMemcpyDeviceToHost, mlp->stream));
  HERD_CUDA_CHECK(cudaStreamSynchronize(mlp->stream));
  if (loss_sum)
    *loss_sum += sums[0];
  if (correct)
    *correct += (int64_t)sums[1];
  return HERD_OK;
}

herd_result_t herd_mlp_cuda_normalize_u8(herd_mlp_cuda_t *mlp,
                                         const uint8_t *pixels, size_t count,
                                         float *out)
{
  if (count == 0)
    return HERD_OK;
  s_normalize<<<s_blocks(count), S_THREADS, 0, mlp->stream>>>(pixels, count,
                                                              out);
  HERD_CUDA_CHECK(cudaGetLastError());
  return HERD_OK;
}

herd_result_t herd_mlp_cuda_gather(herd_mlp_cuda_t *mlp, const uint8_t *images,
                                   const uint8_t *labels, size_t sample_size,
                                   const uint32_t *indices, size_t n, float *x,
                                   uint8_t *labels_out)
{
  if (n == 0 || sample_size == 0)
    return HERD_OK;
  s_gather<<<s_blocks(n * sample_size), S_THREADS, 0, mlp->stream>>>(
      images, labels, sample_size, indices, n, x, labels_out);
  HERD_CUDA_CHECK(cudaGetLastError());
  return HERD_OK;
}

herd_result_t herd_mlp_cuda_flag_nonfinite(herd_mlp_cuda_t *mlp,
                                           const float *values, size_t n,
                                           float *flag)
{
  s_set<<<1, 1, 0, mlp->stream>>>(flag, 0.0f);
  if (n) {
    size_t blocks = (n + 255) / 256;
    s_flag_nonfinite<<<blocks < 1024 ? (unsigned)blocks : 1024u, 256, 0,
                       mlp->stream>>>(values, n, flag);
  }
  HERD_CUDA_CHECK(cudaGetLastError());
  return HERD_OK;
}

herd_result_t herd_mlp_cuda_set_f32(herd_mlp_cuda_t *mlp, float *dst,
                                    float value)
{
  s_set<<<1, 1, 0, mlp->stream>>>(dst, value);
  HERD_CUDA_CHECK(cudaGetLastError());
  return HERD_OK;
}
