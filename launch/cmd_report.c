/* `herd report RUN_DIR [--out FILE] [--png FILE]`: one self-contained HTML
 * file of a run (herd_report_write), and optionally a PNG of it taken by a
 * headless Chromium (started directly, never through a shell). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "herd/clock.h"

extern char **environ;

#define PNG_TIMEOUT_MS 90000

static const char s_usage[] =
    "usage: herd report RUN_DIR [--out FILE] [--png FILE]\n\n"
    "Writes one self-contained HTML file of the run in RUN_DIR (default\n"
    "RUN_DIR/report.html): throughput, loss, test accuracy, world size and\n"
    "per-rank step times over time with failures, generations, joins and\n"
    "checkpoints marked; a summary (outcome, steps, accuracy, samples/s,\n"
    "each failure with what detected it and how long recovery took,\n"
    "checkpoints, generations, settings) and the events. It reads\n"
    "RUN_DIR/events.jsonl, also of failed or interrupted runs and of earlier\n"
    "herd versions. Opens offline: no network, no CDN.\n\n"
    "  --out FILE   where to write the HTML (default RUN_DIR/report.html)\n"
    "  --png FILE   also a screenshot of it, taken with headless Chromium\n"
    "               (chromium or google-chrome on PATH)\n"
    "  -h, --help   this text";

/* Runs argv (no shell) and waits up to timeout_ms; 0 when it exited 0. */
static int s_run(char *const argv[], int timeout_ms)
{
  pid_t pid;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY,
                                   0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY,
                                   0);
  int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err)
    return -1;
  int64_t deadline = herd_mono_ms() + timeout_ms;
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid)
      return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
    if (done < 0 && errno != EINTR)
      return -1;
    if (herd_mono_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static int s_png(const char *html, const char *png)
{
  char abs_html[PATH_MAX], url[PATH_MAX + 16], shot[PATH_MAX + 16];
  char profile[] = "/tmp/herd-report-chrome-XXXXXX", profile_arg[64];
  if (!realpath(html, abs_html) || !mkdtemp(profile)) {
    fprintf(stderr, "herd report: error: %s: %s\n", html, strerror(errno));
    return HERD_EXIT_FAILED;
  }
  snprintf(url, sizeof url, "file://%s", abs_html);
  snprintf(shot, sizeof shot, "--screenshot=%s", png);
  snprintf(profile_arg, sizeof profile_arg, "--user-data-dir=%s", profile);
  static const char *const browsers[] = {"chromium", "chromium-browser",
                                         "google-chrome"};
  int rc = -1;
  for (size_t i = 0; rc != 0 && i < sizeof browsers / sizeof browsers[0];
       i++) {
    /* --no-sandbox: Chromium refuses to start as root without it. */
    char *argv[] = {(char *)browsers[i], "--headless", "--disable-gpu",
                    "--no-sandbox", "--hide-scrollbars", profile_arg,
                    "--window-size=1400,2600", "--virtual-time-budget=4000",
                    shot, url, NULL};
    rc = s_run(argv, PNG_TIMEOUT_MS);
  }
  char *rm[] = {"rm", "-rf", profile, NULL};
  s_run(rm, 10000);
  if (rc != 0 || access(png, R_OK) != 0) {
    fprintf(stderr, "herd report: error: no PNG: headless Chromium "
                    "(chromium or google-chrome on PATH) did not take the "
                    "screenshot\n");
    return HERD_EXIT_FAILED;
  }
  printf("herd report: PNG %s\n", png);
  return HERD_EXIT_OK;
}

int herd_cmd_report(int argc, char **argv)
{
  const char *run_dir = NULL, *out = NULL, *png = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      puts(s_usage);
      return HERD_EXIT_OK;
    }
    if ((!strcmp(argv[i], "--out") || !strcmp(argv[i], "--png")) &&
        i + 1 < argc) {
      *(argv[i][2] == 'o' ? &out : &png) = argv[i + 1];
      i++;
    } else if (argv[i][0] != '-' && !run_dir) {
      run_dir = argv[i];
    } else {
      fprintf(stderr, "herd report: error: unexpected '%s'\n%s\n", argv[i],
              s_usage);
      return HERD_EXIT_USAGE;
    }
  }
  if (!run_dir) {
    fprintf(stderr, "herd report: error: no RUN_DIR\n%s\n", s_usage);
    return HERD_EXIT_USAGE;
  }
  char default_out[PATH_MAX];
  if (!out) {
    snprintf(default_out, sizeof default_out, "%s/report.html", run_dir);
    out = default_out;
  }
  herd_report_stats_t stats;
  herd_result_t rc = herd_report_write(run_dir, out, &stats);
  if (rc != HERD_OK)
    return herd_cli_fail("report", rc);
  printf("herd report: %s (%lld events read, %lld drawn, %lld unreadable, "
         "%lld failures, %.1f KiB)\n",
         out, (long long)stats.lines, (long long)stats.kept_events,
         (long long)stats.bad_lines, (long long)stats.failures,
         stats.bytes / 1024.0);
  return png ? s_png(out, png) : HERD_EXIT_OK;
}
