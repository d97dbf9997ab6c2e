/* Integration: a real coordinator on loopback and real workers.
 *
 * Workers are threads where only membership and reports matter, and forked
 * processes where a worker has to die for real (kill -9 stops its
 * heartbeats). Forks happen before the coordinator starts, so each child is
 * a copy of a single-threaded process; the children learn the endpoint
 * through a pipe and report every roster they receive through another.
 * Every wait is bounded.
 */
#include <errno.h>
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

#define TOKEN "s3cret"
#define JOB "job-t"

static int64_t s_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef int (*s_pred_t)(const herd_coord_stats_t *stats);
static int s_done_at_3(const herd_coord_stats_t *s)
{
  return s->done && s->step == 3;
}
static int s_no_members(const herd_coord_stats_t *s) { return s->members == 0; }
static int s_failed(const herd_coord_stats_t *s) { return s->failed; }
static int s_one_failure(const herd_coord_stats_t *s)
{
  return s->failures == 1;
}

/* Polls stats until `pred` holds or timeout_ms passes; returns pred. */
static int s_wait(herd_coord_t *coord, herd_coord_stats_t *stats, s_pred_t pred,
                  int timeout_ms)
{
  int64_t deadline = s_now_ms() + timeout_ms;
  for (;;) {
    assert_int_equal(herd_coord_stats(coord, stats), HERD_OK);
    if (pred(stats) || s_now_ms() > deadline)
      return pred(stats);
    usleep(5000);
  }
}

typedef struct {
  char dir[64];
  char run_dir[96];
} s_tmp_t;

static void s_tmp_make(s_tmp_t *tmp)
{
  snprintf(tmp->dir, sizeof tmp->dir, "/tmp/herd-test-coord-XXXXXX");
  assert_non_null(mkdtemp(tmp->dir));
  snprintf(tmp->run_dir, sizeof tmp->run_dir, "%s/run", tmp->dir);
}

