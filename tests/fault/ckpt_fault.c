/* Fault-injection acceptance tests for checkpoints (ctest label `fault`).
 *
 *   ckpt_fault kill DIR [N]      N (>= 200) kill -9 injections during saves
 *   ckpt_fault corrupt DIR HERD [N]  N single-byte flips + truncations
 *   ckpt_fault saveloop DIR START  (child) saves START, START+1, ... forever
 *
 * kill: half the injections stop a save loop at a named point of the commit
 * protocol (HERD_CKPT_FAULT=<point>:<n>, see checkpoint/FORMAT.md), half at
 * a random time. The child prints "committed S" after each save returns.
 * After each kill the newest checkpoint found must be the last one the child
 * reported, or the one after it (killed after the rename, before the print),
 * must load with exactly the content of its step, and every file under a
 * final name must verify: never a partial one, never a temp file.
 * corrupt: every flip of any byte of a checkpoint must fail verify (the API
 * and `herd ckpt verify`) and make find_latest fall back to the older one.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "herd/ckpt.h"

#define S_COUNT 1000
#define S_LOOP_MAX 60

static const char *const s_points[] = {
    "h5_mid", "h5_closed", "sealed", "synced", "renamed",
    "committed", "latest_tmp", "latest_renamed"};
#define S_NPOINTS (sizeof s_points / sizeof *s_points)

static uint64_t s_rng = 0x2545f4914f6cdd1dULL;
static uint64_t s_next(void)
{
  s_rng ^= s_rng << 13;
  s_rng ^= s_rng >> 7;
  s_rng ^= s_rng << 17;
  return s_rng;
}

static double s_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, " (%s)\n", herd_error_detail());                         \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* The content of step s: every value is a function of s and the index. */
static void s_fill(int64_t step, float *params, float *m, int64_t *st)
{
  for (int i = 0; i < S_COUNT; i++) {
    params[i] = (float)(step * 7 + i);
    m[i] = (float)(step - i);
  }
  *st = step;
}

static size_t s_tensors(herd_tensor_t *t, float *params, float *m,
                        int64_t *st)
{
  t[0] = (herd_tensor_t){"params", HERD_DTYPE_F32, params, S_COUNT};
  t[1] = (herd_tensor_t){"optim/m", HERD_DTYPE_F32, m, S_COUNT};
  t[2] = (herd_tensor_t){"optim/step", HERD_DTYPE_I64, st, 1};
  return 3;
}

static herd_result_t s_save(const char *dir, int64_t step)
{
  static float params[S_COUNT], m[S_COUNT];
  static int64_t st;
  static herd_ckpt_meta_t meta;
  herd_tensor_t t[3];
  memset(&meta, 0, sizeof meta);
  meta.step = step;
  meta.world_size = 1;
  s_fill(step, params, m, &st);
  return herd_ckpt_save(dir, &meta, t, s_tensors(t, params, m, &st), NULL, 0);
}

static int s_saveloop(const char *dir, int64_t start)
{
  char line[64];
  for (int64_t s = start; s < start + S_LOOP_MAX; s++) {
    if (s_save(dir, s) != HERD_OK)
      return 1;
    int n = snprintf(line, sizeof line, "committed %lld\n", (long long)s);
    if (write(1, line, (size_t)n) != n)
      return 1;
    herd_ckpt_prune(dir, 3);
  }
  return 0;
}

/* The loader's view: newest good checkpoint and its content. */
static int64_t s_check_latest(const char *dir)
{
  static float params[S_COUNT], m[S_COUNT], want_p[S_COUNT], want_m[S_COUNT];
  static int64_t st, want_st;
  static herd_ckpt_meta_t meta;
  char path[PATH_MAX];
  herd_tensor_t t[3];
  herd_result_t rc = herd_ckpt_find_latest(dir, path, sizeof path);
  if (rc == HERD_ENOENT)
    return -1;
  CHECK(rc == HERD_OK, "find_latest: %s", herd_strerror(rc));
  CHECK(!strstr(path, ".tmp"), "temp file returned: %s", path);
  size_t n = s_tensors(t, params, m, &st);
  CHECK(herd_ckpt_load(path, &meta, t, n) == HERD_OK, "load %s", path);
  s_fill(meta.step, want_p, want_m, &want_st);
  CHECK(!memcmp(params, want_p, sizeof params) &&
            !memcmp(m, want_m, sizeof m) && st == want_st,
        "content of %s is not step %lld", path, (long long)meta.step);
  return meta.step;
}

/* Every file under a committed name must verify. */
static void s_check_all_committed(const char *dir)
{
  DIR *d = opendir(dir);
  CHECK(d, "opendir %s", dir);
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "ckpt-", 5) || len != 18 ||
        strcmp(e->d_name + 15, ".h5"))
      continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    CHECK(herd_ckpt_verify(path) == HERD_OK, "committed %s is partial", path);
  }
  closedir(d);
}

/* Runs one save loop from `start`, kills it, returns the last step it
 * reported (or start - 1). */
