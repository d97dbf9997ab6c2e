/* `herd run`: one command for a whole job on this machine.
 *
 * Starts an embedded coordinator (on a free loopback port when every worker
 * runs here, else on the address the other hosts reach), launches N workers
 * (through mpirun, or fork/exec with --launcher local) with the coordinator
 * address and a fresh job token in their environment, prints a progress
 * line at a steady interval, forwards Ctrl-C/SIGTERM to the workers, and
 * finishes the run directory (events.jsonl `done`, summary.json). No user
 * string reaches a shell: children are started with posix_spawn.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "herd/fs.h"
#include "herd/clock.h"
#include "cmds.h"
#include "launch_internal.h"

extern char **environ;

static const herd_opt_t s_table[] = {
    HERD_OPT(NPROC, herd_run_opts_t, nproc),
    HERD_OPT(RUN_DIR, herd_run_opts_t, run_dir),
    HERD_OPT(CKPT_EVERY, herd_run_opts_t, ckpt_every),
    HERD_OPT(RESUME, herd_run_opts_t, resume),
    HERD_OPT(LAUNCHER, herd_run_opts_t, launcher),
    HERD_OPT(HOSTFILE, herd_run_opts_t, hostfile),
    HERD_OPT(HOSTS, herd_run_opts_t, hosts),
    HERD_OPT(BACKEND, herd_run_opts_t, backend),
    HERD_OPT(PROGRESS_INTERVAL, herd_run_opts_t, progress_interval_s),
    HERD_OPT(JOIN_TIMEOUT, herd_run_opts_t, join_timeout_s),
    HERD_OPT(HEARTBEAT_MS, herd_run_opts_t, heartbeat_ms),
    HERD_OPT(HEARTBEAT_MISSES, herd_run_opts_t, heartbeat_misses),
    HERD_OPT(MIN, herd_run_opts_t, min_workers),
    HERD_OPT(MAX, herd_run_opts_t, max_workers),
    HERD_OPT(MAX_RESTARTS, herd_run_opts_t, max_restarts),
    HERD_OPT(IFACE, herd_run_opts_t, iface),
    HERD_OPT(COORD_PORT, herd_run_opts_t, coord_port),
    HERD_OPT(CURVE, herd_run_opts_t, curve),
    HERD_CLI_MONITOR_OPTIONS(herd_run_opts_t, monitor),
};

static const char s_usage[] =
    "usage: herd run [-n N] [--run-dir DIR] [--ckpt-every S]\n"
    "                [--resume auto|never|PATH] [--launcher mpirun|local|srun]\n"
    "                [--hostfile FILE | -H host:N,...]\n"
    "                -- COMMAND [ARGS]\n\n"
    "Starts a coordinator (loopback, or with --hostfile/-H the address the\n"
    "other hosts reach) and N workers running\n"
    "COMMAND (e.g. herd-train). Workers get HERD_COORD, HERD_TOKEN,\n"
    "HERD_RUN_DIR, HERD_CKPT_DIR, HERD_CKPT_EVERY, HERD_RESUME and\n"
    "HERD_JOIN_TIMEOUT.\n"
    "Exit status: 0 done, 1 job failed, 2 bad usage, 130 interrupted.";

/* Exports the variables every worker reads (launch_children.c passes them
 * on through mpirun -x and srun --export). The heartbeat interval is not
 * among them: the coordinator that judges liveness sends it in the Roster. */
