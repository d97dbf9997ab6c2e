/* herd-train's resume checks (trainer/train_resume.c): which recorded
 * settings must match, which may change, and every cursor value a
 * checkpoint could carry, in and out of bounds. The run's config JSON comes
 * from a stand-in for train_state.c's herd_train_config_json, so only
 * train_resume.c is under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "train.h"

#define S_PER_EPOCH 468
#define S_SAMPLES 60000

void herd_train_config_json(const herd_train_t *train, char *out, size_t cap)
{
  const herd_train_config_t *c = &train->config;
  json_t *json =
      json_pack("{s:s, s:s, s:I, s:I, s:f, s:s, s:I, s:s, s:I}", "data",
                c->data, "hidden", c->hidden, "epochs", (json_int_t)c->epochs,
                "batch", (json_int_t)c->batch, "lr", c->lr, "optimizer",
                c->optimizer, "seed", (json_int_t)c->seed, "backend",
                c->backend, "train_samples", (json_int_t)S_SAMPLES);
  char *text = json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS);
  snprintf(out, cap, "%s", text);
  free(text);
  json_decref(json);
}

static herd_train_t s_train(void)
{
  herd_train_t t;
  memset(&t, 0, sizeof t);
  t.config = (herd_train_config_t){.data = "d.h5",
                                   .hidden = "256,128",
                                   .epochs = 15,
                                   .batch = 128,
                                   .lr = 0.001,
                                   .optimizer = "adamw",
                                   .seed = 42,
                                   .backend = "mpi",
                                   .virtual_shards = 16};
  t.steps_per_epoch = S_PER_EPOCH;
  return t;
}

/* A checkpoint saved by `t` at `step`, the cursor cut consistently. */
static herd_ckpt_meta_t s_meta(const herd_train_t *t, int64_t step)
{
  herd_ckpt_meta_t m;
  memset(&m, 0, sizeof m);
  herd_train_config_json(t, m.config_json, sizeof m.config_json);
  m.step = step;
  m.epoch = step / S_PER_EPOCH;
  m.step_in_epoch = step % S_PER_EPOCH;
  m.rng_state[0] = 42;
  m.rng_state[1] = (uint64_t)m.epoch;
  m.rng_state[2] = (uint64_t)m.step_in_epoch;
  m.world_size = 2;
  m.virtual_shards = 16;
  return m;
}

static void s_expect(herd_result_t rc, herd_result_t want, const char *a,
                     const char *b)
{
  assert_int_equal(rc, want);
  if (a)
    assert_non_null(strstr(herd_error_detail(), a));
  if (b)
    assert_non_null(strstr(herd_error_detail(), b));
}

static void test_same_config_resumes(void **state)
{
  herd_train_t t = s_train();
  herd_ckpt_meta_t m = s_meta(&t, 500);
  assert_int_equal(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_OK);
  assert_int_equal(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"),
                   HERD_OK);
}

static void test_fixed_settings_refused(void **state)
{
  herd_train_t saved = s_train();
  herd_ckpt_meta_t m = s_meta(&saved, 500);
  herd_train_t t = s_train();
  t.config.batch = 64;
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EINVAL,
           "saved with --batch 128, this run has --batch 64", "--resume never");
  t = s_train();
  t.config.seed = 7;
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EINVAL,
           "--seed 42", "--seed 7");
  t = s_train();
  t.config.hidden = "512";
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EINVAL,
           "--hidden 256,128", "--hidden 512");
  t = s_train();
  t.config.optimizer = "sgd";
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EINVAL,
           "--optimizer adamw", "--optimizer sgd");
  t = s_train();
  t.config.virtual_shards = 8;
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EINVAL,
           "--virtual-shards 16", "--virtual-shards 8");
}

static void test_free_settings_and_spelling_resume(void **state)
{
  herd_train_t saved = s_train();
  herd_ckpt_meta_t m = s_meta(&saved, 500);
  herd_train_t t = s_train();
  t.config.hidden = "256, 0128"; /* the same widths */
  t.config.lr = 0.01;
  t.config.epochs = 30;
  t.config.data = "moved.h5";
  t.config.backend = "gloo";
  assert_int_equal(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_OK);
  assert_int_equal(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"),
                   HERD_OK);
}

