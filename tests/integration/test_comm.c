/* herd_comm correctness on every rank of a real job, for one backend:
 *   test_comm mpi [large_count]            under mpirun -np 1..4
 *   test_comm gloo -n N [large_count]      forks N ranks itself; they meet
 *                                          through a file store (tests only)
 * Each rank fills its buffer from a formula of (rank, index), so every rank
 * can compute the expected reduction itself: a CPU reference that needs no
 * communication. Every dtype and op, counts 0, 1, odd and large, in place,
 * out of place, bucketed, fused tensors and non-blocking.
 *
 * Values are small integers, exact in every dtype (f16 included), so the
 * comparison is exact. Failures are counted, never abort mid-way: all ranks
 * must keep issuing the same collectives in the same order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "comm_internal.h"
#include "herd/comm.h"
#include "test_comm_store.h"

enum { S_OUT_OF_PLACE, S_IN_PLACE, S_BUCKETED, S_TENSORS, S_NONBLOCKING, S_MODES };

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

/* Reduces `send` as n tensors: the odd ones moved to their own allocations
 * (so they must be packed), the even ones left contiguous in place. */
static herd_result_t s_reduce_tensors(herd_comm_t *comm, char *send,
                                      size_t count, herd_dtype_t dtype,
                                      herd_op_t op)
{
  size_t elem = herd_dtype_size(dtype), n = 0, done = 0;
  void *bufs[4096];
  size_t counts[4096];
  while (done < count && n < 4095) {
    size_t c = n % 7 == 6 ? 5000 : (n * 37) % 300 + 1;
    c = c < count - done ? c : count - done;
    counts[n] = c;
    bufs[n] = send + done * elem;
    if (n % 2 && (bufs[n] = malloc(c * elem)))
      memcpy(bufs[n], send + done * elem, c * elem);
    done += c;
    n++;
  }
  if (done < count) { /* the rest as one big contiguous tensor */
    bufs[n] = send + done * elem;
    counts[n++] = count - done;
  }
  herd_result_t rc = herd_comm_allreduce_tensors(comm, bufs, counts, n, dtype, op);
  done = 0;
  for (size_t i = 0; i < n; i++) {
    if (bufs[i] != send + done * elem) {
      memcpy(send + done * elem, bufs[i], counts[i] * elem);
      free(bufs[i]);
    }
    done += counts[i];
  }
  return rc;
}

static herd_result_t s_reduce(herd_comm_t *comm, char *send, char *recv,
                              size_t count, herd_dtype_t dtype, herd_op_t op,
                              int mode)
{
  herd_comm_request_t *req = NULL;
  switch (mode) {
  case S_IN_PLACE:
    return herd_comm_allreduce(comm, send, send, count, dtype, op);
  case S_BUCKETED:
    return herd_comm_allreduce_buckets(comm, send, count, dtype, op);
  case S_TENSORS:
    return s_reduce_tensors(comm, send, count, dtype, op);
  case S_NONBLOCKING:
    HERD_CHECK(herd_comm_iallreduce(comm, send, recv, count, dtype, op, &req));
    return herd_comm_wait(&req);
  default:
    return herd_comm_allreduce(comm, send, recv, count, dtype, op);
  }
}

/* Elements of out[0, count) that are not the reduction of s_value. */
static size_t s_count_wrong(const char *out, herd_dtype_t dtype, herd_op_t op,
                            int world, size_t count)
{
  int integer = dtype == HERD_DTYPE_I32 || dtype == HERD_DTYPE_I64 || dtype == HERD_DTYPE_U8;
  size_t wrong = 0;
  for (size_t i = 0; i < count; i++) {
    double want = s_expected(op, world, i, integer);
    if (dtype == HERD_DTYPE_F16 || dtype == HERD_DTYPE_BF16)
      want = s_load((uint16_t[]){dtype == HERD_DTYPE_F16 ? herd_float_to_half((float)want)
                                                         : herd_float_to_bf16((float)want)},
                    dtype, 0);
    else if (dtype == HERD_DTYPE_F32)
      want = (float)want;
    wrong += s_load(out, dtype, i) != want;
  }
  return wrong;
}

