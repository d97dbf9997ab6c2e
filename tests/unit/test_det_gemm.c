/* --deterministic arithmetic: herd_det_gemm gives, on every path this CPU
 * has (HERD_DET_GEMM=avx512 / avx2 / portable), exactly the bits of a plain
 * fmaf chain, for odd shapes and strides; a block of a product equals the
 * same block computed alone; the fixed-point target rounds like llrint and
 * flags values out of range. The deterministic MLP pass gives each sample
 * the same deltas alone or among others, and its shard gradients match the
 * float MLP's (mlp.c) to rounding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "det_gemm.h"
#include "mlp.h"
#include "mlp_det.h"
#include "sampler.h"

static const char *const s_paths[] = {"avx512", "avx2", "portable"};

/* Uses `path` if this CPU has it; false (and the default restored) if not. */
static int s_use_path(const char *path)
{
  setenv("HERD_DET_GEMM", path, 1);
  if (strcmp(herd_det_gemm_path(), path) == 0)
    return 1;
  unsetenv("HERD_DET_GEMM");
  return 0;
}

static void s_fill(float *v, size_t n, herd_rng_t *rng)
{
  for (size_t i = 0; i < n; i++)
    v[i] = herd_rng_normal_f32(rng);
}

static float s_reference(const herd_det_gemm_t *g, int r, int n)
{
  float acc = g->init ? g->init[r] : 0.0f;
  for (int k = 0; k < g->depth; k++)
    acc = fmaf(g->a[(size_t)r * g->a_row + (size_t)k * g->a_depth],
               g->b[(size_t)k * g->b_depth + n], acc);
  return acc;
}

static void test_paths_match_fma_chain(void **state)
{
  (void)state;
  herd_rng_t rng;
  herd_rng_seed(&rng, 7);
  const int shapes[][3] = {{1, 1, 1},  {3, 5, 7},    {8, 32, 16}, {9, 33, 17},
                           {17, 70, 3}, {4, 16, 784}, {13, 1, 11}, {2, 100, 0}};
  for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
    int rows = shapes[s][0], cols = shapes[s][1], depth = shapes[s][2];
    size_t an = (size_t)rows * (depth + 1), bn = (size_t)(depth + 1) * (cols + 3);
    float *a = malloc(an * sizeof(float)), *b = malloc(bn * sizeof(float));
    float *init = malloc((size_t)rows * sizeof(float));
    float *c = malloc((size_t)rows * cols * sizeof(float));
    s_fill(a, an, &rng);
    s_fill(b, bn, &rng);
    s_fill(init, (size_t)rows, &rng);
    for (int transposed = 0; transposed < 2; transposed++) {
      herd_det_gemm_t g = {
          .rows = rows, .cols = cols, .depth = depth, .a = a,
          .a_row = transposed ? 1 : (size_t)depth + 1,
          .a_depth = transposed ? (size_t)rows : 1, .b = b,
          .b_depth = (size_t)cols + 3, .init = transposed ? NULL : init,
          .c = c, .c_row = (size_t)cols};
      for (size_t p = 0; p < 3; p++) {
        if (!s_use_path(s_paths[p]))
          continue;
        memset(c, 0xff, (size_t)rows * cols * sizeof(float));
        assert_int_equal(herd_det_gemm(&g), 1);
        for (int r = 0; r < rows; r++)
          for (int n = 0; n < cols; n++) {
            float want = s_reference(&g, r, n), got = c[(size_t)r * cols + n];
            if (memcmp(&want, &got, sizeof(float)) != 0)
              fail_msg("%s %dx%dx%d (%d) [%d][%d]: %a != %a", s_paths[p], rows,
                       cols, depth, transposed, r, n, got, want);
          }
      }
    }
    free(a);
    free(b);
    free(init);
    free(c);
  }
  unsetenv("HERD_DET_GEMM");
}

