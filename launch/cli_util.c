/* Small helpers shared by the herd subcommands: folders, tokens, signals,
 * clocks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "herd/fs.h"
#include "herd/net.h"
#include "cmds.h"

void herd_cli_monitor_apply(const herd_cli_monitor_opts_t *opts,
                            herd_coord_config_t *config)
{
  config->http_address = strcmp(opts->http, "off") ? opts->http : NULL;
  config->push_gateway_url = opts->push_gateway;
  config->push_interval_ms = (int)(opts->push_interval_s * 1000);
  config->alert_webhook_url = opts->alert_webhook;
  config->stall_alert_ms =
      opts->stall_alert_s > 0 ? (int)(opts->stall_alert_s * 1000) : -1;
}

const char *herd_cli_announce_http(herd_coord_t *coord)
{
  const char *url = herd_coord_http_url(coord);
  char fields[400];
  if (!url)
    return NULL;
  snprintf(fields, sizeof fields, "{\"url\": \"%s\"}", url);
  herd_coord_add_event(coord, "http", fields);
  return url;
}

int herd_cli_token(const char *cmd, const char *given, const char *file,
                   int argc, char **argv, char *out, size_t cap)
{
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--token") || !strncmp(argv[i], "--token=", 8)) {
      fprintf(stderr, "herd %s: warning: --token puts the job token in "
                      "every user's process list (ps); use --token-file "
                      "FILE or HERD_TOKEN instead\n", cmd);
      break;
    }
  herd_result_t rc = herd_setting_token(given, file, out, cap);
  if (rc != HERD_OK) {
    fprintf(stderr, "herd %s: error: %s\n", cmd, herd_error_detail());
    return HERD_EXIT_USAGE;
  }
  return 0;
}

int herd_cli_curve_on(const char *cmd, const char *mode,
                      const char *bind_host)
{
  int beyond_loopback = !herd_net_is_loopback(bind_host);
  if (mode && !strcmp(mode, "on"))
    return 1;
  if (mode && !strcmp(mode, "off")) {
    if (beyond_loopback)
      fprintf(stderr, "herd %s: warning: --curve off on %s: the control "
                      "plane, job token included, crosses the network in "
                      "plain text, and anyone who reaches the port can act "
                      "for a worker\n", cmd, bind_host);
    return 0;
  }
  return beyond_loopback;
}

herd_result_t herd_cli_mkdirs_parent(const char *file)
{
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", file);
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf)
    return HERD_OK;
  *slash = '\0';
  return herd_mkdir_p(buf, 0777);
}

herd_result_t herd_cli_random_token(char *out, size_t cap)
{
  unsigned char bytes[16];
  if (cap < 2 * sizeof bytes + 1)
    return HERD_EINVAL;
  if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes)
    return herd_error_set(HERD_ESYS, "getrandom: %s", strerror(errno));
  for (size_t i = 0; i < sizeof bytes; i++)
    snprintf(out + 2 * i, 3, "%02x", bytes[i]);
  return HERD_OK;
}

static volatile sig_atomic_t s_signal;

static void s_on_signal(int signo) { s_signal = signo; }

void herd_cli_catch_signals(void)
{
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = s_on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
}

int herd_cli_signal_received(void) { return s_signal; }

void herd_cli_write_report(const char *who, const char *run_dir)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/report.html", run_dir);
  if (herd_report_write(run_dir, path, NULL) == HERD_OK)
    printf("%s: report %s (herd report RUN_DIR --png FILE for an image)\n",
           who, path);
  else
    fprintf(stderr, "%s: warning: no report: %s\n", who, herd_error_detail());
  fflush(stdout);
}
