/* herd_dtype_size and the bfloat16 conversions (include/herd/dtype.h). */
#include "herd/dtype.h"

size_t herd_dtype_size(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
  case HERD_DTYPE_I32:
    return 4;
  case HERD_DTYPE_F64:
  case HERD_DTYPE_I64:
    return 8;
  case HERD_DTYPE_F16:
  case HERD_DTYPE_BF16:
    return 2;
  case HERD_DTYPE_U8:
    return 1;
  }
  return 0;
}

void herd_floats_to_bf16(const float *restrict in, uint16_t *restrict out,
                         size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = herd_float_to_bf16(in[i]);
}

void herd_bf16_to_floats(const uint16_t *restrict in, float *restrict out,
                         size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = herd_bf16_to_float(in[i]);
}
