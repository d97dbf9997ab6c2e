/* bench/checkpoint: how fast herd saves and loads checkpoints, against dd.
 *
 * A model of P float parameters plus two AdamW buffers (3 * 4 * P bytes):
 *   sync save   herd_ckpt_save (HDF5 + seal + fsync + rename + `latest`)
 *   dd          dd if=/dev/zero of=DIR/dd.bin bs=4M count=N conv=fsync, the
 *               same byte count into the same directory (the disk's ceiling)
 *   async stall how long herd_ckpt_writer_submit blocks the caller (the
 *               snapshot memcpy), against the sync save time
 *   load        herd_ckpt_load (verify seal + Fletcher32 + content checksum)
 *   hash        the herd-fnv4x64 checksum over the tensor bytes in memory
 * Best of --repeat runs. Results: JSON and a markdown table.
 *   bench_checkpoint [--params N] [--repeat R] [--dir DIR] [--out-dir DIR]
 *   --quick: 2M params, 1 repeat (ctest, label bench); --full: 100M params.
 * The hash timing reaches into checkpoint/'s private header: a benchmark of
 * an internal piece, not an API user.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt_internal.h"
#include "herd/ckpt.h"

typedef struct {
  size_t params;
  int repeat;
  const char *dir, *out_dir;
} s_opts_t;

typedef struct {
  double dd_s, save_s, stall_s, load_s, hash_s;
  uint64_t bytes, file_bytes;
} s_result_t;

static double s_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double s_min(double a, double b) { return a < b ? a : b; }

static int s_parse(int argc, char **argv, s_opts_t *o)
{
  *o = (s_opts_t){25000000, 2, "bench-ckpt-tmp", "bench/results"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick"))
      o->params = 2000000, o->repeat = 1;
    else if (!strcmp(a, "--full"))
      o->params = 100000000;
    else if (!strcmp(a, "--params") && v)
      o->params = strtoull(v, NULL, 10), i++;
    else if (!strcmp(a, "--repeat") && v)
      o->repeat = atoi(v), i++;
    else if (!strcmp(a, "--dir") && v)
      o->dir = v, i++;
    else if (!strcmp(a, "--out-dir") && v)
      o->out_dir = v, i++;
    else
      return -1;
  }
  return o->params > 0 && o->repeat > 0 ? 0 : -1;
}

/* dd writing `bytes` (rounded up to 4 MiB) with conv=fsync; seconds. */
static double s_dd(const char *dir, uint64_t bytes)
{
  char cmd[PATH_MAX + 128];
  unsigned long long blocks = (bytes + (4u << 20) - 1) / (4u << 20);
  snprintf(cmd, sizeof cmd,
           "dd if=/dev/zero of='%s/dd.bin' bs=4M count=%llu conv=fsync "
           "status=none", dir, blocks);
  double t0 = s_now();
  int rc = system(cmd);
  double t = s_now() - t0;
  snprintf(cmd, sizeof cmd, "%s/dd.bin", dir);
  unlink(cmd);
  return rc == 0 ? t * (double)bytes / (double)(blocks * (4u << 20)) : -1;
}

static void s_meta(herd_ckpt_meta_t *meta, int64_t step)
{
  memset(meta, 0, sizeof *meta);
  meta->step = step;
  meta->world_size = 1;
  snprintf(meta->config_json, sizeof meta->config_json, "{\"bench\":1}");
}

static int s_run(const s_opts_t *o, herd_tensor_t *t, s_result_t *r)
{
  static herd_ckpt_meta_t meta;
  char path[PATH_MAX];
  r->dd_s = r->save_s = r->stall_s = r->load_s = r->hash_s = 1e30;
  herd_ckpt_writer_t *w = NULL;
  if (herd_ckpt_writer_new(o->dir, 1, &w) != HERD_OK)
    return -1;
  for (int i = 0; i < o->repeat; i++) {
    r->dd_s = s_min(r->dd_s, s_dd(o->dir, r->bytes));
    s_meta(&meta, 2 * i + 1);
    double t0 = s_now();
    if (herd_ckpt_save(o->dir, &meta, t, 3, path, sizeof path) != HERD_OK)
      return -1;
    r->save_s = s_min(r->save_s, s_now() - t0);
    struct stat st;
    stat(path, &st);
    r->file_bytes = (uint64_t)st.st_size;
    t0 = s_now();
    if (herd_ckpt_load(path, &meta, t, 3) != HERD_OK)
      return -1;
    r->load_s = s_min(r->load_s, s_now() - t0);
    s_meta(&meta, 2 * i + 2);
    herd_ckpt_writer_stats_t stats;
    if (herd_ckpt_writer_submit(w, &meta, t, 3) != HERD_OK ||
        herd_ckpt_writer_wait(w) != HERD_OK)
      return -1;
    herd_ckpt_writer_stats(w, &stats);
    r->stall_s = s_min(r->stall_s, stats.last_stall_seconds);
    herd_ckpt_prune(o->dir, 1);
  }
  herd_ckpt_writer_destroy(&w);
  ckpt_hash_t hash;
  double t0 = s_now();
  ckpt_hash_init(&hash);
  for (int i = 0; i < 3; i++)
    ckpt_hash_bytes(&hash, t[i].data, t[i].count * 4);
  r->hash_s = s_now() - t0 + (ckpt_hash_final(&hash) == 42 ? 1e-12 : 0);
  return 0;
}