static void s_check_case(herd_comm_t *comm, herd_dtype_t dtype, herd_op_t op,
                         size_t count, int mode)
{
  int rank = herd_comm_rank(comm), world = herd_comm_world_size(comm);
  size_t elem = herd_dtype_size(dtype);
  char *send = malloc(count * elem + 1), *recv = malloc(count * elem + 1);
  for (size_t i = 0; i < count; i++)
    s_store(send, dtype, i, s_value(rank, i));
  herd_result_t rc = s_reduce(comm, send, recv, count, dtype, op, mode);
  int separate = mode == S_OUT_OF_PLACE || mode == S_NONBLOCKING;
  const char *out = separate ? recv : send;
  EXPECT(rc == HERD_OK, "allreduce dtype %d op %d count %zu mode %d: %s (%s)",
         dtype, op, count, mode, herd_strerror(rc), herd_error_detail());
  size_t wrong = rc == HERD_OK ? s_count_wrong(out, dtype, op, world, count) : 0;
  EXPECT(wrong == 0, "dtype %d op %d count %zu mode %d: %zu wrong", dtype, op,
         count, mode, wrong);
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

/* The communicator's own memory (herd_comm_buffer, S_BUFFER_BYTES; mpi
 * backend on a host with several ranks): in place over the whole of it and
 * over ranges at odd offsets, as herd-train's buckets are, blocking and
 * through the progress thread; the bytes around each range stay as they
 * were (the ranks write each other's memory there). */
#define S_BUFFER_BYTES (((size_t)3 << 20) + 40)
static void s_check_buffer(herd_comm_t *comm, int want_buffer)
{
  char *buf = herd_comm_buffer(comm);
  EXPECT(!!buf == want_buffer, "herd_comm_buffer: %s, want %s",
         buf ? "memory" : "NULL", want_buffer ? "memory" : "NULL");
  if (!buf)
    return;
  int rank = herd_comm_rank(comm), world = herd_comm_world_size(comm);
  for (int dtype = HERD_DTYPE_F32; dtype <= HERD_DTYPE_U8; dtype++) {
    size_t elem = herd_dtype_size(dtype), n = S_BUFFER_BYTES / elem;
    const size_t ranges[][2] = {{0, n}, {1, 1001}, {n - 7, 7}, {333, n / 2}, {5, 0}};
    for (int op = HERD_OP_SUM; op <= HERD_OP_MIN; op++)
      for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
        size_t at = ranges[r][0], count = ranges[r][1];
        memset(buf, 0xA5, S_BUFFER_BYTES);
        for (size_t i = 0; i < count; i++)
          s_store(buf + at * elem, dtype, i, s_value(rank, i));
        herd_result_t rc;
        if (r % 2) {
          herd_comm_request_t *req = NULL;
          rc = herd_comm_iallreduce(comm, buf + at * elem, buf + at * elem,
                                    count, dtype, op, &req);
          if (rc == HERD_OK)
            rc = herd_comm_wait(&req);
        } else {
          rc = herd_comm_allreduce(comm, buf + at * elem, buf + at * elem,
                                   count, dtype, op);
        }
        EXPECT(rc == HERD_OK, "buffer dtype %d op %d [%zu, +%zu): %s", dtype,
               op, at, count, herd_error_detail());
        size_t wrong = s_count_wrong(buf + at * elem, dtype, op, world, count);
        size_t touched = 0;
        for (size_t b = 0; b < S_BUFFER_BYTES; b++)
          touched += (b < at * elem || b >= (at + count) * elem) &&
                     (unsigned char)buf[b] != 0xA5;
        EXPECT(wrong == 0 && touched == 0,
               "buffer dtype %d op %d [%zu, +%zu): %zu wrong, %zu bytes "
               "outside changed", dtype, op, at, count, wrong, touched);
        /* Every rank checked before any rank refills for the next range. */
        EXPECT(herd_comm_barrier(comm) == HERD_OK, "barrier");
      }
  }
}

/* Overlap: several requests in flight at once, then a blocking call that
 * must wait for them; results checked like any other case. */
static void s_check_pipeline(herd_comm_t *comm)
{
  int world = herd_comm_world_size(comm);
  enum { N = 4, COUNT = 10007 };
  float *bufs[N];
  herd_comm_request_t *reqs[N];
  for (int k = 0; k < N; k++) {
    bufs[k] = malloc(COUNT * sizeof(float));
    for (size_t i = 0; i < COUNT; i++)
      bufs[k][i] = (float)(s_value(herd_comm_rank(comm), i) + k);
    EXPECT(herd_comm_iallreduce(comm, bufs[k], bufs[k], COUNT, HERD_DTYPE_F32,
                                HERD_OP_SUM, &reqs[k]) == HERD_OK, "iallreduce");
  }
  EXPECT(herd_comm_barrier(comm) == HERD_OK, "barrier after iallreduce");
  for (int k = 0; k < N; k++) {
    EXPECT(herd_comm_wait(&reqs[k]) == HERD_OK && !reqs[k], "wait");
    size_t wrong = 0;
    for (size_t i = 0; i < COUNT; i++)
      wrong += bufs[k][i] != (float)(s_expected(HERD_OP_SUM, world, i, 0) + k * world);
    EXPECT(wrong == 0, "pipelined request %d: %zu wrong", k, wrong);
    free(bufs[k]);
  }
}

