/* Deterministic randomness for the reference trainer.
 *
 * herd_rng_t is xoshiro256** (Blackman & Vigna) seeded through splitmix64.
 * Its whole state is four uint64 words, so a checkpoint can save it and a
 * resumed run continues the exact same stream. The trainer uses it for
 * parameter init and, through the sampler, for the data order.
 *
 * herd_sampler_t maps (seed, epoch) to a permutation of [0, n) by
 * Fisher-Yates with unbiased bounded draws (Lemire). The permutation depends
 * only on (seed, epoch), never on the history of calls or on the worker set,
 * so after a membership change every survivor derives the same order and each
 * sample is still seen exactly once per epoch:
 *   step s of an epoch covers permutation positions
 *     [s*B, min((s+1)*B, n))                       (B = global batch)
 *   and rank r of W workers takes the slice
 *     [begin + r*len/W, begin + (r+1)*len/W)       (len = end - begin).
 *
 * Thread safety: none; each object belongs to one thread.
 */
#ifndef HERD_WORKER_SAMPLER_H
#define HERD_WORKER_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- rng ---- */

/* Plain data: copy it, save the four words, restore them. */
typedef struct {
  uint64_t s[4];
} herd_rng_t;

/* Seeds the state from splitmix64(seed); never all-zero. */
void herd_rng_seed(herd_rng_t *rng, uint64_t seed);
/* Seeds an independent stream (e.g. one per epoch) of the same seed. */
void herd_rng_seed_stream(herd_rng_t *rng, uint64_t seed, uint64_t stream);
uint64_t herd_rng_next_u64(herd_rng_t *rng);
/* Uniform in [0, bound), unbiased; bound must be >= 1. */
uint32_t herd_rng_bounded_u32(herd_rng_t *rng, uint32_t bound);
/* Uniform in [0, 1) with 24 random bits. */
float herd_rng_uniform_f32(herd_rng_t *rng);
/* Standard normal (Box-Muller, one draw per call, so the state stays the
 * four words). */
float herd_rng_normal_f32(herd_rng_t *rng);

/* ---- sampler ---- */

/* Largest dataset the sampler indexes (permutation entries are uint32). */
#define HERD_SAMPLER_MAX_COUNT ((size_t)UINT32_MAX)

typedef struct herd_sampler herd_sampler_t;

/* A sampler over [0, count), positioned at epoch 0. Returns NULL when count
 * is 0 or above HERD_SAMPLER_MAX_COUNT, or out of memory. Caller owns it. */
herd_sampler_t *herd_sampler_new(uint64_t seed, size_t count);
/* Safe on NULL and twice; nulls *sampler_p. */
void herd_sampler_destroy(herd_sampler_t **sampler_p);

/* Regenerates the permutation for `epoch` (O(count)); can't fail. A no-op
 * when the sampler is already at that epoch. */
void herd_sampler_set_epoch(herd_sampler_t *sampler, uint64_t epoch);
uint64_t herd_sampler_epoch(const herd_sampler_t *sampler);
size_t herd_sampler_count(const herd_sampler_t *sampler);
/* The current epoch's permutation: count entries, each < count. Valid until
 * the next set_epoch or destroy. */
const uint32_t *herd_sampler_perm(const herd_sampler_t *sampler);

/* ceil(count / global_batch); 0 when global_batch is 0. */
size_t herd_sampler_steps_per_epoch(size_t count, size_t global_batch);

/* Virtual shards (elastic training): each step's global range is cut into
 * `shards` fixed pieces, shard k = [b + k*len/shards, b + (k+1)*len/shards),
 * and rank r of world_size takes the contiguous shards
 * [r*shards/world_size, (r+1)*shards/world_size). The pieces, and so which
 * samples form a step, do not depend on the world size; a rank beyond
 * `shards` gets an empty range. Fills the rank's positions and its first
 * shard index and shard count. Preconditions as herd_sampler_step_range,
 * plus shards >= 1. */
void herd_sampler_shard_range(const herd_sampler_t *sampler,
                              size_t step_in_epoch, size_t global_batch,
                              int rank, int world_size, int shards,
                              size_t *begin, size_t *end, int *first_shard,
                              int *shard_count);

/* Permutation positions [*begin, *end) that `rank` of `world_size` workers
 * processes in step `step_in_epoch`. Preconditions (asserted): global_batch
 * >= 1, world_size >= 1, 0 <= rank < world_size. A step past the end of the
 * epoch gives an empty range at count. */
void herd_sampler_step_range(const herd_sampler_t *sampler,
                             size_t step_in_epoch, size_t global_batch,
                             int rank, int world_size, size_t *begin,
                             size_t *end);

/* Same split without a sampler object: the global range [*begin, *end) of
 * the step (all ranks together). */
void herd_sampler_global_range(size_t count, size_t step_in_epoch,
                               size_t global_batch, size_t *begin, size_t *end);

#ifdef __cplusplus
}
#endif
#endif
