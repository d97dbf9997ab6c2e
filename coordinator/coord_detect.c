/* Failure detection: several signals, the fastest wins.
 *
 *  - lost connection: the ROUTER's socket monitor reports a closed TCP
 *    connection; the member whose messages came from that fd fails at the
 *    next tick (after any Leave still queued on it). A kill -9 is seen in
 *    about a millisecond on loopback. Configurable off (disconnect_is_failure
 *    -1) where connections are expected to break and recover, and no fact
 *    while this host is cut off or has just come back (the workers redial
 *    then: s_closes_are_reconnects).
 *  - missed heartbeats: no message for interval x misses (2 s default: a
 *    link down for 0.3 s can silence a host for over a second, since the
 *    kernel flushes its ARP entries with the carrier and retries ARP only
 *    every second; measured in tests/cluster coord_cut_short).
 *    The coordinator does not blame workers for its own deafness: silence is
 *    judged only once everything queued has been read, time in which its
 *    loop did not run (paused, starved of CPU) is credited to every member,
 *    and when every member falls silent at once the likelier story is that
 *    the coordinator's own host is cut off: nobody is failed for silence
 *    until that has lasted DETECT_ISOLATION_MAX_MS (a coordinator that
 *    cannot hear anyone can do nothing useful by failing everyone; the
 *    workers keep training among themselves and re-register when the link
 *    returns).
 *    Silence past that floor makes a member *suspect* (event
 *    member_suspect); it is failed when the silence also passes its own
 *    deadline, which adapts to how its heartbeats have been arriving: the
 *    mean gap plus DETECT_PHI_Z standard deviations (an EWMA of the gaps),
 *    the point where a normal model of the gaps gives the silence a chance
 *    below 1e-8 (phi = 8 in the phi-accrual detector of Hayashibara et al.,
 *    as Akka and Cassandra use it). A loaded machine whose heartbeats come
 *    late and uneven so widens its own deadline; it never exceeds
 *    DETECT_SILENCE_MAX_MS, so a hung (SIGSTOPped) worker is failed within
 *    5 s at most.
 *  - PeerFailed reports and child exits (coord_handlers.c, coord.c).
 *  - progress watchdog: a member whose step stops advancing for
 *    watchdog_multiple x the median step time (at least watchdog_min_ms,
 *    4 s, so a hung rank is failed within 5 s) while it is heard from,
 *    is not itself waiting, and every other member has waited in a
 *    collective for as long (their heartbeats say so) is evicted as hung:
 *    an endless loop or a deadlock in the rank's own computation
 *    (s_watchdog).
 *
 * A host whose members fail host_cooldown_failures times within a minute is
 * held out of generations for a cool-down that doubles with each repeat
 * (capped at 10 minutes); coord_generation.c still admits its workers when
 * the job would otherwise fall below --min.
 *
 * The O(members) scans are rate-limited (every few ms, the watchdog every
 * 100 ms) so a flood of heartbeats does not turn into a flood of scans.
 * Every function here runs with coord->lock held.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coord_internal.h"
#include "herd/herd.h"

#define COORD_SCAN_MS 5 /* heartbeat/watchdog scans at most this often */

herd_result_t coord_detect_init(coord_detector_t *detect, int capacity)
{
  detect->scan_interval_ms = COORD_SCAN_MS;
  detect->scratch = calloc((size_t)capacity, sizeof *detect->scratch);
  return detect->scratch ? HERD_OK
                         : herd_error_set(HERD_ENOMEM,
                                          "no memory for %d "
                                          "members' step times",
                                          capacity);
}

void coord_detect_free(coord_detector_t *detect)
{
  free(detect->scratch);
  detect->scratch = NULL;
}

/* Silence is judged only after a receive found the ROUTER empty: heartbeats
 * may still be queued behind a full batch. */
void coord_detect_note_drained(coord_detector_t *detect, int drained)
{
  detect->router_drained = drained;
}

