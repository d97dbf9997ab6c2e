/* Shape-independent matrix products (see det_gemm.h).
 *
 * Three paths, chosen from the CPU (HERD_DET_GEMM=portable or avx2 picks a
 * narrower one, for tests): AVX-512 (F + DQ) tiles of 8 x 32 or 4 x 64
 * with masked column tails, AVX2+FMA tiles of 4 x 16 with scalar tails, and
 * a portable scalar loop. Every element is the same fma chain in
 * all of them; only how many elements run side by side differs.
 */
#include "herd/settings.h"
#include "det_gemm.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_MAGIC 6755399441055744.0 /* 1.5 * 2^52: rounds to an integer */
#define S_RANGE_SHIFT 51           /* (q + limit) >> 51 != 0: |q| >= 2^50 */

static int64_t s_magic_bits(void)
{
  const double magic = S_MAGIC;
  int64_t bits;
  memcpy(&bits, &magic, sizeof(bits));
  return bits;
}

/* --- the element every path computes, and its scalar output ------------ */

static inline float s_element(const herd_det_gemm_t *g, int r, int n)
{
  float acc = g->init ? g->init[r] : 0.0f;
  const float *a = g->a + (size_t)r * g->a_row, *b = g->b + n;
  for (int k = 0; k < g->depth; k++)
    acc = fmaf(a[(size_t)k * g->a_depth], b[(size_t)k * g->b_depth], acc);
  return acc;
}

/* Stores acc, or adds it in fixed point; returns nonzero when out of range
 * (the double arithmetic is exact up to the final rounding, which adding
 * the magic number does round-half-even, as llrint would). */
static inline uint64_t s_put(const herd_det_gemm_t *g, int r, int n, float acc)
{
  if (!g->fixed) {
    g->c[(size_t)r * g->c_row + n] = acc;
    return 0;
  }
  double v = (double)acc * g->scale + S_MAGIC;
  int64_t bits;
  memcpy(&bits, &v, sizeof(bits));
  int64_t q = bits - s_magic_bits();
  int64_t *out = &g->fixed[(size_t)r * g->fixed_row + n];
  *out = g->assign ? q : *out + q;
  return (uint64_t)(q + HERD_DET_FIXED_LIMIT) >> S_RANGE_SHIFT;
}

static int s_portable(const herd_det_gemm_t *g)
{
  uint64_t bad = 0;
  for (int r = 0; r < g->rows; r++)
    for (int n = 0; n < g->cols; n++)
      bad |= s_put(g, r, n, s_element(g, r, n));
  return bad == 0;
}

/* --- AVX2 + FMA --------------------------------------------------------- */

#define S_AVX2_ROWS 4
#define S_AVX2_COLS 16

__attribute__((target("avx2,fma"))) static inline __m256i
s_put8_avx2(const herd_det_gemm_t *g, int r, int n, __m256 acc)
{
  if (!g->fixed) {
    _mm256_storeu_ps(g->c + (size_t)r * g->c_row + n, acc);
    return _mm256_setzero_si256();
  }
  const __m256d scale = _mm256_set1_pd(g->scale), magic = _mm256_set1_pd(S_MAGIC);
  const __m256i magic_bits = _mm256_set1_epi64x(s_magic_bits());
  const __m256i limit = _mm256_set1_epi64x(HERD_DET_FIXED_LIMIT);
  __m256i bad = _mm256_setzero_si256();
  int64_t *out = g->fixed + (size_t)r * g->fixed_row + n;
  __m128 halves[2] = {_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)};
  for (int h = 0; h < 2; h++) {
    __m256d v = _mm256_add_pd(_mm256_mul_pd(_mm256_cvtps_pd(halves[h]), scale), magic);
    __m256i q = _mm256_sub_epi64(_mm256_castpd_si256(v), magic_bits);
    __m256i *slot = (__m256i *)(out + 4 * h);
    _mm256_storeu_si256(slot, g->assign ? q : _mm256_add_epi64(_mm256_loadu_si256(slot), q));
    bad = _mm256_or_si256(bad, _mm256_srli_epi64(_mm256_add_epi64(q, limit),
                                                 S_RANGE_SHIFT));
  }
  return bad;
}