static herd_result_t s_export_env(const herd_run_opts_t *opts,
                                  herd_coord_t *coord, const char *token)
{
  char ckpt_dir[4096], number[32], join_timeout[32];
  snprintf(ckpt_dir, sizeof ckpt_dir, "%s/ckpt", opts->run_dir);
  snprintf(number, sizeof number, "%lld", (long long)opts->ckpt_every);
  /* Workers wait as long for a roster as the coordinator waits for them. */
  snprintf(join_timeout, sizeof join_timeout, "%g", opts->join_timeout_s);
  int failed = setenv("HERD_COORD", herd_coord_endpoint(coord), 1) ||
               setenv("HERD_TOKEN", token, 1) ||
               setenv("HERD_JOB_ID", "herd", 1) ||
               setenv("HERD_RUN_DIR", opts->run_dir, 1) ||
               setenv("HERD_CKPT_DIR", ckpt_dir, 1) ||
               setenv("HERD_CKPT_EVERY", number, 1) ||
               setenv("HERD_RESUME", opts->resume, 1) ||
               setenv("HERD_JOIN_TIMEOUT", join_timeout, 1);
  if (opts->backend)
    failed = failed || setenv("HERD_BACKEND", opts->backend, 1);
  /* The workers advertise their Gloo/NCCL addresses on the same network. */
  if (opts->iface)
    failed = failed || setenv("HERD_IFACE", opts->iface, 1);
  /* This job's key, never one from the environment (another job's). */
  const char *key = herd_coord_public_key(coord);
  failed = failed || (key ? setenv("HERD_COORD_KEY", key, 1)
                          : unsetenv("HERD_COORD_KEY"));
  return failed ? herd_error_set(HERD_ESYS, "setenv failed") : HERD_OK;
}

static herd_result_t s_start_coord(const herd_run_opts_t *opts,
                                   const char *token, herd_coord_t **coord)
{
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.bind_host = opts->coord_addr; /* never 0.0.0.0 (herd_launch_check) */
  config.port = (int)opts->coord_port;
  config.token = token;
  config.run_dir = opts->run_dir;
  config.min_workers = (int)(opts->min_workers ? opts->min_workers : opts->nproc);
  config.max_workers = (int)(opts->max_workers ? opts->max_workers : opts->nproc);
  config.heartbeat_interval_ms = (int)opts->heartbeat_ms;
  config.heartbeat_misses = (int)opts->heartbeat_misses;
  config.join_timeout_ms = (int)(opts->join_timeout_s * 1000);
  herd_cli_monitor_apply(&opts->monitor, &config);
  /* CURVE: a keypair for this job; the workers get the public half with
   * the address (HERD_COORD_KEY, s_export_env). */
  char public_key[41], secret_key[41];
  if (herd_cli_curve_on("run", opts->curve, config.bind_host)) {
    HERD_CHECK(herd_curve_keypair(public_key, secret_key));
    config.curve_secret_key = secret_key;
  }
  herd_result_t rc = herd_coord_new(&config, coord);
  memset(secret_key, 0, sizeof secret_key);
  return rc;
}

static void s_print_progress(herd_coord_t *coord, int nproc)
{
  herd_coord_stats_t stats;
  if (herd_coord_stats(coord, &stats) != HERD_OK)
    return;
  if (stats.generation == 0)
    printf("herd: waiting for workers: %d of %d joined\n", stats.members, nproc);
  else if (stats.step == 0)
    printf("herd: generation %lld formed, world %d, starting\n",
           (long long)stats.generation, stats.world_size);
  else
    printf("herd: step %lld  epoch %lld  loss %.4f  %.0f samples/s  world %d"
           "  gen %lld\n",
           (long long)stats.step, (long long)stats.epoch, stats.loss,
           stats.samples_per_second, stats.world_size,
           (long long)stats.generation);
  fflush(stdout);
}

/* The monitoring URL, for people (stdout) and tools (`herd top --run-dir`
 * reads the `http` event). */
static void s_announce_http(herd_coord_t *coord)
{
  const char *url = herd_cli_announce_http(coord);
  if (url)
    printf("herd: monitoring %s (metrics %smetrics, 'herd top')\n", url, url);
}

static char **s_job_command; /* the workers' command line, for relaunches */

/* Before a relaunch across hosts: drop the hosts that no longer answer
 * (Open MPI ended the job because a node's daemon died) and scale -n to the
 * slots that are left. */