#define DETECT_WINDOW_MS 60000
#define DETECT_COOLDOWN_MAX_MS 600000
#define DETECT_WATCHDOG_EVERY_MS 100
#define DETECT_DISCONNECT_GRACE_MS 50
/* A gap between two scans longer than this was the coordinator's, not the
 * workers' (the loop polls every few ms). */
#define DETECT_DEAF_GAP_MS 100
#define DETECT_ISOLATION_MAX_MS 10000
#define DETECT_SILENCE_MAX_MS 5000
#define DETECT_PHI_Z 5.6     /* P(normal > mean + 5.6 sd) ~ 1e-8: phi 8 */
#define DETECT_GAP_ALPHA 0.1 /* EWMA weight of the newest heartbeat gap */

/* ---- hosts and cool-downs -------------------------------------------------- */

int coord_host_cooling(const herd_coord_t *coord, const coord_member_t *m,
                       int64_t now_ms)
{
  return m->host_index >= 0 &&
         coord->members.hosts[m->host_index].cooldown_until_ms > now_ms;
}

void coord_detect_host_failed(herd_coord_t *coord, coord_member_t *member,
                              int64_t now_ms)
{
  int threshold = coord->config.host_cooldown_failures;
  if (threshold <= 0 || member->host_index < 0)
    return;
  coord_host_t *h = &coord->members.hosts[member->host_index];
  if (now_ms - h->window_start_ms > DETECT_WINDOW_MS) {
    h->window_start_ms = now_ms;
    h->failures = 0;
  }
  /* Members of one host failing together (a host died or was cut off)
   * are one event, one strike. */
  int same_event = h->last_failure_ms && now_ms - h->last_failure_ms < 1000;
  h->last_failure_ms = now_ms;
  if (same_event || ++h->failures < threshold)
    return;
  int64_t ms = coord->config.host_cooldown_ms;
  for (int i = 0; i < h->strikes && ms < DETECT_COOLDOWN_MAX_MS; i++)
    ms *= 2;
  if (ms > DETECT_COOLDOWN_MAX_MS)
    ms = DETECT_COOLDOWN_MAX_MS;
  h->strikes++;
  h->failures = 0;
  h->cooldown_until_ms = now_ms + ms;
  HERD_LOG(HERD_LOG_WARN, COORD_LOG,
           "host %s failed %d times: held out for %lld ms", h->name, threshold,
           (long long)ms);
  coord_events_write(&coord->events, "host_cooldown",
                     json_pack("{s:o, s:I, s:i}", "host",
                               coord_json_string(h->name), "ms", (json_int_t)ms,
                               "strikes", h->strikes));
}

/* ---- heartbeats and connections ------------------------------------------ */

void coord_detect_heard(herd_coord_t *coord, coord_member_t *member,
                        int is_heartbeat, int64_t now_ms)
{
  member->heard_ms = now_ms;
  if (member->last_seen_ms < now_ms)
    member->last_seen_ms = now_ms;
  if (member->suspect) {
    member->suspect = 0;
    HERD_LOG(HERD_LOG_INFO, COORD_LOG, "rank %d pid %d heard from again",
             member->rank, member->pid);
  }
  if (!is_heartbeat)
    return;
  if (member->last_heartbeat_ms) {
    double gap = (double)(now_ms - member->last_heartbeat_ms);
    if (member->gap_mean_ms <= 0) {
      member->gap_mean_ms = gap;
    } else {
      double diff = gap - member->gap_mean_ms;
      member->gap_mean_ms += DETECT_GAP_ALPHA * diff;
      member->gap_var_ms2 = (1 - DETECT_GAP_ALPHA) *
                            (member->gap_var_ms2 + DETECT_GAP_ALPHA * diff * diff);
    }
  }
  member->last_heartbeat_ms = now_ms;
}

/* The member's own silence deadline: floor_ms at least (the configured
 * interval x misses), more when its heartbeats have come unevenly. */
