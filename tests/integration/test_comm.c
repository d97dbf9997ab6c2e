/* herd_comm correctness on every rank of a real MPI job (run under mpirun
 * with 1..4 ranks by ctest). Each rank fills its buffer from a formula of
 * (rank, index), so every rank can compute the expected reduction itself:
 * a CPU reference that needs no communication.
 *
 * Values are small integers, exact in every dtype (f16 included), so the
 * comparison is exact. Failures are counted, never abort mid-way: all ranks
 * must keep issuing the same collectives in the same order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "herd/comm.h"

static int s_failures;
static int s_checks;

#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    s_checks++;                                                                \
    if (!(cond)) {                                                             \
      s_failures++;                                                            \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

static double s_value(int rank, size_t i) { return (double)((i * 7 + rank * 3) % 11) + rank; }

static void s_store(void *buf, herd_dtype_t dtype, size_t i, double v)
{
  switch (dtype) {
  case HERD_DTYPE_F32: ((float *)buf)[i] = (float)v; break;
  case HERD_DTYPE_F64: ((double *)buf)[i] = v; break;
  case HERD_DTYPE_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
  case HERD_DTYPE_I64: ((int64_t *)buf)[i] = (int64_t)v; break;
  case HERD_DTYPE_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
  case HERD_DTYPE_F16: ((uint16_t *)buf)[i] = herd_float_to_half((float)v); break;
  case HERD_DTYPE_BF16: ((uint16_t *)buf)[i] = herd_float_to_bf16((float)v); break;
  }
}

static double s_load(const void *buf, herd_dtype_t dtype, size_t i)
{
  switch (dtype) {
  case HERD_DTYPE_F32: return ((const float *)buf)[i];
  case HERD_DTYPE_F64: return ((const double *)buf)[i];
  case HERD_DTYPE_I32: return ((const int32_t *)buf)[i];
  case HERD_DTYPE_I64: return (double)((const int64_t *)buf)[i];
  case HERD_DTYPE_U8: return ((const uint8_t *)buf)[i];
  case HERD_DTYPE_F16: return herd_half_to_float(((const uint16_t *)buf)[i]);
  case HERD_DTYPE_BF16: return herd_bf16_to_float(((const uint16_t *)buf)[i]);
  }
  return 0;
}

static double s_expected(herd_op_t op, int world, size_t i, int integer)
{
  double acc = s_value(0, i);
  for (int r = 1; r < world; r++) {
    double v = s_value(r, i);
    acc = op == HERD_OP_MAX ? (v > acc ? v : acc)
          : op == HERD_OP_MIN ? (v < acc ? v : acc) : acc + v;
  }
  if (op == HERD_OP_AVG)
    acc = integer ? (double)((long long)acc / world) : acc / world;
  return acc;
}

static void s_check_case(herd_comm_t *comm, herd_dtype_t dtype, herd_op_t op,
                         size_t count, int in_place, int bucketed)
{
  int rank = herd_comm_rank(comm), world = herd_comm_world_size(comm);
  size_t elem = herd_dtype_size(dtype);
  char *send = malloc(count * elem + 1), *recv = malloc(count * elem + 1);
  for (size_t i = 0; i < count; i++)
    s_store(send, dtype, i, s_value(rank, i));
  herd_result_t rc;
  if (bucketed)
    rc = herd_comm_allreduce_buckets(comm, send, count, dtype, op);
  else
    rc = herd_comm_allreduce(comm, send, in_place ? send : recv, count, dtype, op);
  const char *out = in_place || bucketed ? send : recv;
  EXPECT(rc == HERD_OK, "allreduce dtype %d op %d count %zu: %s", dtype, op,
         count, herd_strerror(rc));
  int integer = dtype == HERD_DTYPE_I32 || dtype == HERD_DTYPE_I64 || dtype == HERD_DTYPE_U8;
  size_t wrong = 0;
  for (size_t i = 0; rc == HERD_OK && i < count; i++) {
    double want = s_expected(op, world, i, integer);
    if (dtype == HERD_DTYPE_F16 || dtype == HERD_DTYPE_BF16)
      want = s_load((uint16_t[]){dtype == HERD_DTYPE_F16 ? herd_float_to_half((float)want)
                                                         : herd_float_to_bf16((float)want)},
                    dtype, 0);
    else if (dtype == HERD_DTYPE_F32)
      want = (float)want;
    wrong += s_load(out, dtype, i) != want;
  }
  EXPECT(wrong == 0, "dtype %d op %d count %zu in_place %d bucketed %d: %zu wrong",
         dtype, op, count, in_place, bucketed, wrong);
  free(send);
  free(recv);
}

static void s_check_broadcast(herd_comm_t *comm)
{
  int world = herd_comm_world_size(comm);
  for (int root = 0; root < world; root++) {
    int64_t buf[1000];
    for (int i = 0; i < 1000; i++)
      buf[i] = herd_comm_rank(comm) == root ? i * 31 + root : -1;
    EXPECT(herd_comm_broadcast(comm, buf, 1000, HERD_DTYPE_I64, root) == HERD_OK, "bcast");
    int wrong = 0;
    for (int i = 0; i < 1000; i++)
      wrong += buf[i] != i * 31 + root;
    EXPECT(wrong == 0, "broadcast from %d: %d wrong", root, wrong);
  }
  EXPECT(herd_comm_barrier(comm) == HERD_OK, "barrier");
}

int main(int argc, char **argv)
{
  size_t large_count = argc > 1 ? strtoull(argv[1], NULL, 10) : (64u << 20) / 4;
  herd_comm_config_t config = HERD_COMM_CONFIG_INIT;
  config.first_bucket_bytes = 4096; /* many buckets even for small buffers */
  config.bucket_bytes = 1 << 20;
  herd_comm_t *comm = NULL;
  if (herd_comm_new(&config, &comm) != HERD_OK) {
    fprintf(stderr, "herd_comm_new: %s\n", herd_error_detail());
    return 1;
  }
  const size_t counts[] = {0, 1, 7, 1001, 300000};
  for (int dtype = HERD_DTYPE_F32; dtype <= HERD_DTYPE_U8; dtype++)
    for (int op = HERD_OP_SUM; op <= HERD_OP_MIN; op++)
      for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
        for (int mode = 0; mode < 3; mode++)
          s_check_case(comm, dtype, op, counts[c], mode == 1, mode == 2);
  s_check_case(comm, HERD_DTYPE_F32, HERD_OP_SUM, large_count, 0, 0);
  s_check_case(comm, HERD_DTYPE_F32, HERD_OP_SUM, large_count, 0, 1);
  s_check_broadcast(comm);

  herd_comm_abort(comm);
  float x = 1;
  EXPECT(herd_comm_allreduce(comm, &x, &x, 1, HERD_DTYPE_F32, HERD_OP_SUM) ==
             HERD_EABORTED, "allreduce after abort must fail");
  int rank = herd_comm_rank(comm);
  herd_comm_destroy(&comm);
  herd_comm_destroy(&comm); /* safe twice */
  herd_comm_global_shutdown();
  if (rank == 0 || s_failures)
    printf("rank %d: %d checks, %d failures\n", rank, s_checks, s_failures);
  return s_failures ? 1 : 0;
}
