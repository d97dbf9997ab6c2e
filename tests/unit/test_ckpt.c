/* Unit tests for checkpoint/: bit-exact round trips, the `latest` pointer,
 * fallback past garbled pointers and damaged files, temp files, retention,
 * and garbage input (non-HDF5, truncated, bit-flipped) that must give an
 * error and never a crash. Each test works in its own mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/ckpt.h"

#define BIG_COUNT (((size_t)1 << 20) + ((size_t)1 << 19) + 7) /* 2 chunks */

/* --- helpers ------------------------------------------------------------ */

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t s_next(void)
{
  s_rng ^= s_rng << 13;
  s_rng ^= s_rng >> 7;
  s_rng ^= s_rng << 17;
  return s_rng;
}

static void s_fill_random(void *data, size_t bytes)
{
  unsigned char *p = data;
  for (size_t i = 0; i < bytes; i++)
    p[i] = (unsigned char)s_next();
}

static int s_setup(void **state)
{
  char *dir = strdup("/tmp/herd-ckpt-test-XXXXXX");
  assert_non_null(dir);
  assert_non_null(mkdtemp(dir));
  *state = dir;
  return 0;
}

static void s_rm_tree(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  char path[PATH_MAX];
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) != 0)
      s_rm_tree(path);
  }
  closedir(d);
  rmdir(dir);
}

/* Every HDF5 handle the module opened is closed again, on success and on
 * every error path (LSan cannot see leaked handles: H5close frees them). */