static int64_t s_deadline_ms(const herd_coord_t *coord, const coord_member_t *m,
                             int64_t floor_ms)
{
  double sd_min = coord->config.heartbeat_interval_ms / 2.0;
  double sd = sqrt(m->gap_var_ms2);
  double adaptive = m->gap_mean_ms + DETECT_PHI_Z * (sd > sd_min ? sd : sd_min);
  int64_t deadline = adaptive > floor_ms ? (int64_t)adaptive : floor_ms;
  return deadline < DETECT_SILENCE_MAX_MS ? deadline : DETECT_SILENCE_MAX_MS;
}

static void s_suspect(herd_coord_t *coord, coord_member_t *m, int64_t silent_ms,
                      int64_t deadline_ms)
{
  m->suspect = 1;
  HERD_LOG(HERD_LOG_WARN, COORD_LOG,
           "rank %d pid %d on %s silent for %lld ms: suspect (failed at %lld ms)",
           m->rank, m->pid, m->host, (long long)silent_ms,
           (long long)deadline_ms);
  coord_events_write(&coord->events, "member_suspect",
                     json_pack("{s:i, s:i, s:o, s:I, s:I}", "rank", m->rank,
                               "pid", m->pid, "host", coord_json_string(m->host),
                               "silent_ms", (json_int_t)silent_ms,
                               "deadline_ms", (json_int_t)deadline_ms));
}

/* While this host is cut off, and for the rejoin window after, a closed
 * connection is no fact: a worker that heard nothing for 3 s drops its end
 * and dials again (runtime.c, ZMTP heartbeats), and the old connection's
 * close reaches us when the link returns, maybe before the new one's Join.
 * Such a member is judged by its silence instead, which the isolation's end
 * has already moved on by the rejoin window. */
static int s_closes_are_reconnects(const herd_coord_t *coord, int64_t now_ms)
{
  return coord->detect.isolated || now_ms < coord->detect.rejoin_until_ms;
}

static void s_check_member(herd_coord_t *coord, coord_member_t *m,
                           int64_t now_ms, int64_t floor_ms)
{
  char reason[128];
  if (m->disconnected_ms && coord->config.disconnect_is_failure > 0 &&
      !s_closes_are_reconnects(coord, now_ms) &&
      (coord->detect.router_drained ||
       now_ms - m->disconnected_ms >= DETECT_DISCONNECT_GRACE_MS)) {
    coord_member_fail(coord, m, "connection_closed", "connection lost");
    return;
  }
  int64_t silent_ms = now_ms - m->last_seen_ms;
  if (!m->in_use || m->state == COORD_MEMBER_FAILED || silent_ms <= floor_ms)
    return;
  int64_t deadline_ms = s_deadline_ms(coord, m, floor_ms);
  if (silent_ms > deadline_ms) {
    snprintf(reason, sizeof reason,
             "no heartbeat for %lld ms (deadline %lld ms): hung or cut off",
             (long long)silent_ms, (long long)deadline_ms);
    coord_member_fail(coord, m, "heartbeat_silence", reason);
  } else if (!m->suspect) {
    s_suspect(coord, m, silent_ms, deadline_ms);
  }
}

/* Time the loop did not run counts for nobody: move every clock on by it. */
static void s_credit_deafness(herd_coord_t *coord, int64_t now_ms)
{
  int64_t gap =
      coord->detect.last_scan_ms ? now_ms - coord->detect.last_scan_ms : 0;
  coord->detect.last_scan_ms = now_ms;
  if (gap <= DETECT_DEAF_GAP_MS)
    return;
  HERD_LOG(gap > 1000 ? HERD_LOG_WARN : HERD_LOG_DEBUG, COORD_LOG,
           "coordinator loop stalled for %lld ms: not counted as silence",
           (long long)gap);
  for (int i = 0; i < coord->members.capacity; i++)
    if (coord->members.slot[i].in_use)
      coord->members.slot[i].last_seen_ms += gap;
}

/* Once the first member is heard after an isolation, the others get the
 * time a worker needs to notice its dead connection and reconnect
 * (rejoin_window_ms) before their silence counts again. */
