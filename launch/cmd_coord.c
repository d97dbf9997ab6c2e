/* `herd coord`: the coordinator on its own, for workers started by mpirun,
 * srun or Kubernetes. `herd run` embeds the same library code. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "herd/fs.h"
#include "cmds.h"
#include "herd/net.h"

typedef struct {
  const char *bind, *advertise, *iface;
  int64_t port;
  const char *token;
  const char *job_id;
  const char *run_dir;
  int64_t min_workers, max_workers;
  int64_t heartbeat_ms, heartbeat_misses;
  double join_timeout_s;
  int64_t last_call_ms, watchdog_multiple, cooldown_failures, rejoin_window_ms;
  herd_cli_monitor_opts_t monitor;
  const char *run_id;
} s_coord_opts_t;

#define S_OFF(field) offsetof(s_coord_opts_t, field)
static const herd_opt_t s_table[] = {
    {"bind", 0, "HERD_COORD_BIND", HERD_OPT_STRING, "127.0.0.1", 0, 0, NULL,
     S_OFF(bind), "address to bind (the workers' side of this host; "
     "0.0.0.0 binds every interface)"},
    {"iface", 0, "HERD_IFACE", HERD_OPT_STRING, NULL, 0, 0, NULL, S_OFF(iface),
     "bind and advertise this interface's address (e.g. eth0)"},
    {"advertise", 0, "HERD_COORD_ADVERTISE", HERD_OPT_STRING, NULL, 0, 0, NULL,
     S_OFF(advertise), "address workers dial, when not the bound one (NAT, "
     "0.0.0.0; default: the bound address)"},
    {"port", 'p', "HERD_COORD_PORT", HERD_OPT_INT, "0", 0, 65535, NULL,
     S_OFF(port), "TCP port; 0 picks a free one and prints it"},
    {"token", 0, "HERD_TOKEN", HERD_OPT_STRING, NULL, 0, 0, NULL, S_OFF(token),
     "job token workers must present (random if unset; printed)"},
    {"job-id", 0, "HERD_JOB_ID", HERD_OPT_STRING, "herd", 0, 0, NULL,
     S_OFF(job_id), "job id workers must name"},
    {"run-dir", 0, "HERD_RUN_DIR", HERD_OPT_STRING, "runs/coord", 0, 0, NULL,
     S_OFF(run_dir), "where events.jsonl and summary.json go"},
    {"min", 0, "HERD_MIN", HERD_OPT_INT, "1", 1, 100000, NULL,
     S_OFF(min_workers), "workers needed to form a generation"},
    {"max", 0, "HERD_MAX", HERD_OPT_INT, "0", 0, 100000, NULL,
     S_OFF(max_workers), "most workers admitted (0: same as --min)"},
    {"heartbeat-ms", 0, "HERD_HEARTBEAT_MS", HERD_OPT_INT, "100", 10, 60000,
     NULL, S_OFF(heartbeat_ms), "worker heartbeat interval"},
    {"heartbeat-misses", 0, "HERD_HEARTBEAT_MISSES", HERD_OPT_INT, "20", 1, 100,
     NULL, S_OFF(heartbeat_misses), "missed heartbeats before a worker is failed"},
    {"join-timeout", 0, "HERD_JOIN_TIMEOUT", HERD_OPT_DOUBLE, "120", 1, 86400,
     NULL, S_OFF(join_timeout_s), "seconds to wait for --min workers"},
    {"last-call-ms", 0, "HERD_LAST_CALL_MS", HERD_OPT_INT, "500", -1, 600000,
     NULL, S_OFF(last_call_ms),
     "after --min joined, wait this long for more (up to --max); -1 none"},
    {"watchdog", 0, "HERD_WATCHDOG", HERD_OPT_INT, "10", -1, 100000, NULL,
     S_OFF(watchdog_multiple),
     "evict a rank stuck this many median step times (at least 4 s) while "
     "all others wait for it; -1 off"},
    {"host-cooldown-failures", 0, "HERD_HOST_COOLDOWN_FAILURES", HERD_OPT_INT,
     "3", -1, 1000, NULL, S_OFF(cooldown_failures),
     "failures of one host within 60 s before it is held out; -1 off"},
    {"rejoin-window-ms", 0, "HERD_REJOIN_WINDOW_MS", HERD_OPT_INT, "2000", 1,
     600000, NULL, S_OFF(rejoin_window_ms),
     "after a restart, wait this long for a whole generation to re-register"},
    HERD_CLI_MONITOR_OPTIONS(s_coord_opts_t, monitor),
    {"run-id", 0, "HERD_RUN_ID", HERD_OPT_STRING, NULL, 0, 0, NULL,
     S_OFF(run_id), "run id for pushes and alerts (default: run dir name)"},
};

static const char s_usage[] =
    "usage: herd coord [OPTIONS]\n\n"
    "Runs the coordinator until the job is done (rank 0 reports done), the\n"
    "join timeout passes, or SIGINT/SIGTERM. Workers find it through\n"
    "HERD_COORD=tcp://HOST:PORT and HERD_TOKEN. Restarted with the same\n"
    "--port, --token and --run-dir, it adopts the running workers.\n"
    "Workers on other hosts: --bind ADDR (or --iface IFACE) on the network\n"
    "they share; the printed HERD_COORD is the address to give them.";

static int s_wait_for_job(herd_coord_t *coord)
{
  herd_coord_stats_t stats;
  for (;;) {
    usleep(100 * 1000);
    if (herd_coord_stats(coord, &stats) != HERD_OK)
      continue;
    if (stats.done) {
      herd_coord_finish(coord, 1, NULL);
      printf("herd coord: job done at step %lld\n", (long long)stats.step);
      return HERD_EXIT_OK;
    }
    if (stats.failed) {
      herd_coord_finish(coord, 0, stats.failure);
      fprintf(stderr, "herd coord: error: %s\n", stats.failure);
      return HERD_EXIT_FAILED;
    }
    if (herd_cli_signal_received()) {
      herd_coord_finish(coord, 0, "coordinator interrupted");
      fprintf(stderr, "herd coord: interrupted\n");
      return HERD_EXIT_INTERRUPTED;
    }
  }
}

int herd_cmd_coord(int argc, char **argv)
{
  s_coord_opts_t opts = {0};
  int first = 0;
  int code = herd_cli_parse(s_usage, s_table, sizeof s_table / sizeof *s_table,
                            &opts, argc, argv, &first);
  if (code >= 0)
    return code;
  char token[64];
  if (!opts.token) {
    if (herd_cli_random_token(token, sizeof token) != HERD_OK)
      return herd_cli_fail("coord", HERD_ESYS);
    opts.token = token;
  }
  herd_result_t rc = herd_mkdir_p(opts.run_dir, 0777);
  if (rc != HERD_OK)
    return herd_cli_fail("coord", rc);
  char iface_addr[HERD_NET_ADDR_MAX];
  if (opts.iface) {
    if ((rc = herd_net_advertise_addr(opts.iface, NULL, iface_addr,
                                      sizeof iface_addr)) != HERD_OK)
      return herd_cli_fail("coord", rc == HERD_ENOENT ? HERD_EINVAL : rc);
    if (!strcmp(opts.bind, "127.0.0.1")) /* the default: take the iface's */
      opts.bind = iface_addr;
    if (!opts.advertise)
      opts.advertise = iface_addr;
  }
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.bind_host = opts.bind;
  config.advertise_host = opts.advertise;
  config.port = (int)opts.port;
  config.token = opts.token;
  config.job_id = opts.job_id;
  config.run_dir = opts.run_dir;
  config.continue_run = 1; /* a restart picks up the run dir where it was */
  config.min_workers = (int)opts.min_workers;
  config.max_workers = (int)(opts.max_workers ? opts.max_workers : opts.min_workers);
  config.heartbeat_interval_ms = (int)opts.heartbeat_ms;
  config.heartbeat_misses = (int)opts.heartbeat_misses;
  config.join_timeout_ms = (int)(opts.join_timeout_s * 1000);
  config.last_call_ms = opts.last_call_ms ? (int)opts.last_call_ms : -1;
  config.watchdog_multiple = (int)opts.watchdog_multiple;
  config.host_cooldown_failures = (int)opts.cooldown_failures;
  config.rejoin_window_ms = (int)opts.rejoin_window_ms;
  herd_cli_monitor_apply(&opts.monitor, &config);
  config.run_id = opts.run_id;
  herd_coord_t *coord = NULL;
  herd_cli_catch_signals();
  if ((rc = herd_coord_new(&config, &coord)) != HERD_OK)
    return herd_cli_fail("coord", rc);
  printf("herd coord: listening on %s\nHERD_COORD=%s\nHERD_TOKEN=%s\n",
         herd_coord_endpoint(coord), herd_coord_endpoint(coord), opts.token);
  const char *http_url = herd_cli_announce_http(coord);
  if (http_url)
    printf("HERD_HTTP=%s\n", http_url);
  fflush(stdout);
  code = s_wait_for_job(coord);
  herd_coord_destroy(&coord);
  return code;
}