static void test_recorded_config_damaged(void **state)
{
  herd_train_t t = s_train();
  herd_ckpt_meta_t m = s_meta(&t, 500);
  snprintf(m.config_json, sizeof m.config_json, "not json");
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EFORMAT,
           "not a JSON object", NULL);
  snprintf(m.config_json, sizeof m.config_json, "[1]");
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EFORMAT,
           "not a JSON object", NULL);
  snprintf(m.config_json, sizeof m.config_json, "{\"hidden\":\"256,128\"}");
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EFORMAT,
           "lacks 'batch'", NULL);
  snprintf(m.config_json, sizeof m.config_json,
           "{\"hidden\":\"256,128\",\"batch\":\"128\",\"seed\":42,"
           "\"optimizer\":\"adamw\"}"); /* a string where a number goes */
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EFORMAT,
           "recorded 'batch' is malformed", NULL);
}

static void test_other_data_refused(void **state)
{
  herd_train_t t = s_train();
  herd_ckpt_meta_t m = s_meta(&t, 500);
  char *at = strstr(m.config_json, "\"train_samples\":60000");
  assert_non_null(at);
  memcpy(at, "\"train_samples\":50000", 21);
  s_expect(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_EINVAL,
           "trained on 50000 samples", "has 60000");
  /* Older checkpoints without the count: the cursor check stands in. */
  snprintf(m.config_json, sizeof m.config_json,
           "{\"hidden\":\"256,128\",\"batch\":128,\"seed\":42,"
           "\"optimizer\":\"adamw\"}");
  assert_int_equal(herd_train_check_resume_config(&t, &m, "c.h5"), HERD_OK);
}

static void test_cursor_out_of_bounds(void **state)
{
  herd_train_t t = s_train();
  herd_ckpt_meta_t good = s_meta(&t, 500), m;
  const char *out_of_bounds = "out of bounds";
  m = good, m.step = -1;
  s_expect(herd_train_check_resume_cursor(&t, &m, 0, "c.h5"), HERD_EFORMAT,
           out_of_bounds, NULL);
  m = good, m.epoch = -1, m.rng_state[1] = (uint64_t)-1;
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EFORMAT,
           out_of_bounds, NULL);
  m = good, m.step_in_epoch = S_PER_EPOCH, m.rng_state[2] = S_PER_EPOCH;
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EFORMAT,
           out_of_bounds, NULL);
  m = good, m.step_in_epoch = -3, m.rng_state[2] = (uint64_t)-3;
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EFORMAT,
           out_of_bounds, NULL);
  s_expect(herd_train_check_resume_cursor(&t, &good, 501, "c.h5"), HERD_EFORMAT,
           "optimizer step 501", NULL);
  s_expect(herd_train_check_resume_cursor(&t, &good, -1, "c.h5"), HERD_EFORMAT,
           out_of_bounds, NULL);
  m = good, m.world_size = 0;
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EFORMAT,
           "world size 0", NULL);
  m = good, m.virtual_shards = 0;
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EFORMAT,
           "0 virtual shards", NULL);
  m = good, m.rng_state[2] = 1; /* sampler state disagrees with the cursor */
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EFORMAT,
           out_of_bounds, NULL);
}

static void test_cursor_inconsistent(void **state)
{
  herd_train_t t = s_train();
  herd_ckpt_meta_t m = s_meta(&t, 500);
  m.epoch = 0, m.rng_state[1] = 0; /* 500 steps do not fit in epoch 0 */
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EINVAL,
           "step 500 is not epoch 0 + 32 steps", NULL);
  m = s_meta(&t, 500);
  m.epoch = INT64_MAX / 2, m.rng_state[1] = (uint64_t)m.epoch; /* no overflow */
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EINVAL,
           "steps per epoch", NULL);
}

static void test_past_the_end(void **state)
{
  herd_train_t t = s_train();
  herd_ckpt_meta_t m = s_meta(&t, 500);
  t.config.max_steps = 100;
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EINVAL,
           "past --max-steps 100", "--resume never");
  t.config.max_steps = 500; /* exactly done: nothing left, not refused */
  assert_int_equal(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"),
                   HERD_OK);
  t.config.max_steps = 0;
  t.config.epochs = 1;
  s_expect(herd_train_check_resume_cursor(&t, &m, 500, "c.h5"), HERD_EINVAL,
           "past the end of --epochs 1 (step 468)", NULL);
  m = s_meta(&t, S_PER_EPOCH); /* a finished one-epoch run, rerun */
  assert_int_equal(herd_train_check_resume_cursor(&t, &m, S_PER_EPOCH, "c.h5"),
                   HERD_OK);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_config_resumes),
      cmocka_unit_test(test_fixed_settings_refused),
      cmocka_unit_test(test_free_settings_and_spelling_resume),
      cmocka_unit_test(test_recorded_config_damaged),
      cmocka_unit_test(test_other_data_refused),
      cmocka_unit_test(test_cursor_out_of_bounds),
      cmocka_unit_test(test_cursor_inconsistent),
      cmocka_unit_test(test_past_the_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
