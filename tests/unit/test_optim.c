/* Optimizers converge on a quadratic, match hand-computed first steps, and
 * restoring saved state continues bit-identically; schedules hit their
 * documented values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "herd/dtype.h"
#include "optim.h"

enum { N = 16 };

/* f(p) = 0.5 * sum a_i (p_i - c_i)^2 with curvatures spread over 0.5..2. */
static void s_quad_grad(const float *p, float *g)
{
  for (int i = 0; i < N; i++) {
    float a = 0.5f + 1.5f * (float)i / (N - 1);
    float c = (float)(i % 5) - 2.0f;
    g[i] = a * (p[i] - c);
  }
}

static float s_max_err(const float *p)
{
  float worst = 0;
  for (int i = 0; i < N; i++)
    worst = fmaxf(worst, fabsf(p[i] - ((float)(i % 5) - 2.0f)));
  return worst;
}

static float s_run(const herd_optim_config_t *config,
                   const herd_lr_schedule_t *schedule, int steps)
{
  herd_optim_t *o = NULL;
  float p[N], g[N];
  for (int i = 0; i < N; i++)
    p[i] = 3.0f;
  assert_int_equal(herd_optim_new(config, N, &o), HERD_OK);
  for (int s = 0; s < steps; s++) {
    s_quad_grad(p, g);
    herd_optim_step(o, p, g, (float)herd_lr_at(schedule, s));
  }
  assert_int_equal(herd_optim_step_count(o), steps);
  herd_optim_destroy(&o);
  return s_max_err(p);
}

static void test_converge(void **state)
{
  herd_optim_config_t sgd = HERD_OPTIM_CONFIG_INIT;
  herd_lr_schedule_t constant = HERD_LR_SCHEDULE_INIT;
  constant.base_lr = 0.1;
  assert_true(s_run(&sgd, &constant, 300) < 1e-4f);
  sgd.nesterov = 1;
  assert_true(s_run(&sgd, &constant, 300) < 1e-4f);
  sgd.nesterov = 0;
  sgd.momentum = 0.0f;
  assert_true(s_run(&sgd, &constant, 300) < 1e-4f);

  herd_optim_config_t adamw = HERD_OPTIM_CONFIG_INIT;
  adamw.kind = HERD_OPTIM_ADAMW;
  herd_lr_schedule_t cosine = {HERD_LR_COSINE, 0.1, 20, 1000, 0.0, 1, 1.0};
  assert_int_equal(herd_lr_validate(&cosine), HERD_OK);
  assert_true(s_run(&adamw, &cosine, 1000) < 1e-3f);
}

static void test_first_steps(void **state)
{
  herd_optim_config_t c = HERD_OPTIM_CONFIG_INIT;
  c.kind = HERD_OPTIM_ADAMW;
  c.weight_decay = 0.1f;
  herd_optim_t *o = NULL;
  assert_int_equal(herd_optim_new(&c, 2, &o), HERD_OK);
  float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -3.0f};
  herd_optim_step(o, p, g, 0.01f);
  /* First AdamW step: m_hat/sqrt(v_hat) = sign(g); decay applied first. */
  assert_true(fabsf(p[0] - (1.0f * (1 - 0.001f) - 0.01f)) < 1e-6f);
  assert_true(fabsf(p[1] - (-2.0f * (1 - 0.001f) + 0.01f)) < 1e-6f);
  assert_int_equal(herd_optim_state_buffers(o), 2);
  assert_string_equal(herd_optim_state_name(o, 0), "exp_avg");
  assert_string_equal(herd_optim_state_name(o, 1), "exp_avg_sq");
  assert_null(herd_optim_state(o, 2));
  herd_optim_destroy(&o);

  herd_optim_config_t s = HERD_OPTIM_CONFIG_INIT;
  s.weight_decay = 0.5f;
  assert_int_equal(herd_optim_new(&s, 2, &o), HERD_OK);
  float q[2] = {1.0f, 2.0f}, h[2] = {1.0f, 1.0f};
  herd_optim_step(o, q, h, 0.1f);
  assert_true(fabsf(q[0] - (1.0f - 0.1f * 1.5f)) < 1e-6f);
  herd_optim_step(o, q, h, 0.1f); /* buf = 0.9*1.5 + (1 + 0.5*0.85) */
  assert_true(fabsf(q[0] - (0.85f - 0.1f * (0.9f * 1.5f + 1.425f))) < 1e-6f);
  assert_string_equal(herd_optim_state_name(o, 0), "momentum");
  herd_optim_destroy(&o);
  herd_optim_destroy(&o);
}

