/* Integration: the elastic coordinator with real processes on loopback.
 *
 * `herd coord` runs as its own process (so it can be kill -9'd and
 * restarted) and every worker is a test_coord_worker process that steps,
 * reports and prints "S generation rank world step" lines, which the test
 * reads to follow each worker. Scenarios (issue 3, acceptance 1): N workers
 * join; kill -9 one and a generation forms without it; a new worker is
 * admitted at the next generation; kill the coordinator and the workers keep
 * stepping; restart it and it adopts them and their generation; too few
 * workers for --min fail at the join timeout with a clear error; a hung rank
 * is evicted by the progress watchdog; the rendezvous store. Every wait is
 * bounded; every child is killed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "herd/herd.h"
#include "herd/coord.h"
#include "test_proc.h"

#define TOKEN "elastic-token"
#define JOB "job-e"
#define MAX_WORKERS 8

static int64_t s_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- processes ------------------------------------------------------------ */

typedef struct {
  pid_t pid;
  int in_fd, out_fd; /* its stdin (write end), its stdout (read end) */
  char buf[4096];
  size_t used;
  long long generation, step;
  int rank, world;
  int join_failed;
  int job_done; /* printed REFUSED job_done=1 */
} s_proc_t;

/* Every child still running: a failed assertion longjmps out of the test
 * past its s_cleanup, and the teardown kills what is left here. */
#define S_MAX_CHILDREN 64
static pid_t s_children[S_MAX_CHILDREN];

static void s_child_started(pid_t pid)
{
  for (int i = 0; i < S_MAX_CHILDREN; i++)
    if (s_children[i] <= 0) {
      s_children[i] = pid;
      return;
    }
  fail_msg("more than %d children", S_MAX_CHILDREN);
}

static void s_child_reaped(pid_t pid)
{
  for (int i = 0; i < S_MAX_CHILDREN; i++)
    if (s_children[i] == pid)
      s_children[i] = 0;
}

static int s_kill_leftovers(void **state)
{
  (void)state;
  for (int i = 0; i < S_MAX_CHILDREN; i++)
    if (s_children[i] > 0) {
      kill(s_children[i], SIGKILL);
      waitpid(s_children[i], NULL, 0);
      s_children[i] = 0;
    }
  return 0;
}

/* Spawns argv with pipes (test_proc.h); stderr to `log` if given. */
static void s_spawn(s_proc_t *p, char *const argv[], const char *log)
{
  memset(p, 0, sizeof *p);
  p->rank = -1;
  p->pid = herd_test_spawn_piped(argv, log, &p->in_fd, &p->out_fd);
  assert_true(p->pid > 0);
  s_child_started(p->pid);
}

static void s_parse_line(s_proc_t *p, const char *line)
{
  long long g, s;
  int r, w;
  if (sscanf(line, "S %lld %d %d %lld", &g, &r, &w, &s) == 4) {
    p->generation = g, p->rank = r, p->world = w, p->step = s;
  } else if (!strncmp(line, "JOIN_FAILED", 11)) {
    p->join_failed = 1;
  } else if (!strcmp(line, "REFUSED job_done=1")) {
    p->job_done = 1;
  }
}

/* Reads whatever the process printed; keeps the latest state. */
static void s_poll(s_proc_t *p)
{
  for (;;) {
    ssize_t n = read(p->out_fd, p->buf + p->used, sizeof p->buf - 1 - p->used);
    if (n <= 0)
      return;
    p->used += (size_t)n;
    p->buf[p->used] = '\0';
    char *line = p->buf, *nl;
    while ((nl = strchr(line, '\n'))) {
      *nl = '\0';
      s_parse_line(p, line);
      line = nl + 1;
    }
    p->used = strlen(line);
    memmove(p->buf, line, p->used);
  }
}

static int s_reap(s_proc_t *p, int timeout_ms)
{
  int status = -1;
  int64_t deadline = s_now_ms() + timeout_ms;
  if (p->pid <= 0)
    return -1;
  while (waitpid(p->pid, &status, WNOHANG) == 0) {
    if (s_now_ms() > deadline) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      break;
    }
    usleep(5000);
  }
  s_child_reaped(p->pid);
  p->pid = -1;
  close(p->in_fd);
  close(p->out_fd);
  return status;
}

static void s_kill9(s_proc_t *p)
{
  kill(p->pid, SIGKILL);
  s_reap(p, 2000);
}

typedef struct {
  char dir[64];
  char run_dir[128];
  char log[128];
  char endpoint[64];
  char port[16];
} s_env_t;

