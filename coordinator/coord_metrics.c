/* Monitoring: the counters behind /metrics and /status, and their renderers.
 *
 * The coordinator thread feeds the counters as it handles reports (with
 * coord->lock held, like all coordinator state): the first report of each
 * step gives the job's steps, samples and step-time histogram (data-parallel
 * ranks report the same global step), every rank's report gives its own split
 * of step time, and rank 0's CkptCommitted gives the checkpoint figures. Every
 * events.jsonl line also passes through s_on_event, which keeps the recent
 * non-step events for `herd top` and hands alerts to coord_push.c.
 *
 * Readers (the HTTP server's threads, the push thread) never render under
 * the lock: coord_snapshot_take copies what they need (a few tens of KiB)
 * and lets go, and rendering works on the copy. Per-rank series exist for
 * ranks below COORD_METRICS_RANKS_MAX only, so a 10,000-rank job does not
 * become 40,000 time series; the job-level series cover everyone.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <jansson.h>

#include "herd/clock.h"
#include "coord_internal.h"
#include "herd/herd.h"

#define COORD_SNAPSHOT_MEMBERS_MAX 1024
#define COORD_METRICS_TEXT_MAX ((size_t)8 << 20)

static const double s_step_bounds[COORD_STEP_BUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double s_ckpt_bounds[COORD_CKPT_BUCKETS - 1] = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const char *const s_phase_names[COORD_PHASE_COUNT] = {
    "compute", "comm", "data", "checkpoint"};

static double s_unix_now(void)
{
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static double s_finite(double value) { return isfinite(value) ? value : 0; }

/* ---- feeding (coord->lock held) ----------------------------------------- */

static void s_on_event(void *arg, const char *event, void *line_json)
{
  herd_coord_t *coord = arg;
  json_t *line = line_json;
  coord_timeline_add(coord->timeline, line);
  if (!strcmp(event, "step") || !strcmp(event, "ranks"))
    return; /* the counters have them */
  coord_metrics_t *m = coord->metrics;
  coord_recent_event_t *slot = &m->recent[m->n_recent % COORD_RECENT_EVENTS];
  m->n_recent++;
  slot->ts = json_real_value(json_object_get(line, "ts"));
  snprintf(slot->event, sizeof slot->event, "%s", event);
  coord_event_text(line, slot->text, sizeof slot->text);
  if (coord->push)
    coord_push_on_event(coord->push, event, line);
}

herd_result_t coord_metrics_init(herd_coord_t *coord)
{
  coord->metrics = calloc(1, sizeof *coord->metrics);
  if (!coord->metrics)
    return HERD_ENOMEM;
  HERD_CHECK(coord_timeline_new(&coord->timeline));
  coord->metrics->started_unix = s_unix_now();
  coord->metrics->progress_ms = herd_mono_ms();
  coord->events.on_event = s_on_event;
  coord->events.on_event_arg = coord;
  return HERD_OK;
}

void coord_metrics_free(herd_coord_t *coord)
{
  free(coord->metrics);
  coord->metrics = NULL;
  coord_timeline_free(&coord->timeline);
  coord->events.on_event = NULL;
}

static int s_bucket(const double *bounds, int n_bounds, double value)
{
  int i = 0;
  while (i < n_bounds && value > bounds[i])
    i++;
  return i; /* n_bounds: +Inf */
}

