/* Unit tests for the asynchronous checkpoint writer and the tensor list:
 * snapshots are copies (the caller may change its buffers right after
 * submit), completions come out of poll once each, retention runs after a
 * commit, a failed save is reported and counted (never as a success), and
 * the v2 metadata (virtual_shards, lr_schedule_json) round-trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/ckpt.h"

#define N 5000

static int s_setup(void **state)
{
  char *dir = strdup("/tmp/herd-ckptw-test-XXXXXX");
  assert_non_null(mkdtemp(dir));
  *state = dir;
  return 0;
}

static int s_teardown(void **state)
{
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", (char *)*state);
  assert_int_equal(system(cmd), 0);
  free(*state);
  return 0;
}

static void s_meta(herd_ckpt_meta_t *meta, int64_t step)
{
  memset(meta, 0, sizeof *meta);
  meta->step = step;
  meta->world_size = 2;
  snprintf(meta->lr_schedule_json, sizeof meta->lr_schedule_json,
           "{\"position\":%lld}", (long long)step);
}

static void test_writer_snapshots_and_retention(void **state)
{
  const char *dir = *state;
  static float data[N], out[N];
  static herd_ckpt_meta_t meta, got;
  herd_ckpt_writer_t *w = NULL;
  herd_ckpt_completion_t c;
  herd_tensor_t t = {"params", HERD_DTYPE_F32, data, N};
  herd_tensor_t to = {"params", HERD_DTYPE_F32, out, N};
  assert_int_equal(herd_ckpt_writer_new(dir, 2, &w), HERD_OK);
  for (int step = 1; step <= 4; step++) {
    for (int i = 0; i < N; i++)
      data[i] = (float)(step * 10 + i);
    s_meta(&meta, step);
    assert_int_equal(herd_ckpt_writer_submit(w, &meta, &t, 1), HERD_OK);
    memset(data, 0xff, sizeof data); /* the snapshot must not see this */
  }
  assert_int_equal(herd_ckpt_writer_wait(w), HERD_OK);
  int seen = 0;
  while (herd_ckpt_writer_poll(w, &c)) {
    assert_int_equal(c.result, HERD_OK);
    assert_int_equal(c.step, ++seen);
  }
  assert_int_equal(seen, 4);
  herd_ckpt_writer_stats_t stats;
  herd_ckpt_writer_stats(w, &stats);
  assert_int_equal(stats.submitted, 4);
  assert_int_equal(stats.committed, 4);
  assert_int_equal(stats.failed, 0);
  assert_true(stats.snapshot_bytes >= N * sizeof(float));
  herd_ckpt_writer_destroy(&w);
  herd_ckpt_writer_destroy(&w); /* NULL-safe */
  char path[PATH_MAX];
  assert_int_equal(herd_ckpt_find_latest(dir, path, sizeof path), HERD_OK);
  assert_int_equal(herd_ckpt_load(path, &got, &to, 1), HERD_OK);
  assert_int_equal(got.step, 4);
  assert_int_equal(got.virtual_shards, HERD_CKPT_VIRTUAL_SHARDS_DEFAULT);
  assert_string_equal(got.lr_schedule_json, "{\"position\":4}");
  for (int i = 0; i < N; i++)
    assert_true(out[i] == (float)(40 + i));
  snprintf(path, sizeof path, "%s/ckpt-0000000002.h5", dir);
  assert_int_not_equal(access(path, F_OK), 0); /* keep 2: 3 and 4 remain */
}

static void test_writer_failure_reported(void **state)
{
  const char *dir = *state;
  static float data[N];
  static herd_ckpt_meta_t meta;
  char blocked[PATH_MAX];
  herd_ckpt_writer_t *w = NULL;
  herd_ckpt_completion_t c;
  herd_tensor_t t = {"params", HERD_DTYPE_F32, data, N};
  snprintf(blocked, sizeof blocked, "%s/file", dir);
  FILE *f = fopen(blocked, "w"); /* a file where the directory should be */
  assert_non_null(f);
  fclose(f);
  assert_int_equal(herd_ckpt_writer_new(blocked, 0, &w), HERD_OK);
  s_meta(&meta, 1);
  assert_int_equal(herd_ckpt_writer_submit(w, &meta, &t, 1), HERD_OK);
  assert_int_not_equal(herd_ckpt_writer_wait(w), HERD_OK);
  assert_true(herd_ckpt_writer_poll(w, &c));
  assert_int_not_equal(c.result, HERD_OK);
  assert_true(c.detail[0] != '\0');
  assert_false(herd_ckpt_writer_poll(w, &c));
  herd_ckpt_writer_stats_t stats;
  herd_ckpt_writer_stats(w, &stats);
  assert_int_equal(stats.failed, 1);
  assert_int_equal(stats.committed, 0);
  herd_ckpt_writer_destroy(&w);
}

static void test_list_tensors(void **state)
{
  const char *dir = *state;
  static float data[N];
  static herd_ckpt_meta_t meta;
  int64_t st = 7;
  char path[PATH_MAX];
  herd_tensor_t t[2] = {{"params", HERD_DTYPE_F32, data, N},
                        {"optim/step", HERD_DTYPE_I64, &st, 1}};
  s_meta(&meta, 3);
  assert_int_equal(herd_ckpt_save(dir, &meta, t, 2, path, sizeof path),
                   HERD_OK);
  herd_ckpt_tensor_info_t info[4];
  size_t count = 0;
  assert_int_equal(herd_ckpt_list_tensors(path, info, 4, &count), HERD_OK);
  assert_int_equal(count, 2);
  assert_string_equal(info[0].name, "params");
  assert_int_equal(info[0].dtype, HERD_DTYPE_F32);
  assert_int_equal(info[0].count, N);
  assert_string_equal(info[1].name, "optim/step");
  assert_int_equal(info[1].dtype, HERD_DTYPE_I64);
  assert_int_equal(herd_ckpt_list_tensors(path, info, 1, &count), HERD_OK);
  assert_int_equal(count, 2);
  assert_int_not_equal(herd_ckpt_list_tensors("/nonexistent", info, 4, &count),
                       HERD_OK);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_writer_snapshots_and_retention,
                                      s_setup, s_teardown),
      cmocka_unit_test_setup_teardown(test_writer_failure_reported, s_setup,
                                      s_teardown),
      cmocka_unit_test_setup_teardown(test_list_tensors, s_setup, s_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