__attribute__((target("avx2,fma"), always_inline)) static inline __m256i
s_tile_avx2(const herd_det_gemm_t *g, int r0, const int rows, int n0)
{
  /* Locals, so that the stores below cannot make the compiler reload g
   * inside the loop; fully unrolled row loops (all three) keep acc in
   * registers instead of a stack array written every k. */
  const float *restrict a = g->a + (size_t)r0 * g->a_row;
  const float *restrict b = g->b + n0;
  const size_t a_row = g->a_row, a_depth = g->a_depth, b_depth = g->b_depth;
  const int depth = g->depth;
  __m256 acc[S_AVX2_ROWS][2];
#pragma GCC unroll 4
  for (int r = 0; r < rows; r++)
    acc[r][0] = acc[r][1] = _mm256_set1_ps(g->init ? g->init[r0 + r] : 0.0f);
  for (int k = 0; k < depth; k++) {
    const float *bk = b + (size_t)k * b_depth, *ak = a + (size_t)k * a_depth;
    __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8);
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++) {
      __m256 av = _mm256_broadcast_ss(ak + (size_t)r * a_row);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  __m256i bad = _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int r = 0; r < rows; r++) {
    bad = _mm256_or_si256(bad, s_put8_avx2(g, r0 + r, n0, acc[r][0]));
    bad = _mm256_or_si256(bad, s_put8_avx2(g, r0 + r, n0 + 8, acc[r][1]));
  }
  return bad;
}

__attribute__((target("avx2,fma"))) static int s_avx2(const herd_det_gemm_t *g)
{
  __m256i bad = _mm256_setzero_si256();
  int full = g->cols - g->cols % S_AVX2_COLS;
  for (int r0 = 0; r0 < g->rows; r0 += S_AVX2_ROWS) {
    int rows = g->rows - r0 < S_AVX2_ROWS ? g->rows - r0 : S_AVX2_ROWS;
    for (int n0 = 0; n0 < full; n0 += S_AVX2_COLS) {
      /* Constant row counts let the compiler keep the tile in registers. */
      switch (rows) {
      case 4: bad = _mm256_or_si256(bad, s_tile_avx2(g, r0, 4, n0)); break;
      case 3: bad = _mm256_or_si256(bad, s_tile_avx2(g, r0, 3, n0)); break;
      case 2: bad = _mm256_or_si256(bad, s_tile_avx2(g, r0, 2, n0)); break;
      default: bad = _mm256_or_si256(bad, s_tile_avx2(g, r0, 1, n0)); break;
      }
    }
  }
  uint64_t tail = 0;
  for (int r = 0; r < g->rows; r++)
    for (int n = full; n < g->cols; n++)
      tail |= s_put(g, r, n, s_element(g, r, n));
  return _mm256_testz_si256(bad, bad) && tail == 0;
}

/* --- AVX-512 ------------------------------------------------------------ */

/* Tiles of up to 8 rows x 2 vectors (narrow products, e.g. a shard's
 * weight gradient) or 4 rows x 4 vectors (64 columns: one pass over A for
 * a whole local batch). Either way at most 16 accumulators. */
#define S_512_MAX_ROWS 8
#define S_512_MAX_VECS 4

