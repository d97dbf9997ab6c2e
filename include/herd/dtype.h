/* Element types of tensors, shared by the collectives (comm.h) and the
 * checkpoints (ckpt.h), so neither header needs the other. */
#ifndef HERD_DTYPE_H
#define HERD_DTYPE_H

#include <stddef.h>
#include <stdint.h>

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
 * even and keeps NaN a NaN; bf16 -> float is exact. */
float herd_bf16_to_float(uint16_t value);
uint16_t herd_float_to_bf16(float value);
/* The same over n elements (one vectorisable pass each). */
void herd_floats_to_bf16(const float *in, uint16_t *out, size_t n);
void herd_bf16_to_floats(const uint16_t *in, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
