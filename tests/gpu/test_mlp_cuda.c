/* herd-train's CUDA model against the CPU model (label gpu).
 *
 * Same params, same batch: the GPU's gradient sum must match mlp.c's within
 * a relative 1e-3 per tensor (max |gpu - cpu| / max |cpu| over each W and
 * b), loss and correct count too (both paths ADD into what is there);
 * evaluation in chunks, the gather/normalisation (bit for bit) and the
 * optimizers (AdamW, SGD momentum, Nesterov: the same bits as optim.c, up
 * to 1e-6) likewise. Skips with exit 77 and a message where no GPU exists.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "mlp_cuda.h"
#include "optim.h"
#include "optim_cuda.h"

static int s_failures;

#define S_EXPECT(cond, ...)                                                    \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      s_failures++;                                                            \
    }                                                                          \
  } while (0)

#define S_CUDA(call)                                                           \
  do {                                                                         \
    cudaError_t s_err_ = (call);                                               \
    if (s_err_ != cudaSuccess) {                                               \
      fprintf(stderr, "FAIL %s: %s\n", #call, cudaGetErrorString(s_err_));     \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define S_OK(call)                                                             \
  do {                                                                         \
    herd_result_t s_rc_ = (call);                                              \
    if (s_rc_ != HERD_OK) {                                                    \
      fprintf(stderr, "FAIL %s: %s\n", #call, herd_error_detail());            \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static void *s_to_device(const void *host, size_t bytes)
{
  void *device = NULL;
  S_CUDA(cudaMalloc(&device, bytes ? bytes : 1));
  if (host && bytes)
    S_CUDA(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice));
  return device;
}

static void *s_to_host(const void *device, size_t bytes)
{
  void *host = malloc(bytes ? bytes : 1);
  S_CUDA(cudaDeviceSynchronize());
  S_CUDA(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost));
  return host;
}

/* max |a - b| / max |b| over n floats (0 when b is all zero and a == b). */
static double s_rel_error(const float *a, const float *b, size_t n)
{
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < n; i++) {
    diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
    scale = fmax(scale, fabs((double)b[i]));
  }
  return scale > 0.0 ? diff / scale : diff;
}

static void s_random_batch(herd_rng_t *rng, int inputs, int classes, int batch,
                           float *x, uint8_t *labels)
{
  for (size_t i = 0; i < (size_t)batch * (size_t)inputs; i++)
    x[i] = herd_rng_normal_f32(rng);
  for (int i = 0; i < batch; i++)
    labels[i] = (uint8_t)(herd_rng_next_u64(rng) % (uint64_t)classes);
}

static void s_random_params(const herd_mlp_t *mlp, float *params,
                            herd_rng_t *rng)
{
  herd_mlp_init_params(mlp, params, rng);
  for (int l = 0; l < herd_mlp_n_layers(mlp); l++) {
    size_t w, b;
    herd_mlp_layer_offsets(mlp, l, &w, &b);
    for (int j = 0; j < herd_mlp_dim(mlp, l + 1); j++)
      params[b + (size_t)j] = 0.1f * herd_rng_normal_f32(rng);
  }
}