static void s_end_isolation(herd_coord_t *coord, int64_t now_ms,
                            int64_t limit_ms)
{
  int64_t until = now_ms + coord->config.rejoin_window_ms - limit_ms;
  coord->detect.rejoin_until_ms = now_ms + coord->config.rejoin_window_ms;
  HERD_LOG(HERD_LOG_INFO, COORD_LOG, "members heard from again: the others "
           "have %d ms to re-register", coord->config.rejoin_window_ms);
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (m->in_use && m->last_seen_ms < until)
      m->last_seen_ms = until;
  }
}

/* Whether the coordinator hears anyone: a member's silence is held against
 * it only while others are heard (within half the deadline). With nobody
 * heard, the likelier story is that the coordinator's own host is cut off;
 * that benefit of the doubt lasts DETECT_ISOLATION_MAX_MS. A job of one
 * member has nobody to compare with and is judged as before. */
static int s_hears_members(herd_coord_t *coord, int64_t now_ms,
                           int64_t limit_ms)
{
  int live = 0;
  int64_t newest = 0;
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (!m->in_use || m->state == COORD_MEMBER_FAILED)
      continue;
    live++;
    if (m->last_seen_ms > newest)
      newest = m->last_seen_ms;
  }
  int64_t silent_ms = now_ms - newest;
  int hearing = live < 2 || silent_ms <= limit_ms / 2;
  if (!hearing && silent_ms > limit_ms && !coord->detect.isolated) {
    HERD_LOG(HERD_LOG_WARN, COORD_LOG,
             "no member heard from for %lld ms: this host looks cut off; "
             "failing nobody for silence for up to %d ms",
             (long long)silent_ms, DETECT_ISOLATION_MAX_MS);
    coord->detect.isolated = 1;
  } else if (hearing && coord->detect.isolated) {
    s_end_isolation(coord, now_ms, limit_ms);
    coord->detect.isolated = 0;
  }
  return hearing || silent_ms > DETECT_ISOLATION_MAX_MS;
}

static void s_scan(herd_coord_t *coord, int64_t now_ms)
{
  int64_t limit_ms = (int64_t)coord->config.heartbeat_interval_ms *
                     coord->config.heartbeat_misses;
  s_credit_deafness(coord, now_ms);
  /* Heartbeats may be waiting in the ROUTER: judge silence after reading. */
  int judge_silence =
      coord->detect.router_drained && s_hears_members(coord, now_ms, limit_ms);
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (m->in_use)
      s_check_member(coord, m, now_ms, judge_silence ? limit_ms : INT64_MAX);
  }
}

/* ---- progress watchdog ----------------------------------------------------- */

void coord_detect_step(herd_coord_t *coord, coord_member_t *member,
                       int64_t step, int64_t now_ms)
{
  if (step <= member->step)
    return;
  if (member->step >= 0) {
    double per_step =
        (double)(now_ms - member->step_advanced_ms) / (double)(step - member->step);
    member->step_ms_avg = member->step_ms_avg > 0
                              ? 0.7 * member->step_ms_avg + 0.3 * per_step
                              : per_step;
  }
  member->step = step;
  member->step_advanced_ms = now_ms;
}

static int s_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median ms per step over active members that have one; 0 when none. */
static double s_median_step_ms(herd_coord_t *coord)
{
  int n = 0;
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (m->in_use && m->state == COORD_MEMBER_ACTIVE && m->step_ms_avg > 0)
      coord->detect.scratch[n++] = m->step_ms_avg;
  }
  if (n == 0)
    return 0;
  qsort(coord->detect.scratch, (size_t)n, sizeof *coord->detect.scratch,
        s_cmp_double);
  return coord->detect.scratch[n / 2];
}

void coord_detect_waiting(coord_member_t *member, int64_t waiting_ms,
                          int64_t now_ms)
{
  if (waiting_ms <= 0)
    member->waiting_since_ms = 0;
  else /* bounded: a wait cannot have begun before the clock did */
    member->waiting_since_ms = waiting_ms < now_ms ? now_ms - waiting_ms : 1;
}

