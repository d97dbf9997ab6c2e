/* Matrix products whose every element comes out bit-for-bit the same on any
 * x86-64, whatever the matrix sizes (--deterministic, train_determ.c).
 *
 * BLAS libraries pick kernels, blockings and K-splits by matrix shape and
 * CPU, so one element's rounding depends on how many rows were computed
 * with it. Here each element is one chain of fused multiply-adds in
 * ascending k:
 *   acc = init[r] (or +0);  for k = 0..K-1: acc = fma(A[r][k], B[k][n], acc)
 * The AVX-512 and AVX2 paths vectorise across n only, and the portable path
 * calls fmaf(), so all three give the same bits; which elements are
 * computed together never changes a value.
 *
 * A fixed-point target turns each result into int64 on the fly instead of
 * storing it (train_determ.c has the format):
 *   fixed[r][n] += round-half-even((double)acc * scale), scale a power of 2
 * (or = with .assign, which saves clearing the sums first). With .pieces,
 * K is cut into pieces (virtual shards: their samples), each piece gets
 * its own chain (from init, or +0) and rounding, and the integers are summed, in
 * registers where the CPU allows: one pass instead of one per piece.
 */
#ifndef HERD_WORKER_DET_GEMM_H
#define HERD_WORKER_DET_GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct herd_det_gemm {
  int rows, cols, depth;  /* M, N, K */
  const float *a;         /* A[r][k] = a[r * a_row + k * a_depth] */
  size_t a_row, a_depth;
  const float *b;         /* B[k][n] = b[k * b_depth + n] */
  size_t b_depth;
  const float *init;      /* rows start values, or NULL for zeros */
  float *c;               /* C[r][n] = c[r * c_row + n] ... */
  size_t c_row;
  int64_t *fixed;         /* ... or, when set, fixed[r * fixed_row + n] += */
  size_t fixed_row;
  double scale;           /* a power of two in [2^-126, 2^127] */
  int assign;             /* fixed[...] = instead of += */
  const int *pieces;      /* with fixed: K cut at pieces[0] = 0 <= ... <=  */
  int n_pieces;           /* pieces[n_pieces] = depth, each piece's chain
                           * rounded on its own and the integers summed */
} herd_det_gemm_t;

/* Fixed-point values must stay below this in magnitude (so that a sum of
 * 4096 of them fits in int64). */
#define HERD_DET_FIXED_LIMIT ((int64_t)1 << 50)

/* Computes the product described by g. Returns 0 when a fixed-point value
 * reached HERD_DET_FIXED_LIMIT or was not a number (the sums are then
 * garbage), 1 otherwise. */
int herd_det_gemm(const herd_det_gemm_t *g);

/* out[i] = (float)((double)in[i] * scale) for i < n, |in[i]| < 2^62:
 * fixed-point sums back to floats, the same bits on every path. */
void herd_det_from_fixed(const int64_t *in, float *out, size_t n, double scale);

/* Which path herd_det_gemm takes on this CPU: "avx512", "avx2" or
 * "portable". */
const char *herd_det_gemm_path(void);

#ifdef __cplusplus
}
#endif
#endif