/* Forward/backward and evaluate of one shape on both devices. */
static void s_check_model(const int *dims, int n_dims, int batch, int eval_n)
{
  herd_rng_t rng;
  herd_rng_seed(&rng, 1234 + (uint64_t)batch);
  herd_mlp_t *cpu = NULL;
  herd_mlp_cuda_t *gpu = NULL;
  S_OK(herd_mlp_new(dims, n_dims, batch, &cpu));
  S_OK(herd_mlp_cuda_new(dims, n_dims, 16, &gpu)); /* grows; eval chunks */
  size_t p = herd_mlp_param_count(cpu);
  int inputs = dims[0], classes = dims[n_dims - 1];
  int rows = batch > eval_n ? batch : eval_n;
  S_EXPECT(herd_mlp_cuda_param_count(gpu) == p, "param count");
  float *params = malloc(p * sizeof(float));
  float *grad = malloc(p * sizeof(float));
  float *x = malloc((size_t)rows * (size_t)inputs * sizeof(float));
  uint8_t *labels = malloc((size_t)rows);
  s_random_params(cpu, params, &rng);
  s_random_batch(&rng, inputs, classes, rows, x, labels);
  for (size_t i = 0; i < p; i++)
    grad[i] = 0.01f * herd_rng_normal_f32(&rng); /* both must ADD to it */
  float *d_params = s_to_device(params, p * sizeof(float));
  float *d_grad = s_to_device(grad, p * sizeof(float));
  float *d_x = s_to_device(x, (size_t)rows * (size_t)inputs * sizeof(float));
  uint8_t *d_labels = s_to_device(labels, (size_t)rows);
  float stats[2] = {1.0f, 2.0f}; /* loss sum, correct: added to */
  float *d_stats = s_to_device(stats, sizeof stats);

  double loss = 1.0;
  int correct = 2;
  S_OK(herd_mlp_forward_backward(cpu, params, x, labels, batch, grad, &loss,
                                 &correct));
  S_OK(herd_mlp_cuda_forward_backward(gpu, d_params, d_x, d_labels, batch,
                                      d_grad, d_stats, d_stats + 1));
  float *g = s_to_host(d_grad, p * sizeof(float));
  float *s = s_to_host(d_stats, sizeof stats);
  for (int l = 0; l < n_dims - 1; l++) {
    size_t w, b, nw = (size_t)dims[l] * (size_t)dims[l + 1];
    herd_mlp_layer_offsets(cpu, l, &w, &b);
    double ew = s_rel_error(g + w, grad + w, nw);
    double eb = s_rel_error(g + b, grad + b, (size_t)dims[l + 1]);
    printf("  dims[0]=%d batch %d layer %d: rel error dW %.2e db %.2e\n",
           dims[0], batch, l, ew, eb);
    S_EXPECT(ew <= 1e-3 && eb <= 1e-3, "layer %d gradient off: %g %g", l, ew,
             eb);
  }
  S_EXPECT(fabs(s[0] - loss) <= 1e-4 * fabs(loss), "loss %g vs %g", s[0], loss);
  S_EXPECT(fabs(s[1] - correct) <= 1, "correct %g vs %d", s[1], correct);

  double eval_loss[2] = {0.5, 0.5};
  int64_t eval_correct[2] = {3, 3};
  S_OK(herd_mlp_evaluate(cpu, params, x, labels, (size_t)eval_n, &eval_loss[0],
                         &eval_correct[0]));
  S_OK(herd_mlp_cuda_evaluate(gpu, d_params, d_x, d_labels, (size_t)eval_n,
                              &eval_loss[1], &eval_correct[1]));
  S_EXPECT(fabs(eval_loss[1] - eval_loss[0]) <= 1e-4 * fabs(eval_loss[0]),
           "eval loss %g vs %g", eval_loss[1], eval_loss[0]);
  S_EXPECT(llabs(eval_correct[1] - eval_correct[0]) <= 1,
           "eval correct %lld vs %lld", (long long)eval_correct[1],
           (long long)eval_correct[0]);
  S_OK(herd_mlp_cuda_forward_backward(gpu, d_params, d_x, d_labels, 0, d_grad,
                                      NULL, NULL)); /* batch 0: no-op */
  S_EXPECT(herd_mlp_cuda_forward_backward(gpu, d_params, d_x, d_labels, -1,
                                          d_grad, NULL, NULL) == HERD_EINVAL,
           "negative batch accepted");
  free(g);
  free(s);
  cudaFree(d_params);
  cudaFree(d_grad);
  cudaFree(d_x);
  cudaFree(d_labels);
  cudaFree(d_stats);
  free(params);
  free(grad);
  free(x);
  free(labels);
  herd_mlp_destroy(&cpu);
  herd_mlp_cuda_destroy(&gpu);
  herd_mlp_cuda_destroy(&gpu); /* safe twice */
}

static void s_check_gather(void)
{
  enum { IMAGES = 50, SIZE = 784, N = 33 };
  herd_rng_t rng;
  herd_rng_seed(&rng, 7);
  uint8_t *images = malloc(IMAGES * SIZE), labels[IMAGES], want_labels[N];
  uint32_t indices[N];
  for (size_t i = 0; i < IMAGES * SIZE; i++)
    images[i] = (uint8_t)herd_rng_next_u64(&rng);
  for (int i = 0; i < IMAGES; i++)
    labels[i] = (uint8_t)(herd_rng_next_u64(&rng) % 10);
  for (int i = 0; i < N; i++)
    indices[i] = (uint32_t)(herd_rng_next_u64(&rng) % IMAGES);
  float *want = malloc(N * SIZE * sizeof(float));
  herd_mlp_gather(images, labels, SIZE, indices, N, want, want_labels);
  herd_mlp_cuda_t *gpu = NULL;
  int dims[] = {SIZE, 10};
  S_OK(herd_mlp_cuda_new(dims, 2, 1, &gpu));
  uint8_t *d_images = s_to_device(images, IMAGES * SIZE);
  uint8_t *d_labels = s_to_device(labels, IMAGES);
  uint32_t *d_indices = s_to_device(indices, sizeof indices);
  float *d_x = s_to_device(NULL, N * SIZE * sizeof(float));
  uint8_t *d_out_labels = s_to_device(NULL, N);
  S_OK(herd_mlp_cuda_gather(gpu, d_images, d_labels, SIZE, d_indices, N, d_x,
                            d_out_labels));
  float *x = s_to_host(d_x, N * SIZE * sizeof(float));
  uint8_t *got_labels = s_to_host(d_out_labels, N);
  S_EXPECT(!memcmp(x, want, N * SIZE * sizeof(float)), "gather pixels differ");
  S_EXPECT(!memcmp(got_labels, want_labels, N), "gather labels differ");
  herd_mlp_normalize_u8(images, N * SIZE, want);
  S_OK(herd_mlp_cuda_normalize_u8(gpu, d_images, N * SIZE, d_x));
  free(x);
  x = s_to_host(d_x, N * SIZE * sizeof(float));
  S_EXPECT(!memcmp(x, want, N * SIZE * sizeof(float)), "normalize differs");
  free(x);
  free(got_labels);
  free(want);
  free(images);
  cudaFree(d_images);
  cudaFree(d_labels);
  cudaFree(d_indices);
  cudaFree(d_x);
  cudaFree(d_out_labels);
  herd_mlp_cuda_destroy(&gpu);
}