static void s_rank_step(coord_metrics_t *m, int rank, const Herd__StepReport *r)
{
  if (rank < 0 || rank >= COORD_METRICS_RANKS_MAX)
    return;
  coord_rank_metrics_t *x = &m->ranks[rank];
  if (rank >= m->n_ranks) {
    for (int i = m->n_ranks; i <= rank; i++)
      m->ranks[i].step = -1;
    m->n_ranks = rank + 1;
  }
  x->reports++;
  x->step = r->step;
  x->step_seconds = s_finite(r->step_seconds);
  x->compute_seconds = s_finite(r->compute_seconds);
  x->comm_seconds = s_finite(r->comm_seconds);
  x->data_seconds = s_finite(r->data_seconds);
  x->samples_per_second = s_finite(r->samples_per_second);
  x->host_peak_flops = s_finite(r->host_peak_flops);
  coord_links_on_report(x, r);
  if (x->compute_seconds >= 0)
    x->phase_seconds_total[COORD_PHASE_COMPUTE] += x->compute_seconds;
  if (x->comm_seconds >= 0)
    x->phase_seconds_total[COORD_PHASE_COMM] += x->comm_seconds;
  if (x->data_seconds >= 0)
    x->phase_seconds_total[COORD_PHASE_DATA] += x->data_seconds;
}

void coord_metrics_on_step(herd_coord_t *coord, const coord_member_t *member,
                           const Herd__StepReport *r)
{
  coord_metrics_t *m = coord->metrics;
  if (!m || member->state != COORD_MEMBER_ACTIVE)
    return;
  s_rank_step(m, member->rank, r);
  if (member->rank >= 0 && member->rank < COORD_METRICS_RANKS_MAX)
    snprintf(m->ranks[member->rank].host, sizeof m->ranks[0].host, "%s",
             member->host);
  /* The job's counters: the first report of each step, from whichever
   * member (as coord_handlers.c logs steps). */
  if (r->step <= coord->progress.step)
    return;
  double seconds = s_finite(r->step_seconds);
  if (seconds < 0)
    seconds = 0;
  m->steps_total++;
  if (r->samples > 0)
    m->samples_total += r->samples;
  m->step_buckets[s_bucket(s_step_bounds, COORD_STEP_BUCKETS - 1, seconds)]++;
  m->step_count++;
  m->step_seconds_sum += seconds;
  m->recent_step_seconds[m->n_recent_steps++ % COORD_RECENT_STEPS] = seconds;
  if (m->n_recent_steps >= 2 * COORD_RECENT_STEPS)
    m->n_recent_steps -= COORD_RECENT_STEPS; /* keeps the ring index small */
  if (r->total_steps > 0)
    m->total_steps = r->total_steps;
  m->progress_ms = herd_mono_ms();
}

void coord_metrics_on_checkpoint(herd_coord_t *coord,
                                 const Herd__CkptCommitted *c)
{
  coord_metrics_t *m = coord->metrics;
  if (!m)
    return;
  double seconds = s_finite(c->duration_seconds);
  if (seconds < 0)
    seconds = 0;
  m->ckpt_count++;
  m->ckpt_buckets[s_bucket(s_ckpt_bounds, COORD_CKPT_BUCKETS - 1, seconds)]++;
  m->ckpt_seconds_sum += seconds;
  m->ckpt_last_seconds = seconds;
  m->ckpt_last_bytes = c->bytes > 0 ? c->bytes : 0;
  m->ckpt_bytes_total += m->ckpt_last_bytes;
  m->ckpt_last_step = c->step;
  m->ckpt_last_unix = s_unix_now();
  snprintf(m->ckpt_last_path, sizeof m->ckpt_last_path, "%s",
           c->path ? c->path : "");
  /* Only rank 0 saves; the stall is the step time the save took. */
  double stall = s_finite(c->stall_seconds);
  if (stall > 0 && m->n_ranks > 0)
    m->ranks[0].phase_seconds_total[COORD_PHASE_CHECKPOINT] += stall;
}