static void s_assert_no_open_handles(void)
{
  assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

static int s_teardown(void **state)
{
  s_assert_no_open_handles();
  s_rm_tree(*state);
  free(*state);
  return 0;
}

static void s_path(char *buf, const char *dir, const char *name)
{
  assert_true(snprintf(buf, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

static void s_step_path(char *buf, const char *dir, int64_t step)
{
  int n = snprintf(buf, PATH_MAX, "%s/ckpt-%010lld.h5", dir, (long long)step);
  assert_true(n < PATH_MAX);
}

static void s_write_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void *s_read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  void *data = malloc(*len ? *len : 1);
  assert_non_null(data);
  assert_int_equal(fread(data, 1, *len, f), *len);
  fclose(f);
  return data;
}

static void s_flip_byte(const char *path, long offset)
{
  int fd = open(path, O_RDWR);
  unsigned char b;
  assert_true(fd >= 0);
  assert_int_equal(pread(fd, &b, 1, offset), 1);
  b ^= 0x5a;
  assert_int_equal(pwrite(fd, &b, 1, offset), 1);
  close(fd);
}

static void s_meta_init(herd_ckpt_meta_t *meta, int64_t step)
{
  memset(meta, 0, sizeof *meta);
  meta->step = step;
  meta->epoch = 3;
  meta->step_in_epoch = step % 100;
  for (int i = 0; i < 4; i++)
    meta->rng_state[i] = s_next();
  meta->world_size = 8;
  snprintf(meta->config_json, sizeof meta->config_json,
           "{\"lr\": 0.001, \"name\": \"h\\u00e9rd\", \"step\": %lld}",
           (long long)step);
}

/* One small f32 tensor of `count` values derived from `step`. */
static void s_save_simple(const char *dir, int64_t step, size_t count)
{
  float *data = malloc((count ? count : 1) * sizeof *data);
  assert_non_null(data);
  for (size_t i = 0; i < count; i++)
    data[i] = (float)step + (float)i * 0.5f;
  herd_tensor_t t = {"params", HERD_DTYPE_F32, data, count};
  herd_ckpt_meta_t meta;
  s_meta_init(&meta, step);
  assert_int_equal(herd_ckpt_save(dir, &meta, &t, 1, NULL, 0), HERD_OK);
  free(data);
}

static int64_t s_found_step(const char *dir)
{
  char path[PATH_MAX];
  herd_result_t rc = herd_ckpt_find_latest(dir, path, sizeof path);
  if (rc != HERD_OK)
    return -1;
  const char *base = strrchr(path, '/') + 1;
  return strtoll(base + 5, NULL, 10);
}

/* --- round trips -------------------------------------------------------- */

typedef struct {
  float f32[BIG_COUNT];
  double f64[1000];
  uint16_t f16[333];
  uint16_t bf16[17];
  int32_t i32[100];
  int64_t i64[100];
  uint8_t u8[4097];
} s_payload_t;

static void s_payload_fill(s_payload_t *p)
{
  s_fill_random(p, sizeof *p);
  /* Bit patterns a float conversion would not preserve. */
  const uint32_t specials[] = {0x7fc12345u, 0xffc00001u, 0x7f800001u,
                               0x80000000u, 0x00000001u, 0x7f800000u};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
    memcpy(&p->f32[i], &specials[i], 4);
  uint64_t nan64 = 0x7ff8dead0000beefull, negzero = 0x8000000000000000ull;
  memcpy(&p->f64[0], &nan64, 8);
  memcpy(&p->f64[1], &negzero, 8);
}

/* Member by member: the struct's padding is not saved. */
static void s_payload_equal(const s_payload_t *a, const s_payload_t *b)
{
  assert_memory_equal(a->f32, b->f32, sizeof a->f32);
  assert_memory_equal(a->f64, b->f64, sizeof a->f64);
  assert_memory_equal(a->f16, b->f16, sizeof a->f16);
  assert_memory_equal(a->bf16, b->bf16, sizeof a->bf16);
  assert_memory_equal(a->i32, b->i32, sizeof a->i32);
  assert_memory_equal(a->i64, b->i64, sizeof a->i64);
  assert_memory_equal(a->u8, b->u8, sizeof a->u8);
}

static void s_tensors(herd_tensor_t *t, s_payload_t *p, float *empty)
{
  herd_tensor_t list[] = {
      {"params", HERD_DTYPE_F32, p->f32, BIG_COUNT},
      {"optim/m", HERD_DTYPE_F64, p->f64, 1000},
      {"optim/deep/v", HERD_DTYPE_F16, p->f16, 333},
      {"bf", HERD_DTYPE_BF16, p->bf16, 17},
      {"ints/i32", HERD_DTYPE_I32, p->i32, 100},
      {"ints/i64", HERD_DTYPE_I64, p->i64, 100},
      {"bytes", HERD_DTYPE_U8, p->u8, 4097},
      {"empty", HERD_DTYPE_F32, empty, 0},
  };
  memcpy(t, list, sizeof list);
}

static void test_roundtrip_bitexact(void **state)
{
  const char *dir = *state;
  s_payload_t *in = malloc(sizeof *in), *out = calloc(1, sizeof *out);
  herd_tensor_t tin[8], tout[8];
  float empty_in, empty_out;
  herd_ckpt_meta_t meta, got;
  char path[PATH_MAX], expect[PATH_MAX];
  assert_non_null(in);
  assert_non_null(out);
  s_payload_fill(in);
  s_tensors(tin, in, &empty_in);
  s_tensors(tout, out, &empty_out);
  s_meta_init(&meta, 42);

  assert_int_equal(herd_ckpt_save(dir, &meta, tin, 8, path, sizeof path),
                   HERD_OK);
  s_step_path(expect, dir, 42);
  assert_string_equal(path, expect);
  assert_true(meta.unix_time > 1.5e9);
  assert_int_equal(herd_ckpt_verify(path), HERD_OK);

  /* Load in a different order than saved: names, not positions, match. */
  herd_tensor_t swapped[8];
  for (int i = 0; i < 8; i++)
    swapped[i] = tout[7 - i];
  memset(&got, 0xab, sizeof got);
  assert_int_equal(herd_ckpt_load(path, &got, swapped, 8), HERD_OK);
  s_payload_equal(in, out);
  assert_memory_equal(&meta, &got, sizeof meta - sizeof meta.config_json);
  assert_string_equal(meta.config_json, got.config_json);

  memset(&got, 0, sizeof got);
  assert_int_equal(herd_ckpt_read_meta(path, &got), HERD_OK);
  assert_int_equal(got.step, 42);
  assert_int_equal(got.epoch, 3);
  assert_int_equal(got.step_in_epoch, 42);
  assert_int_equal(got.world_size, 8);
  assert_memory_equal(got.rng_state, meta.rng_state, sizeof meta.rng_state);
  assert_true(got.unix_time == meta.unix_time);
  assert_string_equal(got.config_json, meta.config_json);

  /* A subset load works and still checks the whole file. */
  memset(out->i64, 0, sizeof out->i64);
  assert_int_equal(herd_ckpt_load(path, NULL, &tout[5], 1), HERD_OK);
  assert_memory_equal(in->i64, out->i64, sizeof in->i64);
  free(in);
  free(out);
}

static void test_no_tensors_and_config_limits(void **state)
{
  const char *dir = *state;
  herd_ckpt_meta_t meta, got;
  char path[PATH_MAX];
  s_meta_init(&meta, 7);
  memset(meta.config_json, 'x', sizeof meta.config_json - 1);
  meta.config_json[sizeof meta.config_json - 1] = '\0';
  assert_int_equal(herd_ckpt_save(dir, &meta, NULL, 0, path, sizeof path),
                   HERD_OK);
  assert_int_equal(herd_ckpt_verify(path), HERD_OK);
  assert_int_equal(herd_ckpt_load(path, &got, NULL, 0), HERD_OK);
  assert_string_equal(got.config_json, meta.config_json);

  /* Unterminated config and out-of-range steps are refused up front. */
  memset(meta.config_json, 'x', sizeof meta.config_json);
  assert_int_equal(herd_ckpt_save(dir, &meta, NULL, 0, NULL, 0), HERD_EINVAL);
  s_meta_init(&meta, -1);
  assert_int_equal(herd_ckpt_save(dir, &meta, NULL, 0, NULL, 0), HERD_EINVAL);
  s_meta_init(&meta, 10000000000LL);
  assert_int_equal(herd_ckpt_save(dir, &meta, NULL, 0, NULL, 0), HERD_EINVAL);
  /* path_out too small: nothing written. */
  s_meta_init(&meta, 8);
  assert_int_equal(herd_ckpt_save(dir, &meta, NULL, 0, path, 5), HERD_EINVAL);
  s_step_path(path, dir, 8);
  assert_int_equal(access(path, F_OK), -1);
}

static void test_bad_names_refused(void **state)
{
  const char *dir = *state;
  float v[2] = {1, 2};
  herd_ckpt_meta_t meta;
  const char *bad[] = {"", "/abs", "a//b", "trail/", "..", "a/./b", "a/.."};
  s_meta_init(&meta, 1);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    herd_tensor_t t = {bad[i], HERD_DTYPE_F32, v, 2};
    assert_int_equal(herd_ckpt_save(dir, &meta, &t, 1, NULL, 0), HERD_EINVAL);
  }
  herd_tensor_t clash[2] = {{"optim", HERD_DTYPE_F32, v, 2},
                            {"optim/m", HERD_DTYPE_F32, v, 2}};
  assert_int_equal(herd_ckpt_save(dir, &meta, clash, 2, NULL, 0), HERD_EINVAL);
  clash[1].name = "optim";
  assert_int_equal(herd_ckpt_save(dir, &meta, clash, 2, NULL, 0), HERD_EINVAL);
  herd_tensor_t nodata = {"p", HERD_DTYPE_F32, NULL, 2};
  assert_int_equal(herd_ckpt_save(dir, &meta, &nodata, 1, NULL, 0),
                   HERD_EINVAL);
  char latest[PATH_MAX];
  s_path(latest, dir, "latest");
  assert_int_equal(access(latest, F_OK), -1);
}

static void test_load_mismatch(void **state)
{
  const char *dir = *state;
  float data[10], out[11];
  char path[PATH_MAX];
  for (int i = 0; i < 10; i++)
    data[i] = (float)i;
  herd_tensor_t t = {"params", HERD_DTYPE_F32, data, 10};
  herd_ckpt_meta_t meta;
  s_meta_init(&meta, 5);
  assert_int_equal(herd_ckpt_save(dir, &meta, &t, 1, path, sizeof path),
                   HERD_OK);
  memset(out, 0x77, sizeof out);
  herd_tensor_t wrong_dtype = {"params", HERD_DTYPE_I32, out, 10};
  herd_tensor_t wrong_count = {"params", HERD_DTYPE_F32, out, 11};
  herd_tensor_t missing = {"nope", HERD_DTYPE_F32, out, 10};
  herd_tensor_t twice[2] = {t, t};
  twice[0].data = twice[1].data = out;
  assert_int_equal(herd_ckpt_load(path, NULL, &wrong_dtype, 1), HERD_EINVAL);
  assert_int_equal(herd_ckpt_load(path, NULL, &wrong_count, 1), HERD_EINVAL);
  assert_int_equal(herd_ckpt_load(path, NULL, &missing, 1), HERD_EINVAL);
  assert_int_equal(herd_ckpt_load(path, NULL, twice, 2), HERD_EINVAL);
  /* Mismatches are found before any byte lands in the caller's buffer. */
  for (int i = 0; i < 11; i++)
    assert_true(((unsigned char *)out)[4 * i] == 0x77);
}

/* --- latest pointer and fallback --------------------------------------- */

static void test_latest_pointer(void **state)
{
  const char *dir = *state;
  char latest[PATH_MAX];
  size_t len;
  s_path(latest, dir, "latest");
  s_save_simple(dir, 1, 10);
  s_save_simple(dir, 2, 10);
  char *text = s_read_file(latest, &len);
  assert_int_equal(len, 19);
  assert_memory_equal(text, "ckpt-0000000002.h5\n", 19);
  free(text);
  assert_int_equal(s_found_step(dir), 2);
  /* No leftovers from the commit protocol. */
  char tmp[PATH_MAX];
  s_path(tmp, dir, "latest.tmp");
  assert_int_equal(access(tmp, F_OK), -1);
  s_path(tmp, dir, "ckpt-0000000002.h5.tmp");
  assert_int_equal(access(tmp, F_OK), -1);
}

static void test_find_latest_garbled_pointer(void **state)
{
  const char *dir = *state;
  char latest[PATH_MAX], big[4096];
  s_path(latest, dir, "latest");
  s_save_simple(dir, 1, 10);
  s_save_simple(dir, 2, 10);
  const char *garbage[] = {"../../etc/passwd\n",    "ckpt-0000000002.h5.tmp\n",
                           "ckpt-000000000x.h5\n",  "",
                           "ckpt-0000000009.h5\n", /* dangling */
                           "ckpt-0000000001.h5\n\n"};
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    s_write_file(latest, garbage[i], strlen(garbage[i]));
    assert_int_equal(s_found_step(dir), 2);
  }
  memset(big, 'c', sizeof big);
  s_write_file(latest, big, sizeof big);
  assert_int_equal(s_found_step(dir), 2);
  unlink(latest);
  assert_int_equal(s_found_step(dir), 2);
  /* An older pointer loses to a newer committed file: a kill between the
   * rename and the pointer update leaves exactly that state. */
  s_write_file(latest, "ckpt-0000000001.h5\n", 19);
  assert_int_equal(s_found_step(dir), 2);
}

/* Offset of the middle of the first chunk of `dataset` in `path`. */
static long s_chunk_middle(const char *path, const char *dataset)
{
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(file >= 0);
  hid_t dset = H5Dopen2(file, dataset, H5P_DEFAULT);
  assert_true(dset >= 0);
  hid_t space = H5Dget_space(dset);
  hsize_t offset[1];
  unsigned mask;
  haddr_t addr;
  hsize_t size;
  assert_true(H5Dget_chunk_info(dset, space, 0, offset, &mask, &addr, &size) >=
              0);
  H5Sclose(space);
  H5Dclose(dset);
  H5Fclose(file);
  return (long)(addr + size / 2);
}

static void test_flip_in_tensor_data_detected(void **state)
{
  const char *dir = *state;
  char path[PATH_MAX];
  float out[4096];
  s_save_simple(dir, 3, 4096);
  s_step_path(path, dir, 3);
  assert_int_equal(herd_ckpt_verify(path), HERD_OK);
  s_flip_byte(path, s_chunk_middle(path, "params"));
  assert_int_equal(herd_ckpt_verify(path), HERD_ECHECKSUM);
  herd_tensor_t t = {"params", HERD_DTYPE_F32, out, 4096};
  assert_int_equal(herd_ckpt_load(path, NULL, &t, 1), HERD_ECHECKSUM);
}

static void test_find_latest_skips_corrupted_newest(void **state)
{
  const char *dir = *state;
  char path[PATH_MAX];
  struct stat st;
  s_save_simple(dir, 1, 1 << 18);
  s_save_simple(dir, 2, 1 << 18);
  s_step_path(path, dir, 2);
  assert_int_equal(stat(path, &st), 0);
  /* 1 MiB of tensor data in a ~1 MiB file: the middle is tensor bytes. */
  s_flip_byte(path, (long)st.st_size / 2);
  assert_int_not_equal(herd_ckpt_verify(path), HERD_OK);
  assert_int_equal(s_found_step(dir), 1);
  /* Without a pointer the scan skips it too. */
  char latest[PATH_MAX];
  s_path(latest, dir, "latest");
  unlink(latest);
  assert_int_equal(s_found_step(dir), 1);
  /* Nothing valid left: HERD_ENOENT. */
  s_step_path(path, dir, 1);
  s_flip_byte(path, (long)st.st_size / 2);
  assert_int_equal(s_found_step(dir), -1);
  assert_int_equal(herd_ckpt_find_latest(dir, path, sizeof path), HERD_ENOENT);
}

static void test_tmp_never_returned(void **state)
{
  const char *dir = *state;
  char other[PATH_MAX], src[PATH_MAX], dst[PATH_MAX], latest[PATH_MAX];
  size_t len;
  s_save_simple(dir, 1, 10);
  /* A complete, valid checkpoint of a newer step, but still named .tmp. */
  s_path(other, dir, "other");
  s_save_simple(other, 5, 10);
  s_step_path(src, other, 5);
  s_path(dst, dir, "ckpt-0000000005.h5.tmp");
  void *bytes = s_read_file(src, &len);
  s_write_file(dst, bytes, len);
  free(bytes);
  assert_int_equal(herd_ckpt_verify(dst), HERD_EINVAL);
  assert_int_equal(s_found_step(dir), 1);
  s_path(latest, dir, "latest");
  s_write_file(latest, "ckpt-0000000005.h5.tmp\n", 23);
  assert_int_equal(s_found_step(dir), 1);
  assert_int_equal(herd_ckpt_find_latest("/nonexistent/herd", dst, sizeof dst),
                   HERD_ENOENT);
}

/* --- retention ---------------------------------------------------------- */

static void test_prune_keeps_newest(void **state)
{
  const char *dir = *state;
  char path[PATH_MAX];
  for (int64_t step = 1; step <= 5; step++)
    s_save_simple(dir, step * 10, 10);
  s_path(path, dir, "ckpt-0000000030.h5.tmp");
  s_write_file(path, "x", 1);
  s_path(path, dir, "latest.tmp");
  s_write_file(path, "x", 1);
  s_path(path, dir, "ckpt-0000000090.h5.tmp"); /* maybe still being written */
  s_write_file(path, "x", 1);
  assert_int_equal(herd_ckpt_prune(dir, 0), HERD_EINVAL);
  assert_int_equal(herd_ckpt_prune(dir, 2), HERD_OK);
  for (int64_t step = 1; step <= 5; step++) {
    s_step_path(path, dir, step * 10);
    assert_int_equal(access(path, F_OK) == 0, step >= 4);
  }
  s_path(path, dir, "ckpt-0000000030.h5.tmp");
  assert_int_equal(access(path, F_OK), -1);
  s_path(path, dir, "latest.tmp");
  assert_int_equal(access(path, F_OK), -1);
  s_path(path, dir, "ckpt-0000000090.h5.tmp");
  assert_int_equal(access(path, F_OK), 0);
  assert_int_equal(s_found_step(dir), 50);
  assert_int_equal(herd_ckpt_prune(dir, 5), HERD_OK);
  assert_int_equal(herd_ckpt_prune(dir, 1), HERD_OK);
  s_step_path(path, dir, 40);
  assert_int_equal(access(path, F_OK), -1);
  assert_int_equal(s_found_step(dir), 50);
}

/* --- garbage input ------------------------------------------------------ */

static void test_verify_garbage_files(void **state)
{
  const char *dir = *state;
  char path[PATH_MAX], good[PATH_MAX];
  unsigned char noise[65536];
  size_t len;
  s_path(path, dir, "text.h5");
  s_write_file(path, "hello, not hdf5\n", 16);
  assert_int_not_equal(herd_ckpt_verify(path), HERD_OK);
  s_path(path, dir, "empty.h5");
  s_write_file(path, "", 0);
  assert_int_not_equal(herd_ckpt_verify(path), HERD_OK);
  s_path(path, dir, "noise.h5");
  s_fill_random(noise, sizeof noise);
  s_write_file(path, noise, sizeof noise);
  assert_int_not_equal(herd_ckpt_verify(path), HERD_OK);
  s_path(path, dir, "missing.h5");
  assert_int_equal(herd_ckpt_verify(path), HERD_ENOENT);
  assert_int_not_equal(herd_ckpt_verify(dir), HERD_OK);

  /* Truncations of a valid file: every one must fail cleanly. */
  s_save_simple(dir, 4, 5000);
  s_step_path(good, dir, 4);
  unsigned char *bytes = s_read_file(good, &len);
  const size_t cuts[] = {0, 7, 512, 2048, len / 2, len - 100, len - 1};
  s_path(path, dir, "cut.h5");
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    s_write_file(path, bytes, cuts[i]);
    assert_int_not_equal(herd_ckpt_verify(path), HERD_OK);
    herd_ckpt_meta_t meta;
    (void)herd_ckpt_read_meta(path, &meta); /* must not crash */
    s_assert_no_open_handles();
  }
  free(bytes);
}