/* Float results only: fixed-point targets take s_pieces_avx512. */
__attribute__((target("avx512f,avx512dq"), always_inline)) static inline void
s_tile_512(const herd_det_gemm_t *g, int r0, const int rows, const int vecs,
           int n0, const __mmask16 *mask)
{
  const float *restrict a = g->a + (size_t)r0 * g->a_row;
  const float *restrict b = g->b + n0;
  const size_t a_row = g->a_row, a_depth = g->a_depth, b_depth = g->b_depth;
  const int depth = g->depth;
  __m512 acc[S_512_MAX_ROWS][S_512_MAX_VECS], bv[S_512_MAX_VECS];
#pragma GCC unroll 8
  for (int r = 0; r < rows; r++)
#pragma GCC unroll 4
    for (int v = 0; v < vecs; v++)
      acc[r][v] = _mm512_set1_ps(g->init ? g->init[r0 + r] : 0.0f);
  for (int k = 0; k < depth; k++) {
    const float *bk = b + (size_t)k * b_depth, *ak = a + (size_t)k * a_depth;
#pragma GCC unroll 4
    for (int v = 0; v < vecs; v++)
      bv[v] = _mm512_maskz_loadu_ps(mask[v], bk + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) {
      __m512 av = _mm512_set1_ps(ak[(size_t)r * a_row]);
#pragma GCC unroll 4
      for (int v = 0; v < vecs; v++)
        acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < rows; r++)
#pragma GCC unroll 4
    for (int v = 0; v < vecs; v++)
      _mm512_mask_storeu_ps(g->c + (size_t)(r0 + r) * g->c_row + n0 + 16 * v,
                            mask[v], acc[r][v]);
}

static __mmask16 s_mask16(int left)
{
  return left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}

/* One row block with a constant tile shape, so acc stays in registers. */
#define S_512_ROW_BLOCK(ROWS, VECS)                                            \
  __attribute__((target("avx512f,avx512dq"))) static void                      \
      s_rows_512_##ROWS##x##VECS(const herd_det_gemm_t *g, int r0)             \
  {                                                                            \
    __mmask16 mask[S_512_MAX_VECS];                                            \
    for (int n0 = 0; n0 < g->cols; n0 += 16 * (VECS)) {                        \
      for (int v = 0; v < (VECS); v++)                                         \
        mask[v] = s_mask16(g->cols - n0 - 16 * v);                             \
      s_tile_512(g, r0, ROWS, VECS, n0, mask);                                 \
    }                                                                          \
  }
S_512_ROW_BLOCK(8, 2)
S_512_ROW_BLOCK(7, 2)
S_512_ROW_BLOCK(6, 2)
S_512_ROW_BLOCK(5, 2)
S_512_ROW_BLOCK(4, 2)
S_512_ROW_BLOCK(3, 2)
S_512_ROW_BLOCK(2, 2)
S_512_ROW_BLOCK(1, 2)
S_512_ROW_BLOCK(4, 4)
S_512_ROW_BLOCK(3, 4)
S_512_ROW_BLOCK(2, 4)
S_512_ROW_BLOCK(1, 4)

__attribute__((target("avx512f,avx512dq"))) static int s_avx512(const herd_det_gemm_t *g)
{
  typedef void (*block_fn)(const herd_det_gemm_t *, int);
  static const block_fn narrow[] = {s_rows_512_1x2, s_rows_512_2x2, s_rows_512_3x2,
                                    s_rows_512_4x2, s_rows_512_5x2, s_rows_512_6x2,
                                    s_rows_512_7x2, s_rows_512_8x2};
  static const block_fn wide[] = {s_rows_512_1x4, s_rows_512_2x4, s_rows_512_3x4,
                                  s_rows_512_4x4};
  int is_wide = g->cols > 32, height = is_wide ? 4 : 8;
  for (int r0 = 0; r0 < g->rows; r0 += height) {
    int rows = g->rows - r0 < height ? g->rows - r0 : height;
    if (is_wide)
      wide[rows - 1](g, r0);
    else
      narrow[rows - 1](g, r0);
  }
  return 1;
}

/* Every fixed-point target on AVX-512 (a plain one is one piece): tiles of
 * 4 rows x 32 columns, 8 float accumulators for the current piece and 16
 * int64 ones for the sum of the rounded pieces, stored once at the end.
 * acc * 2^e in float is exact (scale is a power of two within float range,
 * results stay below 2^50; one below 2^-126 rounds to 0 either way) and
 * vcvtps2qq rounds half to even, so each piece equals s_put's rounding.
 * Returns the lanes where |acc * scale| reached the limit (NaN included). */
__attribute__((target("avx512f,avx512dq"), always_inline)) static inline __mmask16
s_pieces_tile_512(const herd_det_gemm_t *g, const int *pieces, int n_pieces,
                  int r0, const int rows, int n0, __mmask16 m0, __mmask16 m1)
{
  const float *restrict a = g->a + (size_t)r0 * g->a_row;
  const float *restrict b = g->b + n0;
  const size_t a_row = g->a_row, a_depth = g->a_depth, b_depth = g->b_depth;
  const __m512 scale = _mm512_set1_ps((float)g->scale);
  const __m512 limit = _mm512_set1_ps((float)HERD_DET_FIXED_LIMIT);
  const __mmask16 mask[2] = {m0, m1};
  __m512i sum[4][2][2];
  __mmask16 bad = 0;
#pragma GCC unroll 4
  for (int r = 0; r < rows; r++)
    for (int v = 0; v < 2; v++)
      sum[r][v][0] = sum[r][v][1] = _mm512_setzero_si512();
  for (int p = 0; p < n_pieces; p++) {
    __m512 acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++)
      acc[r][0] = acc[r][1] = _mm512_set1_ps(g->init ? g->init[r0 + r] : 0.0f);
    for (int k = pieces[p]; k < pieces[p + 1]; k++) {
      const float *bk = b + (size_t)k * b_depth, *ak = a + (size_t)k * a_depth;
      __m512 b0 = _mm512_maskz_loadu_ps(m0, bk), b1 = _mm512_maskz_loadu_ps(m1, bk + 16);
#pragma GCC unroll 4
      for (int r = 0; r < rows; r++) {
        __m512 av = _mm512_set1_ps(ak[(size_t)r * a_row]);
        acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 2
      for (int v = 0; v < 2; v++) {
        __m512 x = _mm512_mul_ps(acc[r][v], scale);
        bad |= _mm512_mask_cmp_ps_mask(mask[v], _mm512_abs_ps(x), limit, _CMP_NLT_UQ);
        sum[r][v][0] = _mm512_add_epi64(sum[r][v][0],
                                        _mm512_cvtps_epi64(_mm512_castps512_ps256(x)));
        sum[r][v][1] = _mm512_add_epi64(sum[r][v][1],
                                        _mm512_cvtps_epi64(_mm512_extractf32x8_ps(x, 1)));
      }
  }
#pragma GCC unroll 4
  for (int r = 0; r < rows; r++)
#pragma GCC unroll 2
    for (int v = 0; v < 2; v++)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) {
        __mmask8 m = (__mmask8)(mask[v] >> (8 * h));
        int64_t *out = g->fixed + (size_t)(r0 + r) * g->fixed_row + n0 + 16 * v + 8 * h;
        __m512i q = sum[r][v][h];
        if (!g->assign)
          q = _mm512_add_epi64(_mm512_maskz_loadu_epi64(m, out), q);
        _mm512_mask_storeu_epi64(out, m, q);
      }
  return bad;
}

#define S_512_PIECES_BLOCK(ROWS)                                               \
  __attribute__((target("avx512f,avx512dq"))) static __mmask16                 \
      s_pieces_512_##ROWS(const herd_det_gemm_t *g, const int *pieces,         \
                          int n_pieces, int r0)                                \
  {                                                                            \
    __mmask16 bad = 0;                                                         \
    for (int n0 = 0; n0 < g->cols; n0 += 32)                                   \
      bad |= s_pieces_tile_512(g, pieces, n_pieces, r0, ROWS, n0,              \
                               s_mask16(g->cols - n0),                         \
                               s_mask16(g->cols - n0 - 16));                   \
    return bad;                                                                \
  }