/* A corner block computed on its own equals the block of the whole. */
static void test_block_equals_whole(void **state)
{
  (void)state;
  herd_rng_t rng;
  herd_rng_seed(&rng, 11);
  enum { R = 21, N = 45, K = 30 };
  float a[R * K], b[K * N], whole[R * N], part[R * N];
  s_fill(a, R * K, &rng);
  s_fill(b, K * N, &rng);
  herd_det_gemm(&(herd_det_gemm_t){.rows = R, .cols = N, .depth = K, .a = a,
                                   .a_row = K, .a_depth = 1, .b = b,
                                   .b_depth = N, .c = whole, .c_row = N});
  herd_det_gemm(&(herd_det_gemm_t){.rows = 5, .cols = 3, .depth = K,
                                   .a = a + 7 * K, .a_row = K, .a_depth = 1,
                                   .b = b + 19, .b_depth = N, .c = part,
                                   .c_row = 3});
  for (int r = 0; r < 5; r++)
    assert_memory_equal(part + r * 3, whole + (7 + r) * N + 19, 3 * sizeof(float));
}

static void test_fixed_point_rounding_and_range(void **state)
{
  (void)state;
  const float one = 1.0f;
  for (size_t p = 0; p < 3; p++) {
    if (!s_use_path(s_paths[p]))
      continue;
    int64_t sum[4] = {10, 10, 10, 10};
    /* Times 0.5: 1.25, -1.5, 0.25 and 0.5, with half-way cases on both
     * sides of zero: rounded half to even, like llrint. */
    const float v[4] = {2.5f, -3.0f, 0.5f, 1.0f};
    int ok = herd_det_gemm(&(herd_det_gemm_t){
        .rows = 4, .cols = 1, .depth = 1, .a = v, .a_row = 1, .a_depth = 0,
        .b = &one, .b_depth = 0, .fixed = sum, .fixed_row = 1, .scale = 0.5});
    assert_int_equal(ok, 1);
    for (int i = 0; i < 4; i++)
      assert_int_equal(sum[i], 10 + llrint((double)v[i] * 0.5));
    float huge = ldexpf(1.0f, 20);
    ok = herd_det_gemm(&(herd_det_gemm_t){
        .rows = 1, .cols = 1, .depth = 1, .a = &huge, .a_row = 1, .a_depth = 1,
        .b = &one, .b_depth = 0, .fixed = sum, .fixed_row = 1,
        .scale = ldexp(1.0, 30)});
    assert_int_equal(ok, 0); /* 2^50 is out of range */
    float nan = NAN;
    ok = herd_det_gemm(&(herd_det_gemm_t){
        .rows = 1, .cols = 1, .depth = 1, .a = &nan, .a_row = 1, .a_depth = 1,
        .b = &one, .b_depth = 0, .fixed = sum, .fixed_row = 1, .scale = 1.0});
    assert_int_equal(ok, 0);
  }
  unsetenv("HERD_DET_GEMM");
}

/* K cut into pieces: each piece's chain rounded on its own, the integers
 * summed, the same on every path (AVX-512 sums in registers), with empty
 * pieces, column tails and both assign and add. */
static void test_fixed_pieces(void **state)
{
  (void)state;
  herd_rng_t rng;
  herd_rng_seed(&rng, 23);
  enum { R = 7, N = 45, K = 13 };
  const int pieces[] = {0, 3, 3, 8, 13};
  float a[R * K], b[K * N];
  s_fill(a, R * K, &rng);
  s_fill(b, K * N, &rng);
  const double scale = ldexp(1.0, 20);
  int64_t want[R * N];
  for (int r = 0; r < R; r++)
    for (int n = 0; n < N; n++) {
      want[r * N + n] = 5;
      for (int p = 0; p < 4; p++) {
        float acc = 0.0f;
        for (int k = pieces[p]; k < pieces[p + 1]; k++)
          acc = fmaf(a[r * K + k], b[k * N + n], acc);
        want[r * N + n] += llrint((double)acc * scale);
      }
    }
  for (size_t p = 0; p < 3; p++) {
    if (!s_use_path(s_paths[p]))
      continue;
    for (int assign = 0; assign < 2; assign++) {
      int64_t got[R * N];
      for (int i = 0; i < R * N; i++)
        got[i] = assign ? -77 : 5;
      herd_det_gemm_t g = {.rows = R, .cols = N, .depth = K, .a = a,
                           .a_row = K, .a_depth = 1, .b = b, .b_depth = N,
                           .fixed = got, .fixed_row = N, .scale = scale,
                           .assign = assign, .pieces = pieces, .n_pieces = 4};
      assert_int_equal(herd_det_gemm(&g), 1);
      for (int i = 0; i < R * N; i++)
        if (got[i] != want[i] - (assign ? 5 : 0))
          fail_msg("%s assign=%d [%d]: %lld != %lld", s_paths[p], assign, i,
                   (long long)got[i], (long long)(want[i] - (assign ? 5 : 0)));
    }
  }
  unsetenv("HERD_DET_GEMM");
}