static int64_t s_one_kill(const char *self, const char *dir, int64_t start,
                          int injection)
{
  int fds[2];
  char start_text[32], spec[64];
  CHECK(pipe(fds) == 0, "pipe");
  snprintf(start_text, sizeof start_text, "%lld", (long long)start);
  int timed = injection % 2;
  snprintf(spec, sizeof spec, "%s:%d", s_points[(injection / 2) % S_NPOINTS],
           1 + (int)(s_next() % 3));
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    if (timed)
      unsetenv("HERD_CKPT_FAULT");
    else
      setenv("HERD_CKPT_FAULT", spec, 1);
    execl("/proc/self/exe", self, "saveloop", dir, start_text, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  if (timed) {
    usleep((useconds_t)(s_next() % 40000));
    kill(pid, SIGKILL);
  }
  char buf[8192];
  size_t len = 0;
  for (ssize_t n; (n = read(fds[0], buf + len, sizeof buf - 1 - len)) != 0;) {
    if (n < 0 && errno == EINTR)
      continue;
    CHECK(n > 0, "read pipe");
    len += (size_t)n;
    if (len == sizeof buf - 1)
      len = 0; /* bounded: the loop prints < 60 lines anyway */
  }
  buf[len] = '\0';
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(!WIFEXITED(status) || WEXITSTATUS(status) == 0,
        "save loop failed with status %d", WEXITSTATUS(status));
  int64_t last = start - 1;
  for (char *p = buf; (p = strstr(p, "committed ")); p++)
    last = strtoll(p + 10, NULL, 10);
  return last;
}

static int s_kill(const char *self, const char *dir, int injections)
{
  int64_t committed = -1;
  double t0 = s_now();
  mkdir(dir, 0777);
  for (int i = 0; i < injections; i++) {
    int64_t reported = s_one_kill(self, dir, committed + 1, i);
    if (reported > committed)
      committed = reported;
    int64_t found = s_check_latest(dir);
    CHECK(found == committed || found == committed + 1,
          "injection %d (%s): loaded step %lld, last committed %lld", i,
          i % 2 ? "timed" : s_points[(i / 2) % S_NPOINTS], (long long)found,
          (long long)committed);
    committed = found;
    s_check_all_committed(dir);
  }
  printf("kill: %d injections, newest step %lld, %.1f s: ok\n", injections,
         (long long)committed, s_now() - t0);
  return 0;
}

static void s_flip(const char *path, off_t off, unsigned char mask)
{
  unsigned char b;
  int fd = open(path, O_RDWR);
  CHECK(fd >= 0 && pread(fd, &b, 1, off) == 1, "read %s", path);
  b ^= mask;
  CHECK(pwrite(fd, &b, 1, off) == 1, "write %s", path);
  close(fd);
}

/* `herd ckpt verify TARGET` must exit non-zero. */
static void s_cli_fails(const char *herd, const char *target)
{
  char cmd[2 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "'%s' ckpt verify '%s' >/dev/null 2>&1", herd,
           target);
  int status = system(cmd);
  CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0,
        "herd ckpt verify accepted damaged %s", target);
}

static int s_corrupt(const char *dir, const char *herd, int flips)
{
  char newest[PATH_MAX], found[PATH_MAX];
  struct stat st;
  mkdir(dir, 0777);
  CHECK(s_save(dir, 1) == HERD_OK && s_save(dir, 2) == HERD_OK, "save");
  snprintf(newest, sizeof newest, "%s/ckpt-0000000002.h5", dir);
  CHECK(stat(newest, &st) == 0, "stat");
  for (int i = 0; i < flips; i++) {
    off_t off = (off_t)(s_next() % (uint64_t)st.st_size);
    unsigned char mask = (unsigned char)(1 + s_next() % 255);
    s_flip(newest, off, mask);
    CHECK(herd_ckpt_verify(newest) != HERD_OK, "flip at %lld not detected",
          (long long)off);
    CHECK(herd_ckpt_find_latest(dir, found, sizeof found) == HERD_OK &&
              strstr(found, "ckpt-0000000001.h5"),
          "find_latest did not fall back after a flip at %lld",
          (long long)off);
    if (i % 25 == 0) {
      s_cli_fails(herd, newest);
      s_cli_fails(herd, dir);
    }
    s_flip(newest, off, mask);
  }
  CHECK(herd_ckpt_verify(newest) == HERD_OK, "restored file fails");
  for (int i = 0; i < 20; i++) { /* truncations */
    off_t len = (off_t)(s_next() % (uint64_t)st.st_size);
    char cut[PATH_MAX + 8];
    snprintf(cut, sizeof cut, "%s/cut.h5", dir);
    int in = open(newest, O_RDONLY), out = open(cut, O_WRONLY | O_CREAT |
                                                       O_TRUNC, 0644);
    char *buf = malloc((size_t)len + 1);
    CHECK(in >= 0 && out >= 0 && buf && pread(in, buf, (size_t)len, 0) == len &&
              write(out, buf, (size_t)len) == len,
          "copy");
    close(in);
    close(out);
    free(buf);
    CHECK(herd_ckpt_verify(cut) != HERD_OK, "truncation to %lld accepted",
          (long long)len);
    unlink(cut);
  }
  printf("corrupt: %d flips and 20 truncations of a %lld-byte file, all "
         "detected: ok\n", flips, (long long)st.st_size);
  return 0;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  s_rng ^= (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
  if (argc == 4 && !strcmp(argv[1], "saveloop"))
    return s_saveloop(argv[2], strtoll(argv[3], NULL, 10));
  if (argc >= 3 && !strcmp(argv[1], "kill"))
    return s_kill(argv[0], argv[2], argc > 3 ? atoi(argv[3]) : 240);
  if (argc >= 4 && !strcmp(argv[1], "corrupt"))
    return s_corrupt(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 1000);
  fprintf(stderr, "usage: ckpt_fault kill DIR [N] | corrupt DIR HERD [N] | "
                  "saveloop DIR START\n");
  return 2;
}