double coord_metrics_job_peak(herd_coord_t *coord, int64_t now_ms)
{
  coord_metrics_t *m = coord->metrics;
  if (!m)
    return 0;
  if (m->job_peak_flops > 0 && now_ms - m->job_peak_at_ms < 1000)
    return m->job_peak_flops; /* 0 is asked again: the peaks come late */
  m->job_peak_at_ms = now_ms;
  int n = m->n_ranks < coord->gen.world_size ? m->n_ranks
                                             : coord->gen.world_size;
  double sum = 0;
  for (int r = 0; r < n; r++) {
    const coord_rank_metrics_t *x = &m->ranks[r];
    if (x->host_peak_flops <= 0)
      continue;
    int first = 1; /* the host's largest peak, counted at its first rank */
    for (int q = 0; q < n && first; q++)
      if (q != r && !strcmp(m->ranks[q].host, x->host) &&
          (m->ranks[q].host_peak_flops > x->host_peak_flops ||
           (m->ranks[q].host_peak_flops == x->host_peak_flops && q < r)))
        first = 0;
    if (first)
      sum += x->host_peak_flops;
  }
  m->job_peak_flops = sum;
  return sum;
}

/* ---- the `ranks` event: per-rank numbers for the page and the report --- */

#define COORD_RANKS_IN_EVENT 64 /* the slowest ones when there are more */

/* Whole numbers: exact in JSON, no 28.309999999999999. */
static json_int_t s_whole(double x) { return (json_int_t)llround(s_finite(x)); }

static int s_by_step_seconds_desc(const void *a, const void *b)
{
  const coord_rank_metrics_t *x = *(const coord_rank_metrics_t *const *)a;
  const coord_rank_metrics_t *y = *(const coord_rank_metrics_t *const *)b;
  return (x->step_seconds < y->step_seconds) -
         (x->step_seconds > y->step_seconds);
}

static int s_by_address(const void *a, const void *b)
{
  const void *x = *(const void *const *)a, *y = *(const void *const *)b;
  return (x > y) - (x < y);
}

/* Every 2 s for a run's first two minutes, then every 5 s, while steps
 * advance: the ranks' last step time, its phases and their samples/s.
 * Nothing after the job is done: `done` stays the last event. */
void coord_metrics_tick(herd_coord_t *coord, int64_t now_ms)
{
  coord_metrics_t *m = coord->metrics;
  if (!m || coord->progress.done || now_ms < m->next_ranks_ms ||
      m->steps_total == m->ranks_steps)
    return;
  m->next_ranks_ms =
      now_ms + (now_ms - coord->started_ms < 120000 ? 2000 : 5000);
  m->ranks_steps = m->steps_total;
  const coord_rank_metrics_t *pick[COORD_METRICS_RANKS_MAX];
  int n = 0;
  for (int r = 0; r < m->n_ranks && r < coord->gen.world_size; r++)
    if (m->ranks[r].reports > 0)
      pick[n++] = &m->ranks[r];
  int total = n;
  if (n > COORD_RANKS_IN_EVENT) {
    qsort(pick, (size_t)n, sizeof *pick, s_by_step_seconds_desc);
    n = COORD_RANKS_IN_EVENT;
  }
  qsort(pick, (size_t)n, sizeof *pick, s_by_address); /* rank order */
  json_t *rows = json_array();
  for (int i = 0; rows && i < n; i++) {
    const coord_rank_metrics_t *x = pick[i];
    json_array_append_new(
        rows, json_pack("[i, I, I, I, I, I]", (int)(x - m->ranks),
                        s_whole(x->samples_per_second),
                        s_whole(x->step_seconds * 1e6),
                        s_whole(x->compute_seconds * 1e6),
                        s_whole(x->comm_seconds * 1e6),
                        s_whole(x->data_seconds * 1e6)));
  }
  coord_events_write(
      &coord->events, "ranks",
      json_pack("{s:I, s:i, s:s, s:o}", "step", (json_int_t)coord->progress.step,
                "n_ranks", total, "fields",
                "rank,samples_per_second,step_us,compute_us,comm_us,data_us",
                "ranks", rows ? rows : json_array()));
}

/* ---- snapshots ------------------------------------------------------------
 */

static int s_by_rank(const void *a, const void *b)
{
  const coord_snapshot_member_t *x = a, *y = b;
  int64_t kx = x->rank >= 0 ? x->rank : INT32_MAX;
  int64_t ky = y->rank >= 0 ? y->rank : INT32_MAX;
  return (kx > ky) - (kx < ky);
}