static void s_tmp_remove(s_tmp_t *tmp)
{
  char path[160];
  snprintf(path, sizeof path, "%s/events.jsonl", tmp->run_dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/summary.json", tmp->run_dir);
  unlink(path);
  rmdir(tmp->run_dir);
  rmdir(tmp->dir);
}

/* -1: heartbeats only (so a test can tell the slower signals apart). */
static int s_disconnect_is_failure = 0;

static herd_coord_t *s_coord_start_range(const char *run_dir, int min_workers,
                                         int max_workers, int join_timeout_ms)
{
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.token = TOKEN;
  config.job_id = JOB;
  config.run_dir = run_dir;
  config.min_workers = min_workers;
  config.max_workers = max_workers;
  config.heartbeat_interval_ms = 100;
  config.heartbeat_misses = 3;
  config.join_timeout_ms = join_timeout_ms;
  config.disconnect_is_failure = s_disconnect_is_failure;
  herd_coord_t *coord = NULL;
  assert_int_equal(herd_coord_new(&config, &coord), HERD_OK);
  assert_non_null(coord);
  assert_true(strncmp(herd_coord_endpoint(coord), "tcp://127.0.0.1:", 16) == 0);
  return coord;
}

static herd_coord_t *s_coord_start(const char *run_dir, int min_workers,
                                   int join_timeout_ms)
{
  return s_coord_start_range(run_dir, min_workers, min_workers,
                             join_timeout_ms);
}

/* All lines of events.jsonl as a JSON array; checks the line contract. */
static json_t *s_read_events(const char *run_dir)
{
  char path[160], line[4096];
  snprintf(path, sizeof path, "%s/events.jsonl", run_dir);
  FILE *file = fopen(path, "r");
  assert_non_null(file);
  json_t *events = json_array();
  while (fgets(line, sizeof line, file)) {
    json_error_t error;
    json_t *event = json_loads(line, 0, &error);
    assert_non_null(event);
    assert_true(json_is_real(json_object_get(event, "ts")));
    assert_true(json_real_value(json_object_get(event, "ts")) > 1.6e9);
    assert_true(json_is_string(json_object_get(event, "event")));
    json_array_append_new(events, event);
  }
  fclose(file);
  return events;
}

/* The n-th (0-based) event named `name`, or NULL; *count_out = how many. */
static json_t *s_event(json_t *events, const char *name, size_t n,
                       size_t *count_out)
{
  size_t i, count = 0;
  json_t *event, *found = NULL;
  json_array_foreach(events, i, event)
  {
    if (strcmp(json_string_value(json_object_get(event, "event")), name))
      continue;
    if (count++ == n)
      found = event;
  }
  if (count_out)
    *count_out = count;
  return found;
}

static json_int_t s_int(json_t *object, const char *key)
{
  json_t *value = json_object_get(object, key);
  assert_true(json_is_integer(value));
  return json_integer_value(value);
}

static double s_num(json_t *object, const char *key)
{
  json_t *value = json_object_get(object, key);
  assert_true(json_is_number(value));
  return json_number_value(value);
}

/* ---- thread workers
 * ---------------------------------------------------------- */

typedef struct {
  const char *endpoint;
  const char *token;
  const char *job_id;
  int launcher_rank;
  int join_timeout_ms;
  herd_worker_t *worker;
  herd_result_t rc;
  char detail[512];
} s_joiner_t;

static void *s_join_thread(void *arg)
{
  s_joiner_t *j = arg;
  herd_worker_config_t config = HERD_WORKER_CONFIG_INIT;
  config.coord_endpoint = j->endpoint;
  config.token = j->token;
  config.job_id = j->job_id;
  config.launcher_rank = j->launcher_rank;
  config.join_timeout_ms = j->join_timeout_ms;
  j->rc = herd_worker_join(&config, &j->worker);
  snprintf(j->detail, sizeof j->detail, "%s", herd_error_detail());
  return NULL;
}

static void s_join_all(s_joiner_t *joiners, int n)
{
  pthread_t threads[8];
  for (int i = 0; i < n; i++)
    assert_int_equal(
        pthread_create(&threads[i], NULL, s_join_thread, &joiners[i]), 0);
  for (int i = 0; i < n; i++)
    pthread_join(threads[i], NULL); /* bounded by join_timeout_ms */
}

static void s_report_steps(herd_worker_t *worker, int rank)
{
  for (int step = 1; step <= 3; step++) {
    herd_step_report_t r = {0};
    r.step = step, r.epoch = 0, r.generation = 1, r.world_size = 3;
    r.loss = 2.0 / step, r.samples = 96;
    /* Global figures: every rank of a step reports the same ones (the
     * coordinator logs whichever report of a step arrives first). */
    r.samples_per_second = 1000.0 * step;
    (void)rank;
    r.sample_begin = (step - 1) * 96, r.sample_end = step * 96;
    herd_worker_report_step(worker, &r);
  }
}

static void s_report_rank0_rest(herd_worker_t *worker)
{
  herd_worker_report_epoch(worker, 1, 0.8, 0.5);
  herd_worker_report_checkpoint(worker, 3, "ckpt/step-3.h5");
  herd_done_report_t done = {3, 1, 0.8, 1234.5, 3, -1, "ab12"};
  herd_worker_report_done(worker, &done);
}

static void s_check_run_events(json_t *events)
{
  size_t count;
  int ranks_seen = 0;
  for (size_t i = 0; i < 3; i++) {
    json_t *joined = s_event(events, "member_joined", i, &count);
    assert_non_null(joined);
    ranks_seen |= 1 << s_int(joined, "rank");
    assert_int_equal(s_int(joined, "pid"), getpid());
    assert_true(json_string_length(json_object_get(joined, "host")) > 0);
  }
  assert_int_equal(count, 3);
  assert_int_equal(ranks_seen, 7);
  json_t *generation = s_event(events, "generation", 0, &count);
  assert_int_equal(count, 1);
  assert_int_equal(s_int(generation, "generation"), 1);
  assert_int_equal(s_int(generation, "world_size"), 3);
  s_event(events, "step", 0, &count);
  assert_int_equal(count, 3); /* rank 0's reports only */
  for (size_t i = 0; i < 3; i++) {
    json_t *step = s_event(events, "step", i, NULL);
    assert_int_equal(s_int(step, "step"), (json_int_t)i + 1);
    assert_int_equal(s_int(step, "epoch"), 0);
    assert_int_equal(s_int(step, "generation"), 1);
    assert_int_equal(s_int(step, "world_size"), 3);
    assert_true(s_num(step, "loss") == 2.0 / (double)(i + 1));
    assert_true(s_num(step, "samples_per_second") == 1000.0 * (i + 1));
    assert_int_equal(s_int(step, "sample_begin"), (json_int_t)i * 96);
    assert_int_equal(s_int(step, "sample_end"), (json_int_t)(i + 1) * 96);
  }
  json_t *epoch = s_event(events, "epoch_end", 0, &count);
  assert_int_equal(count, 1);
  assert_int_equal(s_int(epoch, "epoch"), 1);
  assert_true(s_num(epoch, "test_accuracy") == 0.8);
  assert_true(s_num(epoch, "test_loss") == 0.5);
  json_t *ckpt = s_event(events, "checkpoint_committed", 0, &count);
  assert_int_equal(count, 1);
  assert_int_equal(s_int(ckpt, "step"), 3);
  assert_string_equal(json_string_value(json_object_get(ckpt, "path")),
                      "ckpt/step-3.h5");
  s_event(events, "member_left", 0, &count);
  assert_int_equal(count, 3);
  s_event(events, "member_failed", 0, &count);
  assert_int_equal(count, 0);
  json_t *note = s_event(events, "launcher_note", 0, &count);
  assert_int_equal(count, 1);
  assert_int_equal(s_int(note, "n"), 3);
  json_t *done = s_event(events, "done", 0, &count);
  assert_int_equal(count, 1);
  assert_true(json_is_true(json_object_get(done, "ok")));
  assert_true(json_is_null(json_object_get(done, "reason")));
}

static void s_check_run_summary(const char *run_dir)
{
  char path[160];
  snprintf(path, sizeof path, "%s/summary.json", run_dir);
  json_error_t error;
  json_t *s = json_load_file(path, 0, &error);
  assert_non_null(s);
  assert_int_equal(s_int(s, "final_step"), 3);
  assert_int_equal(s_int(s, "epochs"), 1);
  assert_true(s_num(s, "test_accuracy") == 0.8);
  assert_true(s_num(s, "samples_per_second") == 1234.5);
  assert_int_equal(s_int(s, "world_size"), 3);
  assert_true(json_is_null(json_object_get(s, "resumed_from_step")));
  json_t *ckpts = json_object_get(s, "checkpoints");
  assert_int_equal(json_array_size(ckpts), 1);
  assert_string_equal(json_string_value(json_array_get(ckpts, 0)),
                      "ckpt/step-3.h5");
  assert_int_equal(s_int(s, "generations"), 1);
  assert_int_equal(s_int(s, "failures"), 0);
  assert_true(json_is_true(json_object_get(s, "ok")));
  json_decref(s);
}

static void test_three_workers_join_and_report(void **state)
{
  s_tmp_t tmp;
  s_tmp_make(&tmp);
  herd_coord_t *coord = s_coord_start(tmp.run_dir, 3, 10000);
  s_joiner_t joiners[3];
  const int launcher_ranks[3] = {2, 0, 1};
  for (int i = 0; i < 3; i++)
    joiners[i] = (s_joiner_t){herd_coord_endpoint(coord),
                              TOKEN,
                              JOB,
                              launcher_ranks[i],
                              10000,
                              NULL,
                              HERD_OK,
                              ""};
  s_join_all(joiners, 3);

  herd_worker_t *rank0 = NULL;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(joiners[i].rc, HERD_OK);
    herd_roster_t roster;
    assert_int_equal(herd_worker_roster(joiners[i].worker, &roster), HERD_OK);
    assert_int_equal(roster.generation, 1);
    assert_int_equal(roster.world_size, 3);
    assert_int_equal(roster.rank, launcher_ranks[i]); /* launcher's rank */
    assert_int_equal(roster.resume_step, -1);
    if (roster.rank == 0)
      rank0 = joiners[i].worker;
    s_report_steps(joiners[i].worker, roster.rank);
  }
  assert_non_null(rank0);
  s_report_rank0_rest(rank0);

  herd_coord_stats_t stats;
  assert_true(s_wait(coord, &stats, s_done_at_3, 5000));
  assert_int_equal(stats.generation, 1);
  assert_int_equal(stats.world_size, 3);
  assert_int_equal(stats.members, 3);
  assert_true(stats.samples_per_second == 3000.0);
  assert_true(stats.test_accuracy == 0.8);
  assert_int_equal(stats.malformed_messages, 0);

  assert_int_equal(herd_coord_add_event(coord, "launcher_note",
                                        "{\"n\": 3, \"event\": \"hijack\"}"),
                   HERD_OK);
  assert_int_equal(herd_coord_add_event(coord, "bad", "[1"), HERD_EINVAL);
  assert_int_equal(herd_coord_add_event(coord, "bad", "[1]"), HERD_EINVAL);

  for (int i = 0; i < 3; i++) {
    herd_worker_leave(&joiners[i].worker);
    assert_null(joiners[i].worker);
  }
  assert_true(s_wait(coord, &stats, s_no_members, 3000));
  assert_int_equal(stats.failures, 0);
  assert_int_equal(stats.generation, 1); /* leaving does not re-form */

  assert_int_equal(herd_coord_finish(coord, 1, NULL), HERD_OK);
  json_t *events = s_read_events(tmp.run_dir);
  s_check_run_events(events);
  json_decref(events);
  s_check_run_summary(tmp.run_dir);
  herd_coord_destroy(&coord);
  s_tmp_remove(&tmp);
}

