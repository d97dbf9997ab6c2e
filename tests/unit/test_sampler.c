/* Sampler and rng: every sample exactly once per epoch for any world size,
 * a permutation that depends only on (seed, epoch), and an rng whose four
 * words of state are all there is to save. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "sampler.h"

/* Walks every step of `epoch` for every rank and counts each index. */
static void s_check_epoch(herd_sampler_t *sampler, size_t n, size_t batch,
                          int world, uint32_t *seen)
{
  const uint32_t *perm = herd_sampler_perm(sampler);
  size_t steps = herd_sampler_steps_per_epoch(n, batch);
  memset(seen, 0, n * sizeof(*seen));
  for (size_t step = 0; step < steps; step++) {
    size_t g_begin, g_end, prev_end = 0, min_len = SIZE_MAX, max_len = 0;
    herd_sampler_global_range(n, step, batch, &g_begin, &g_end);
    assert_true(g_end > g_begin);
    for (int rank = 0; rank < world; rank++) {
      size_t begin, end;
      herd_sampler_step_range(sampler, step, batch, rank, world, &begin, &end);
      /* Slices tile the step's range in rank order. */
      assert_int_equal(begin, rank == 0 ? g_begin : prev_end);
      assert_true(end >= begin);
      prev_end = end;
      size_t len = end - begin;
      min_len = len < min_len ? len : min_len;
      max_len = len > max_len ? len : max_len;
      for (size_t pos = begin; pos < end; pos++)
        seen[perm[pos]]++;
    }
    assert_int_equal(prev_end, g_end);
    assert_true(max_len - min_len <= 1);
  }
  for (size_t i = 0; i < n; i++)
    assert_int_equal(seen[i], 1);
}

static void test_exactly_once(void **state)
{
  static const size_t counts[] = {1, 7, 1000, 60000};
  static const size_t batches[] = {1, 64, 100, 128};
  static const int worlds[] = {1, 2, 3, 4, 5, 8};
  uint32_t *seen = malloc(60000 * sizeof(*seen));
  assert_non_null(seen);
  for (size_t c = 0; c < 4; c++) {
    herd_sampler_t *sampler = herd_sampler_new(42, counts[c]);
    assert_non_null(sampler);
    for (uint64_t epoch = 0; epoch < 2; epoch++) {
      herd_sampler_set_epoch(sampler, epoch);
      for (size_t b = 0; b < 4; b++)
        for (size_t w = 0; w < 6; w++)
          s_check_epoch(sampler, counts[c], batches[b], worlds[w], seen);
    }
    herd_sampler_destroy(&sampler);
    assert_null(sampler);
  }
  free(seen);
}

static void test_steps_and_ranges(void **state)
{
  assert_int_equal(herd_sampler_steps_per_epoch(60000, 128), 469);
  assert_int_equal(herd_sampler_steps_per_epoch(60000, 100), 600);
  assert_int_equal(herd_sampler_steps_per_epoch(7, 64), 1);
  assert_int_equal(herd_sampler_steps_per_epoch(1, 1), 1);
  assert_int_equal(herd_sampler_steps_per_epoch(5, 0), 0);

  herd_sampler_t *sampler = herd_sampler_new(1, 1000);
  size_t begin, end;
  /* Last step is partial: [896, 1000) split 3 ways = 34, 35, 35. */
  herd_sampler_step_range(sampler, 7, 128, 0, 3, &begin, &end);
  assert_int_equal(begin, 896);
  assert_int_equal(end, 930);
  herd_sampler_step_range(sampler, 7, 128, 2, 3, &begin, &end);
  assert_int_equal(begin, 965);
  assert_int_equal(end, 1000);
  /* Past the end of the epoch: empty. */
  herd_sampler_step_range(sampler, 8, 128, 1, 3, &begin, &end);
  assert_int_equal(begin, end);
  herd_sampler_step_range(sampler, SIZE_MAX / 2, 128, 0, 1, &begin, &end);
  assert_int_equal(begin, end);
  /* More workers than samples in a step: some get nothing, none overlap. */
  herd_sampler_step_range(sampler, 0, 1, 0, 8, &begin, &end);
  assert_int_equal(end - begin, 0);
  herd_sampler_step_range(sampler, 0, 1, 7, 8, &begin, &end);
  assert_int_equal(end - begin, 1);
  herd_sampler_destroy(&sampler);
  herd_sampler_destroy(&sampler); /* twice is fine */
  assert_null(herd_sampler_new(1, 0));
}

