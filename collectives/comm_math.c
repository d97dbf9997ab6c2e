/* Host-side element arithmetic shared by backends: half/bfloat16
 * conversions, elementwise reduce, and the divide that turns SUM into AVG.
 * Half precision is reduced in float and rounded back (round to nearest
 * even), the same as NCCL does for its own reductions.
 */
#include <math.h>
#include <string.h>

#include "comm_internal.h"

float herd_half_to_float(uint16_t half)
{
  uint32_t sign = (uint32_t)(half & 0x8000) << 16;
  uint32_t exponent = (half >> 10) & 0x1f;
  uint32_t mantissa = half & 0x3ff;
  float value;
  if (exponent == 0)
    value = ldexpf((float)mantissa, -24);
  else if (exponent == 31)
    value = mantissa ? NAN : INFINITY;
  else
    value = ldexpf((float)(mantissa | 0x400), (int)exponent - 25);
  uint32_t bits;
  memcpy(&bits, &value, 4);
  bits |= sign;
  memcpy(&value, &bits, 4);
  return value;
}

uint16_t herd_float_to_half(float value)
{
  uint32_t bits;
  memcpy(&bits, &value, 4);
  uint16_t sign = (bits >> 16) & 0x8000;
  float magnitude = fabsf(value);
  if (isnan(value))
    return sign | 0x7e00;
  if (magnitude >= 65520.0f) /* rounds to infinity */
    return sign | 0x7c00;
  if (magnitude < 6.103515625e-05f) { /* subnormal: multiples of 2^-24 */
    return sign | (uint16_t)nearbyintf(magnitude * 16777216.0f);
  }
  int exponent;
  float fraction = frexpf(magnitude, &exponent); /* [0.5, 1) */
  uint32_t mantissa = (uint32_t)nearbyintf(fraction * 2048.0f); /* 11 bits */
  if (mantissa == 2048) {
    mantissa = 1024;
    exponent++;
  }
  uint32_t biased = (uint32_t)(exponent - 1 + 15);
  if (biased >= 31)
    return sign | 0x7c00;
  return sign | (uint16_t)(biased << 10) | (uint16_t)(mantissa & 0x3ff);
}

/* Sums are taken in sum_type: the unsigned twin of a signed integer type,
 * so an overflow wraps as MPI's and Gloo's sums do instead of being
 * undefined (--deterministic's fixed-point sums of a diverging run do
 * overflow, and UBSan stops the process). */
#define HERD_REDUCE_LOOP(type, sum_type, dst, src, count, op)                  \
  do {                                                                         \
    type *d_ = (type *)(dst);                                                  \
    const type *s_ = (const type *)(src);                                      \
    for (size_t i_ = 0; i_ < (count); i_++) {                                  \
      if ((op) == HERD_OP_MAX)                                                 \
        d_[i_] = s_[i_] > d_[i_] ? s_[i_] : d_[i_];                            \
      else if ((op) == HERD_OP_MIN)                                            \
        d_[i_] = s_[i_] < d_[i_] ? s_[i_] : d_[i_];                            \
      else                                                                     \
        d_[i_] = (type)((sum_type)d_[i_] + (sum_type)s_[i_]);                  \
    }                                                                          \
  } while (0)

static float s_apply(float a, float b, herd_op_t op)
{
  if (op == HERD_OP_MAX)
    return b > a ? b : a;
  if (op == HERD_OP_MIN)
    return b < a ? b : a;
  return a + b;
}

/* One loop per format, each without a branch inside (op is the same for
 * every element, so the compiler unswitches it): the bfloat16 sum of
 * gradient buckets vectorises. */
static void s_reduce_16(uint16_t *dst, const uint16_t *src, size_t count,
                        herd_op_t op, int bf16)
{
  if (bf16) {
    for (size_t i = 0; i < count; i++)
      dst[i] = herd_float_to_bf16(s_apply(herd_bf16_to_float(dst[i]),
                                          herd_bf16_to_float(src[i]), op));
    return;
  }
  for (size_t i = 0; i < count; i++)
    dst[i] = herd_float_to_half(s_apply(herd_half_to_float(dst[i]),
                                        herd_half_to_float(src[i]), op));
}

void herd_reduce_into(void *dst, const void *src, size_t count,
                      herd_dtype_t dtype, herd_op_t op)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
    HERD_REDUCE_LOOP(float, float, dst, src, count, op);
    break;
  case HERD_DTYPE_F64:
    HERD_REDUCE_LOOP(double, double, dst, src, count, op);
    break;
  case HERD_DTYPE_I32:
    HERD_REDUCE_LOOP(int32_t, uint32_t, dst, src, count, op);
    break;
  case HERD_DTYPE_I64:
    HERD_REDUCE_LOOP(int64_t, uint64_t, dst, src, count, op);
    break;
  case HERD_DTYPE_U8:
    HERD_REDUCE_LOOP(uint8_t, uint8_t, dst, src, count, op);
    break;
  case HERD_DTYPE_F16:
  case HERD_DTYPE_BF16:
    s_reduce_16(dst, src, count, op, dtype == HERD_DTYPE_BF16);
    break;
  }
}

void herd_scale_down(void *buf, size_t count, herd_dtype_t dtype, int divisor)
{
  for (size_t i = 0; i < count; i++) {
    switch (dtype) {
    case HERD_DTYPE_F32:
      ((float *)buf)[i] /= (float)divisor;
      break;
    case HERD_DTYPE_F64:
      ((double *)buf)[i] /= divisor;
      break;
    case HERD_DTYPE_I32:
      ((int32_t *)buf)[i] /= divisor;
      break;
    case HERD_DTYPE_I64:
      ((int64_t *)buf)[i] /= divisor;
      break;
    case HERD_DTYPE_U8:
      ((uint8_t *)buf)[i] /= divisor;
      break;
    case HERD_DTYPE_F16: {
      uint16_t *h = buf;
      h[i] = herd_float_to_half(herd_half_to_float(h[i]) / (float)divisor);
      break;
    }
    case HERD_DTYPE_BF16: {
      uint16_t *h = buf;
      h[i] = herd_float_to_bf16(herd_bf16_to_float(h[i]) / (float)divisor);
      break;
    }
    }
  }
}