static void test_wrong_token_and_job_refused(void **state)
{
  herd_coord_t *coord = s_coord_start(NULL, 1, 10000);
  s_joiner_t bad_token = {
      herd_coord_endpoint(coord), "guess", JOB, -1, 5000, NULL, HERD_OK, ""};
  s_join_all(&bad_token, 1);
  assert_int_equal(bad_token.rc, HERD_EAUTH);
  assert_null(bad_token.worker);
  assert_non_null(strstr(bad_token.detail, "token"));

  s_joiner_t bad_job = {herd_coord_endpoint(coord),
                        TOKEN,
                        "other-job",
                        -1,
                        5000,
                        NULL,
                        HERD_OK,
                        ""};
  s_join_all(&bad_job, 1);
  assert_int_equal(bad_job.rc, HERD_EAUTH);
  assert_non_null(strstr(bad_job.detail, "job id"));

  herd_coord_stats_t stats;
  assert_int_equal(herd_coord_stats(coord, &stats), HERD_OK);
  assert_int_equal(stats.members, 0);
  assert_int_equal(stats.generation, 0);
  herd_coord_destroy(&coord);
}

static void test_join_timeout_fails_job(void **state)
{
  s_tmp_t tmp;
  s_tmp_make(&tmp);
  herd_coord_t *coord = s_coord_start(tmp.run_dir, 2, 300);
  s_joiner_t lonely = {
      herd_coord_endpoint(coord), TOKEN, JOB, -1, 1500, NULL, HERD_OK, ""};
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, s_join_thread, &lonely), 0);
  herd_coord_stats_t stats;
  assert_true(s_wait(coord, &stats, s_failed, 2000));
  assert_string_equal(stats.failure, "only 1 of 2 workers joined within 0.3 s");
  assert_int_equal(stats.generation, 0);
  pthread_join(thread, NULL);
  assert_int_equal(lonely.rc, HERD_ETIMEDOUT);
  assert_null(lonely.worker);
  assert_non_null(strstr(lonely.detail, "no roster"));

  assert_int_equal(herd_coord_finish(coord, 0, stats.failure), HERD_OK);
  json_t *events = s_read_events(tmp.run_dir);
  size_t count;
  json_t *done = s_event(events, "done", 0, &count);
  assert_int_equal(count, 1);
  assert_true(json_is_false(json_object_get(done, "ok")));
  assert_string_equal(json_string_value(json_object_get(done, "reason")),
                      stats.failure);
  json_decref(events);
  herd_coord_destroy(&coord);
  s_tmp_remove(&tmp);
}