static int s_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* coord->lock held. */
static void s_copy_members(herd_coord_t *coord, coord_snapshot_t *snap)
{
  int64_t now_ms = herd_mono_ms();
  for (int i = 0; i < coord->members.capacity &&
                  snap->n_members < COORD_SNAPSHOT_MEMBERS_MAX;
       i++) {
    const coord_member_t *m = &coord->members.slot[i];
    if (!m->in_use)
      continue;
    coord_snapshot_member_t *out = &snap->members[snap->n_members++];
    out->rank = m->state == COORD_MEMBER_ACTIVE ? m->rank : -1;
    out->pid = m->pid;
    snprintf(out->host, sizeof out->host, "%s", m->host);
    out->state = coord_member_state_name(m->state);
    out->step = m->step;
    out->last_seen_ms_ago = now_ms - m->last_seen_ms;
  }
}

static void s_copy_locked(herd_coord_t *coord, coord_snapshot_t *snap,
                          int with_members)
{
  snprintf(snap->job_id, sizeof snap->job_id, "%s", coord->job_id);
  snprintf(snap->run_id, sizeof snap->run_id, "%s",
           coord->run_id ? coord->run_id : coord->job_id);
  snap->job_state = coord_job_state_name(coord->gen.state);
  coord_stats_take(coord, &snap->stats);
  snap->metrics = *coord->metrics;
  snap->min_workers = coord->config.min_workers;
  snap->max_workers = coord->config.max_workers;
  int64_t now_ms = herd_mono_ms();
  snap->uptime_seconds = (double)(now_ms - coord->started_ms) / 1000.0;
  snap->progress_ms_ago = now_ms - coord->metrics->progress_ms;
  if (with_members)
    s_copy_members(coord, snap);
}

static double s_median(const coord_metrics_t *m)
{
  double sorted[COORD_RECENT_STEPS];
  int n = m->n_recent_steps < COORD_RECENT_STEPS ? m->n_recent_steps
                                                 : COORD_RECENT_STEPS;
  if (n == 0)
    return 0;
  memcpy(sorted, m->recent_step_seconds, (size_t)n * sizeof *sorted);
  qsort(sorted, (size_t)n, sizeof *sorted, s_cmp_double);
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

herd_result_t coord_snapshot_take(herd_coord_t *coord, int with_members,
                                  coord_snapshot_t **out)
{
  coord_snapshot_t *snap = calloc(1, sizeof *snap);
  if (!snap)
    return HERD_ENOMEM;
  if (with_members) {
    snap->members = calloc(COORD_SNAPSHOT_MEMBERS_MAX, sizeof *snap->members);
    if (!snap->members) {
      free(snap);
      return HERD_ENOMEM;
    }
  }
  pthread_mutex_lock(&coord->lock);
  s_copy_locked(coord, snap, with_members);
  pthread_mutex_unlock(&coord->lock);
  snap->now_unix = s_unix_now();
  snap->restarts = snap->stats.generation > 1 ? snap->stats.generation - 1 : 0;
  snap->step_seconds_median = s_median(&snap->metrics);
  if (snap->members)
    qsort(snap->members, (size_t)snap->n_members, sizeof *snap->members,
          s_by_rank);
  *out = snap;
  return HERD_OK;
}

void coord_snapshot_free(coord_snapshot_t **snap_p)
{
  if (!snap_p || !*snap_p)
    return;
  free((*snap_p)->members);
  free(*snap_p);
  *snap_p = NULL;
}

/* ---- Prometheus text format 0.0.4 -----------------------------------------
 */

typedef struct {
  char *data;
  size_t len, cap;
  int failed; /* no memory, or past COORD_METRICS_TEXT_MAX */
} s_buf_t;

static void s_printf(s_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void s_printf(s_buf_t *b, const char *fmt, ...)
{
  for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, args);
    va_end(args);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2
                                                     : b->len + (size_t)n + 1;
    char *grown = cap <= COORD_METRICS_TEXT_MAX ? realloc(b->data, cap) : NULL;
    if (!grown) {
      b->failed = 1;
      return;
    }
    b->data = grown;
    b->cap = cap;
  }
}

