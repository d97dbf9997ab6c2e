/* File-system rendezvous store for tests: see test_comm_store.h.
 * Keys may contain '/'; they become '_' in file names (namespaces stay
 * distinct because generation prefixes differ in their digits). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "herd/comm.h"
#include "test_comm_store.h"

static void s_path(const char *dir, const char *key, char *out, size_t cap)
{
  int n = snprintf(out, cap, "%s/", dir);
  for (const char *k = key; *k && (size_t)n + 1 < cap; k++)
    out[n++] = *k == '/' ? '_' : *k;
  out[n] = '\0';
}

static herd_result_t s_set(void *ctx, const char *key, const void *value,
                           size_t len)
{
  char path[4096], tmp[4200];
  s_path(ctx, key, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return herd_error_set(HERD_EIO, "file store: %s: %s", tmp, strerror(errno));
  size_t wrote = fwrite(value, 1, len, f);
  if (fclose(f) != 0 || wrote != len || rename(tmp, path) != 0)
    return herd_error_set(HERD_EIO, "file store: writing %s failed", path);
  return HERD_OK;
}

static herd_result_t s_read(const char *path, void *buf, size_t cap,
                            size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return HERD_ENOENT;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t want = (size_t)size < cap ? (size_t)size : cap;
  size_t got = fread(buf, 1, want, f);
  fclose(f);
  *len = (size_t)size;
  return got == want ? HERD_OK : HERD_EIO;
}

static herd_result_t s_get(void *ctx, const char *key, void *buf, size_t cap,
                           size_t *len, int timeout_ms)
{
  char path[4096];
  s_path(ctx, key, path, sizeof path);
  for (int waited_ms = 0;; waited_ms += 2) {
    herd_result_t rc = s_read(path, buf, cap, len);
    if (rc != HERD_ENOENT)
      return rc == HERD_OK ? rc : herd_error_set(rc, "file store: %s", path);
    if (waited_ms >= timeout_ms)
      return herd_error_set(HERD_ETIMEDOUT, "file store: no key %s after %d ms",
                            key, timeout_ms);
    nanosleep(&(struct timespec){0, 2000000}, NULL);
  }
}

static void s_destroy(void *ctx) { free(ctx); }

herd_result_t herd_test_file_store_new(const char *dir,
                                       herd_comm_store_t **store_out)
{
  static const herd_comm_store_ops_t ops = {.set = s_set, .get = s_get,
                                            .destroy = s_destroy};
  char *copy = strdup(dir);
  if (!copy)
    return HERD_ENOMEM;
  return herd_comm_store_new(&ops, copy, NULL, store_out);
}

herd_result_t herd_test_store_dir(char *out, size_t cap)
{
  const char *env = getenv("HERD_COMM_FILE_STORE");
  if (env && *env) {
    snprintf(out, cap, "%s", env);
    mkdir(out, 0700);
    return HERD_OK;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(out, cap, "%s/herd-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(out))
    return herd_error_set(HERD_EIO, "mkdtemp %s: %s", out, strerror(errno));
  return HERD_OK;
}

int herd_test_spawn(int world, pid_t *pids, herd_test_rank_fn body,
                    const char *dir, void *arg)
{
  fflush(NULL);
  for (int r = 0; r < world; r++) {
    pids[r] = fork();
    if (pids[r] < 0)
      return -1;
    if (pids[r] == 0) {
      int rc = body(r, world, dir, arg);
      fflush(NULL);
      _exit(rc);
    }
  }
  return 0;
}

int herd_test_wait_all(int world, const pid_t *pids)
{
  int failed = 0;
  for (int r = 0; r < world; r++) {
    int status = 0;
    if (pids[r] <= 0 || waitpid(pids[r], &status, 0) < 0 ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "rank %d failed (status 0x%x)\n", r, status);
      failed++;
    }
  }
  return failed;
}

void herd_test_store_dir_remove(const char *dir)
{
  const char *env = getenv("HERD_COMM_FILE_STORE");
  if (env && strcmp(env, dir) == 0)
    return; /* the caller's directory: leave it */
  DIR *d = opendir(dir);
  if (!d)
    return;
  char path[4096];
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) != 0 && e->d_type == DT_DIR) { /* one level down */
      DIR *sub = opendir(path);
      char inner[8200];
      for (struct dirent *f; sub && (f = readdir(sub));)
        if (f->d_name[0] != '.') {
          snprintf(inner, sizeof inner, "%s/%s", path, f->d_name);
          unlink(inner);
        }
      if (sub)
        closedir(sub);
      rmdir(path);
    }
  }
  closedir(d);
  rmdir(dir);
}