static int s_drop_gone_hosts(herd_run_opts_t *opts, herd_coord_t *coord)
{
  static char hosts[8192];
  if (!opts->remote_host[0] || herd_launch_probe_hosts(opts) == 0)
    return 1;
  int64_t nproc = opts->nproc;
  if (herd_launch_remaining_hosts(opts, hosts, sizeof hosts, &nproc) !=
      HERD_OK) {
    fprintf(stderr, "herd: %s\n", herd_error_detail());
    return 0;
  }
  char gone[1024] = "";
  size_t used = 0;
  for (int i = 0; i < opts->n_host_entries && used < sizeof gone; i++)
    if (opts->host_entries[i].gone)
      used += (size_t)snprintf(gone + used, sizeof gone - used, "%s%s",
                               used ? "," : "", opts->host_entries[i].name);
  fprintf(stderr, "herd: host(s) %s unreachable; relaunching the job "
                  "without %s on %s (%lld workers)\n",
          gone, gone, hosts, (long long)nproc);
  json_t *fields = json_pack("{s:s, s:s, s:I}", "lost", gone, "hosts", hosts,
                             "workers", (json_int_t)nproc);
  char *text = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
  herd_coord_add_event(coord, "hosts_lost", text);
  free(text);
  json_decref(fields);
  opts->hostfile = NULL;
  opts->hosts = hosts;
  opts->nproc = nproc;
  herd_coord_set_workers(coord, (int)nproc, (int)nproc);
  herd_launch_free_hosts(opts); /* from now on the list is `hosts` */
  return herd_launch_read_hosts(opts) == HERD_OK;
}

/* Static worlds (mpi): when every worker is gone before the job is done,
 * launch it again; it resumes from the newest checkpoint. */
static int s_relaunch(herd_run_opts_t *opts, herd_coord_t *coord,
                      herd_children_t *children, int *relaunches)
{
  herd_coord_stats_t stats;
  herd_coord_stats(coord, &stats);
  if (herd_children_alive(children) > 0 || stats.done || stats.failed ||
      children->stopping || children->tolerate_failures ||
      *relaunches >= opts->max_restarts || children->failed_children == 0)
    return 0;
  herd_children_free(children);
  (*relaunches)++;
  if (!s_drop_gone_hosts(opts, coord))
    return 0;
  fprintf(stderr, "herd: workers failed; relaunching the job from its newest "
                  "checkpoint (restart %d of %lld)\n",
          *relaunches, (long long)opts->max_restarts);
  herd_coord_add_event(coord, "job_restarted", NULL);
  herd_children_t fresh = {0};
  *children = fresh;
  return herd_children_launch(opts, s_job_command, children) == HERD_OK;
}

/* Runs the job until every worker has exited; fills *reason on failure. */
static int s_supervise(herd_run_opts_t *opts, herd_coord_t *coord,
                       herd_children_t *children, char *reason, size_t cap)
{
  double next_progress = herd_mono_s() + opts->progress_interval_s;
  int interrupted = 0, relaunches = 0;
  while (herd_children_alive(children) > 0 ||
         s_relaunch(opts, coord, children, &relaunches)) {
    usleep(50 * 1000);
    herd_children_reap(children, coord);
    herd_coord_stats_t stats;
    herd_coord_stats(coord, &stats);
    if (stats.failed && !children->stopping) {
      snprintf(reason, cap, "%s", stats.failure);
      herd_children_stop(children, SIGTERM);
    }
    int signo = herd_cli_signal_received();
    if (signo && !interrupted) {
      interrupted = signo;
      fprintf(stderr, "herd: %s received, stopping workers\n",
              signo == SIGINT ? "SIGINT" : "SIGTERM");
      snprintf(reason, cap, "interrupted by %s",
               signo == SIGINT ? "SIGINT" : "SIGTERM");
      /* SIGUSR1, not SIGTERM: mpirun forwards SIGUSR1 to the ranks (Open
       * MPI's ess_base_forward_signals) but turns SIGTERM into a kill of
       * the job. herd-train then finishes the step, saves, commits and
       * exits 0; anything still alive after the grace period is killed. */
      herd_children_stop(children, SIGUSR1);
    }
    herd_children_escalate(children);
    if (herd_mono_s() >= next_progress) {
      s_print_progress(coord, (int)opts->nproc);
      next_progress += opts->progress_interval_s;
    }
  }
  return interrupted;
}