static void s_header(s_buf_t *b, const char *name, const char *type,
                     const char *help)
{
  s_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_metric(s_buf_t *b, const char *name, const char *type,
                     const char *help, double value)
{
  s_header(b, name, type, help);
  s_printf(b, "%s %.17g\n", name, value);
}

/* Label values: backslash, double quote and newline escaped. */
static void s_escape_label(char *out, size_t cap, const char *text)
{
  size_t n = 0;
  for (; *text && n + 3 < cap; text++) {
    char c = *text;
    if (c == '\\' || c == '"' || c == '\n') {
      out[n++] = '\\';
      c = c == '\n' ? 'n' : c;
    }
    out[n++] = c;
  }
  out[n] = '\0';
}

static void s_histogram(s_buf_t *b, const char *name, const char *help,
                        const double *bounds, const uint64_t *buckets,
                        int n_buckets, double sum)
{
  uint64_t cumulative = 0;
  s_header(b, name, "histogram", help);
  for (int i = 0; i < n_buckets; i++) {
    cumulative += buckets[i];
    if (i < n_buckets - 1)
      s_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
               (unsigned long long)cumulative);
    else
      s_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
               (unsigned long long)cumulative);
  }
  s_printf(b, "%s_sum %.17g\n%s_count %llu\n", name, sum, name,
           (unsigned long long)cumulative);
}

static void s_render_job(s_buf_t *b, const coord_snapshot_t *s)
{
  char job[260], run[260];
  s_escape_label(job, sizeof job, s->job_id);
  s_escape_label(run, sizeof run, s->run_id);
  s_header(b, "herd_build_info", "gauge", "herd version (always 1)");
  s_printf(b, "herd_build_info{version=\"%s\"} 1\n", HERD_VERSION);
  s_header(b, "herd_job_info", "gauge", "job and run ids (always 1)");
  s_printf(b, "herd_job_info{job_id=\"%s\",run_id=\"%s\"} 1\n", job, run);
  s_metric(b, "herd_start_time_seconds", "gauge",
           "Unix time the coordinator started", s->metrics.started_unix);
  s_metric(b, "herd_generation", "gauge", "current generation (roster) number",
           (double)s->stats.generation);
  s_metric(b, "herd_world_size", "gauge", "ranks in the current generation",
           s->stats.world_size);
  s_metric(b, "herd_members", "gauge", "live registered workers",
           s->stats.members);
  s_metric(b, "herd_waiting_workers", "gauge",
           "workers waiting for the next generation", s->stats.waiting);
  s_metric(b, "herd_step", "gauge", "newest committed step",
           (double)s->stats.step);
  s_metric(b, "herd_epoch", "gauge", "current epoch", (double)s->stats.epoch);
  s_metric(b, "herd_loss", "gauge", "training loss of the last step",
           s_finite(s->stats.loss));
  s_metric(b, "herd_samples_per_second", "gauge",
           "global throughput as rank 0 measures it (about 1 s window)",
           s_finite(s->stats.samples_per_second));
  s_metric(b, "herd_model_flops_per_second", "gauge",
           "model FLOP/s achieved: samples/s x the model's FLOP per sample",
           s_finite(s->stats.model_flops_per_second));
  s_metric(b, "herd_peak_flops_per_second", "gauge",
           "the job's peak: one measured (or given) peak per host, summed",
           s_finite(s->stats.peak_flops_per_second));
  s_metric(b, "herd_model_flops_utilization", "gauge",
           "model FLOP utilization (MFU): achieved over peak, 0..1",
           s->stats.mfu >= 0 ? s->stats.mfu : 0);
  s_metric(b, "herd_job_done", "gauge", "1 once rank 0 reported the job done",
           s->stats.done);
  s_metric(b, "herd_job_failed", "gauge", "1 once the coordinator gave up",
           s->stats.failed);
}

