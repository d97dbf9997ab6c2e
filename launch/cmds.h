/* Private to launch/: the `herd` subcommands and their shared helpers.
 * Each cmd_* returns the process exit code (see HERD_EXIT_*). */
#ifndef HERD_LAUNCH_CMDS_H
#define HERD_LAUNCH_CMDS_H

#include "herd/herd.h"
#include "herd/coord.h"

/* Exit codes, documented in the README. */
enum {
  HERD_EXIT_OK = 0,
  HERD_EXIT_FAILED = 1,      /* the job or check failed; retrying may help */
  HERD_EXIT_USAGE = 2,       /* bad command line or config; retrying won't */
  HERD_EXIT_INTERRUPTED = 130
};

int herd_cmd_run(int argc, char **argv);
int herd_cmd_coord(int argc, char **argv);
int herd_cmd_status(int argc, char **argv);
int herd_cmd_top(int argc, char **argv);
int herd_cmd_data(int argc, char **argv);
int herd_cmd_ckpt(int argc, char **argv);
int herd_cmd_settings(int argc, char **argv);
int herd_cmd_keygen(int argc, char **argv);
int herd_cmd_report(int argc, char **argv);

/* Parses `table` or prints help/the error; returns -1 to continue, else an
 * exit code for main. */
int herd_cli_parse(const char *usage, const herd_opt_t *table, size_t count,
                   void *config, int argc, char **argv, int *first_positional);
/* Prints "herd <cmd>: error: <detail>" and returns HERD_EXIT_FAILED. */
int herd_cli_fail(const char *cmd, herd_result_t rc);

/* Monitoring options shared by `herd run` and `herd coord` (herd/coord.h's
 * http_address and push/alert fields). */
typedef struct {
  const char *http;          /* ADDR:PORT, "off": none */
  const char *push_gateway;  /* Pushgateway URL */
  const char *alert_webhook; /* alert webhook URL */
  double push_interval_s, stall_alert_s;
} herd_cli_monitor_opts_t;

/* The option-table rows for a herd_cli_monitor_opts_t member `m` of `type`. */
#define HERD_CLI_MONITOR_OPTIONS(type, m)                                      \
  HERD_OPT(HTTP_ADDR, type, m.http), \
  HERD_OPT(PUSH_GATEWAY, type, m.push_gateway), \
  HERD_OPT(PUSH_INTERVAL, type, m.push_interval_s), \
  HERD_OPT(ALERT_WEBHOOK, type, m.alert_webhook), \
  HERD_OPT(STALL_ALERT, type, m.stall_alert_s)

/* RUN_DIR/report.html (herd_report_write) once the coordinator is gone,
 * whatever the job's outcome, and "<who>: report PATH" on stdout; a report
 * that cannot be written is a warning (the job's result stands). */
void herd_cli_write_report(const char *who, const char *run_dir);

/* Copies the monitoring options into a coordinator config. */
void herd_cli_monitor_apply(const herd_cli_monitor_opts_t *opts,
                            herd_coord_config_t *config);
/* Records the coordinator's monitoring URL as an `http` event (what `herd
 * top --run-dir` reads) and returns it; NULL when HTTP is off. */
const char *herd_cli_announce_http(herd_coord_t *coord);

/* The job token into out (herd_setting_token: --token, HERD_TOKEN,
 * --token-file, HERD_TOKEN_FILE); warns when it was given on the command
 * line, where every user's `ps` shows it. 0, or an exit status after
 * printing "herd CMD: error: ..." (a token file that cannot be read). */
int herd_cli_token(const char *cmd, const char *given, const char *file,
                   int argc, char **argv, char *out, size_t cap);
/* Whether a coordinator bound to `bind_host` runs CURVE: `mode` on, off,
 * or auto (on unless bound to loopback). Off beyond loopback warns. */
int herd_cli_curve_on(const char *cmd, const char *mode,
                      const char *bind_host);
/* mkdir -p of the folder holding `file`. */
herd_result_t herd_cli_mkdirs_parent(const char *file);
/* 32 random hex characters for a job token (getrandom). */
herd_result_t herd_cli_random_token(char *out, size_t cap);
/* SIGINT/SIGTERM set a flag instead of killing the process; returns the
 * signal received so far (0 = none). */
void herd_cli_catch_signals(void);
int herd_cli_signal_received(void);

#endif