static void test_epochs_differ_and_repeat(void **state)
{
  size_t n = 1000;
  herd_sampler_t *a = herd_sampler_new(7, n);
  herd_sampler_t *b = herd_sampler_new(7, n);
  herd_sampler_t *other_seed = herd_sampler_new(8, n);
  uint32_t *epoch1 = malloc(n * sizeof(*epoch1));
  assert_memory_equal(herd_sampler_perm(a), herd_sampler_perm(b),
                      n * sizeof(uint32_t));
  assert_memory_not_equal(herd_sampler_perm(a), herd_sampler_perm(other_seed),
                          n * sizeof(uint32_t));
  herd_sampler_set_epoch(a, 1);
  assert_int_equal(herd_sampler_epoch(a), 1);
  memcpy(epoch1, herd_sampler_perm(a), n * sizeof(*epoch1));
  assert_memory_not_equal(epoch1, herd_sampler_perm(b), n * sizeof(uint32_t));
  /* The order depends on (seed, epoch) only, not on the path taken. */
  herd_sampler_set_epoch(a, 2);
  assert_memory_not_equal(epoch1, herd_sampler_perm(a), n * sizeof(uint32_t));
  herd_sampler_set_epoch(b, 5);
  herd_sampler_set_epoch(b, 1);
  assert_memory_equal(epoch1, herd_sampler_perm(b), n * sizeof(uint32_t));
  herd_sampler_set_epoch(a, 1);
  assert_memory_equal(epoch1, herd_sampler_perm(a), n * sizeof(uint32_t));
  /* Not the identity, and actually shuffled throughout. */
  size_t fixed = 0;
  for (size_t i = 0; i < n; i++)
    fixed += epoch1[i] == i;
  assert_true(fixed < 10);
  free(epoch1);
  herd_sampler_destroy(&a);
  herd_sampler_destroy(&b);
  herd_sampler_destroy(&other_seed);
}

static void test_rng_state_round_trip(void **state)
{
  herd_rng_t a, b;
  herd_rng_seed(&a, 123);
  for (int i = 0; i < 10; i++)
    herd_rng_next_u64(&a);
  uint64_t saved[4];
  memcpy(saved, a.s, sizeof(saved));
  uint64_t expect[8];
  for (int i = 0; i < 8; i++)
    expect[i] = herd_rng_next_u64(&a);
  memcpy(b.s, saved, sizeof(saved));
  for (int i = 0; i < 8; i++)
    assert_true(herd_rng_next_u64(&b) == expect[i]);
  /* Seed 0 is usable and streams differ. */
  herd_rng_t z, s0, s1;
  herd_rng_seed(&z, 0);
  assert_true((z.s[0] | z.s[1] | z.s[2] | z.s[3]) != 0);
  herd_rng_seed_stream(&s0, 5, 0);
  herd_rng_seed_stream(&s1, 5, 1);
  assert_true(herd_rng_next_u64(&s0) != herd_rng_next_u64(&s1));
}

static void test_rng_distributions(void **state)
{
  herd_rng_t rng;
  herd_rng_seed(&rng, 99);
  enum { N = 200000, K = 10 };
  int buckets[K] = {0};
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < N; i++) {
    uint32_t v = herd_rng_bounded_u32(&rng, K);
    assert_true(v < K);
    buckets[v]++;
    float u = herd_rng_uniform_f32(&rng);
    assert_true(u >= 0.0f && u < 1.0f);
    double g = herd_rng_normal_f32(&rng);
    assert_true(isfinite(g));
    sum += g;
    sum_sq += g * g;
  }
  double chi2 = 0;
  for (int k = 0; k < K; k++) {
    double d = buckets[k] - N / (double)K;
    chi2 += d * d / (N / (double)K);
  }
  assert_true(chi2 < 30.0); /* 9 dof: p < 0.001 */
  assert_true(fabs(sum / N) < 0.01);
  assert_true(fabs(sum_sq / N - 1.0) < 0.02);
  assert_int_equal(herd_rng_bounded_u32(&rng, 1), 0);
  for (int i = 0; i < 1000; i++)
    assert_true(herd_rng_bounded_u32(&rng, UINT32_MAX) < UINT32_MAX);
}

/* Virtual shards: for every world size the ranks' ranges tile each step's
 * global range exactly, and the shard boundaries (hence the samples of each
 * shard) are the same whatever the world size. */
static void test_virtual_shards(void **state)
{
  (void)state;
  const size_t n = 1000, batch = 100;
  const int shards = 16;
  herd_sampler_t *sampler = herd_sampler_new(7, n);
  assert_non_null(sampler);
  size_t boundary[17];
  for (int world = 1; world <= 20; world++) {
    size_t covered = 0, expect_begin = 300;
    for (int rank = 0; rank < world; rank++) {
      size_t begin, end;
      int first, count;
      herd_sampler_shard_range(sampler, 3, batch, rank, world, shards, &begin,
                               &end, &first, &count);
      assert_int_equal(begin, expect_begin);
      expect_begin = end;
      covered += end - begin;
      if (world == 1)
        for (int k = 0; k <= shards; k++)
          boundary[k] = 300 + (size_t)k * batch / shards;
      assert_int_equal(begin, boundary[first]);
      assert_int_equal(end, boundary[first + count]);
      if (world > shards && rank >= shards)
        assert_true(count <= 1);
    }
    assert_int_equal(covered, batch);
  }
  herd_sampler_destroy(&sampler);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exactly_once),
      cmocka_unit_test(test_steps_and_ranges),
      cmocka_unit_test(test_epochs_differ_and_repeat),
      cmocka_unit_test(test_rng_state_round_trip),
      cmocka_unit_test(test_rng_distributions),
      cmocka_unit_test(test_virtual_shards),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