/* ---- forked workers
 * ------------------------------------------------------------ */

typedef struct {
  int64_t generation;
  int rank;
  int world_size;
} s_roster_msg_t;

typedef struct {
  pid_t pid;
  int cmd_fd;    /* parent writes the endpoint; closing it means "leave" */
  int result_fd; /* child writes an s_roster_msg_t per roster */
  s_roster_msg_t roster;
} s_child_t;

static int s_read_endpoint(int fd, char *endpoint, size_t size)
{
  struct pollfd pfd = {fd, POLLIN, 0};
  if (poll(&pfd, 1, 10000) != 1)
    return -1;
  ssize_t n = read(fd, endpoint, size - 1);
  if (n <= 0)
    return -1;
  endpoint[n] = '\0';
  return 0;
}

/* Child: join, report each new roster, leave when the command pipe closes. */
static void s_child_main(int cmd_fd, int result_fd)
{
  char endpoint[256];
  if (s_read_endpoint(cmd_fd, endpoint, sizeof endpoint) != 0)
    _exit(2);
  herd_worker_config_t config = HERD_WORKER_CONFIG_INIT;
  config.coord_endpoint = endpoint;
  config.token = TOKEN;
  config.job_id = JOB;
  config.join_timeout_ms = 10000;
  herd_worker_t *worker = NULL;
  if (herd_worker_join(&config, &worker) != HERD_OK)
    _exit(3);
  int64_t last_generation = 0, deadline = s_now_ms() + 30000;
  while (s_now_ms() < deadline) {
    herd_roster_t roster;
    herd_worker_roster(worker, &roster);
    if (roster.generation != last_generation) {
      s_roster_msg_t msg = {roster.generation, roster.rank, roster.world_size};
      if (write(result_fd, &msg, sizeof msg) != (ssize_t)sizeof msg)
        _exit(4);
      last_generation = roster.generation;
    }
    struct pollfd pfd = {cmd_fd, POLLIN, 0};
    if (poll(&pfd, 1, 10) == 1)
      break; /* EOF: the parent wants us to leave */
  }
  herd_worker_leave(&worker);
  _exit(0);
}