static int s_finish(herd_coord_t *coord, herd_children_t *children,
                    int interrupted, char *reason, size_t cap,
                    const herd_run_opts_t *opts)
{
  herd_coord_stats_t stats;
  herd_coord_stats(coord, &stats);
  /* Elastic jobs (gloo) lose workers and go on: the job is what counts. */
  int ok = !interrupted && !reason[0] && stats.done &&
           (children->failed_children == 0 || children->tolerate_failures);
  if (!ok && !reason[0]) {
    if (children->failed_children)
      snprintf(reason, cap, "%s", children->first_failure);
    else
      snprintf(reason, cap, "workers exited before reporting the job done");
  }
  herd_result_t rc = herd_coord_finish(coord, ok, ok ? NULL : reason);
  if (rc != HERD_OK)
    fprintf(stderr, "herd run: warning: %s\n", herd_error_detail());
  if (ok) {
    printf("herd: done: step %lld, test accuracy %.4f, %.0f samples/s; "
           "summary in %s/summary.json\n",
           (long long)stats.step, stats.test_accuracy,
           stats.samples_per_second, opts->run_dir);
    return HERD_EXIT_OK;
  }
  fprintf(stderr, "herd run: error: %s\n", reason);
  if (interrupted)
    return HERD_EXIT_INTERRUPTED;
  /* Every failed worker said "bad usage": retrying will not help either. */
  return children->failed_children &&
                 children->usage_failures == children->failed_children
             ? HERD_EXIT_USAGE
             : HERD_EXIT_FAILED;
}

static int s_run_job(herd_run_opts_t *opts, char **command)
{
  char token[64], reason[512] = "";
  herd_coord_t *coord = NULL;
  herd_children_t children = {0};
  herd_result_t rc;
  int code = HERD_EXIT_FAILED;
  if ((rc = herd_cli_random_token(token, sizeof token)) != HERD_OK ||
      (rc = s_start_coord(opts, token, &coord)) != HERD_OK ||
      (rc = s_export_env(opts, coord, token)) != HERD_OK)
    return herd_cli_fail("run", rc);
  printf("herd: coordinator %s, run dir %s, %lld workers via %s\n",
         herd_coord_endpoint(coord), opts->run_dir, (long long)opts->nproc,
         opts->launcher);
  s_announce_http(coord);
  fflush(stdout);
  s_job_command = command;
  rc = herd_children_launch(opts, command, &children);
  if (rc != HERD_OK) {
    snprintf(reason, sizeof reason, "%s", herd_error_detail());
    herd_coord_finish(coord, 0, reason);
    fprintf(stderr, "herd run: error: %s\n", reason);
  } else {
    int interrupted = s_supervise(opts, coord, &children, reason, sizeof reason);
    code = s_finish(coord, &children, interrupted, reason, sizeof reason, opts);
  }
  herd_children_free(&children);
  herd_coord_destroy(&coord);
  herd_cli_write_report("herd", opts->run_dir);
  return code;
}

int herd_cmd_run(int argc, char **argv)
{
  herd_run_opts_t opts = {0};
  int first = 0;
  int code = herd_cli_parse(s_usage, s_table, sizeof s_table / sizeof *s_table,
                            &opts, argc, argv, &first);
  if (code >= 0)
    return code;
  if (first >= argc) {
    fprintf(stderr, "herd run: error: no command given (herd run -n N -- "
                    "COMMAND [ARGS])\n");
    return HERD_EXIT_USAGE;
  }
  if ((opts.min_workers && opts.min_workers > opts.nproc) ||
      (opts.max_workers && opts.max_workers < opts.nproc)) {
    fprintf(stderr, "herd run: error: need --min <= -n <= --max (got %lld <= "
                    "%lld <= %lld)\n", (long long)opts.min_workers,
            (long long)opts.nproc, (long long)opts.max_workers);
    return HERD_EXIT_USAGE;
  }
  herd_result_t rc = herd_launch_check(&opts, argv[first]);
  if (rc == HERD_OK)
    rc = herd_mkdir_p(opts.run_dir, 0777);
  if (rc != HERD_OK) {
    herd_launch_free_hosts(&opts);
    return herd_cli_fail("run", rc == HERD_EIO ? HERD_EINVAL : rc);
  }
  herd_cli_catch_signals();
  /* `herd run ... | head` closes stdout long before the job ends: that is
   * no reason to kill herd run or the job. Writes then fail with EPIPE and
   * are dropped. The workers inherit the setting (posix_spawn keeps
   * ignored signals), so their prints to the same pipe are dropped too. */
  signal(SIGPIPE, SIG_IGN);
  code = s_run_job(&opts, argv + first);
  herd_launch_free_hosts(&opts);
  return code;
}
