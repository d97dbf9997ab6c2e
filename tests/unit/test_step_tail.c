/* The step protocol (trainer/step_tail.h): what each rank encodes into the
 * tail of its gradient buffer decodes, after the all-reduce's SUM, to the
 * global sums and to "some rank asked" for the flags, in the float and the
 * int64 encodings alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "step_tail.h"

static const herd_step_tail_t s_ranks[3] = {
    {.loss_sum = 1.5, .loss_fixed = 3, .samples = 43, .correct = 40},
    {.loss_sum = 2.25, .loss_fixed = 5, .samples = 43, .correct = 41,
     .stop = 1},
    {.loss_sum = 0.25, .loss_fixed = 7, .samples = 42, .correct = 30,
     .reconfigure = 1}};

static void test_f32_sum_decodes_to_global_values(void **state)
{
  (void)state;
  float sum[HERD_STEP_TAIL_LEN] = {0}, one[HERD_STEP_TAIL_LEN];
  for (int r = 0; r < 3; r++) {
    herd_step_tail_encode_f32(&s_ranks[r], one);
    for (int i = 0; i < HERD_STEP_TAIL_LEN; i++)
      sum[i] += one[i];
  }
  herd_step_tail_t tail;
  herd_step_tail_decode_f32(sum, &tail);
  assert_true(tail.loss_sum == 4.0);
  assert_int_equal(tail.samples, 128);
  assert_int_equal(tail.correct, 111);
  assert_int_equal(tail.stop, 1);
  assert_int_equal(tail.reconfigure, 1);
  /* The GPU optimizer divides by the sample count in place. */
  assert_true(sum[HERD_STEP_TAIL_SAMPLES] == 128.0f);
}

static void test_i64_sum_decodes_to_global_values(void **state)
{
  (void)state;
  int64_t sum[HERD_STEP_TAIL_LEN] = {0}, one[HERD_STEP_TAIL_LEN];
  for (int r = 0; r < 3; r++) {
    herd_step_tail_encode_i64(&s_ranks[r], one);
    for (int i = 0; i < HERD_STEP_TAIL_LEN; i++)
      sum[i] += one[i];
  }
  herd_step_tail_t tail;
  herd_step_tail_decode_i64(sum, &tail);
  assert_int_equal(tail.loss_fixed, 15);
  assert_int_equal(tail.samples, 128);
  assert_int_equal(tail.correct, 111);
  assert_int_equal(tail.stop, 1);
  assert_int_equal(tail.reconfigure, 1);
}

static void test_no_flag_when_no_rank_asks(void **state)
{
  (void)state;
  herd_step_tail_t quiet = {.samples = 5}, tail;
  float f[HERD_STEP_TAIL_LEN];
  int64_t i[HERD_STEP_TAIL_LEN];
  herd_step_tail_encode_f32(&quiet, f);
  herd_step_tail_decode_f32(f, &tail);
  assert_int_equal(tail.stop + tail.reconfigure, 0);
  herd_step_tail_encode_i64(&quiet, i);
  herd_step_tail_decode_i64(i, &tail);
  assert_int_equal(tail.stop + tail.reconfigure, 0);
  assert_int_equal(tail.samples, 5);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_f32_sum_decodes_to_global_values),
      cmocka_unit_test(test_i64_sum_decodes_to_global_values),
      cmocka_unit_test(test_no_flag_when_no_rank_asks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