static void s_env_make(s_env_t *env)
{
  snprintf(env->dir, sizeof env->dir, "/tmp/herd-test-elastic-XXXXXX");
  assert_non_null(mkdtemp(env->dir));
  snprintf(env->run_dir, sizeof env->run_dir, "%s/run", env->dir);
  snprintf(env->log, sizeof env->log, "%s/log.txt", env->dir);
  int port = herd_test_free_port();
  assert_true(port > 0);
  snprintf(env->port, sizeof env->port, "%d", port);
  snprintf(env->endpoint, sizeof env->endpoint, "tcp://127.0.0.1:%s",
           env->port);
}

static void s_env_remove(s_env_t *env)
{
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", env->dir);
  assert_int_equal(system(cmd), 0);
}

static void s_start_coord(s_proc_t *p, s_env_t *env, const char *min,
                          const char *max, const char *join_timeout)
{
  char *argv[] = {HERD_BIN, "coord", "--port", env->port, "--token", TOKEN,
                  "--job-id", JOB, "--run-dir", env->run_dir, "--min",
                  (char *)min, "--max", (char *)max, "--join-timeout",
                  (char *)join_timeout, "--last-call-ms", "300", NULL};
  s_spawn(p, argv, env->log);
}

/* stop: "--hang-after" (stops stepping, not waiting: hung) or
 * "--wait-after" (stops stepping and waits on its peers). */
static void s_start_stopping_worker(s_proc_t *p, s_env_t *env,
                                    const char *stop, const char *after)
{
  char *argv[] = {WORKER_BIN,   "--coord", env->endpoint, "--token",
                  TOKEN,        "--job-id", JOB,          (char *)stop,
                  (char *)after, "--duration-s", "60",    NULL};
  s_spawn(p, argv, env->log);
}

static void s_start_worker(s_proc_t *p, s_env_t *env, const char *hang_after)
{
  s_start_stopping_worker(p, env, "--hang-after", hang_after);
}

/* Waits until every live worker in ws[0..n) reports generation g, world w. */
static int s_wait_generation(s_proc_t *ws, int n, long long g, int w,
                             int timeout_ms)
{
  int64_t deadline = s_now_ms() + timeout_ms;
  for (;;) {
    int ok = 1;
    for (int i = 0; i < n; i++) {
      if (ws[i].pid <= 0)
        continue;
      s_poll(&ws[i]);
      ok = ok && ws[i].generation == g && ws[i].world == w;
    }
    if (ok || s_now_ms() > deadline)
      return ok;
    usleep(10000);
  }
}

/* ---- events.jsonl and herd status ----------------------------------------- */

/* Counts events named `name` whose string field `field` contains `text`
 * (any when field is NULL). */
static int s_count_events(const char *run_dir, const char *name,
                          const char *field, const char *text)
{
  char path[200], line[4096];
  int count = 0;
  snprintf(path, sizeof path, "%s/events.jsonl", run_dir);
  FILE *file = fopen(path, "r");
  if (!file)
    return 0;
  while (fgets(line, sizeof line, file)) {
    json_error_t error;
    json_t *e = json_loads(line, 0, &error);
    const char *ev = json_string_value(json_object_get(e, "event"));
    const char *value = field ? json_string_value(json_object_get(e, field))
                              : NULL;
    if (ev && !strcmp(ev, name) && (!field || (value && strstr(value, text))))
      count++;
    json_decref(e);
  }
  fclose(file);
  return count;
}

/* `herd status --json`, parsed; NULL if it failed. */
static json_t *s_status(s_env_t *env)
{
  char cmd[400], out[65536];
  snprintf(cmd, sizeof cmd,
           "%s status --coord %s --token %s --job-id %s --json --timeout 2",
           HERD_BIN, env->endpoint, TOKEN, JOB);
  FILE *pipe = popen(cmd, "r");
  assert_non_null(pipe);
  size_t n = fread(out, 1, sizeof out - 1, pipe);
  out[n] = '\0';
  pclose(pipe);
  json_error_t error;
  return json_loads(out, 0, &error);
}

static json_int_t s_int(json_t *obj, const char *key)
{
  return json_integer_value(json_object_get(obj, key));
}

/* Polls herd status until generation g with `members` members runs. */
static json_t *s_wait_status(s_env_t *env, long long g, int members,
                             int timeout_ms)
{
  int64_t deadline = s_now_ms() + timeout_ms;
  for (;;) {
    json_t *st = s_status(env);
    const char *state = json_string_value(json_object_get(st, "job_state"));
    if (st && s_int(st, "generation") == g &&
        s_int(st, "member_count") == members && state &&
        !strcmp(state, "running"))
      return st;
    json_decref(st);
    if (s_now_ms() > deadline)
      return NULL;
    usleep(100000);
  }
}

