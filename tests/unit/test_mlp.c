/* MLP: analytic gradients against central differences of an independent
 * double-precision forward pass, the SUM contract (split batches add up),
 * chunked evaluation, and a few optimizer steps actually reducing the loss. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "mlp.h"
#include "optim.h"
#include "sampler.h"

/* Reference loss sum in double, straight from the layout in mlp.h. */
static double s_ref_loss(const herd_mlp_t *m, const double *params,
                         const float *x, const uint8_t *labels, int batch,
                         int *correct)
{
  int layers = herd_mlp_n_layers(m);
  double loss = 0;
  double a[2][1024];
  for (int s = 0; s < batch; s++) {
    int in_dim = herd_mlp_inputs(m);
    for (int k = 0; k < in_dim; k++)
      a[0][k] = x[(size_t)s * in_dim + k];
    int cur = 0;
    for (int l = 0; l < layers; l++) {
      int n_in = herd_mlp_dim(m, l), n_out = herd_mlp_dim(m, l + 1);
      size_t w_off, b_off;
      herd_mlp_layer_offsets(m, l, &w_off, &b_off);
      for (int j = 0; j < n_out; j++) {
        double z = params[b_off + j];
        for (int k = 0; k < n_in; k++)
          z += params[w_off + (size_t)j * n_in + k] * a[cur][k];
        a[1 - cur][j] = (l + 1 < layers && z < 0) ? 0 : z;
      }
      cur = 1 - cur;
    }
    int classes = herd_mlp_classes(m), best = 0;
    double max = a[cur][0], sum = 0;
    for (int j = 1; j < classes; j++)
      if (a[cur][j] > max) {
        max = a[cur][j];
        best = j;
      }
    for (int j = 0; j < classes; j++)
      sum += exp(a[cur][j] - max);
    loss += log(sum) + max - a[cur][labels[s]];
    if (correct)
      *correct += best == labels[s];
  }
  return loss;
}

typedef struct {
  herd_mlp_t *mlp;
  size_t count;
  float *params, *grad, *x;
  uint8_t *labels;
  int batch;
} fixture_t;

static void s_fixture(fixture_t *f, const int *dims, int n_dims, int batch,
                      int max_batch, uint64_t seed)
{
  assert_int_equal(herd_mlp_new(dims, n_dims, max_batch, &f->mlp), HERD_OK);
  f->count = herd_mlp_param_count(f->mlp);
  f->params = malloc(f->count * sizeof(float));
  f->grad = calloc(f->count, sizeof(float));
  f->x = malloc((size_t)batch * dims[0] * sizeof(float));
  f->labels = malloc((size_t)batch);
  f->batch = batch;
  herd_rng_t rng;
  herd_rng_seed(&rng, seed);
  herd_mlp_init_params(f->mlp, f->params, &rng);
  /* Non-zero biases so their gradients and the ReLU masks are exercised. */
  for (int l = 0; l < n_dims - 1; l++) {
    size_t w_off, b_off;
    herd_mlp_layer_offsets(f->mlp, l, &w_off, &b_off);
    for (int j = 0; j < dims[l + 1]; j++)
      f->params[b_off + j] = 0.1f * herd_rng_normal_f32(&rng);
  }
  for (size_t i = 0; i < (size_t)batch * dims[0]; i++)
    f->x[i] = herd_rng_normal_f32(&rng);
  for (int i = 0; i < batch; i++)
    f->labels[i] = (uint8_t)herd_rng_bounded_u32(&rng, dims[n_dims - 1]);
}

static void s_fixture_free(fixture_t *f)
{
  herd_mlp_destroy(&f->mlp);
  free(f->params);
  free(f->grad);
  free(f->x);
  free(f->labels);
}

/* 50 parameters: a few biases of every layer, the rest random. */
static void s_pick(const herd_mlp_t *m, herd_rng_t *rng, size_t *idx)
{
  int layers = herd_mlp_n_layers(m), k = 0;
  for (int l = 0; l < layers; l++) {
    size_t w_off, b_off;
    herd_mlp_layer_offsets(m, l, &w_off, &b_off);
    for (int j = 0; j < 3; j++)
      idx[k++] = b_off + herd_rng_bounded_u32(rng, herd_mlp_dim(m, l + 1));
  }
  while (k < 50)
    idx[k++] = herd_rng_bounded_u32(rng, (uint32_t)herd_mlp_param_count(m));
}