/* The one active member not waiting on its peers while every other one
 * has waited in a collective for over limit_ms, all heard from lately;
 * NULL when there is no such member. *waited_ms: the shortest of the
 * others' waits. */
static coord_member_t *s_lone_holdout(herd_coord_t *coord, int64_t now_ms,
                                      int64_t limit_ms, int64_t heard_within,
                                      int64_t *waited_ms)
{
  coord_member_t *holdout = NULL;
  int waiting = 0;
  *waited_ms = INT64_MAX;
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (!m->in_use || m->state != COORD_MEMBER_ACTIVE)
      continue;
    if (now_ms - m->heard_ms > heard_within)
      return NULL; /* somebody silent: the heartbeat check's case */
    if (!m->waiting_since_ms) {
      if (holdout)
        return NULL; /* two ranks at work: nothing to tell them apart */
      holdout = m;
      continue;
    }
    int64_t waited = now_ms - m->waiting_since_ms;
    if (waited <= limit_ms)
      return NULL;
    if (waited < *waited_ms)
      *waited_ms = waited;
    waiting++;
  }
  return waiting > 0 ? holdout : NULL;
}

/* A rank hung in its own computation (an endless loop, a deadlock) still
 * heartbeats from its link thread, and its step stops; so do the steps of
 * every rank waiting for it in the next all-reduce, so step counts cannot
 * tell them apart. What can: the waiting ranks say so in each heartbeat
 * (herd_comm_waiting_ms) and the hung one does not. When all active
 * members but one have waited over the limit (watchdog_multiple x the
 * median step, at least watchdog_min_ms) and that one has not stepped
 * for as long, it is failed as hung. A stall everyone shares (a network
 * outage: all wait) or two ranks at work blames nobody; a SIGSTOPped rank
 * falls silent and is the heartbeat check's. */
static void s_watchdog(herd_coord_t *coord, int64_t now_ms)
{
  if (coord->config.watchdog_multiple <= 0 ||
      coord->gen.state != COORD_JOB_RUNNING || coord->progress.done)
    return;
  double median = s_median_step_ms(coord);
  if (median <= 0)
    return;
  double limit = median * coord->config.watchdog_multiple;
  if (limit < coord->config.watchdog_min_ms)
    limit = coord->config.watchdog_min_ms;
  int64_t heard_within = (int64_t)coord->config.heartbeat_interval_ms *
                         coord->config.heartbeat_misses;
  int64_t waited_ms = 0;
  coord_member_t *m =
      s_lone_holdout(coord, now_ms, (int64_t)limit, heard_within, &waited_ms);
  if (!m)
    return;
  /* Stuck since its last step or since the generation formed, whichever
   * is later (a member that rejoined after a cut carries an old step). */
  int64_t since = m->step_advanced_ms > coord->gen.formed_ms
                      ? m->step_advanced_ms
                      : coord->gen.formed_ms;
  if (now_ms - since <= limit)
    return;
  char reason[192];
  snprintf(reason, sizeof reason,
           "progress watchdog: hung at step %lld for %lld ms, not in a "
           "collective, while the others waited in one for %lld ms",
           (long long)m->step, (long long)(now_ms - since),
           (long long)waited_ms);
  coord->detect.watchdog_evictions++;
  coord_member_fail(coord, m, "watchdog", reason);
}

void coord_detect_tick(herd_coord_t *coord, int64_t now_ms)
{
  if (now_ms >= coord->detect.next_scan_ms) {
    s_scan(coord, now_ms);
    coord->detect.next_scan_ms = now_ms + coord->detect.scan_interval_ms;
  }
  if (now_ms >= coord->detect.next_watchdog_ms) {
    s_watchdog(coord, now_ms);
    coord->detect.next_watchdog_ms = now_ms + DETECT_WATCHDOG_EVERY_MS;
  }
}
