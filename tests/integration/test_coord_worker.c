/* A stand-in training program for the coordinator's integration tests and
 * benches: joins, then "steps" every --step-ms (reporting each step), and
 * prints its roster and step to stdout so the test can follow it:
 *
 *   S <generation> <rank> <world_size> <step>
 *
 * on every roster change and every 5 steps. It stops stepping after
 * --hang-after steps (heartbeats go on: a hung rank), or after --wait-after
 * steps and says it waits on its peers (herd_comm_wait_begin: a rank
 * blocked in an all-reduce for a hung one). As rank 0 it reports the job
 * done at step --done-at. Each generation it is given counts as formed
 * (herd_worker_generation_formed) at once, except --pending-generation G:
 * stuck in G's rendezvous, so a restarted coordinator must not adopt G.
 * Refused by the coordinator it prints
 * "REFUSED job_done=<0|1>" and exits 0. It leaves when stdin
 * closes or --duration-s passes. A failed join prints "JOIN_FAILED <why>"
 * and exits 3.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herd/herd.h"
#include "herd/coord.h"

static double s_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *s_arg(int argc, char **argv, const char *name,
                         const char *fallback)
{
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name))
      return argv[i + 1];
  return fallback;
}

static int s_stdin_closed(int wait_ms)
{
  struct pollfd pfd = {0, POLLIN, 0};
  char buf[64];
  if (poll(&pfd, 1, wait_ms) != 1)
    return 0;
  return read(0, buf, sizeof buf) <= 0;
}

int main(int argc, char **argv)
{
  herd_worker_config_t config = HERD_WORKER_CONFIG_INIT;
  config.coord_endpoint = s_arg(argc, argv, "--coord", NULL);
  config.token = s_arg(argc, argv, "--token", NULL);
  config.job_id = s_arg(argc, argv, "--job-id", NULL);
  config.join_timeout_ms = atoi(s_arg(argc, argv, "--join-timeout-ms", "10000"));
  int step_ms = atoi(s_arg(argc, argv, "--step-ms", "20"));
  long hang_after = atol(s_arg(argc, argv, "--hang-after", "-1"));
  long wait_after = atol(s_arg(argc, argv, "--wait-after", "-1"));
  long done_at = atol(s_arg(argc, argv, "--done-at", "-1"));
  long long pending = atoll(s_arg(argc, argv, "--pending-generation", "-1"));
  if (wait_after >= 0)
    hang_after = wait_after;
  double duration = atof(s_arg(argc, argv, "--duration-s", "60"));
  herd_worker_t *worker = NULL;
  if (herd_worker_join(&config, &worker) != HERD_OK) {
    printf("JOIN_FAILED %s\n", herd_error_detail());
    return 3;
  }
  herd_roster_t roster, last = {.rank = -1};
  int64_t step = 0;
  double end = s_now() + duration;
  while (s_now() < end && !s_stdin_closed(step_ms)) {
    if (hang_after < 0 || step < hang_after) {
      herd_step_report_t r = {0};
      r.step = ++step;
      r.world_size = last.world_size;
      r.generation = last.generation;
      r.samples_per_second = 100.0;
      herd_worker_report_step(worker, &r);
      if (step == done_at && last.rank == 0) {
        herd_done_report_t done = {.final_step = step, .world_size = last.world_size};
        herd_worker_report_done(worker, &done);
      }
      if (step == wait_after)
        herd_comm_wait_begin(); /* for good: its peer never comes */
    }
    if (herd_worker_roster(worker, &roster) != HERD_OK) {
      printf("REFUSED job_done=%d\n", herd_worker_job_done(worker));
      fflush(stdout);
      break;
    }
    if (roster.generation != last.generation && roster.generation != pending)
      herd_worker_generation_formed(worker, roster.generation);
    if (roster.generation != last.generation || step % 5 == 0) {
      printf("S %lld %d %d %lld\n", (long long)roster.generation, roster.rank,
             roster.world_size, (long long)step);
      fflush(stdout);
    }
    last = roster;
  }
  herd_worker_leave(&worker);
  return 0;
}