static void s_gradient_check(const int *dims, int n_dims)
{
  fixture_t f;
  s_fixture(&f, dims, n_dims, 8, 1 /* forces the scratch to grow */, 11);
  double loss = 0;
  int correct = 0, ref_correct = 0;
  assert_int_equal(herd_mlp_forward_backward(f.mlp, f.params, f.x, f.labels,
                                             f.batch, f.grad, &loss, &correct),
                   HERD_OK);
  double *p = malloc(f.count * sizeof(double));
  for (size_t i = 0; i < f.count; i++)
    p[i] = f.params[i];
  double ref = s_ref_loss(f.mlp, p, f.x, f.labels, f.batch, &ref_correct);
  assert_true(fabs(loss - ref) <= 1e-4 * fabs(ref));
  assert_int_equal(correct, ref_correct);

  herd_rng_t rng;
  herd_rng_seed(&rng, 5);
  size_t idx[50];
  s_pick(f.mlp, &rng, idx);
  const double h = 1e-4;
  for (int k = 0; k < 50; k++) {
    size_t i = idx[k];
    double saved = p[i];
    p[i] = saved + h;
    double up = s_ref_loss(f.mlp, p, f.x, f.labels, f.batch, NULL);
    p[i] = saved - h;
    double down = s_ref_loss(f.mlp, p, f.x, f.labels, f.batch, NULL);
    p[i] = saved;
    double numeric = (up - down) / (2 * h), analytic = f.grad[i];
    double scale = fmax(fmax(fabs(numeric), fabs(analytic)), 1e-3);
    double rel = fabs(numeric - analytic) / scale;
    if (rel >= 1e-2)
      fail_msg("param %zu: analytic %g numeric %g (rel %g)", i, analytic,
               numeric, rel);
  }
  free(p);
  s_fixture_free(&f);
}

static void test_gradient_small(void **state)
{
  const int dims[] = {20, 16, 12, 10};
  s_gradient_check(dims, 4);
}

static void test_gradient_fashion_shape(void **state)
{
  const int dims[] = {784, 16, 10};
  s_gradient_check(dims, 3);
}

/* The gradient is a SUM: two half batches add up to the full batch, and a
 * second call accumulates on top of the first. */
static void test_sum_contract(void **state)
{
  const int dims[] = {30, 24, 10};
  fixture_t f;
  s_fixture(&f, dims, 3, 8, 8, 3);
  float *split = calloc(f.count, sizeof(float));
  double loss_full = 0, loss_split = 0;
  int c_full = 0, c_split = 0;
  assert_int_equal(herd_mlp_forward_backward(f.mlp, f.params, f.x, f.labels, 8,
                                             f.grad, &loss_full, &c_full),
                   HERD_OK);
  herd_mlp_forward_backward(f.mlp, f.params, f.x, f.labels, 3, split,
                            &loss_split, &c_split);
  herd_mlp_forward_backward(f.mlp, f.params, f.x + 3 * 30, f.labels + 3, 5,
                            split, &loss_split, &c_split);
  assert_true(fabs(loss_full - loss_split) < 1e-5 * loss_full);
  assert_int_equal(c_full, c_split);
  for (size_t i = 0; i < f.count; i++)
    assert_true(fabsf(f.grad[i] - split[i]) <= 1e-5f + 1e-4f * fabsf(split[i]));
  float *twice = malloc(f.count * sizeof(float));
  memcpy(twice, f.grad, f.count * sizeof(float));
  herd_mlp_forward_backward(f.mlp, f.params, f.x, f.labels, 8, twice, NULL,
                            NULL);
  for (size_t i = 0; i < f.count; i++)
    assert_true(fabsf(twice[i] - 2 * f.grad[i]) <=
                1e-5f + 1e-4f * fabsf(f.grad[i]));
  /* batch 0 is a no-op; a bad label fails without touching the gradient. */
  memcpy(twice, f.grad, f.count * sizeof(float));
  assert_int_equal(herd_mlp_forward_backward(f.mlp, f.params, f.x, f.labels, 0,
                                             twice, NULL, NULL),
                   HERD_OK);
  f.labels[2] = 10;
  assert_int_equal(herd_mlp_forward_backward(f.mlp, f.params, f.x, f.labels, 8,
                                             twice, NULL, NULL),
                   HERD_EINVAL);
  assert_memory_equal(twice, f.grad, f.count * sizeof(float));
  free(twice);
  free(split);
  s_fixture_free(&f);
}

static void test_evaluate_chunks(void **state)
{
  const int dims[] = {20, 16, 10};
  fixture_t f;
  s_fixture(&f, dims, 3, 10, 4, 9);
  double loss = 0;
  int64_t correct = 0;
  int ref_correct = 0;
  assert_int_equal(
      herd_mlp_evaluate(f.mlp, f.params, f.x, f.labels, 10, &loss, &correct),
      HERD_OK);
  double *p = malloc(f.count * sizeof(double));
  for (size_t i = 0; i < f.count; i++)
    p[i] = f.params[i];
  double ref = s_ref_loss(f.mlp, p, f.x, f.labels, 10, &ref_correct);
  assert_true(fabs(loss - ref) <= 1e-4 * ref);
  assert_int_equal(correct, ref_correct);
  free(p);
  s_fixture_free(&f);
}

