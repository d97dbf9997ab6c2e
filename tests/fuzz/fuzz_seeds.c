/* Writes the fuzz targets' seed corpus: one valid Envelope of every kind
 * per file for fuzz_codec (DIR/codec), and record sequences for fuzz_coord
 * (DIR/coord) that walk a job through join, generation, reports, KV,
 * status, failure, admission, restart-style re-registration and leave;
 * a real checkpoint for fuzz_ckpt (DIR/ckpt: as written, and marked for
 * resealing) and real dataset files for fuzz_data (DIR/data: the imported
 * HDF5 file and each IDX file), each behind the mode byte its target reads.
 * Usage: fuzz_seeds DIR (DIR/codec, coord, ckpt and data must exist). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "herd_wire.h"
#include "herd/ckpt.h"
#include "herd/data.h"
#include "herd/herd.h"
#include "herd/coord.h"

#define MAX_SEED 8192

static size_t s_pack(Herd__Envelope *env, uint8_t *out)
{
  env->version = HERD_PROTOCOL_VERSION;
  env->job_id = "fuzz";
  size_t n = herd__envelope__get_packed_size(env);
  if (n > MAX_SEED)
    abort();
  herd__envelope__pack(env, out);
  return n;
}

static void s_write(const char *dir, const char *name, const uint8_t *data,
                    size_t size)
{
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *file = fopen(path, "wb");
  if (!file || fwrite(data, 1, size, file) != size) {
    perror(path);
    exit(1);
  }
  fclose(file);
}

/* One message of each body. */
static size_t s_message(int kind, int rank, uint8_t *out)
{
  Herd__Envelope env = HERD__ENVELOPE__INIT;
  Herd__Join join = HERD__JOIN__INIT;
  Herd__Heartbeat hb = HERD__HEARTBEAT__INIT;
  Herd__StepReport step = HERD__STEP_REPORT__INIT;
  Herd__KvSet set = HERD__KV_SET__INIT;
  Herd__KvGet get = HERD__KV_GET__INIT;
  Herd__StatusRequest status = HERD__STATUS_REQUEST__INIT;
  Herd__PeerFailed peer = HERD__PEER_FAILED__INIT;
  Herd__Leave leave = HERD__LEAVE__INIT;
  Herd__Done done = HERD__DONE__INIT;
  Herd__CkptCommitted ckpt = HERD__CKPT_COMMITTED__INIT;
  Herd__EpochEnd epoch = HERD__EPOCH_END__INIT;
  Herd__Rejoin rejoin = HERD__REJOIN__INIT;
  switch (kind) {
  case 0:
  case 1: /* first join; re-registration with a claim */
    join.token = "fuzz-token", join.pid = 100 + rank, join.host = "h";
    join.launcher_rank = rank, join.rank = kind ? rank : -1;
    join.generation = kind ? 3 : 0, join.world_size = kind ? 2 : 0;
    env.body_case = HERD__ENVELOPE__BODY_JOIN, env.join = &join;
    break;
  case 2:
    hb.step = 5 + rank;
    env.body_case = HERD__ENVELOPE__BODY_HEARTBEAT, env.heartbeat = &hb;
    break;
  case 3:
    step.step = 7, step.generation = 1, step.world_size = 2, step.loss = 0.5;
    env.body_case = HERD__ENVELOPE__BODY_STEP_REPORT, env.step_report = &step;
    break;
  case 4:
    set.key = "addr/0", set.value.data = (uint8_t *)"1.2.3.4:5";
    set.value.len = 9, set.generation = 1, set.request_id = 9;
    env.body_case = HERD__ENVELOPE__BODY_KV_SET, env.kv_set = &set;
    break;
  case 5:
    get.key = "addr/0", get.wait_ms = 50, get.generation = 1;
    get.request_id = 10;
    env.body_case = HERD__ENVELOPE__BODY_KV_GET, env.kv_get = &get;
    break;
  case 6:
    status.token = "fuzz-token";
    env.body_case = HERD__ENVELOPE__BODY_STATUS_REQUEST;
    env.status_request = &status;
    break;
  case 7:
    peer.generation = 1, peer.rank = 1, peer.reason = "connection reset";
    env.body_case = HERD__ENVELOPE__BODY_PEER_FAILED, env.peer_failed = &peer;
    break;
  case 8:
    done.final_step = 7, done.world_size = 2, done.resumed_from_step = -1;
    env.body_case = HERD__ENVELOPE__BODY_DONE, env.done = &done;
    break;
  case 9:
    ckpt.step = 7, ckpt.path = "ckpt/step-7.h5";
    env.body_case = HERD__ENVELOPE__BODY_CKPT_COMMITTED;
    env.ckpt_committed = &ckpt;
    break;
  case 10:
    epoch.epoch = 1, epoch.test_accuracy = 0.8;
    env.body_case = HERD__ENVELOPE__BODY_EPOCH_END, env.epoch_end = &epoch;
    break;
  case 11:
    rejoin.reason = "x";
    env.body_case = HERD__ENVELOPE__BODY_REJOIN, env.rejoin = &rejoin;
    break;
  default:
    leave.reason = kind == 12 ? "finished" : "scale down";
    env.body_case = HERD__ENVELOPE__BODY_LEAVE, env.leave = &leave;
    break;
  }
  return s_pack(&env, out);
}