static void s_fork_children(s_child_t *children, int n)
{
  for (int i = 0; i < n; i++) {
    int cmd[2], result[2];
    assert_int_equal(pipe(cmd), 0);
    assert_int_equal(pipe(result), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(cmd[1]);
      close(result[0]);
      for (int k = 0; k < i; k++) {
        close(children[k].cmd_fd);
        close(children[k].result_fd);
      }
      s_child_main(cmd[0], result[1]);
    }
    close(cmd[0]);
    close(result[1]);
    children[i] = (s_child_t){pid, cmd[1], result[0], {0, -1, 0}};
  }
}

/* Reads the child's next roster within timeout_ms. */
static void s_next_roster(s_child_t *child, int timeout_ms)
{
  struct pollfd pfd = {child->result_fd, POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, timeout_ms), 1);
  assert_int_equal(read(child->result_fd, &child->roster, sizeof child->roster),
                   (ssize_t)sizeof child->roster);
}

/* waitpid with a deadline; SIGKILLs a child that overstays. */
static int s_reap(pid_t pid, int timeout_ms)
{
  int status = 0;
  int64_t deadline = s_now_ms() + timeout_ms;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (s_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    usleep(5000);
  }
  return status;
}

static s_child_t *s_child_with_rank(s_child_t *children, int n, int rank)
{
  for (int i = 0; i < n; i++)
    if (children[i].pid > 0 && children[i].roster.rank == rank)
      return &children[i];
  return NULL;
}

static void s_check_failure_events(const char *run_dir)
{
  json_t *events = s_read_events(run_dir);
  size_t count;
  s_event(events, "member_failed", 0, &count);
  assert_int_equal(count, 2);
  json_t *first = s_event(events, "member_failed", 0, NULL);
  assert_int_equal(s_int(first, "rank"), 1);
  assert_non_null(
      strstr(json_string_value(json_object_get(first, "reason")), "heartbeat"));
  json_t *second = s_event(events, "member_failed", 1, NULL);
  assert_non_null(
      strstr(json_string_value(json_object_get(second, "reason")), "signal 9"));
  const int world[3] = {3, 2, 1};
  for (size_t g = 0; g < 3; g++) {
    json_t *generation = s_event(events, "generation", g, &count);
    assert_non_null(generation);
    assert_int_equal(s_int(generation, "generation"), (json_int_t)g + 1);
    assert_int_equal(s_int(generation, "world_size"), world[g]);
  }
  assert_int_equal(count, 3);
  json_decref(events);
}