/* Back from fixed point: every path gives the scalar loop's bits, also for
 * sums beyond 2^53 (where int64 -> double rounds). */
static void test_from_fixed_paths(void **state)
{
  (void)state;
  enum { N = 37 };
  int64_t in[N];
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    in[i] = (int64_t)(x >> 2) * (i % 2 ? 1 : -1) >> (i % 40);
  }
  const double scale = ldexp(1.0, -47) / 3.0;
  for (size_t p = 0; p < 3; p++) {
    if (!s_use_path(s_paths[p]))
      continue;
    float out[N];
    herd_det_from_fixed(in, out, N, scale);
    for (int i = 0; i < N; i++) {
      float want = (float)((double)in[i] * scale);
      assert_memory_equal(&out[i], &want, sizeof(float));
    }
  }
  unsetenv("HERD_DET_GEMM");
}

enum { S_SAMPLES = 10, S_SHARD0 = 3, S_SHARD = 4 };

typedef struct {
  herd_mlp_t *mlp;
  float *params, x[S_SAMPLES * 12];
  uint8_t labels[S_SAMPLES];
} s_model_t;

static void s_model(s_model_t *m)
{
  const int dims[] = {12, 9, 7, 4};
  assert_int_equal(herd_mlp_new(dims, 4, S_SAMPLES, &m->mlp), HERD_OK);
  m->params = malloc(herd_mlp_param_count(m->mlp) * sizeof(float));
  herd_rng_t rng;
  herd_rng_seed(&rng, 5);
  herd_mlp_init_params(m->mlp, m->params, &rng);
  for (size_t i = 0; i < herd_mlp_param_count(m->mlp); i++)
    m->params[i] += 0.01f * herd_rng_normal_f32(&rng); /* nonzero biases */
  s_fill(m->x, sizeof(m->x) / sizeof(float), &rng);
  for (int i = 0; i < S_SAMPLES; i++)
    m->labels[i] = (uint8_t)(i % 4);
}

/* The shard [S_SHARD0, S_SHARD0 + S_SHARD)'s fixed-point gradient with all
 * samples loaded, and with only the shard's samples loaded. */
static void s_shard_fixed(s_model_t *m, int only_shard, int64_t *fixed,
                          double *loss)
{
  herd_mlp_det_t *det = NULL;
  assert_int_equal(herd_mlp_det_new(m->mlp, &det), HERD_OK);
  int first = only_shard ? S_SHARD0 : 0, rows = only_shard ? S_SHARD : S_SAMPLES;
  int row0 = S_SHARD0 - first, correct = 0;
  /* Among others: three shards around it; alone: just it. */
  const int among[4] = {0, row0, row0 + S_SHARD, rows}, alone[2] = {0, rows};
  double shard_loss[3];
  assert_int_equal(herd_mlp_det_load(det, m->x + first * 12, rows), HERD_OK);
  assert_int_equal(herd_mlp_det_forward_deltas(
                       det, m->params, m->labels + first,
                       only_shard ? alone : among, only_shard ? 1 : 3,
                       shard_loss, &correct),
                   HERD_OK);
  *loss = shard_loss[only_shard ? 0 : 1];
  /* Stale sums: .assign must overwrite them. */
  memset(fixed, 0x55, herd_mlp_param_count(m->mlp) * sizeof(int64_t));
  for (int l = 0; l < herd_mlp_n_layers(m->mlp); l++) {
    size_t w_off, b_off;
    herd_mlp_layer_offsets(m->mlp, l, &w_off, &b_off);
    float bound = herd_mlp_det_grad_bound(det, l, row0, S_SHARD);
    assert_true(isfinite(bound) && bound > 0);
    const int shard[2] = {row0, row0 + S_SHARD};
    assert_int_equal(herd_mlp_det_grad_fixed(det, l, shard, 1, ldexp(1.0, 30),
                                             fixed + w_off, fixed + b_off),
                     1);
  }
  herd_mlp_det_destroy(&det);
  herd_mlp_det_destroy(&det); /* twice is safe */
}