S_512_PIECES_BLOCK(4)
S_512_PIECES_BLOCK(3)
S_512_PIECES_BLOCK(2)
S_512_PIECES_BLOCK(1)

__attribute__((target("avx512f,avx512dq"))) static int
s_pieces_avx512(const herd_det_gemm_t *g)
{
  typedef __mmask16 (*block_fn)(const herd_det_gemm_t *, const int *, int, int);
  static const block_fn blocks[] = {s_pieces_512_1, s_pieces_512_2,
                                    s_pieces_512_3, s_pieces_512_4};
  const int whole[2] = {0, g->depth};
  const int *pieces = g->pieces ? g->pieces : whole;
  int n_pieces = g->pieces ? g->n_pieces : 1;
  __mmask16 bad = 0;
  for (int r0 = 0; r0 < g->rows; r0 += 4)
    bad |= blocks[(g->rows - r0 < 4 ? g->rows - r0 : 4) - 1](g, pieces, n_pieces, r0);
  return bad == 0;
}

/* --- back from fixed point ---------------------------------------------- */

/* out[i] = (float)((double)in[i] * scale). int64 -> double rounds to
 * nearest even (|in| < 2^62) in both paths, the product and the final
 * narrowing round the same way too, so the bits match the scalar loop. */
__attribute__((target("avx512f,avx512dq"))) static void
s_from_fixed_512(const int64_t *in, float *out, size_t n, double scale)
{
  const __m512d s = _mm512_set1_pd(scale);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m512d v = _mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_loadu_si512(in + i)), s);
    _mm256_storeu_ps(out + i, _mm512_cvtpd_ps(v));
  }
  for (; i < n; i++)
    out[i] = (float)((double)in[i] * scale);
}

static void s_from_fixed_portable(const int64_t *in, float *out, size_t n,
                                  double scale)
{
  for (size_t i = 0; i < n; i++)
    out[i] = (float)((double)in[i] * scale);
}