static void s_render_counters(s_buf_t *b, const coord_snapshot_t *s)
{
  const coord_metrics_t *m = &s->metrics;
  s_metric(b, "herd_steps_total", "counter", "training steps committed",
           (double)m->steps_total);
  s_metric(b, "herd_samples_total", "counter",
           "training samples processed (global)", (double)m->samples_total);
  s_histogram(b, "herd_step_duration_seconds", "step wall time (rank 0)",
              s_step_bounds, m->step_buckets, COORD_STEP_BUCKETS,
              m->step_seconds_sum);
  s_metric(b, "herd_failures_total", "counter", "members declared failed",
           (double)s->stats.failures);
  s_metric(b, "herd_restarts_total", "counter",
           "generations re-formed after the first (membership changes)",
           (double)s->restarts);
  s_metric(b, "herd_watchdog_evictions_total", "counter",
           "ranks evicted by the progress watchdog",
           (double)s->stats.watchdog_evictions);
  s_metric(b, "herd_malformed_messages_total", "counter",
           "control messages dropped as malformed",
           (double)s->stats.malformed_messages);
}

static void s_render_checkpoints(s_buf_t *b, const coord_snapshot_t *s)
{
  const coord_metrics_t *m = &s->metrics;
  s_metric(b, "herd_checkpoints_total", "counter", "checkpoints committed",
           (double)m->ckpt_count);
  s_histogram(b, "herd_checkpoint_duration_seconds",
              "checkpoint write and commit time", s_ckpt_bounds,
              m->ckpt_buckets, COORD_CKPT_BUCKETS, m->ckpt_seconds_sum);
  s_metric(b, "herd_checkpoint_written_bytes_total", "counter",
           "bytes of committed checkpoint files", (double)m->ckpt_bytes_total);
  s_metric(b, "herd_checkpoint_last_bytes", "gauge",
           "size of the newest committed checkpoint",
           (double)m->ckpt_last_bytes);
  s_metric(b, "herd_checkpoint_last_step", "gauge",
           "step of the newest committed checkpoint",
           (double)m->ckpt_last_step);
  s_metric(b, "herd_checkpoint_last_commit_timestamp_seconds", "gauge",
           "Unix time of the newest checkpoint commit (0: none)",
           m->ckpt_last_unix);
}

/* One gauge per rank that has reported, values[rank]. */
static void s_rank_gauge(s_buf_t *b, const coord_metrics_t *m,
                         const char *name, const char *help,
                         const double *values)
{
  s_header(b, name, "gauge", help);
  for (int r = 0; r < m->n_ranks; r++)
    if (m->ranks[r].reports)
      s_printf(b, "%s{rank=\"%d\"} %.17g\n", name, r, values[r]);
}

static void s_render_ranks(s_buf_t *b, const coord_snapshot_t *s)
{
  const coord_metrics_t *m = &s->metrics;
  s_header(b, "herd_rank_step_phase_seconds_total", "counter",
           "per-rank step time by phase (compute, comm, data, checkpoint)");
  for (int r = 0; r < m->n_ranks; r++)
    for (int p = 0; p < COORD_PHASE_COUNT; p++)
      if (m->ranks[r].reports)
        s_printf(b,
                 "herd_rank_step_phase_seconds_total{rank=\"%d\",phase=\"%s\"}"
                 " %.17g\n",
                 r, s_phase_names[p], m->ranks[r].phase_seconds_total[p]);
  s_header(b, "herd_rank_steps_total", "counter", "step reports per rank");
  for (int r = 0; r < m->n_ranks; r++)
    if (m->ranks[r].reports)
      s_printf(b, "herd_rank_steps_total{rank=\"%d\"} %lld\n", r,
               (long long)m->ranks[r].reports);
  double values[COORD_METRICS_RANKS_MAX];
  for (int r = 0; r < m->n_ranks; r++)
    values[r] = m->ranks[r].step_seconds;
  s_rank_gauge(b, m, "herd_rank_step_seconds", "last step time per rank",
               values);
  coord_link_verdict_t links;
  coord_links_judge(m, &links);
  for (int r = 0; r < m->n_ranks; r++)
    values[r] = links.best_mbps[r] * 1e6 / 8;
  s_rank_gauge(b, m, "herd_rank_link_bytes_per_second",
               "fastest TCP link between this rank's host and another's, "
               "while busy (0: not measured yet)",
               values);
  for (int r = 0; r < m->n_ranks; r++)
    values[r] = links.straggler[r];
  s_rank_gauge(b, m, "herd_rank_straggler",
               "1 when this rank's links run below a quarter of the median: "
               "its host's network is the job's bottleneck",
               values);
}

