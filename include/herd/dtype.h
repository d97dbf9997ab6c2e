/* Element types of tensors, shared by the collectives (comm.h) and the
 * checkpoints (ckpt.h), so neither header needs the other. */
#ifndef HERD_DTYPE_H
#define HERD_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HERD_DTYPE_F32 = 0,
  HERD_DTYPE_F64,
  HERD_DTYPE_F16,
  HERD_DTYPE_BF16,
  HERD_DTYPE_I32,
  HERD_DTYPE_I64,
  HERD_DTYPE_U8
} herd_dtype_t;

/* Bytes of one element of `dtype`; 0 for a value outside the enum. */
size_t herd_dtype_size(herd_dtype_t dtype);

/* bfloat16 (the top 16 bits of a float): float -> bf16 rounds to nearest
 * even and keeps NaN a NaN; bf16 -> float is exact. Inline and branch-free,
 * so that the loops over gradients that use them vectorise. */
static inline float herd_bf16_to_float(uint16_t value)
{
  uint32_t bits = (uint32_t)value << 16;
  float result;
  memcpy(&result, &bits, sizeof result);
  return result;
}

static inline uint16_t herd_float_to_bf16(float value)
{
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  /* A NaN stays a NaN (rounding could carry it into infinity). */
  uint32_t nan = (bits & 0x7fffffffu) > 0x7f800000u;
  uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u); /* nearest even */
  return (uint16_t)(nan ? (bits >> 16) | 0x40u : rounded >> 16);
}
/* The same over n elements (one vectorisable pass each). */
void herd_floats_to_bf16(const float *in, uint16_t *out, size_t n);
void herd_bf16_to_floats(const uint16_t *in, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