static int s_run_suite(herd_comm_t *comm, size_t large_count, int want_buffer)
{
  const size_t counts[] = {0, 1, 7, 1001, 300001};
  for (int dtype = HERD_DTYPE_F32; dtype <= HERD_DTYPE_U8; dtype++)
    for (int op = HERD_OP_SUM; op <= HERD_OP_MIN; op++)
      for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
        for (int mode = 0; mode < S_MODES; mode++)
          s_check_case(comm, dtype, op, counts[c], mode);
  for (int op = HERD_OP_SUM; op <= HERD_OP_MIN; op++)
    s_check_case(comm, HERD_DTYPE_F32, op, large_count, op % 2 ? S_IN_PLACE : S_OUT_OF_PLACE);
  s_check_case(comm, HERD_DTYPE_F32, HERD_OP_SUM, large_count, S_BUCKETED);
  s_check_case(comm, HERD_DTYPE_F32, HERD_OP_SUM, large_count, S_TENSORS);
  s_check_pipeline(comm);
  s_check_broadcast(comm);
  s_check_buffer(comm, want_buffer);

  herd_comm_abort(comm);
  float x = 1;
  EXPECT(herd_comm_allreduce(comm, &x, &x, 1, HERD_DTYPE_F32, HERD_OP_SUM) ==
             HERD_EABORTED, "allreduce after abort must fail");
  int rank = herd_comm_rank(comm);
  herd_comm_destroy(&comm);
  herd_comm_destroy(&comm); /* safe twice */
  if (rank == 0 || s_failures)
    printf("rank %d: %d checks, %d failures\n", rank, s_checks, s_failures);
  return s_failures ? 1 : 0;
}

static herd_comm_config_t s_config(herd_backend_t backend)
{
  herd_comm_config_t config = HERD_COMM_CONFIG_INIT;
  config.backend = backend;
  config.first_bucket_bytes = 4096; /* many buckets even for small buffers */
  config.bucket_bytes = 1 << 20;
  config.buffer_bytes = S_BUFFER_BYTES;
  return config;
}

static size_t s_large_count;

static int s_gloo_rank(int rank, int world, const char *dir, void *arg)
{
  (void)arg;
  herd_comm_config_t config = s_config(HERD_BACKEND_GLOO);
  config.rank = rank;
  config.world_size = world;
  config.generation = 1;
  herd_comm_t *comm = NULL;
  herd_result_t rc = herd_test_file_store_new(dir, &config.store);
  if (rc == HERD_OK)
    rc = herd_comm_new(&config, &comm);
  if (rc != HERD_OK) {
    fprintf(stderr, "rank %d: herd_comm_new: %s\n", rank, herd_error_detail());
    herd_comm_store_destroy(&config.store);
    return 1;
  }
  int failed = s_run_suite(comm, s_large_count, 0);
  herd_comm_store_destroy(&config.store);
  return failed;
}

static int s_main_gloo(int world)
{
  char dir[4096];
  pid_t pids[64];
  if (world < 1 || world > 64 || herd_test_store_dir(dir, sizeof dir) != HERD_OK) {
    fprintf(stderr, "gloo: bad world size or store dir\n");
    return 1;
  }
  int failed = herd_test_spawn(world, pids, s_gloo_rank, dir, NULL) != 0;
  failed += herd_test_wait_all(world, pids);
  herd_test_store_dir_remove(dir);
  printf("gloo on %d ranks: %s\n", world, failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
  herd_backend_t backend = HERD_BACKEND_MPI;
  int world = 1, arg = 1;
  if (arg < argc && herd_backend_parse(argv[arg], &backend) == HERD_OK)
    arg++;
  if (arg + 1 < argc && strcmp(argv[arg], "-n") == 0) {
    world = atoi(argv[arg + 1]);
    arg += 2;
  }
  s_large_count = arg < argc ? strtoull(argv[arg], NULL, 10) : (64u << 20) / 4;
  if (backend == HERD_BACKEND_GLOO) {
    if (!herd_comm_have_gloo()) {
      printf("SKIP: this build has no gloo backend\n");
      return 77;
    }
    return s_main_gloo(world);
  }
  herd_comm_config_t config = s_config(backend);
  herd_comm_t *comm = NULL;
  if (herd_comm_new(&config, &comm) != HERD_OK) {
    fprintf(stderr, "herd_comm_new: %s\n", herd_error_detail());
    return 1;
  }
  /* Host shared memory: more than one rank here (all of mpirun's ranks on
   * one host in CI; two of the cluster test's hosts' ranks each) where
   * /dev/shm has room (1 GiB: no container's 64 MB), unless the test made
   * it too small (comm_mpi_small_shm). */
  const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  struct statvfs shm;
  int roomy = statvfs("/dev/shm", &shm) == 0 &&
              (double)shm.f_bavail * (double)shm.f_frsize > (double)(1u << 30);
  int want = local && atoi(local) > 1 && roomy && !getenv("HERD_TEST_NO_BUFFER");
  int failed = s_run_suite(comm, s_large_count, want);
  herd_comm_global_shutdown();
  return failed;
}
