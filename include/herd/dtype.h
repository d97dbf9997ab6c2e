/* Element types of tensors, shared by the collectives (comm.h) and the
 * checkpoints (ckpt.h), so neither header needs the other. */
#ifndef HERD_DTYPE_H
#define HERD_DTYPE_H

#include <stddef.h>

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

#ifdef __cplusplus
}
#endif
#endif