/* Flip bytes all over a small checkpoint: verify may only say HERD_OK when
 * the content still loads bit-identical (a flip in unused bytes). */
static void test_flip_sweep_never_wrong(void **state)
{
  const char *dir = *state;
  char path[PATH_MAX];
  float data[300], out[300];
  int64_t ints[20] = {0}, ints_out[20];
  for (int i = 0; i < 300; i++)
    data[i] = (float)i * 1.25f;
  herd_tensor_t t[2] = {{"params", HERD_DTYPE_F32, data, 300},
                        {"optim/step", HERD_DTYPE_I64, ints, 20}};
  herd_tensor_t to[2] = {{"params", HERD_DTYPE_F32, out, 300},
                         {"optim/step", HERD_DTYPE_I64, ints_out, 20}};
  herd_ckpt_meta_t meta, got;
  s_meta_init(&meta, 6);
  assert_int_equal(herd_ckpt_save(dir, &meta, t, 2, path, sizeof path),
                   HERD_OK);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  int detected = 0, tried = 0;
  for (long off = 0; off < st.st_size; off += 3, tried++) {
    s_flip_byte(path, off);
    if (herd_ckpt_verify(path) != HERD_OK) {
      detected++;
    } else {
      assert_int_equal(herd_ckpt_load(path, &got, to, 2), HERD_OK);
      assert_memory_equal(data, out, sizeof data);
      assert_memory_equal(ints, ints_out, sizeof ints);
      assert_int_equal(got.step, meta.step);
      assert_string_equal(got.config_json, meta.config_json);
    }
    s_assert_no_open_handles();
    s_flip_byte(path, off); /* restore */
  }
  print_message("flip sweep: %d of %d flips detected\n", detected, tried);
  assert_int_equal(detected, tried); /* the whole-file seal sees every byte */
  assert_int_equal(herd_ckpt_verify(path), HERD_OK);
}

