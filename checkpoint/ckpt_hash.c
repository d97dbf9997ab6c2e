/* Checksums of a checkpoint: herd-fnv4x64, a 4-lane word-wise variant of
 * FNV-1a 64 (exact definition in FORMAT.md, "Checksums").
 *
 * Used twice: the content checksum (a canonical byte stream of metadata and
 * every tensor, stored as an attribute) and the whole-file seal (every byte
 * of the file after the user block, stored in the user block, ckpt_seal.c).
 * Format version 1 hashed one byte per multiply (~1 GB/s, slower than the
 * disk). Version 2 takes 8 bytes per multiply in four independent lanes, so
 * the multiplies overlap and the hash runs near memory speed. Each lane step
 * `lane = rotl((lane ^ word) * prime, 29)` is a bijection of the lane for a
 * fixed word and injective in the word, so any change confined to one word
 * always changes the result; the rotation spreads high bits downwards.
 */
#include "ckpt_internal.h"

#include <string.h>

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

static inline uint64_t s_rotl(uint64_t x, int r)
{
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t s_load_le(const unsigned char *p)
{
  uint64_t w;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(&w, p, 8);
#else
  w = 0;
  for (int i = 7; i >= 0; i--)
    w = (w << 8) | p[i];
#endif
  return w;
}

static inline void s_block(uint64_t lanes[4], const unsigned char *p)
{
  for (int j = 0; j < 4; j++)
    lanes[j] = s_rotl((lanes[j] ^ s_load_le(p + 8 * j)) * FNV64_PRIME, 29);
}

void ckpt_hash_init(ckpt_hash_t *hash)
{
  memset(hash, 0, sizeof *hash);
  for (int j = 0; j < 4; j++)
    hash->lanes[j] = FNV64_OFFSET + (uint64_t)j;
}

void ckpt_hash_bytes(ckpt_hash_t *hash, const void *data, size_t len)
{
  const unsigned char *p = data;
  hash->total += len;
  if (hash->buf_len > 0) {
    size_t take = CKPT_HASH_BLOCK - hash->buf_len;
    take = take < len ? take : len;
    memcpy(hash->buf + hash->buf_len, p, take);
    hash->buf_len += take;
    p += take;
    len -= take;
    if (hash->buf_len < CKPT_HASH_BLOCK)
      return;
    s_block(hash->lanes, hash->buf);
    hash->buf_len = 0;
  }
  uint64_t lanes[4] = {hash->lanes[0], hash->lanes[1], hash->lanes[2],
                       hash->lanes[3]};
  for (; len >= CKPT_HASH_BLOCK; p += CKPT_HASH_BLOCK, len -= CKPT_HASH_BLOCK)
    s_block(lanes, p);
  memcpy(hash->lanes, lanes, sizeof lanes);
  memcpy(hash->buf, p, len);
  hash->buf_len = len;
}

uint64_t ckpt_hash_final(const ckpt_hash_t *hash)
{
  uint64_t lanes[4];
  memcpy(lanes, hash->lanes, sizeof lanes);
  if (hash->buf_len > 0) {
    unsigned char tail[CKPT_HASH_BLOCK] = {0};
    memcpy(tail, hash->buf, hash->buf_len);
    s_block(lanes, tail);
  }
  uint64_t h = FNV64_OFFSET;
  for (int j = 0; j < 4; j++)
    h = s_rotl((h ^ lanes[j]) * FNV64_PRIME, 29);
  h = (h ^ hash->total) * FNV64_PRIME;
  return h ^ (h >> 32);
}

/* Integers enter the stream little-endian, whatever the host. */
static void s_le(ckpt_hash_t *hash, uint64_t value, size_t width)
{
  unsigned char bytes[8];
  for (size_t i = 0; i < width; i++)
    bytes[i] = (unsigned char)(value >> (8 * i));
  ckpt_hash_bytes(hash, bytes, width);
}

static void s_string(ckpt_hash_t *hash, const char *text)
{
  size_t len = strlen(text);
  s_le(hash, len, 8);
  ckpt_hash_bytes(hash, text, len);
}

void ckpt_hash_meta(ckpt_hash_t *hash, const herd_ckpt_meta_t *meta,
                    size_t tensor_count)
{
  uint64_t time_bits;
  memcpy(&time_bits, &meta->unix_time, sizeof time_bits);
  s_le(hash, (uint32_t)HERD_CKPT_FORMAT_VERSION, 4);
  s_le(hash, (uint64_t)meta->step, 8);
  s_le(hash, (uint64_t)meta->epoch, 8);
  s_le(hash, (uint64_t)meta->step_in_epoch, 8);
  for (int i = 0; i < 4; i++)
    s_le(hash, meta->rng_state[i], 8);
  s_le(hash, (uint32_t)meta->world_size, 4);
  s_le(hash, (uint32_t)meta->virtual_shards, 4);
  s_le(hash, time_bits, 8);
  s_string(hash, meta->config_json);
  s_string(hash, meta->lr_schedule_json);
  s_le(hash, tensor_count, 4);
}

void ckpt_hash_tensor_head(ckpt_hash_t *hash, const char *name,
                           herd_dtype_t dtype, size_t count)
{
  const char *dtype_name = ckpt_dtype_name(dtype);
  s_string(hash, name);
  s_string(hash, dtype_name ? dtype_name : "");
  s_le(hash, count, 8);
}

void ckpt_hash_elems(ckpt_hash_t *hash, const void *data, size_t count,
                     size_t elem_size)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  ckpt_hash_bytes(hash, data, count * elem_size);
#else
  const unsigned char *p = data;
  for (size_t i = 0; i < count; i++, p += elem_size)
    for (size_t b = elem_size; b-- > 0;)
      ckpt_hash_bytes(hash, p + b, 1);
#endif
}

/* HDF5's loop adds one big-endian 16-bit word w at a time (sum1 += w;
 * sum2 += sum1) in uint32, folding both sums (x & 0xffff) + (x >> 16) after
 * every 360 words. Within a block of n words that is
 *   sum1 += S = sum(w_i),  sum2 += n * sum1_before + T,  T = sum((n - i) w_i)
 * exactly modulo 2^32 (S, T < 2^32 for n <= 360), so computing S and T with
 * independent (vectorizable) accumulators gives the identical result. */
uint32_t ckpt_fletcher32(const void *data, size_t len)
{
  const unsigned char *p = data;
  size_t words = len / 2;
  uint32_t sum1 = 0, sum2 = 0;
  while (words) {
    uint32_t n = words > 360 ? 360 : (uint32_t)words;
    uint32_t s = 0, t = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t w = ((uint32_t)p[2 * i] << 8) | p[2 * i + 1];
      s += w;
      t += (n - i) * w;
    }
    sum2 += n * sum1 + t;
    sum1 += s;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    p += 2 * (size_t)n;
    words -= n;
  }
  if (len % 2) {
    sum1 += (uint32_t)*p << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return (sum2 << 16) | sum1;
}