static void test_loss_decreases(void **state)
{
  const int dims[] = {784, 32, 10};
  fixture_t f;
  s_fixture(&f, dims, 3, 32, 32, 21);
  herd_optim_config_t config = HERD_OPTIM_CONFIG_INIT;
  herd_optim_t *optim = NULL;
  assert_int_equal(herd_optim_new(&config, f.count, &optim), HERD_OK);
  double first = 0, last = 0;
  for (int step = 0; step < 30; step++) {
    double loss = 0;
    memset(f.grad, 0, f.count * sizeof(float));
    assert_int_equal(herd_mlp_forward_backward(f.mlp, f.params, f.x, f.labels,
                                               32, f.grad, &loss, NULL),
                     HERD_OK);
    for (size_t i = 0; i < f.count; i++)
      f.grad[i] /= 32;
    herd_optim_step(optim, f.params, f.grad, 0.01f);
    if (step == 0)
      first = loss / 32;
    last = loss / 32;
  }
  assert_true(last < 0.5 * first);
  herd_optim_destroy(&optim);
  s_fixture_free(&f);
}

static void test_bad_shapes(void **state)
{
  herd_mlp_t *m = NULL;
  const int one[] = {784};
  const int zero_width[] = {784, 0, 10};
  const int one_class[] = {784, 1};
  const int huge[] = {HERD_MLP_MAX_WIDTH, HERD_MLP_MAX_WIDTH, 10};
  assert_int_equal(herd_mlp_new(one, 1, 8, &m), HERD_EINVAL);
  assert_int_equal(herd_mlp_new(zero_width, 3, 8, &m), HERD_EINVAL);
  assert_int_equal(herd_mlp_new(one_class, 2, 8, &m), HERD_EINVAL);
  assert_int_equal(herd_mlp_new(huge, 3, 8, &m), HERD_ETOOBIG);
  assert_int_equal(herd_mlp_new(NULL, 3, 8, &m), HERD_EINVAL);
  assert_null(m);
  const int def[] = {784, 256, 128, 10};
  assert_int_equal(herd_mlp_new(def, 4, 0, &m), HERD_EINVAL);
  assert_int_equal(herd_mlp_new(def, 4, 128, &m), HERD_OK);
  assert_int_equal(herd_mlp_param_count(m),
                   784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  herd_mlp_destroy(&m);
  herd_mlp_destroy(&m);
  assert_null(m);
}

static void test_normalize(void **state)
{
  const uint8_t pixels[] = {0, 255, 73};
  float out[3];
  herd_mlp_normalize_u8(pixels, 3, out);
  assert_true(fabsf(out[0] - (-0.2860f / 0.3530f)) < 1e-6f);
  assert_true(fabsf(out[1] - ((1.0f - 0.2860f) / 0.3530f)) < 1e-6f);
  const uint8_t images[] = {1, 2, 3, 4, 5, 6};
  const uint8_t labels[] = {7, 8, 9};
  const uint32_t idx[] = {2, 0};
  float x[4];
  uint8_t y[2];
  herd_mlp_gather(images, labels, 2, idx, 2, x, y);
  herd_mlp_normalize_u8(images + 4, 1, out);
  assert_true(x[0] == out[0]);
  assert_int_equal(y[0], 9);
  assert_int_equal(y[1], 7);
}

/* The gather is vectorised arithmetic: every byte value, at every offset
 * of a 784-pixel row (vector body and scalar tail), gives the bits of the
 * formula done one float at a time, as the CUDA kernel does. */
static void test_gather_bits(void **state)
{
  (void)state;
  enum { PIXELS = 784 };
  uint8_t images[2 * PIXELS], labels[2] = {0, 1};
  for (int i = 0; i < 2 * PIXELS; i++)
    images[i] = (uint8_t)(i * 7 + i / 256);
  const uint32_t idx[] = {1, 0};
  float x[2 * PIXELS];
  herd_mlp_gather(images, labels, PIXELS, idx, 2, x, NULL);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < PIXELS; k++) {
      volatile float v = (float)images[idx[i] * PIXELS + k];
      volatile float scaled = v / 255.0f;
      volatile float centred = scaled - 0.2860f;
      float want = centred / 0.3530f;
      assert_memory_equal(&x[i * PIXELS + k], &want, sizeof want);
    }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gradient_small),
      cmocka_unit_test(test_gather_bits),
      cmocka_unit_test(test_gradient_fashion_shape),
      cmocka_unit_test(test_sum_contract),
      cmocka_unit_test(test_evaluate_chunks),
      cmocka_unit_test(test_loss_decreases),
      cmocka_unit_test(test_bad_shapes),
      cmocka_unit_test(test_normalize),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
