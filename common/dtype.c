/* herd_dtype_size (include/herd/dtype.h). */
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