#define KINDS 14

static size_t s_append(uint8_t *seq, size_t pos, int peer, int op, int kind)
{
  uint8_t frame[MAX_SEED];
  size_t n = s_message(kind, peer, frame);
  seq[pos] = (uint8_t)peer, seq[pos + 1] = (uint8_t)op;
  seq[pos + 2] = (uint8_t)(n & 0xff), seq[pos + 3] = (uint8_t)(n >> 8);
  memcpy(seq + pos + 4, frame, n);
  return pos + 4 + n;
}

/* A scripted job: `script` is a list of {peer, op, kind}. */
static void s_write_script(const char *dir, const char *name,
                           const int (*script)[3], size_t steps)
{
  static uint8_t seq[1 << 16];
  size_t pos = 0;
  for (size_t i = 0; i < steps; i++)
    pos = s_append(seq, pos, script[i][0], script[i][1], script[i][2]);
  s_write(dir, name, seq, pos);
}

/* `path`'s bytes behind the mode byte `mode`, as DIR/NAME. */
static void s_copy_with_mode(const char *dir, const char *name,
                             const char *path, uint8_t mode)
{
  static uint8_t buf[1 << 20];
  FILE *file = fopen(path, "rb");
  size_t size = file ? fread(buf + 1, 1, sizeof buf - 1, file) : 0;
  if (!file || !feof(file)) {
    fprintf(stderr, "fuzz_seeds: cannot read %s (or over 1 MiB)\n", path);
    exit(1);
  }
  fclose(file);
  buf[0] = mode;
  s_write(dir, name, buf, size + 1);
}

static void s_ckpt_seeds(const char *root)
{
  char dir[1024], scratch[1024], path[1100];
  float params[300];
  int64_t optim_step = 7;
  for (int i = 0; i < 300; i++)
    params[i] = (float)i * 0.25f;
  herd_tensor_t tensors[] = {{"params", HERD_DTYPE_F32, params, 300},
                             {"exp_avg", HERD_DTYPE_F32, params, 300},
                             {"optim/step", HERD_DTYPE_I64, &optim_step, 1}};
  herd_ckpt_meta_t meta = {.step = 12, .epoch = 1, .step_in_epoch = 3,
                           .rng_state = {1, 1, 3, 0}, .world_size = 2,
                           .virtual_shards = 4};
  snprintf(meta.config_json, sizeof meta.config_json, "{\"batch\":128}");
  snprintf(scratch, sizeof scratch, "%s/ckpt-scratch", root);
  if (herd_ckpt_save(scratch, &meta, tensors, 3, path, sizeof path) != HERD_OK) {
    fprintf(stderr, "fuzz_seeds: checkpoint: %s\n", herd_error_detail());
    exit(1);
  }
  snprintf(dir, sizeof dir, "%s/ckpt", root);
  s_copy_with_mode(dir, "as-written", path, 0);
  s_copy_with_mode(dir, "resealed", path, 1);
}