char *coord_metrics_render(const coord_snapshot_t *snap)
{
  s_buf_t b = {malloc(16384), 0, 16384, 0};
  if (!b.data)
    return NULL;
  s_render_job(&b, snap);
  s_render_counters(&b, snap);
  s_render_checkpoints(&b, snap);
  s_render_ranks(&b, snap);
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  return b.data;
}

/* ---- /status JSON ------------------------------------------------------- */

static json_t *s_checkpoint_json(const coord_snapshot_t *s)
{
  const coord_metrics_t *m = &s->metrics;
  if (!m->ckpt_count)
    return json_null();
  return json_pack(
      "{s:I, s:o, s:f, s:f, s:f, s:I}", "step", (json_int_t)m->ckpt_last_step,
      "path", coord_json_string(m->ckpt_last_path), "unix_time",
      m->ckpt_last_unix, "age_seconds", s->now_unix - m->ckpt_last_unix,
      "duration_seconds", m->ckpt_last_seconds, "bytes",
      (json_int_t)m->ckpt_last_bytes);
}

static json_t *s_member_json(const coord_snapshot_t *s,
                             const coord_link_verdict_t *links,
                             const coord_snapshot_member_t *x)
{
  json_t *j = json_pack("{s:i, s:i, s:o, s:s, s:I, s:I}", "rank", x->rank,
                        "pid", x->pid, "host", coord_json_string(x->host),
                        "state", x->state, "step", (json_int_t)x->step,
                        "last_seen_ms_ago", (json_int_t)x->last_seen_ms_ago);
  if (!j || x->rank < 0 || x->rank >= s->metrics.n_ranks ||
      !s->metrics.ranks[x->rank].reports)
    return j;
  const coord_rank_metrics_t *r = &s->metrics.ranks[x->rank];
  json_object_set_new(j, "samples_per_second",
                      coord_json_real(r->samples_per_second));
  json_object_set_new(j, "step_seconds", coord_json_real(r->step_seconds));
  json_object_set_new(j, "compute_seconds",
                      coord_json_real(r->compute_seconds));
  json_object_set_new(j, "comm_seconds", coord_json_real(r->comm_seconds));
  json_object_set_new(j, "data_seconds", coord_json_real(r->data_seconds));
  if (links->best_mbps[x->rank] > 0)
    json_object_set_new(j, "link_mbps",
                        coord_json_real(links->best_mbps[x->rank]));
  json_object_set_new(j, "network_straggler",
                      json_boolean(links->straggler[x->rank]));
  return j;
}

static json_t *s_events_json(const coord_metrics_t *m)
{
  json_t *list = json_array();
  int64_t first =
      m->n_recent > COORD_RECENT_EVENTS ? m->n_recent - COORD_RECENT_EVENTS : 0;
  for (int64_t i = first; list && i < m->n_recent; i++) {
    const coord_recent_event_t *e = &m->recent[i % COORD_RECENT_EVENTS];
    json_array_append_new(list,
                          json_pack("{s:f, s:o, s:o}", "ts", e->ts, "event",
                                    coord_json_string(e->event), "detail",
                                    coord_json_string(e->text)));
  }
  return list ? list : json_array();
}