/* Run A for 10 steps, copy its state into a fresh B, step both 10 more:
 * identical bits. */
static void s_round_trip(const herd_optim_config_t *c)
{
  herd_optim_t *a = NULL, *b = NULL;
  float pa[N], pb[N], g[N];
  for (int i = 0; i < N; i++)
    pa[i] = (float)i * 0.37f - 1.0f;
  assert_int_equal(herd_optim_new(c, N, &a), HERD_OK);
  for (int s = 0; s < 10; s++) {
    s_quad_grad(pa, g);
    herd_optim_step(a, pa, g, 0.05f);
  }
  assert_int_equal(herd_optim_new(c, N, &b), HERD_OK);
  memcpy(pb, pa, sizeof(pa));
  for (int i = 0; i < herd_optim_state_buffers(a); i++)
    memcpy(herd_optim_state(b, i), herd_optim_state(a, i),
           herd_optim_count(a) * sizeof(float));
  herd_optim_set_step_count(b, herd_optim_step_count(a));
  for (int s = 0; s < 10; s++) {
    s_quad_grad(pa, g);
    herd_optim_step(a, pa, g, 0.05f);
    s_quad_grad(pb, g);
    herd_optim_step(b, pb, g, 0.05f);
  }
  assert_memory_equal(pa, pb, sizeof(pa));
  for (int i = 0; i < herd_optim_state_buffers(a); i++)
    assert_memory_equal(herd_optim_state(a, i), herd_optim_state(b, i),
                        N * sizeof(float));
  herd_optim_destroy(&a);
  herd_optim_destroy(&b);
}

static void test_state_round_trip(void **state)
{
  herd_optim_config_t c = HERD_OPTIM_CONFIG_INIT;
  c.nesterov = 1;
  c.weight_decay = 1e-4f;
  s_round_trip(&c);
  c.kind = HERD_OPTIM_ADAMW;
  c.weight_decay = 0.01f;
  s_round_trip(&c);
}

static void test_bad_config(void **state)
{
  herd_optim_t *o = NULL;
  herd_optim_config_t c = HERD_OPTIM_CONFIG_INIT;
  assert_int_equal(herd_optim_new(&c, 0, &o), HERD_EINVAL);
  c.momentum = 1.0f;
  assert_int_equal(herd_optim_new(&c, 4, &o), HERD_EINVAL);
  c.momentum = 0.0f;
  c.nesterov = 1;
  assert_int_equal(herd_optim_new(&c, 4, &o), HERD_EINVAL);
  c = (herd_optim_config_t)HERD_OPTIM_CONFIG_INIT;
  c.kind = HERD_OPTIM_ADAMW;
  c.eps = 0.0f;
  assert_int_equal(herd_optim_new(&c, 4, &o), HERD_EINVAL);
  c = (herd_optim_config_t)HERD_OPTIM_CONFIG_INIT;
  c.version = 99;
  assert_int_equal(herd_optim_new(&c, 4, &o), HERD_EINVAL);
  c = (herd_optim_config_t)HERD_OPTIM_CONFIG_INIT;
  c.weight_decay = -1.0f;
  assert_int_equal(herd_optim_new(&c, 4, &o), HERD_EINVAL);
  assert_null(o);
}