/* --- dispatch ----------------------------------------------------------- */

typedef int (*s_path_fn)(const herd_det_gemm_t *);

static s_path_fn s_path;
static const char *s_path_name;

static void s_choose(void)
{
  const char *forced = herd_setting_string(HERD_S_DET_GEMM);
  __builtin_cpu_init();
  int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (forced && strcmp(forced, "portable") == 0)
    avx512 = avx2 = 0;
  else if (forced && strcmp(forced, "avx2") == 0)
    avx512 = 0;
  if (avx512) {
    s_path = s_avx512;
    s_path_name = "avx512";
  } else if (avx2) {
    s_path = s_avx2;
    s_path_name = "avx2";
  } else {
    s_path = s_portable;
    s_path_name = "portable";
  }
}

/* The other paths: one product per piece, the first storing or adding as
 * asked, the others adding. Integer sums are exact, so this equals the
 * AVX-512 version's in-register sum. */
static int s_pieces_each(const herd_det_gemm_t *g)
{
  int ok = 1;
  for (int p = 0; p < g->n_pieces; p++) {
    herd_det_gemm_t piece = *g;
    piece.pieces = NULL;
    piece.n_pieces = 0;
    piece.depth = g->pieces[p + 1] - g->pieces[p];
    piece.a = g->a + (size_t)g->pieces[p] * g->a_depth;
    piece.b = g->b + (size_t)g->pieces[p] * g->b_depth;
    piece.assign = g->assign && p == 0;
    ok &= s_path(&piece);
  }
  return ok;
}

/* One product on the chosen path; on AVX-512 every fixed-point target goes
 * through the pieces kernel (a plain one is a single piece). */
static int s_dispatch(const herd_det_gemm_t *g)
{
  if (g->fixed && s_path == s_avx512)
    return s_pieces_avx512(g);
  if (g->fixed && g->pieces)
    return s_pieces_each(g);
  return s_path(g);
}

/* Rows of A packed at a time when A is read down its columns. */
#define S_PANEL_ROWS 64

/* A read down its columns (a_depth > a_row, e.g. W^T) would touch a new
 * page for every k of every tile; a panel of S_PANEL_ROWS rows packed
 * k-major turns that into one contiguous read per k. Packing moves values
 * only, so every element's fma chain stays the same. */
static int s_packed(const herd_det_gemm_t *g)
{
  float *panel = malloc((size_t)g->depth * S_PANEL_ROWS * sizeof(float));
  if (!panel)
    return s_dispatch(g); /* slower, same bits */
  int ok = 1;
  for (int r0 = 0; r0 < g->rows; r0 += S_PANEL_ROWS) {
    int rows = g->rows - r0 < S_PANEL_ROWS ? g->rows - r0 : S_PANEL_ROWS;
    const float *a = g->a + (size_t)r0 * g->a_row;
    for (int k = 0; k < g->depth; k++)
      for (int r = 0; r < rows; r++)
        panel[(size_t)k * S_PANEL_ROWS + r] = a[(size_t)r * g->a_row + (size_t)k * g->a_depth];
    herd_det_gemm_t part = *g;
    part.rows = rows;
    part.a = panel;
    part.a_row = 1;
    part.a_depth = S_PANEL_ROWS;
    part.init = g->init ? g->init + r0 : NULL;
    part.c = g->c ? g->c + (size_t)r0 * g->c_row : NULL;
    part.fixed = g->fixed ? g->fixed + (size_t)r0 * g->fixed_row : NULL;
    ok &= s_dispatch(&part);
  }
  free(panel);
  return ok;
}

int herd_det_gemm(const herd_det_gemm_t *g)
{
  if (g->rows <= 0 || g->cols <= 0)
    return 1;
  /* Chosen on every call (a getenv and two cached CPUID bits, next to
   * thousands of multiply-adds) so that tests can switch paths. */
  s_choose();
  if (g->a_depth > g->a_row && g->a_depth > S_PANEL_ROWS && g->depth > 1)
    return s_packed(g);
  return s_dispatch(g);
}

void herd_det_from_fixed(const int64_t *in, float *out, size_t n, double scale)
{
  s_choose();
  if (s_path == s_avx512)
    s_from_fixed_512(in, out, n, scale);
  else
    s_from_fixed_portable(in, out, n, scale);
}

const char *herd_det_gemm_path(void)
{
  s_choose();
  return s_path_name;
}