static void test_mlp_shard_independent_of_neighbours(void **state)
{
  (void)state;
  s_model_t m;
  s_model(&m);
  size_t p = herd_mlp_param_count(m.mlp);
  int64_t *among = malloc(p * sizeof(int64_t)), *alone = malloc(p * sizeof(int64_t));
  double loss_among, loss_alone;
  s_shard_fixed(&m, 0, among, &loss_among);
  s_shard_fixed(&m, 1, alone, &loss_alone);
  assert_memory_equal(among, alone, p * sizeof(int64_t));
  assert_memory_equal(&loss_among, &loss_alone, sizeof(double));

  /* The same gradient as the float MLP, to float rounding. */
  float *grad = calloc(p, sizeof(float));
  double loss = 0;
  assert_int_equal(herd_mlp_forward_backward(m.mlp, m.params, m.x + S_SHARD0 * 12,
                                             m.labels + S_SHARD0, S_SHARD, grad,
                                             &loss, NULL),
                   HERD_OK);
  assert_true(fabs(loss - loss_alone) < 1e-5 * fabs(loss));
  for (size_t i = 0; i < p; i++)
    assert_true(fabs(ldexp((double)alone[i], -30) - grad[i]) <
                1e-5 + 1e-4 * fabs(grad[i]));
  free(grad);
  free(among);
  free(alone);
  free(m.params);
  herd_mlp_destroy(&m.mlp);
}

static void test_mlp_bound_covers_gradient(void **state)
{
  (void)state;
  s_model_t m;
  s_model(&m);
  herd_mlp_det_t *det = NULL;
  assert_int_equal(herd_mlp_det_new(m.mlp, &det), HERD_OK);
  assert_int_equal(herd_mlp_det_load(det, m.x, S_SAMPLES), HERD_OK);
  const int all[2] = {0, S_SAMPLES};
  double loss = 0;
  int correct = 0;
  assert_int_equal(herd_mlp_det_forward_deltas(det, m.params, m.labels, all, 1,
                                               &loss, &correct),
                   HERD_OK);
  size_t p = herd_mlp_param_count(m.mlp);
  float *grad = calloc(p, sizeof(float));
  assert_int_equal(herd_mlp_forward_backward(m.mlp, m.params, m.x, m.labels,
                                             S_SAMPLES, grad, NULL, NULL),
                   HERD_OK);
  for (int l = 0; l < herd_mlp_n_layers(m.mlp); l++) {
    size_t w_off, b_off;
    herd_mlp_layer_offsets(m.mlp, l, &w_off, &b_off);
    float bound = herd_mlp_det_grad_bound(det, l, 0, S_SAMPLES);
    for (size_t i = w_off; i < b_off + (size_t)herd_mlp_dim(m.mlp, l + 1); i++)
      assert_true(fabsf(grad[i]) <= bound);
  }
  /* A bad label is refused. */
  uint8_t bad[S_SAMPLES];
  memcpy(bad, m.labels, sizeof(bad));
  bad[4] = 9;
  assert_int_equal(herd_mlp_det_forward_deltas(det, m.params, bad, all, 1,
                                               &loss, &correct),
                   HERD_EINVAL);
  free(grad);
  free(m.params);
  herd_mlp_det_destroy(&det);
  herd_mlp_destroy(&m.mlp);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paths_match_fma_chain),
      cmocka_unit_test(test_block_equals_whole),
      cmocka_unit_test(test_fixed_point_rounding_and_range),
      cmocka_unit_test(test_from_fixed_paths),
      cmocka_unit_test(test_fixed_pieces),
      cmocka_unit_test(test_mlp_shard_independent_of_neighbours),
      cmocka_unit_test(test_mlp_bound_covers_gradient),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