static void s_data_seeds(const char *root)
{
  static const char *const names[4] = {
      "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
      "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
  static uint8_t idx[16 + 3 * 28 * 28];
  char src[1024], dir[1024], path[1100];
  snprintf(src, sizeof src, "%s/data-scratch", root);
  snprintf(dir, sizeof dir, "%s/data", root);
  if (mkdir(src, 0700) != 0 && errno != EEXIST) {
    perror(src);
    exit(1);
  }
  for (int which = 0; which < 4; which++) {
    int images = which % 2 == 0;
    size_t header = images ? 16 : 8, body = images ? 3 * 28 * 28 : 3;
    uint32_t words[4] = {images ? 0x803u : 0x801u, 3, 28, 28};
    for (int w = 0; w < 4; w++)
      for (int b = 0; b < 4; b++)
        idx[4 * w + b] = (uint8_t)(words[w] >> (24 - 8 * b));
    for (size_t i = 0; i < body; i++)
      idx[header + i] = (uint8_t)((i * 7) % 10);
    snprintf(path, sizeof path, "%s/%s", src, names[which]);
    gzFile gz = gzopen(path, "wb9");
    if (!gz || gzwrite(gz, idx, (unsigned)(header + body)) <= 0 ||
        gzclose(gz) != Z_OK) {
      fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
      exit(1);
    }
    char name[64];
    snprintf(name, sizeof name, "idx-%d", which + 1);
    s_copy_with_mode(dir, name, path, (uint8_t)(which + 1));
  }
  snprintf(path, sizeof path, "%s/data.h5", src);
  if (herd_data_import_fashion_mnist(src, path) != HERD_OK) {
    fprintf(stderr, "fuzz_seeds: dataset: %s\n", herd_error_detail());
    exit(1);
  }
  s_copy_with_mode(dir, "imported", path, 0);
}

int main(int argc, char **argv)
{
  char dir[900], name[64];
  uint8_t frame[MAX_SEED];
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_seeds DIR\n");
    return 2;
  }
  snprintf(dir, sizeof dir, "%s/codec", argv[1]);
  for (int kind = 0; kind < KINDS; kind++) {
    snprintf(name, sizeof name, "msg-%02d", kind);
    s_write(dir, name, frame, s_message(kind, 1, frame));
  }
  snprintf(dir, sizeof dir, "%s/coord", argv[1]);
  static const int job[][3] = {
      {0, 0, 0},  {1, 4, 0},  {0, 2, 2},  {1, 0, 2}, {0, 0, 4}, {1, 0, 5},
      {0, 0, 3},  {1, 0, 6},  {2, 0, 0},  {2, 2, 2}, {1, 1, 2}, {0, 40, 2},
      {0, 0, 10}, {0, 0, 9},  {0, 0, 7},  {0, 0, 8}, {0, 4, 12}, {2, 0, 13}};
  s_write_script(dir, "job", job, sizeof job / sizeof *job);
  static const int restart[][3] = {{0, 0, 2}, {0, 0, 1}, {1, 0, 1},
                                   {1, 0, 3}, {0, 0, 6}, {3, 0, 0},
                                   {3, 200, 2}, {0, 0, 5}, {1, 0, 11}};
  s_write_script(dir, "restart", restart, sizeof restart / sizeof *restart);
  static const int churn[][3] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {0, 6, 2},
                                 {1, 1, 2}, {2, 1, 2}, {3, 0, 0}, {4, 0, 0},
                                 {3, 6, 2}, {4, 0, 2}, {0, 0, 13}};
  s_write_script(dir, "churn", churn, sizeof churn / sizeof *churn);
  s_ckpt_seeds(argv[1]);
  s_data_seeds(argv[1]);
  return 0;
}