/* ---- scenarios ------------------------------------------------------------ */

static s_proc_t *s_with_rank(s_proc_t *ws, int n, int rank)
{
  for (int i = 0; i < n; i++)
    if (ws[i].pid > 0 && ws[i].rank == rank)
      return &ws[i];
  return NULL;
}

static void s_cleanup(s_proc_t *coord, s_proc_t *ws, int n)
{
  for (int i = 0; i < n; i++)
    if (ws[i].pid > 0) {
      close(ws[i].in_fd); /* leave */
      ws[i].in_fd = open("/dev/null", O_RDONLY);
      s_reap(&ws[i], 3000);
    }
  if (coord->pid > 0) {
    kill(coord->pid, SIGTERM);
    s_reap(coord, 5000);
  }
}

/* Join, kill -9 a worker, admit a newcomer. */
static void s_join_fail_admit(s_env_t *env, s_proc_t *ws, int *n)
{
  for (int i = 0; i < 3; i++)
    s_start_worker(&ws[i], env, "-1");
  *n = 3;
  assert_true(s_wait_generation(ws, *n, 1, 3, 10000));

  s_proc_t *victim = s_with_rank(ws, *n, 1);
  assert_non_null(victim);
  int64_t killed_ms = s_now_ms();
  s_kill9(victim);
  assert_true(s_wait_generation(ws, *n, 2, 2, 5000));
  /* the lost connection is the fastest signal: well under a second */
  assert_true(s_now_ms() - killed_ms < 1000);
  assert_int_equal(s_count_events(env->run_dir, "member_failed", "reason",
                                   "connection lost"),
                   1);
  assert_int_equal(s_with_rank(ws, *n, 0)->world, 2);

  s_start_worker(&ws[(*n)++], env, "-1");
  assert_true(s_wait_generation(ws, *n, 3, 3, 10000));
  assert_int_equal(s_count_events(env->run_dir, "member_joined", NULL, NULL),
                   4);
}

/* Kill the coordinator; the workers go on; a restart adopts them. */
static void s_coord_restart(s_env_t *env, s_proc_t *coord, s_proc_t *ws, int n)
{
  json_t *st = s_wait_status(env, 3, 3, 5000);
  assert_non_null(st);
  assert_int_equal(s_int(st, "world_size"), 3);
  assert_int_equal(json_array_size(json_object_get(st, "members")), 3);
  json_decref(st);

  s_kill9(coord);
  long long before[MAX_WORKERS];
  for (int i = 0; i < n; i++) {
    s_poll(&ws[i]);
    before[i] = ws[i].step;
  }
  usleep(1000 * 1000);
  for (int i = 0; i < n; i++) {
    if (ws[i].pid <= 0)
      continue;
    s_poll(&ws[i]);
    assert_true(ws[i].step >= before[i] + 10); /* ~50 steps a second */
    assert_int_equal(ws[i].generation, 3);
  }

  s_start_coord(coord, env, "2", "4", "30");
  st = s_wait_status(env, 3, 3, 8000);
  assert_non_null(st); /* same generation, all three members back */
  assert_int_equal(s_int(st, "world_size"), 3);
  json_decref(st);
  assert_int_equal(s_count_events(env->run_dir, "member_adopted", NULL, NULL),
                   3);
  usleep(300 * 1000);
  for (int i = 0; i < n; i++) {
    if (ws[i].pid <= 0)
      continue;
    s_poll(&ws[i]);
    assert_int_equal(ws[i].generation, 3); /* nobody was re-formed */
  }
}

static void test_elastic_lifecycle(void **state)
{
  s_env_t env;
  s_proc_t coord, ws[MAX_WORKERS];
  int n = 0;
  s_env_make(&env);
  s_start_coord(&coord, &env, "2", "4", "30");
  s_join_fail_admit(&env, ws, &n);
  s_coord_restart(&env, &coord, ws, n);
  s_cleanup(&coord, ws, n);
  s_env_remove(&env);
}

/* The coordinator dies while a member is still in the generation's
 * rendezvous (whose keys die with the coordinator's store): the restarted
 * coordinator forms a new generation instead of adopting one that can
 * never finish. */
