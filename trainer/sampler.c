/* Deterministic rng and global sampler (see sampler.h for the contract).
 *
 * Why these choices: xoshiro256** is fast, has a 256-bit state that is easy
 * to checkpoint, and passes BigCrush; splitmix64 turns any 64-bit seed
 * (including 0) into a well-mixed non-zero state. The permutation is rebuilt
 * from the identity for every epoch so it is a pure function of
 * (seed, epoch): a worker that joins mid-run computes the same order as the
 * ones that were there all along.
 */
#include "sampler.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

/* ---- rng ---- */

static uint64_t s_splitmix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static uint64_t s_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void herd_rng_seed(herd_rng_t *rng, uint64_t seed)
{
  uint64_t sm = seed;
  for (int i = 0; i < 4; i++)
    rng->s[i] = s_splitmix64(&sm);
  /* splitmix64 is a bijection of distinct counters, so four consecutive
   * outputs can't all be zero; keep the guard for the invariant's sake. */
  if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
    rng->s[0] = 1;
}

void herd_rng_seed_stream(herd_rng_t *rng, uint64_t seed, uint64_t stream)
{
  /* Mix the stream through splitmix64 before combining, so nearby
   * (seed, stream) pairs land far apart rather than on shifted sequences. */
  uint64_t sm = stream ^ 0xD1B54A32D192ED03ULL;
  herd_rng_seed(rng, seed ^ s_splitmix64(&sm));
}

uint64_t herd_rng_next_u64(herd_rng_t *rng)
{
  uint64_t *s = rng->s;
  uint64_t result = s_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = s_rotl(s[3], 45);
  return result;
}

uint32_t herd_rng_bounded_u32(herd_rng_t *rng, uint32_t bound)
{
  /* Lemire, "Fast Random Integer Generation in an Interval" (2019): reject
   * only the few low products that would bias the result. */
  assert(bound >= 1);
  uint32_t x = (uint32_t)(herd_rng_next_u64(rng) >> 32);
  uint64_t m = (uint64_t)x * bound;
  uint32_t low = (uint32_t)m;
  if (low < bound) {
    uint32_t threshold = (uint32_t)(-bound) % bound;
    while (low < threshold) {
      x = (uint32_t)(herd_rng_next_u64(rng) >> 32);
      m = (uint64_t)x * bound;
      low = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

float herd_rng_uniform_f32(herd_rng_t *rng)
{
  return (float)(herd_rng_next_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

float herd_rng_normal_f32(herd_rng_t *rng)
{
  /* u1 in (0, 1] so log() is finite; doubles keep the tails accurate. */
  double u1 = ((double)(herd_rng_next_u64(rng) >> 11) + 1.0) * 0x1.0p-53;
  double u2 = (double)(herd_rng_next_u64(rng) >> 11) * 0x1.0p-53;
  return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* ---- sampler ---- */

struct herd_sampler {
  uint64_t seed;
  uint64_t epoch;
  size_t count;
  uint32_t *perm;
};

static void s_shuffle(herd_sampler_t *self)
{
  herd_rng_t rng;
  herd_rng_seed_stream(&rng, self->seed, self->epoch);
  for (size_t i = 0; i < self->count; i++)
    self->perm[i] = (uint32_t)i;
  for (size_t i = self->count - 1; i > 0; i--) {
    size_t j = herd_rng_bounded_u32(&rng, (uint32_t)(i + 1));
    uint32_t tmp = self->perm[i];
    self->perm[i] = self->perm[j];
    self->perm[j] = tmp;
  }
}

herd_sampler_t *herd_sampler_new(uint64_t seed, size_t count)
{
  if (count == 0 || count > HERD_SAMPLER_MAX_COUNT)
    return NULL;
  herd_sampler_t *self = calloc(1, sizeof(*self));
  if (!self)
    return NULL;
  self->perm = malloc(count * sizeof(*self->perm));
  if (!self->perm) {
    free(self);
    return NULL;
  }
  self->seed = seed;
  self->count = count;
  self->epoch = 0;
  s_shuffle(self);
  return self;
}

void herd_sampler_destroy(herd_sampler_t **sampler_p)
{
  if (!sampler_p || !*sampler_p)
    return;
  free((*sampler_p)->perm);
  free(*sampler_p);
  *sampler_p = NULL;
}

void herd_sampler_set_epoch(herd_sampler_t *sampler, uint64_t epoch)
{
  if (sampler->epoch == epoch)
    return;
  sampler->epoch = epoch;
  s_shuffle(sampler);
}

uint64_t herd_sampler_epoch(const herd_sampler_t *sampler)
{
  return sampler->epoch;
}

size_t herd_sampler_count(const herd_sampler_t *sampler)
{
  return sampler->count;
}

const uint32_t *herd_sampler_perm(const herd_sampler_t *sampler)
{
  return sampler->perm;
}

size_t herd_sampler_steps_per_epoch(size_t count, size_t global_batch)
{
  if (global_batch == 0)
    return 0;
  return count / global_batch + (count % global_batch != 0);
}

void herd_sampler_global_range(size_t count, size_t step_in_epoch,
                               size_t global_batch, size_t *begin, size_t *end)
{
  assert(global_batch >= 1);
  /* Division instead of step*batch, which could overflow for a bogus step. */
  if (step_in_epoch >= herd_sampler_steps_per_epoch(count, global_batch)) {
    *begin = *end = count;
    return;
  }
  *begin = step_in_epoch * global_batch;
  *end = count - *begin < global_batch ? count : *begin + global_batch;
}

void herd_sampler_step_range(const herd_sampler_t *sampler,
                             size_t step_in_epoch, size_t global_batch,
                             int rank, int world_size, size_t *begin,
                             size_t *end)
{
  assert(world_size >= 1 && rank >= 0 && rank < world_size);
  size_t g_begin, g_end;
  herd_sampler_global_range(sampler->count, step_in_epoch, global_batch,
                            &g_begin, &g_end);
  /* len <= global_batch <= count < 2^32 and world_size < 2^31, so the
   * products fit in 64 bits. */
  uint64_t len = g_end - g_begin;
  uint64_t w = (uint64_t)world_size, r = (uint64_t)rank;
  *begin = g_begin + (size_t)(r * len / w);
  *end = g_begin + (size_t)((r + 1) * len / w);
}

void herd_sampler_shard_range(const herd_sampler_t *sampler,
                              size_t step_in_epoch, size_t global_batch,
                              int rank, int world_size, int shards,
                              size_t *begin, size_t *end, int *first_shard,
                              int *shard_count)
{
  assert(world_size >= 1 && rank >= 0 && rank < world_size && shards >= 1);
  size_t g_begin, g_end;
  herd_sampler_global_range(sampler->count, step_in_epoch, global_batch,
                            &g_begin, &g_end);
  uint64_t len = g_end - g_begin, v = (uint64_t)shards;
  uint64_t w = (uint64_t)world_size, r = (uint64_t)rank;
  uint64_t first = r * v / w, last = (r + 1) * v / w;
  *begin = g_begin + (size_t)(first * len / v);
  *end = g_begin + (size_t)(last * len / v);
  if (first_shard)
    *first_shard = (int)first;
  if (shard_count)
    *shard_count = (int)(last - first);
}