static json_t *s_eta(const coord_snapshot_t *s)
{
  const coord_metrics_t *m = &s->metrics;
  if (m->total_steps <= 0 || s->step_seconds_median <= 0)
    return json_null();
  int64_t left = m->total_steps - s->stats.step;
  return json_real(left > 0 ? (double)left * s->step_seconds_median : 0);
}

static json_t *s_status_json(const coord_snapshot_t *s)
{
  const herd_coord_stats_t *st = &s->stats;
  json_t *j = json_pack(
      "{s:o, s:o, s:s, s:I, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:o, s:o}",
      "job", coord_json_string(s->job_id), "run_id",
      coord_json_string(s->run_id), "job_state", s->job_state, "generation",
      (json_int_t)st->generation, "world_size", st->world_size, "member_count",
      st->members, "waiting", st->waiting, "min_workers", s->min_workers,
      "max_workers", s->max_workers, "step", (json_int_t)st->step, "epoch",
      (json_int_t)st->epoch, "loss", coord_json_real(st->loss),
      "samples_per_second", coord_json_real(st->samples_per_second));
  if (!j)
    return NULL;
  json_object_set_new(j, "step_seconds", json_real(s->step_seconds_median));
  json_object_set_new(j, "model_flops_per_second",
                      coord_json_real(st->model_flops_per_second));
  json_object_set_new(j, "peak_flops_per_second",
                      st->peak_flops_per_second > 0
                          ? json_real(st->peak_flops_per_second)
                          : json_null());
  json_object_set_new(j, "mfu", st->mfu >= 0 ? json_real(st->mfu)
                                             : json_null());
  json_object_set_new(j, "total_steps", json_integer(s->metrics.total_steps));
  json_object_set_new(j, "eta_seconds", s_eta(s));
  json_object_set_new(j, "steps_total", json_integer(s->metrics.steps_total));
  json_object_set_new(j, "samples_total",
                      json_integer(s->metrics.samples_total));
  json_object_set_new(j, "failures", json_integer(st->failures));
  json_object_set_new(j, "restarts", json_integer(s->restarts));
  json_object_set_new(j, "done", json_boolean(st->done));
  json_object_set_new(j, "failed", json_boolean(st->failed));
  json_object_set_new(j, "failure", coord_json_string(st->failure));
  json_object_set_new(j, "uptime_seconds", json_real(s->uptime_seconds));
  json_object_set_new(j, "time", json_real(s->now_unix));
  json_object_set_new(j, "progress_seconds_ago",
                      json_real((double)s->progress_ms_ago / 1000.0));
  json_object_set_new(j, "last_checkpoint", s_checkpoint_json(s));
  return j;
}

char *coord_status_render(const coord_snapshot_t *snap)
{
  json_t *j = s_status_json(snap);
  json_t *members = json_array();
  if (!j || !members) {
    json_decref(j);
    json_decref(members);
    return NULL;
  }
  coord_link_verdict_t *links = malloc(sizeof *links);
  json_t *stragglers = json_array();
  if (links)
    coord_links_judge(&snap->metrics, links);
  for (int i = 0; links && i < snap->n_members; i++) {
    const coord_snapshot_member_t *x = &snap->members[i];
    json_array_append_new(members, s_member_json(snap, links, x));
    if (x->rank >= 0 && x->rank < COORD_METRICS_RANKS_MAX &&
        links->straggler[x->rank])
      json_array_append_new(
          stragglers,
          json_pack("{s:i, s:o, s:f, s:f}", "rank", x->rank, "host",
                    coord_json_string(x->host), "link_mbps",
                    links->best_mbps[x->rank], "median_mbps",
                    links->median_mbps));
  }
  free(links);
  json_object_set_new(j, "members", members);
  json_object_set_new(j, "network_stragglers", stragglers);
  json_object_set_new(j, "events", s_events_json(&snap->metrics));
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return text;
}