static void test_killed_worker_fails_and_regenerates(void **state)
{
  s_tmp_t tmp;
  s_tmp_make(&tmp);
  s_child_t children[3];
  s_fork_children(children, 3);
  /* --min 1 so the job may shrink to one survivor; lost connections are
   * not a signal here, so heartbeats and note_exit are what is tested
   * (test_coord_elastic covers lost connections). */
  s_disconnect_is_failure = -1;
  herd_coord_t *coord = s_coord_start_range(tmp.run_dir, 1, 3, 10000);
  s_disconnect_is_failure = 0;
  const char *endpoint = herd_coord_endpoint(coord);
  for (int i = 0; i < 3; i++)
    assert_int_equal(write(children[i].cmd_fd, endpoint, strlen(endpoint)),
                     (ssize_t)strlen(endpoint));
  int ranks_seen = 0;
  for (int i = 0; i < 3; i++) {
    s_next_roster(&children[i], 10000);
    assert_int_equal(children[i].roster.generation, 1);
    assert_int_equal(children[i].roster.world_size, 3);
    ranks_seen |= 1 << children[i].roster.rank;
  }
  assert_int_equal(ranks_seen, 7);

  /* kill -9 rank 1: only the missing heartbeats can tell. */
  s_child_t *victim = s_child_with_rank(children, 3, 1);
  s_child_t *old_rank0 = s_child_with_rank(children, 3, 0);
  s_child_t *old_rank2 = s_child_with_rank(children, 3, 2);
  int64_t killed_ms = s_now_ms();
  assert_int_equal(kill(victim->pid, SIGKILL), 0);
  s_reap(victim->pid, 2000);
  victim->pid = -1;
  herd_coord_stats_t stats;
  assert_true(s_wait(coord, &stats, s_one_failure, 3000));
  assert_true(s_now_ms() - killed_ms <= 1000);
  s_next_roster(old_rank0, 3000);
  s_next_roster(old_rank2, 3000);
  assert_int_equal(old_rank0->roster.generation, 2);
  assert_int_equal(old_rank0->roster.world_size, 2);
  assert_int_equal(old_rank0->roster.rank, 0); /* survivors keep order */
  assert_int_equal(old_rank2->roster.generation, 2);
  assert_int_equal(old_rank2->roster.rank, 1);

  /* The launcher's exit signal is faster: note_exit fails it at once. */
  pid_t second = old_rank2->pid;
  assert_int_equal(kill(second, SIGKILL), 0);
  int status = s_reap(second, 2000);
  old_rank2->pid = -1;
  assert_true(WIFSIGNALED(status));
  assert_int_equal(herd_coord_note_exit(coord, (int)second, status), HERD_OK);
  assert_int_equal(herd_coord_stats(coord, &stats), HERD_OK);
  assert_int_equal(stats.failures, 2);
  s_next_roster(old_rank0, 3000);
  assert_int_equal(old_rank0->roster.generation, 3);
  assert_int_equal(old_rank0->roster.world_size, 1);
  assert_int_equal(old_rank0->roster.rank, 0);

  /* The last survivor leaves cleanly when its command pipe closes. */
  close(old_rank0->cmd_fd);
  old_rank0->cmd_fd = -1;
  status = s_reap(old_rank0->pid, 5000);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(s_wait(coord, &stats, s_no_members, 3000));

  assert_int_equal(herd_coord_finish(coord, 0, "two workers killed"), HERD_OK);
  s_check_failure_events(tmp.run_dir);
  char path[160];
  snprintf(path, sizeof path, "%s/summary.json", tmp.run_dir);
  json_error_t error;
  json_t *summary = json_load_file(path, 0, &error);
  assert_non_null(summary);
  assert_int_equal(s_int(summary, "generations"), 3);
  assert_int_equal(s_int(summary, "failures"), 2);
  assert_true(json_is_false(json_object_get(summary, "ok")));
  assert_int_equal(s_int(summary, "final_step"), 0); /* no Done arrived */
  json_decref(summary);
  for (int i = 0; i < 3; i++) {
    if (children[i].cmd_fd >= 0)
      close(children[i].cmd_fd);
    close(children[i].result_fd);
  }
  herd_coord_destroy(&coord);
  s_tmp_remove(&tmp);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_three_workers_join_and_report),
      cmocka_unit_test(test_wrong_token_and_job_refused),
      cmocka_unit_test(test_join_timeout_fails_job),
      cmocka_unit_test(test_killed_worker_fails_and_regenerates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