static void s_report(const s_opts_t *o, const s_result_t *r)
{
  char path[PATH_MAX];
  double gb = (double)r->bytes / 1e9;
  mkdir(o->out_dir, 0777);
  snprintf(path, sizeof path, "%s/checkpoint.json", o->out_dir);
  FILE *f = fopen(path, "w");
  if (f) {
    fprintf(f,
            "{\"params\": %zu, \"tensor_bytes\": %llu, \"file_bytes\": %llu, "
            "\"repeat\": %d, \"dir\": \"%s\",\n \"dd_fsync_s\": %.4f, "
            "\"sync_save_s\": %.4f, \"async_stall_s\": %.4f, \"load_s\": "
            "%.4f, \"hash_s\": %.4f,\n \"dd_GBps\": %.3f, \"sync_save_GBps\": "
            "%.3f, \"save_vs_dd\": %.3f, \"stall_vs_sync\": %.4f, "
            "\"load_GBps\": %.3f, \"hash_GBps\": %.3f}\n",
            o->params, (unsigned long long)r->bytes,
            (unsigned long long)r->file_bytes, o->repeat, o->dir, r->dd_s,
            r->save_s, r->stall_s, r->load_s, r->hash_s, gb / r->dd_s,
            gb / r->save_s, r->dd_s / r->save_s, r->stall_s / r->save_s,
            gb / r->load_s, gb / r->hash_s);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/checkpoint.md", o->out_dir);
  f = fopen(path, "w");
  FILE *outs[2] = {stdout, f};
  for (int i = 0; i < 2; i++) {
    if (!outs[i])
      continue;
    fprintf(outs[i],
            "| %zu params + 2 AdamW buffers (%.2f GB) | seconds | GB/s | vs "
            "|\n|---|---|---|---|\n"
            "| dd bs=4M conv=fsync | %.3f | %.3f | 1.00x |\n"
            "| herd sync save | %.3f | %.3f | %.2fx of dd |\n"
            "| herd async stall (snapshot) | %.3f | %.3f | %.1f%% of sync "
            "save |\n| herd load (verify + read) | %.3f | %.3f | |\n"
            "| herd-fnv4x64 hash (memory) | %.3f | %.3f | |\n",
            o->params, gb, r->dd_s, gb / r->dd_s, r->save_s, gb / r->save_s,
            r->dd_s / r->save_s, r->stall_s, gb / r->stall_s,
            100 * r->stall_s / r->save_s, r->load_s, gb / r->load_s,
            r->hash_s, gb / r->hash_s);
  }
  if (f)
    fclose(f);
}

int main(int argc, char **argv)
{
  s_opts_t o;
  if (s_parse(argc, argv, &o) != 0) {
    fprintf(stderr, "usage: bench_checkpoint [--quick|--full] [--params N] "
                    "[--repeat R] [--dir DIR] [--out-dir DIR]\n");
    return 2;
  }
  mkdir(o.dir, 0777);
  float *buf[3];
  herd_tensor_t t[3];
  const char *names[3] = {"params", "exp_avg", "exp_avg_sq"};
  for (int i = 0; i < 3; i++) {
    if (!(buf[i] = malloc(o.params * sizeof(float)))) {
      fprintf(stderr, "bench_checkpoint: out of memory\n");
      return 1;
    }
    for (size_t j = 0; j < o.params; j++)
      buf[i][j] = (float)((j * 2654435761u + (size_t)i) % 100003) * 1e-5f;
    t[i] = (herd_tensor_t){names[i], HERD_DTYPE_F32, buf[i], o.params};
  }
  s_result_t r = {.bytes = (uint64_t)o.params * 12};
  int rc = s_run(&o, t, &r);
  if (rc == 0)
    s_report(&o, &r);
  else
    fprintf(stderr, "bench_checkpoint: failed: %s\n", herd_error_detail());
  herd_ckpt_prune(o.dir, 1);
  for (int i = 0; i < 3; i++)
    free(buf[i]);
  return rc == 0 ? 0 : 1;
}