static void test_schedules(void **state)
{
  herd_lr_schedule_t cos = {HERD_LR_COSINE, 1.0, 10, 110, 0.1, 1, 1.0};
  assert_true(fabs(herd_lr_at(&cos, 0) - 0.1) < 1e-12);
  assert_true(fabs(herd_lr_at(&cos, 4) - 0.5) < 1e-12);
  assert_true(fabs(herd_lr_at(&cos, 10) - 1.0) < 1e-12);
  assert_true(fabs(herd_lr_at(&cos, 60) - 0.55) < 1e-12);
  assert_true(fabs(herd_lr_at(&cos, 110) - 0.1) < 1e-12);
  assert_true(fabs(herd_lr_at(&cos, 500) - 0.1) < 1e-12);
  for (int64_t s = 11; s < 110; s++)
    assert_true(herd_lr_at(&cos, s) < herd_lr_at(&cos, s - 1));

  herd_lr_schedule_t step = {HERD_LR_STEP, 0.5, 0, 0, 0.0, 30, 0.1};
  assert_int_equal(herd_lr_validate(&step), HERD_OK);
  assert_true(fabs(herd_lr_at(&step, 29) - 0.5) < 1e-12);
  assert_true(fabs(herd_lr_at(&step, 30) - 0.05) < 1e-12);
  assert_true(fabs(herd_lr_at(&step, 65) - 0.005) < 1e-12);

  herd_lr_schedule_t constant = HERD_LR_SCHEDULE_INIT;
  assert_int_equal(herd_lr_validate(&constant), HERD_OK);
  assert_true(herd_lr_at(&constant, 1000000) == 0.1);

  herd_lr_schedule_t bad = cos;
  bad.total_steps = 0;
  assert_int_equal(herd_lr_validate(&bad), HERD_EINVAL);
  bad = cos;
  bad.min_ratio = 1.5;
  assert_int_equal(herd_lr_validate(&bad), HERD_EINVAL);
  bad = step;
  bad.step_every = 0;
  assert_int_equal(herd_lr_validate(&bad), HERD_EINVAL);
  bad = step;
  bad.gamma = 0.0;
  assert_int_equal(herd_lr_validate(&bad), HERD_EINVAL);
  bad = constant;
  bad.warmup_steps = -1;
  assert_int_equal(herd_lr_validate(&bad), HERD_EINVAL);
  bad.warmup_steps = 0;
  bad.base_lr = NAN;
  assert_int_equal(herd_lr_validate(&bad), HERD_EINVAL);
}

/* herd_optim_step_scaled(g, s) gives the bits of scaling g by s first and
 * stepping: the trainer folds its 1/samples into the update. */
static void s_scaled_same_bits(const herd_optim_config_t *c)
{
  herd_optim_t *a = NULL, *b = NULL;
  float pa[N], pb[N], g[N], mean[N];
  for (int i = 0; i < N; i++)
    pa[i] = pb[i] = (float)i * 0.37f - 1.0f;
  assert_int_equal(herd_optim_new(c, N, &a), HERD_OK);
  assert_int_equal(herd_optim_new(c, N, &b), HERD_OK);
  const float scale = 1.0f / 384.0f;
  for (int s = 0; s < 12; s++) {
    s_quad_grad(pa, g);
    for (int i = 0; i < N; i++)
      g[i] *= 384.0f + (float)i; /* a sum, not a power of two apart */
    for (int i = 0; i < N; i++)
      mean[i] = g[i] * scale;
    herd_optim_step(a, pa, mean, 0.05f);
    herd_optim_step_scaled(b, pb, g, scale, 0.05f);
    assert_memory_equal(pa, pb, sizeof(pa));
  }
  herd_optim_destroy(&a);
  herd_optim_destroy(&b);
}

static void test_step_scaled_same_bits(void **state)
{
  (void)state;
  herd_optim_config_t c = HERD_OPTIM_CONFIG_INIT;
  c.kind = HERD_OPTIM_SGD;
  c.weight_decay = 1e-4f;
  s_scaled_same_bits(&c); /* momentum */
  c.nesterov = 1;
  s_scaled_same_bits(&c);
  c.nesterov = 0;
  c.momentum = 0.0f;
  s_scaled_same_bits(&c);
  c = (herd_optim_config_t)HERD_OPTIM_CONFIG_INIT;
  c.kind = HERD_OPTIM_ADAMW;
  s_scaled_same_bits(&c);
}

/* --grad-dtype bf16: round to nearest even, NaN stays NaN, exact back. */
static void test_bf16_arrays(void **state)
{
  (void)state;
  float in[6] = {1.0f, 1.00390625f /* tie, even: down */,
                 1.01171875f /* tie, odd: up */, -3.5e-3f, INFINITY, NAN};
  uint16_t h[6];
  float out[6];
  herd_floats_to_bf16(in, h, 6);
  herd_bf16_to_floats(h, out, 6);
  assert_true(out[0] == 1.0f);
  assert_true(out[1] == 1.0f);
  assert_true(out[2] == 1.015625f);
  assert_true(fabsf(out[3] - in[3]) <= fabsf(in[3]) / 256.0f);
  assert_true(isinf(out[4]));
  assert_true(isnan(out[5]));
  for (int i = 0; i < 6; i++)
    assert_int_equal(h[i], herd_float_to_bf16(in[i]));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_converge),
      cmocka_unit_test(test_first_steps),
      cmocka_unit_test(test_step_scaled_same_bits),
      cmocka_unit_test(test_bf16_arrays),
      cmocka_unit_test(test_state_round_trip),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_schedules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