/* `test_ckpt PATTERN` runs only the matching tests (handy under a debugger). */
int main(int argc, char **argv)
{
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_roundtrip_bitexact, s_setup,
                                      s_teardown),
      cmocka_unit_test_setup_teardown(test_no_tensors_and_config_limits,
                                      s_setup, s_teardown),
      cmocka_unit_test_setup_teardown(test_bad_names_refused, s_setup,
                                      s_teardown),
      cmocka_unit_test_setup_teardown(test_load_mismatch, s_setup, s_teardown),
      cmocka_unit_test_setup_teardown(test_latest_pointer, s_setup, s_teardown),
      cmocka_unit_test_setup_teardown(test_find_latest_garbled_pointer, s_setup,
                                      s_teardown),
      cmocka_unit_test_setup_teardown(test_flip_in_tensor_data_detected,
                                      s_setup, s_teardown),
      cmocka_unit_test_setup_teardown(test_find_latest_skips_corrupted_newest,
                                      s_setup, s_teardown),
      cmocka_unit_test_setup_teardown(test_tmp_never_returned, s_setup,
                                      s_teardown),
      cmocka_unit_test_setup_teardown(test_prune_keeps_newest, s_setup,
                                      s_teardown),
      cmocka_unit_test_setup_teardown(test_verify_garbage_files, s_setup,
                                      s_teardown),
      cmocka_unit_test_setup_teardown(test_flip_sweep_never_wrong, s_setup,
                                      s_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
