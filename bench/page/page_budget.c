/* What a long, large run costs the run page's sources (issue 17): feeds an
 * events.jsonl (bench/page/gen_events.py) through the coordinator's
 * timeline as the coordinator would, then renders /timeline, and /status and
 * /metrics for WORKERS members with step reports. Prints one JSON object:
 * sizes in bytes, times in ms (render) and ns (per event added).
 * Usage: page_budget EVENTS_FILE WORKERS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "coord_internal.h"

static double s_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void s_members(herd_coord_t *coord, int workers)
{
  pthread_mutex_lock(&coord->lock);
  for (int r = 0; r < workers; r++) {
    Herd__Join join = HERD__JOIN__INIT;
    char host[32], id[16];
    snprintf(host, sizeof host, "node%04d", r / 8);
    snprintf(id, sizeof id, "w%d", r);
    join.host = host;
    join.pid = 1000 + r;
    join.launcher_rank = r;
    coord_member_t *m = coord_member_add(coord, id, strlen(id), &join);
    if (!m)
      break;
    coord_member_apply(coord, m, COORD_MEMBER_EV_ADMIT);
    m->rank = r;
    Herd__StepReport rep = HERD__STEP_REPORT__INIT;
    rep.step = 100;
    rep.samples = 256;
    rep.step_seconds = 0.1;
    rep.compute_seconds = 0.08;
    rep.comm_seconds = 0.015;
    rep.data_seconds = 0.005;
    coord_metrics_on_step(coord, m, &rep);
  }
  coord->gen.world_size = workers;
  pthread_mutex_unlock(&coord->lock);
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: page_budget EVENTS_FILE WORKERS\n");
    return 2;
  }
  int workers = atoi(argv[2]);
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.token = "t";
  config.min_workers = 1;
  config.max_workers = workers;
  herd_coord_t *coord = NULL;
  if (coord_new_detached(&config, &coord) != HERD_OK)
    return 1;
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  static char line[1 << 20];
  long lines = 0;
  double add_ms = 0, max_add_ms = 0;
  while (fgets(line, sizeof line, f)) {
    json_error_t error;
    json_t *j = json_loads(line, 0, &error);
    if (!j)
      continue;
    double t0 = s_now_ms();
    coord_timeline_add(coord->timeline, j);
    double dt = s_now_ms() - t0;
    add_ms += dt;
    if (dt > max_add_ms)
      max_add_ms = dt;
    lines++;
    json_decref(j);
  }
  fclose(f);
  double t0 = s_now_ms();
  char *tl = coord_timeline_render(coord->timeline, 0);
  double tl_ms = s_now_ms() - t0;
  t0 = s_now_ms();
  char *tl_new = coord_timeline_render(
      coord->timeline, coord_timeline_last_seq(coord->timeline) - 10);
  double tl_new_ms = s_now_ms() - t0;
  s_members(coord, workers);
  coord_snapshot_t *snap = NULL;
  t0 = s_now_ms();
  coord_snapshot_take(coord, 1, &snap);
  char *status = coord_status_render(snap);
  double status_ms = s_now_ms() - t0;
  t0 = s_now_ms();
  char *metrics = coord_metrics_render(snap);
  double metrics_ms = s_now_ms() - t0;
  char *page = coord_page_render(NULL);
  printf("{\"events\": %ld, \"timeline_add_ns_mean\": %.0f, "
         "\"timeline_add_ms_max\": %.3f, \"timeline_kept\": %zu, "
         "\"timeline_memory_bytes\": %zu, \"timeline_json_bytes\": %zu, "
         "\"timeline_render_ms\": %.2f, \"timeline_poll_render_ms\": %.3f, "
         "\"status_members\": %d, \"status_bytes\": %zu, "
         "\"status_render_ms\": %.2f, \"metrics_bytes\": %zu, "
         "\"metrics_render_ms\": %.2f, \"page_bytes\": %zu}\n",
         lines, lines ? add_ms * 1e6 / lines : 0, max_add_ms,
         coord_timeline_kept(coord->timeline),
         coord_timeline_bytes(coord->timeline), tl ? strlen(tl) : 0, tl_ms,
         tl_new_ms, snap ? snap->n_members : 0, status ? strlen(status) : 0,
         status_ms, metrics ? strlen(metrics) : 0, metrics_ms,
         page ? strlen(page) : 0);
  free(tl);
  free(tl_new);
  free(status);
  free(metrics);
  free(page);
  coord_snapshot_free(&snap);
  herd_coord_destroy(&coord);
  return 0;
}