static void test_restart_during_rendezvous_reforms(void **state)
{
  s_env_t env;
  s_proc_t coord, ws[2];
  s_env_make(&env);
  s_start_coord(&coord, &env, "2", "2", "30");
  s_start_worker(&ws[0], &env, "-1");
  s_start_stopping_worker(&ws[1], &env, "--pending-generation", "1");
  assert_true(s_wait_generation(ws, 2, 1, 2, 10000));
  s_kill9(&coord);
  s_start_coord(&coord, &env, "2", "2", "30");
  assert_true(s_wait_generation(ws, 2, 2, 2, 10000));
  assert_int_equal(s_count_events(env.run_dir, "member_adopted", NULL, NULL),
                   0);
  /* re-formed for the pending claim, not for a member missing the window */
  char text[8192] = "";
  FILE *log = fopen(env.log, "r");
  assert_non_null(log);
  text[fread(text, 1, sizeof text - 1, log)] = '\0';
  fclose(log);
  assert_non_null(strstr(text, "generation 1 was still in its rendezvous"));
  s_cleanup(&coord, ws, 2);
  s_env_remove(&env);
}

static void test_too_few_workers_time_out(void **state)
{
  s_env_t env;
  s_proc_t coord, worker;
  s_env_make(&env);
  s_start_coord(&coord, &env, "3", "3", "1");
  s_start_worker(&worker, &env, "-1");
  int64_t started = s_now_ms();
  int status = s_reap(&coord, 8000);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 1);
  assert_true(s_now_ms() - started >= 900);
  char text[4096] = "";
  FILE *log = fopen(env.log, "r");
  assert_non_null(log);
  size_t len = fread(text, 1, sizeof text - 1, log);
  text[len] = '\0';
  fclose(log);
  assert_non_null(strstr(text, "only 1 of 3 workers joined within 1 s"));
  assert_int_equal(s_count_events(env.run_dir, "job_failed", "reason",
                                   "only 1 of 3"),
                   1);
  kill(worker.pid, SIGKILL);
  s_reap(&worker, 2000);
  s_env_remove(&env);
}

/* Two ranks wait in the "all-reduce" from step 25 on, the third stops
 * there without waiting (hung in its own computation): it alone is failed
 * by the watchdog, as hung. */
static void test_watchdog_evicts_hung_rank(void **state)
{
  s_env_t env;
  s_proc_t coord, ws[3];
  s_env_make(&env);
  s_start_coord(&coord, &env, "2", "3", "30");
  s_start_stopping_worker(&ws[0], &env, "--wait-after", "25");
  s_start_stopping_worker(&ws[1], &env, "--wait-after", "25");
  s_start_worker(&ws[2], &env, "25");
  assert_true(s_wait_generation(ws, 3, 1, 3, 10000));
  /* median step 20 ms x 10 < the 4 s floor: failed about 4 s after step 25 */
  assert_true(s_wait_generation(ws, 2, 2, 2, 10000));
  s_poll(&ws[2]);
  assert_int_equal(s_count_events(env.run_dir, "member_failed", "reason",
                                   "progress watchdog: hung at step 25"),
                   1);
  s_cleanup(&coord, ws, 3);
  s_env_remove(&env);
}

/* Rank 0 reports the job done while a newcomer has just been admitted:
 * every other member is told the job finished (Refused.job_done), so the
 * newcomer need not wait out its join timeout. */
static void test_job_done_reaches_every_member(void **state)
{
  s_env_t env;
  s_proc_t coord, ws[3];
  s_env_make(&env);
  s_start_coord(&coord, &env, "2", "3", "30");
  s_start_stopping_worker(&ws[0], &env, "--done-at", "150"); /* ~3 s */
  s_start_stopping_worker(&ws[1], &env, "--done-at", "150");
  assert_true(s_wait_generation(ws, 2, 1, 2, 10000));
  s_start_worker(&ws[2], &env, "-1");
  assert_true(s_wait_generation(ws, 3, 2, 3, 10000));
  int64_t deadline = s_now_ms() + 10000;
  int told = 0;
  while (!told && s_now_ms() < deadline) { /* the newcomer and the other
                                              * member; rank 0 sent it */
    usleep(10000);
    for (int i = 0; i < 3; i++)
      s_poll(&ws[i]);
    told = ws[2].job_done && ws[0].job_done + ws[1].job_done == 1;
  }
  assert_true(told);
  s_cleanup(&coord, ws, 3);
  s_env_remove(&env);
}

/* Every rank waits (a stall they share, say the network): nobody is to
 * blame, nobody is failed. */
