/* Content checksum of a checkpoint: FNV-1a 64 over a canonical byte stream
 * of the metadata and every tensor (exact layout in FORMAT.md).
 *
 * Fletcher32 already guards each chunk; this sum covers what Fletcher32
 * cannot: a chunk swapped or lost as a whole, attributes, and the pairing of
 * names with data. The stream is defined in little-endian so the value does
 * not depend on the host that wrote or reads the file. FNV-1a was chosen
 * because it is tiny, has no dependency and its definition fits in a line.
 */
#include "ckpt_internal.h"

#include <string.h>

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

void ckpt_hash_init(ckpt_hash_t *hash) { hash->state = FNV64_OFFSET; }

static void s_bytes(ckpt_hash_t *hash, const void *data, size_t len)
{
  const unsigned char *p = data;
  uint64_t h = hash->state;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= FNV64_PRIME;
  }
  hash->state = h;
}

/* Integers enter the stream little-endian, whatever the host. */
static void s_le(ckpt_hash_t *hash, uint64_t value, size_t width)
{
  unsigned char bytes[8];
  for (size_t i = 0; i < width; i++)
    bytes[i] = (unsigned char)(value >> (8 * i));
  s_bytes(hash, bytes, width);
}

static void s_string(ckpt_hash_t *hash, const char *text)
{
  size_t len = strlen(text);
  s_le(hash, len, 8);
  s_bytes(hash, text, len);
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
  s_le(hash, time_bits, 8);
  s_string(hash, meta->config_json);
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
  s_bytes(hash, data, count * elem_size);
#else
  const unsigned char *p = data;
  for (size_t i = 0; i < count; i++, p += elem_size)
    for (size_t b = elem_size; b-- > 0;)
      s_bytes(hash, p + b, 1);
#endif
}
