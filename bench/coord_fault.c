/* bench/coord_fault: how fast a kill -9'd worker becomes a member_failed
 * event. A real `herd coord` process (default detection settings: 100 ms
 * heartbeats, 3 misses, lost connections on) and real worker processes
 * (test_coord_worker) on loopback; the bench kill -9s an admitted worker,
 * finds the member_failed event for its pid in events.jsonl, and takes
 * event ts - kill time (both Unix clock), then starts a replacement and
 * waits for it to be admitted. Reports p50/p99/max over --kills (>= 50 in
 * the full run) and writes JSON. The host cool-down is switched off: every
 * worker runs on this one host, and holding it out is not what is measured.
 * Usage: coord_fault [--quick] [--kills N] [--out FILE]. Bounded in time.
 */
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "herd/opts.h"
#include "test_proc.h"

#define TOKEN "fault-token"
#define WORKERS 4

static double s_unix_now(void)
{
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* A worker is admitted once it printed a roster line with generation > 0. */
static int s_admitted(int fd, int *state)
{
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf - 1)) > 0) {
    buf[n] = '\0';
    for (char *p = buf; (p = strstr(p, "S ")); p += 2)
      if (atoll(p + 2) > 0)
        *state = 1;
  }
  return *state;
}

/* ts of the member_failed event of `pid`, scanning events.jsonl from *pos. */
static double s_failed_ts(const char *events, long *pos, int pid)
{
  char line[4096];
  double ts = -1;
  FILE *file = fopen(events, "r");
  if (!file)
    return -1;
  fseek(file, *pos, SEEK_SET);
  while (ts < 0 && fgets(line, sizeof line, file)) {
    if (!strchr(line, '\n'))
      break; /* partial line: read it again next time */
    *pos = ftell(file);
    json_error_t error;
    json_t *e = json_loads(line, 0, &error);
    const char *name = json_string_value(json_object_get(e, "event"));
    if (name && !strcmp(name, "member_failed") &&
        json_integer_value(json_object_get(e, "pid")) == pid)
      ts = json_number_value(json_object_get(e, "ts"));
    json_decref(e);
  }
  fclose(file);
  return ts;
}


typedef struct {
  pid_t pid;
  int fd, in_fd, admitted;
} s_worker_t;

static void s_start_worker(s_worker_t *w, char *endpoint)
{
  char *argv[] = {WORKER_BIN, "--coord", endpoint, "--token", TOKEN,
                  "--job-id", "herd", "--duration-s", "300", NULL};
  w->pid = herd_test_spawn_piped(argv, NULL, &w->in_fd, &w->fd);
  w->admitted = 0;
}

static int s_cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Kills one admitted worker, returns kill -> member_failed in ms (-1). */
static double s_one_kill(s_worker_t *ws, const char *events, long *pos,
                         char *endpoint)
{
  s_worker_t *victim = NULL;
  for (int tries = 0; !victim && tries < 1000; tries++) {
    for (int i = 0; i < WORKERS && !victim; i++)
      if (s_admitted(ws[i].fd, &ws[i].admitted))
        victim = &ws[i];
    if (!victim)
      usleep(10000);
  }
  if (!victim)
    return -1;
  int pid = victim->pid;
  double killed = s_unix_now();
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  close(victim->fd);
  close(victim->in_fd);
  double ts = -1;
  for (int i = 0; ts < 0 && i < 500; i++) {
    ts = s_failed_ts(events, pos, pid);
    if (ts < 0)
      usleep(5000);
  }
  s_start_worker(victim, endpoint);
  usleep(200 * 1000); /* the next generation forms before the next kill */
  return ts < 0 ? -1 : (ts - killed) * 1000.0;
}

typedef struct {
  int quick;
  int64_t kills;
  const char *out;
} s_args_t;

static const herd_opt_t s_table[] = {
    {"quick", 0, NULL, HERD_OPT_FLAG, NULL, 0, 0, NULL,
     offsetof(s_args_t, quick), "5 kills (overrides --kills)", NULL},
    {"kills", 0, NULL, HERD_OPT_INT, "50", 1, 100000, NULL,
     offsetof(s_args_t, kills), "kill -9 rounds", NULL},
    {"out", 0, NULL, HERD_OPT_STRING, "bench/results/coord_fault.json", 0, 0,
     NULL, offsetof(s_args_t, out), "JSON results", NULL},
};

int main(int argc, char **argv)
{
  s_args_t args;
  int code = herd_opts_main(
      "coord_fault",
      "usage: coord_fault [--quick] [--kills N] [--out FILE]\n"
      "kill -9 of a worker -> the coordinator's member_failed event, p50 and\n"
      "p99 over the kills, default detection settings.",
      s_table, sizeof s_table / sizeof *s_table, &args, argc, argv, NULL);
  if (code >= 0)
    return code;
  int kills = args.quick ? 5 : (int)args.kills;
  const char *out_path = args.out;
  char dir[] = "/tmp/herd-coord-fault-XXXXXX", run_dir[128], events[160];
  char port[16], endpoint[64];
  if (!mkdtemp(dir))
    return 2;
  snprintf(run_dir, sizeof run_dir, "%s/run", dir);
  snprintf(events, sizeof events, "%s/events.jsonl", run_dir);
  snprintf(port, sizeof port, "%d", herd_test_free_port());
  snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%s", port);
  char *cargv[] = {HERD_BIN, "coord", "--port", port, "--token", TOKEN,
                   "--run-dir", run_dir, "--min", "1", "--max", "4",
                   "--host-cooldown-failures", "-1", NULL};
  int coord_fd, coord_in;
  pid_t coord = herd_test_spawn_piped(cargv, NULL, &coord_in, &coord_fd);
  s_worker_t ws[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    s_start_worker(&ws[i], endpoint);
  double *ms = calloc((size_t)kills, sizeof *ms);
  int n = 0, lost = 0;
  long pos = 0;
  for (int k = 0; k < kills; k++) {
    double one = s_one_kill(ws, events, &pos, endpoint);
    if (one < 0)
      lost++;
    else
      ms[n++] = one;
  }
  for (int i = 0; i < WORKERS; i++) {
    kill(ws[i].pid, SIGKILL);
    waitpid(ws[i].pid, NULL, 0);
  }
  kill(coord, SIGTERM);
  waitpid(coord, NULL, 0);
  qsort(ms, (size_t)n, sizeof *ms, s_cmp);
  double p50 = n ? ms[n / 2] : -1, p99 = n ? ms[(n * 99) / 100] : -1;
  double max = n ? ms[n - 1] : -1;
  printf("coord_fault: %d kills, %d detected: p50 %.1f ms  p99 %.1f ms  max "
         "%.1f ms (target p99 <= 300 ms)\n",
         kills, n, p50, p99, max);
  FILE *out = fopen(out_path, "w");
  if (out) {
    fprintf(out,
            "{\"bench\": \"coord_fault\", \"kills\": %d, \"detected\": %d, "
            "\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, "
            "\"heartbeat_ms\": 100, \"heartbeat_misses\": 3, "
            "\"target_p99_ms\": 300, \"ok\": %s}\n",
            kills, n, p50, p99, max, n == kills && p99 <= 300 ? "true" : "false");
    fclose(out);
    printf("wrote %s\n", out_path);
  }
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  free(ms);
  return n == kills && lost == 0 ? 0 : 1;
}