/* Three steps of one optimizer, the way herd-train feeds it: a gradient
 * SUM divided by the sample count (on the CPU before the step, on the GPU
 * inside it). */
static void s_check_optim(herd_optim_config_t config, const char *name)
{
  enum { COUNT = 1000, STEPS = 3 };
  const float samples = 96.0f, lr = 0.01f;
  herd_rng_t rng;
  herd_rng_seed(&rng, 99);
  float params[COUNT], grad_sum[COUNT], mean[COUNT];
  for (int i = 0; i < COUNT; i++)
    params[i] = herd_rng_normal_f32(&rng);
  herd_optim_t *cpu = NULL, *back = NULL;
  herd_optim_cuda_t *gpu = NULL;
  S_OK(herd_optim_new(&config, COUNT, &cpu));
  S_OK(herd_optim_new(&config, COUNT, &back));
  S_OK(herd_optim_cuda_new(&config, COUNT, &gpu));
  float *d_params = s_to_device(params, sizeof params);
  float *d_grad = s_to_device(NULL, sizeof grad_sum);
  float *d_samples = s_to_device(&samples, sizeof samples);
  for (int step = 0; step < STEPS; step++) {
    for (int i = 0; i < COUNT; i++)
      grad_sum[i] = samples * herd_rng_normal_f32(&rng);
    S_CUDA(
        cudaMemcpy(d_grad, grad_sum, sizeof grad_sum, cudaMemcpyHostToDevice));
    float inverse = 1.0f / samples;
    for (int i = 0; i < COUNT; i++)
      mean[i] = grad_sum[i] * inverse;
    herd_optim_step(cpu, params, mean, lr);
    S_OK(herd_optim_cuda_step(gpu, d_params, d_grad, d_samples, lr, 0));
  }
  float *got = s_to_host(d_params, sizeof params);
  double err = s_rel_error(got, params, COUNT);
  printf("  optim %s: rel error %.2e after %d steps\n", name, err, STEPS);
  S_EXPECT(err <= 1e-6, "optim %s params off by %g", name, err);
  S_OK(herd_optim_cuda_download(gpu, back, 0));
  S_EXPECT(herd_optim_step_count(back) == STEPS, "step count %lld",
           (long long)herd_optim_step_count(back));
  for (int i = 0; i < herd_optim_state_buffers(cpu); i++)
    S_EXPECT(s_rel_error(herd_optim_state(back, i), herd_optim_state(cpu, i),
                         COUNT) <= 1e-6,
             "optim %s state %d off", name, i);
  free(got);
  cudaFree(d_params);
  cudaFree(d_grad);
  cudaFree(d_samples);
  herd_optim_destroy(&cpu);
  herd_optim_destroy(&back);
  herd_optim_cuda_destroy(&gpu);
}

int main(void)
{
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    printf("SKIP: no CUDA GPU on this machine; the CUDA model was compiled "
           "but not run\n");
    return 77;
  }
  const int mnist[] = {784, 256, 128, 10}, odd[] = {30, 7, 45, 3};
  s_check_model(mnist, 4, 128, 300);
  s_check_model(odd, 4, 37, 101);
  s_check_gather();
  herd_optim_config_t adamw = HERD_OPTIM_CONFIG_INIT;
  adamw.kind = HERD_OPTIM_ADAMW;
  adamw.weight_decay = 1e-4f;
  s_check_optim(adamw, "adamw");
  herd_optim_config_t sgd = HERD_OPTIM_CONFIG_INIT;
  sgd.weight_decay = 1e-4f;
  s_check_optim(sgd, "sgd-momentum");
  sgd.nesterov = 1;
  s_check_optim(sgd, "sgd-nesterov");
  sgd.nesterov = 0;
  sgd.momentum = 0.0f;
  s_check_optim(sgd, "sgd-plain");
  printf("mlp_cuda: %d failures\n", s_failures);
  return s_failures ? 1 : 0;
}
