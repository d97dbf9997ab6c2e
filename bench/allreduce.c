/* bench/allreduce: herd's all-reduce against the raw libraries underneath.
 *
 *   mpirun -np N bench_allreduce [--quick] [--out-dir DIR] [--bucket-mib M]
 *
 * In one run, on the same buffers (float32 sum, out of place): raw
 * MPI_Allreduce, herd's `mpi` backend, raw Gloo (its own FileStore, TCP
 * device and gloo::allreduce) and herd's `gloo` backend, for 4 KiB..256 MiB
 * (4 KiB..4 MiB with --quick). mpirun is the launcher; gloo ranks meet
 * through a file store in a temporary directory (a benchmark harness, like
 * the tests). Then fusion: 256 tensors of 4-64 KiB reduced one call per
 * tensor, fused (herd_comm_allreduce_tensors) as separate allocations and
 * as slices of one buffer, and as one flat buffer of the same bytes.
 *
 * Each implementation is timed in interleaved rounds (raw then herd, then
 * herd then raw, ...) and the best round's mean per call is kept, so drift
 * on a shared machine hits both sides alike and neither always goes first. Time is the max over ranks (the collective is done
 * when the slowest rank is). busbw = algbw * 2(n-1)/n as in nccl-tests.
 * #wrong: elements differing from a CPU reference after one more call.
 * Rank 0 prints the table and writes allreduce.json and allreduce.md.
 */
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "allreduce_gloo_raw.h"
#include "herd/comm.h"
#include "herd/opts.h"
#include "test_comm_store.h"

/* herd-mpi-buf: herd's mpi all-reduce in place in herd_comm_buffer, where
 * herd-train keeps its gradient (nothing copied in or out; compared with
 * raw-mpi). */
enum { S_RAW_MPI, S_HERD_MPI, S_RAW_GLOO, S_HERD_GLOO, S_HERD_MPI_BUF, S_IMPLS };
static const char *const s_impl_names[S_IMPLS] = {
    "raw-mpi", "herd-mpi", "raw-gloo", "herd-gloo", "herd-mpi-buf"};

typedef struct {
  int rank, world, quick, rounds;
  size_t bucket_bytes;
  size_t max_bytes; /* of a measured call; herd_comm_buffer's size */
  float *buf;       /* herd_comm_buffer of herd[0]; NULL without one */
  herd_comm_t *herd[2]; /* mpi, gloo */
  bench_gloo_raw_t *raw_gloo;
  herd_comm_store_t *store;
  FILE *json, *md;
} s_bench_t;

static int s_call(s_bench_t *b, int impl, const float *send, float *recv,
                  size_t count)
{
  switch (impl) {
  case S_RAW_MPI:
    return MPI_Allreduce(send, recv, (int)count, MPI_FLOAT, MPI_SUM,
                         MPI_COMM_WORLD) != MPI_SUCCESS;
  case S_RAW_GLOO:
    return bench_gloo_raw_allreduce(b->raw_gloo, send, recv, count);
  case S_HERD_MPI_BUF: /* the data is in the buffer already (s_wrong) */
    return !b->buf || herd_comm_allreduce(b->herd[0], b->buf, b->buf, count,
                                          HERD_DTYPE_F32, HERD_OP_SUM) != HERD_OK;
  default:
    return herd_comm_allreduce(b->herd[impl == S_HERD_GLOO], send, recv, count,
                               HERD_DTYPE_F32, HERD_OP_SUM) != HERD_OK;
  }
}

/* Mean seconds per call over `iters`, max over ranks. */
static double s_time(s_bench_t *b, int impl, const float *send, float *recv,
                     size_t count, int iters)
{
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < iters; i++)
    s_call(b, impl, send, recv, count);
  double mine = (MPI_Wtime() - t0) / iters, slowest = 0;
  MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

static double s_value(int rank, size_t i) { return (double)(i % 13) + rank; }