static void test_watchdog_blames_nobody_when_all_wait(void **state)
{
  s_env_t env;
  s_proc_t coord, ws[3];
  s_env_make(&env);
  s_start_coord(&coord, &env, "2", "3", "30");
  for (int i = 0; i < 3; i++)
    s_start_stopping_worker(&ws[i], &env, "--wait-after", "25");
  assert_true(s_wait_generation(ws, 3, 1, 3, 10000));
  /* past the 4 s floor and then some: still generation 1 */
  assert_false(s_wait_generation(ws, 3, 2, 2, 8000));
  assert_int_equal(s_count_events(env.run_dir, "member_failed", "reason", ""), 0);
  s_cleanup(&coord, ws, 3);
  s_env_remove(&env);
}

/* ---- rendezvous store (in-process coordinator, thread workers) ------------ */

typedef struct {
  herd_worker_t *worker;
  const char *key;
  int timeout_ms;
  herd_result_t rc;
  char value[64];
  size_t len;
} s_getter_t;

static void *s_get_thread(void *arg)
{
  s_getter_t *g = arg;
  g->rc = herd_worker_kv_get(g->worker, g->key, g->value, sizeof g->value,
                             &g->len, g->timeout_ms);
  return NULL;
}

static herd_worker_t *s_join_thread_worker(herd_coord_t *coord)
{
  herd_worker_config_t config = HERD_WORKER_CONFIG_INIT;
  config.coord_endpoint = herd_coord_endpoint(coord);
  config.token = TOKEN;
  config.job_id = JOB;
  config.join_timeout_ms = 5000;
  herd_worker_t *worker = NULL;
  assert_int_equal(herd_worker_join(&config, &worker), HERD_OK);
  return worker;
}

static void test_kv_store(void **state)
{
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.token = TOKEN;
  config.job_id = JOB;
  herd_coord_t *coord = NULL;
  assert_int_equal(herd_coord_new(&config, &coord), HERD_OK);
  herd_worker_t *a = s_join_thread_worker(coord);

  char buf[8];
  size_t len = 0;
  assert_int_equal(herd_worker_kv_set(a, "addr/0", "hello", 5), HERD_OK);
  assert_int_equal(herd_worker_kv_get(a, "addr/0", buf, sizeof buf, &len, 0),
                   HERD_OK);
  assert_int_equal(len, 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(herd_worker_kv_get(a, "addr/0", buf, 2, &len, 0),
                   HERD_ETOOBIG);
  assert_int_equal(len, 5);

  int64_t t0 = s_now_ms();
  assert_int_equal(herd_worker_kv_get(a, "missing", buf, sizeof buf, &len, 200),
                   HERD_ETIMEDOUT);
  assert_true(s_now_ms() - t0 >= 190 && s_now_ms() - t0 < 2000);

  /* A get that waits is answered when another thread sets the key. */
  s_getter_t getter = {a, "late", 3000, HERD_EINVAL, "", 0};
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, s_get_thread, &getter), 0);
  usleep(100 * 1000);
  assert_int_equal(herd_worker_kv_set(a, "late", "v2", 2), HERD_OK);
  pthread_join(thread, NULL);
  assert_int_equal(getter.rc, HERD_OK);
  assert_int_equal(getter.len, 2);
  assert_memory_equal(getter.value, "v2", 2);

  static char big[HERD_WORKER_KV_VALUE_MAX + 1];
  assert_int_equal(herd_worker_kv_set(a, "big", big, sizeof big), HERD_EINVAL);
  assert_int_equal(herd_worker_kv_set(a, "max", big, sizeof big - 1), HERD_OK);
  herd_coord_stats_t stats;
  assert_int_equal(herd_coord_stats(coord, &stats), HERD_OK);
  assert_int_equal(stats.kv_keys, 3);
  assert_int_equal(stats.malformed_messages, 0);
  herd_worker_leave(&a);
  herd_coord_destroy(&coord);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_kv_store, s_kill_leftovers),
      cmocka_unit_test_teardown(test_too_few_workers_time_out, s_kill_leftovers),
      cmocka_unit_test_teardown(test_restart_during_rendezvous_reforms, s_kill_leftovers),
      cmocka_unit_test_teardown(test_watchdog_evicts_hung_rank, s_kill_leftovers),
      cmocka_unit_test_teardown(test_watchdog_blames_nobody_when_all_wait, s_kill_leftovers),
      cmocka_unit_test_teardown(test_job_done_reaches_every_member, s_kill_leftovers),
      cmocka_unit_test_teardown(test_elastic_lifecycle, s_kill_leftovers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