/* One checked call; returns the number of wrong elements over all ranks. */
static long s_wrong(s_bench_t *b, int impl, float *send, float *recv,
                    size_t count)
{
  for (size_t i = 0; i < count; i++)
    send[i] = (float)s_value(b->rank, i);
  memset(recv, 0, count * sizeof(float));
  if (impl == S_HERD_MPI_BUF && b->buf)
    memcpy(b->buf, send, count * sizeof(float));
  long wrong = s_call(b, impl, send, recv, count) ? (long)count : 0;
  if (impl == S_HERD_MPI_BUF && b->buf)
    memcpy(recv, b->buf, count * sizeof(float));
  for (size_t i = 0; i < count && !wrong; i++) {
    double want = (double)(i % 13) * b->world + b->world * (b->world - 1) / 2.0;
    wrong += recv[i] != (float)want;
  }
  long total = 0;
  MPI_Allreduce(&wrong, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  return total;
}

static void s_row(s_bench_t *b, size_t bytes, int impl, double seconds,
                  long wrong, double vs_raw)
{
  double algbw = bytes / seconds / 1e9;
  double busbw = algbw * 2.0 * (b->world - 1) / b->world;
  if (b->rank != 0)
    return;
  printf("%12zu %12zu  float  sum  %-9s %11.1f %8.3f %8.3f %7ld %7.3f\n",
         bytes, bytes / 4, s_impl_names[impl], seconds * 1e6, algbw, busbw,
         wrong, vs_raw);
  fprintf(b->json,
          "%s\n    {\"bytes\": %zu, \"count\": %zu, \"type\": \"float\", "
          "\"op\": \"sum\", \"impl\": \"%s\", \"time_us\": %.2f, "
          "\"algbw_GBps\": %.4f, \"busbw_GBps\": %.4f, \"wrong\": %ld, "
          "\"herd_over_raw\": %.4f}",
          ftell(b->json) > 200 ? "," : "", bytes, bytes / 4,
          s_impl_names[impl], seconds * 1e6, algbw, busbw, wrong, vs_raw);
  char ratio[32] = "-";
  if (impl != S_RAW_MPI && impl != S_RAW_GLOO)
    snprintf(ratio, sizeof ratio, "%.3f", vs_raw);
  fprintf(b->md, "| %zu | %zu | float | %s | %.1f | %.3f | %.3f | %ld | %s |\n",
          bytes, bytes / 4, s_impl_names[impl], seconds * 1e6, algbw, busbw,
          wrong, ratio);
}

static long s_size(s_bench_t *b, size_t bytes, float *send, float *recv)
{
  size_t count = bytes / sizeof(float);
  int iters = (int)((b->quick ? 16u << 20 : 256u << 20) / bytes);
  iters = iters < 2 ? 2 : iters > 50 ? 50 : iters;
  double best[S_IMPLS];
  for (int impl = 0; impl < S_IMPLS; impl++) {
    s_call(b, impl, send, recv, count); /* warm-up */
    best[impl] = 1e30;
  }
  for (int round = 0; round < b->rounds; round++)
    for (int i = 0; i < S_IMPLS; i++) {
      /* herd first in odd rounds */
      int impl = round % 2 && i < S_HERD_MPI_BUF ? i ^ 1 : i;
      double t = s_time(b, impl, send, recv, count, iters);
      best[impl] = t < best[impl] ? t : best[impl];
    }
  long all_wrong = 0;
  for (int impl = 0; impl < S_IMPLS; impl++) {
    long wrong = s_wrong(b, impl, send, recv, count);
    double vs_raw = impl == S_HERD_MPI_BUF ? best[S_RAW_MPI] / best[impl]
                    : impl % 2             ? best[impl - 1] / best[impl]
                                           : 1.0;
    s_row(b, bytes, impl, best[impl], wrong, vs_raw);
    all_wrong += wrong;
  }
  return all_wrong;
}

/* 256 tensors of 4-64 KiB (fixed pseudo-random sizes, same on all ranks). */
#define S_TENSORS 256

static size_t s_tensor_counts(size_t *counts)
{
  uint32_t x = 12345;
  size_t total = 0;
  for (int i = 0; i < S_TENSORS; i++) {
    x = x * 1103515245u + 12345u;
    counts[i] = (4096 + (x >> 8) % (60 * 1024 + 1)) / 4;
    total += counts[i];
  }
  return total;
}

/* per-tensor: one call each; fused: herd_comm_allreduce_tensors on separate
 * allocations (packed into buckets); views: the same call on tensors that
 * are slices of one buffer, as herd-train's flat gradient is (no copy);
 * flat: one call on that buffer. */
typedef enum { S_PER_TENSOR, S_FUSED, S_VIEWS, S_FLAT, S_WAYS } s_way_t;
static const char *const s_way_names[S_WAYS] = {"per-tensor", "fused",
                                                "fused-views", "flat"};

static int s_fusion_call(herd_comm_t *comm, s_way_t way, void **bufs,
                         size_t *counts, float *flat, size_t total)
{
  herd_result_t rc = HERD_OK;
  if (way == S_FLAT)
    return herd_comm_allreduce(comm, flat, flat, total, HERD_DTYPE_F32,
                               HERD_OP_SUM) != HERD_OK;
  if (way == S_VIEWS) {
    void *views[S_TENSORS];
    for (size_t i = 0, offset = 0; i < S_TENSORS; offset += counts[i++])
      views[i] = flat + offset;
    return herd_comm_allreduce_tensors(comm, views, counts, S_TENSORS,
                                       HERD_DTYPE_F32, HERD_OP_SUM) != HERD_OK;
  }
  if (way == S_FUSED)
    return herd_comm_allreduce_tensors(comm, bufs, counts, S_TENSORS,
                                       HERD_DTYPE_F32, HERD_OP_SUM) != HERD_OK;
  for (int i = 0; i < S_TENSORS && rc == HERD_OK; i++)
    rc = herd_comm_allreduce(comm, bufs[i], bufs[i], counts[i], HERD_DTYPE_F32,
                             HERD_OP_SUM);
  return rc != HERD_OK;
}

/* Fills all tensors (separate and views) with 1s, reduces both fused ways,
 * and counts elements != world. */
static long s_fusion_wrong(s_bench_t *b, herd_comm_t *comm, void **bufs,
                           size_t *counts, float *flat, size_t total)
{
  long wrong = 0;
  for (int i = 0; i < S_TENSORS; i++)
    for (size_t j = 0; j < counts[i]; j++)
      ((float *)bufs[i])[j] = 1.0f;
  for (size_t j = 0; j < total; j++)
    flat[j] = 1.0f;
  if (s_fusion_call(comm, S_FUSED, bufs, counts, flat, total) ||
      s_fusion_call(comm, S_VIEWS, bufs, counts, flat, total))
    wrong = 1;
  for (int i = 0; i < S_TENSORS; i++)
    for (size_t j = 0; j < counts[i]; j++)
      wrong += ((float *)bufs[i])[j] != (float)b->world;
  for (size_t j = 0; j < total; j++)
    wrong += flat[j] != (float)b->world;
  long sum = 0;
  MPI_Allreduce(&wrong, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  return sum;
}

static double s_fusion_time(herd_comm_t *comm, s_way_t way, void **bufs,
                            size_t *counts, float *flat, size_t total, int iters)
{
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < iters; i++)
    s_fusion_call(comm, way, bufs, counts, flat, total);
  double mine = (MPI_Wtime() - t0) / iters, slowest = 0;
  MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

/* Fusion on one backend; returns 1 when a target is missed or data wrong. */
static int s_fusion_backend(s_bench_t *b, int which, void **bufs,
                            size_t *counts, float *flat, size_t total)
{
  herd_comm_t *comm = b->herd[which];
  double best[S_WAYS] = {1e30, 1e30, 1e30, 1e30};
  int iters = b->quick ? 3 : 10;
  for (int round = 0; round < b->rounds; round++)
    for (int i = 0; i < S_WAYS; i++) {
      int way = round % 2 ? S_WAYS - 1 - i : i; /* no fixed order */
      double t = s_fusion_time(comm, way, bufs, counts, flat, total, iters);
      best[way] = t < best[way] ? t : best[way];
    }
  long wrong = s_fusion_wrong(b, comm, bufs, counts, flat, total);
  double fused_vs_flat = best[S_FUSED] / best[S_FLAT];
  double views_vs_flat = best[S_VIEWS] / best[S_FLAT];
  double speedup = best[S_PER_TENSOR] / best[S_FUSED];
  int missed = fused_vs_flat > 1.1 || speedup < 5.0;
  int failed = wrong != 0; /* targets are reported; only wrong data fails */
  if (b->rank != 0)
    return failed;
  const char *name = which ? "gloo" : "mpi";
  for (int way = 0; way < S_WAYS; way++)
    printf("# fusion %-4s %-10s %10.1f us\n", name, s_way_names[way],
           best[way] * 1e6);
  printf("# fusion %-4s fused/flat %.3f (target <= 1.1; views %.3f), "
         "per-tensor/fused %.2fx (target >= 5), #wrong %ld: %s\n", name,
         fused_vs_flat, views_vs_flat, speedup, wrong,
         missed ? "target MISSED" : "targets met");
  fprintf(b->json, "%s\n    {\"backend\": \"%s\", \"tensors\": %d, \"bytes\": %zu, "
          "\"per_tensor_us\": %.2f, \"fused_us\": %.2f, \"views_us\": %.2f, "
          "\"flat_us\": %.2f, \"fused_over_flat\": %.4f, "
          "\"views_over_flat\": %.4f, \"per_tensor_over_fused\": %.3f, "
          "\"wrong\": %ld}", which ? "," : "", name, S_TENSORS, total * 4,
          best[S_PER_TENSOR] * 1e6, best[S_FUSED] * 1e6, best[S_VIEWS] * 1e6,
          best[S_FLAT] * 1e6, fused_vs_flat, views_vs_flat, speedup, wrong);
  fprintf(b->md, "| %s | %d | %zu | %.1f | %.1f | %.1f | %.1f | %.3f | %.3f | %.2fx | %ld |\n",
          name, S_TENSORS, total * 4, best[S_PER_TENSOR] * 1e6,
          best[S_FUSED] * 1e6, best[S_VIEWS] * 1e6, best[S_FLAT] * 1e6,
          fused_vs_flat, views_vs_flat, speedup, wrong);
  return failed;
}

static int s_fusion(s_bench_t *b)
{
  size_t counts[S_TENSORS];
  void *bufs[S_TENSORS];
  size_t total = s_tensor_counts(counts);
  float *flat = calloc(total, sizeof(float));
  for (int i = 0; i < S_TENSORS; i++) /* separate allocations: packed */
    bufs[i] = calloc(counts[i], sizeof(float));
  if (b->rank == 0) {
    fprintf(b->json, "\n  ],\n  \"fusion\": [");
    fprintf(b->md, "\n## Fusion: %d tensors of 4-64 KiB\n\n| backend | tensors "
            "| bytes | per-tensor (us) | fused (us) | fused views (us) | flat (us) "
            "| fused/flat | views/flat | per-tensor/fused | #wrong |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n",
            S_TENSORS);
  }
  int failed = 0;
  for (int which = 0; which < 2; which++)
    failed |= s_fusion_backend(b, which, bufs, counts, flat, total);
  if (b->rank == 0)
    fprintf(b->json, "\n  ]\n}\n");
  for (int i = 0; i < S_TENSORS; i++)
    free(bufs[i]);
  free(flat);
  return failed;
}

static int s_setup(s_bench_t *b, char *dir, size_t cap)
{
  herd_comm_config_t config = HERD_COMM_CONFIG_INIT;
  config.bucket_bytes = b->bucket_bytes;
  config.buffer_bytes = b->max_bytes;
  if (herd_comm_new(&config, &b->herd[0]) != HERD_OK)
    return -1;
  b->buf = herd_comm_buffer(b->herd[0]);
  config.buffer_bytes = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &b->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &b->world);
  if (b->rank == 0 && herd_test_store_dir(dir, cap) != HERD_OK)
    return -1;
  MPI_Bcast(dir, (int)cap, MPI_CHAR, 0, MPI_COMM_WORLD);
  char raw_dir[4200];
  snprintf(raw_dir, sizeof raw_dir, "%s/raw", dir);
  if (b->rank == 0)
    mkdir(raw_dir, 0700);
  MPI_Barrier(MPI_COMM_WORLD);
  config.backend = HERD_BACKEND_GLOO;
  config.rank = b->rank;
  config.world_size = b->world;
  config.generation = 1;
  if (herd_test_file_store_new(dir, &b->store) != HERD_OK)
    return -1;
  config.store = b->store;
  if (herd_comm_new(&config, &b->herd[1]) != HERD_OK)
    return -1;
  b->raw_gloo = bench_gloo_raw_new(raw_dir, b->rank, b->world);
  return b->raw_gloo ? 0 : -1;
}

static void s_open_outputs(s_bench_t *b, const char *out_dir)
{
  char path[4096];
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  mkdir(out_dir, 0755);
  snprintf(path, sizeof path, "%s/allreduce.json", out_dir);
  b->json = fopen(path, "w");
  snprintf(path, sizeof path, "%s/allreduce.md", out_dir);
  b->md = fopen(path, "w");
  if (!b->json || !b->md) {
    fprintf(stderr, "bench: cannot write results under %s\n", out_dir);
    exit(1);
  }
  const char *note = b->world > cores ? "oversubscribed" : "not oversubscribed";
  printf("# herd bench/allreduce: %d ranks on %ld cores (%s), float32 sum, "
         "out of place, loopback; bucket %zu MiB\n", b->world, cores, note,
         b->bucket_bytes >> 20);
  printf("# %10s %12s  %5s %4s %-9s %11s %8s %8s %7s %7s\n", "size(B)",
         "count", "type", "op", "impl", "time(us)", "algbw", "busbw",
         "#wrong", "vs_raw");
  fprintf(b->json, "{\"ranks\": %d, \"cores\": %ld, \"oversubscribed\": %s, "
          "\"quick\": %s,\n  \"allreduce\": [", b->world, cores,
          b->world > cores ? "true" : "false", b->quick ? "true" : "false");
  fprintf(b->md, "# bench/allreduce: %d ranks on %ld cores (%s)\n\n"
          "| size (B) | count | type | impl | time (us) | algbw (GB/s) | "
          "busbw (GB/s) | #wrong | herd/raw speed |\n"
          "|---|---|---|---|---|---|---|---|---|\n", b->world, cores, note);
}

typedef struct {
  int quick;
  const char *out_dir;
  int64_t bucket_mib;
} s_args_t;

static const herd_opt_t s_table[] = {
    {"quick", 0, NULL, HERD_OPT_FLAG, NULL, 0, 0, NULL,
     offsetof(s_args_t, quick), "4 KiB..4 MiB, fewer iterations", NULL},
    {"out-dir", 0, NULL, HERD_OPT_STRING, "bench/results", 0, 0, NULL,
     offsetof(s_args_t, out_dir), "where allreduce.json and allreduce.md go", NULL},
    {"bucket-mib", 0, NULL, HERD_OPT_INT, "25", 1, 1024, NULL,
     offsetof(s_args_t, bucket_mib), "fusion bucket size in MiB", NULL},
};

int main(int argc, char **argv)
{
  s_args_t args;
  int code = herd_opts_main(
      "bench_allreduce",
      "usage: mpirun -np N bench_allreduce [--quick] [--out-dir DIR] "
      "[--bucket-mib M]\n"
      "herd's mpi and gloo all-reduce against raw MPI_Allreduce and raw Gloo,\n"
      "4 KiB..256 MiB, then fusion of 256 tensors of 4-64 KiB.",
      s_table, sizeof s_table / sizeof *s_table, &args, argc, argv, NULL);
  if (code >= 0)
    return code;
  s_bench_t b = {.rounds = 5, .quick = args.quick,
                 .bucket_bytes = (size_t)args.bucket_mib << 20,
                 .max_bytes = args.quick ? 4u << 20 : 256u << 20};
  const char *out_dir = args.out_dir;
  char dir[4096] = "";
  if (s_setup(&b, dir, sizeof dir) != 0) {
    fprintf(stderr, "bench: setup failed: %s\n", herd_error_detail());
    return 1;
  }
  if (b.rank == 0)
    s_open_outputs(&b, out_dir);
  size_t max_bytes = b.max_bytes;
  float *send = malloc(max_bytes), *recv = malloc(max_bytes);
  for (size_t i = 0; i < max_bytes / 4; i++)
    send[i] = (float)s_value(b.rank, i);
  long wrong = 0;
  for (size_t bytes = 4096; bytes <= max_bytes; bytes *= 4)
    wrong += s_size(&b, bytes, send, recv);
  free(send);
  free(recv);
  int failed = s_fusion(&b) || wrong != 0;
  bench_gloo_raw_destroy(b.raw_gloo);
  herd_comm_destroy(&b.herd[1]);
  herd_comm_destroy(&b.herd[0]);
  herd_comm_store_destroy(&b.store);
  if (b.rank == 0) {
    fclose(b.json);
    fclose(b.md);
    herd_test_store_dir_remove(dir);
  }
  herd_comm_global_shutdown();
  return failed;
}
