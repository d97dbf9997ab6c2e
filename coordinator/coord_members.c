/* Member table, the worker and job state machines, and generations.
 *
 * Both state machines are explicit tables (state x event -> next state, or
 * -1 for "not allowed") so the elastic work that follows can add states and
 * events by adding rows instead of editing scattered ifs. An event that is
 * not allowed in a state is ignored and logged, never asserted: it can be
 * caused by the network (a Leave racing a heartbeat timeout).
 *
 * Generations: the first forms when min_workers have joined, honouring the
 * launcher's ranks where they are unique and in range. After a failure, the
 * survivors keep their relative order and are re-ranked 0..n-1, so the
 * lowest-ranked survivor (the state source) becomes rank 0. A clean Leave
 * does not start a new generation: at the end of a job ranks leave in any
 * order, and re-forming for each would only produce churn (elastic shrink on
 * purpose comes with the elastic issue).
 *
 * Every function here runs with coord->lock held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coord_internal.h"
#include "herd/herd.h"

/* clang-format off */
#define NO_  -1
#define ACT_ COORD_MEMBER_ACTIVE
#define LVG_ COORD_MEMBER_LEAVING
#define FLD_ COORD_MEMBER_FAILED
static const int s_member_table[COORD_MEMBER_STATE_COUNT]
                               [COORD_MEMBER_EV_COUNT] = {
  /*                          ADMIT  LEAVE  FAIL */
  [COORD_MEMBER_JOINING] = { ACT_,  LVG_,  FLD_ },
  [COORD_MEMBER_ACTIVE]  = { ACT_,  LVG_,  FLD_ },
  [COORD_MEMBER_LEAVING] = { NO_,   NO_,   NO_  },
  [COORD_MEMBER_FAILED]  = { NO_,   NO_,   NO_  },
};
#undef ACT_
#undef LVG_
#undef FLD_

#define FRM_ COORD_JOB_FORMING
#define RUN_ COORD_JOB_RUNNING
#define RCF_ COORD_JOB_RECONFIGURING
#define JFL_ COORD_JOB_FAILED
#define FIN_ COORD_JOB_FINISHED
static const int s_job_table[COORD_JOB_STATE_COUNT][COORD_JOB_EV_COUNT] = {
  /*                            QUORUM LOST  REFORMED TIMEOUT FINISH */
  [COORD_JOB_FORMING]       = { RUN_,  FRM_, NO_,     JFL_,   FIN_ },
  [COORD_JOB_RUNNING]       = { NO_,   RCF_, NO_,     NO_,    FIN_ },
  [COORD_JOB_RECONFIGURING] = { NO_,   RCF_, RUN_,    NO_,    FIN_ },
  [COORD_JOB_FAILED]        = { NO_,   JFL_, NO_,     NO_,    FIN_ },
  [COORD_JOB_FINISHED]      = { NO_,   FIN_, NO_,     NO_,    FIN_ },
};
#undef FRM_
#undef RUN_
#undef RCF_
#undef JFL_
#undef FIN_
#undef NO_
/* clang-format on */

int coord_member_transition(coord_member_state_t state,
                            coord_member_event_t event,
                            coord_member_state_t *next)
{
  if ((unsigned)state >= COORD_MEMBER_STATE_COUNT ||
      (unsigned)event >= COORD_MEMBER_EV_COUNT ||
      s_member_table[state][event] < 0)
    return 0;
  *next = (coord_member_state_t)s_member_table[state][event];
  return 1;
}

int coord_job_transition(coord_job_state_t state, coord_job_event_t event,
                         coord_job_state_t *next)
{
  if ((unsigned)state >= COORD_JOB_STATE_COUNT ||
      (unsigned)event >= COORD_JOB_EV_COUNT || s_job_table[state][event] < 0)
    return 0;
  *next = (coord_job_state_t)s_job_table[state][event];
  return 1;
}

void coord_job_apply(herd_coord_t *coord, coord_job_event_t event)
{
  coord_job_state_t next;
  if (!coord_job_transition(coord->job_state, event, &next)) {
    HERD_LOG(HERD_LOG_DEBUG, COORD_LOG, "job event %d ignored in state %d",
             (int)event, (int)coord->job_state);
    return;
  }
  coord->job_state = next;
}

/* ---- lookups ------------------------------------------------------------ */

coord_member_t *coord_member_find(herd_coord_t *coord, const void *routing_id,
                                  size_t routing_id_len)
{
  for (int i = 0; i < coord->config.max_workers; i++) {
    coord_member_t *m = &coord->members[i];
    if (m->in_use && m->routing_id_len == routing_id_len &&
        memcmp(m->routing_id, routing_id, routing_id_len) == 0)
      return m;
  }
  return NULL;
}

coord_member_t *coord_member_by_rank(herd_coord_t *coord, int rank)
{
  for (int i = 0; i < coord->config.max_workers; i++) {
    coord_member_t *m = &coord->members[i];
    if (m->in_use && m->state == COORD_MEMBER_ACTIVE && m->rank == rank)
      return m;
  }
  return NULL;
}

int coord_member_count(const herd_coord_t *coord)
{
  int n = 0;
  for (int i = 0; i < coord->config.max_workers; i++)
    n += coord->members[i].in_use;
  return n;
}

/* ---- joining, leaving, failing ------------------------------------------ */

coord_member_t *coord_member_add(herd_coord_t *coord, const void *routing_id,
                                 size_t routing_id_len, const Herd__Join *join)
{
  coord_member_t *slot = NULL;
  for (int i = 0; i < coord->config.max_workers && !slot; i++)
    if (!coord->members[i].in_use)
      slot = &coord->members[i];
  if (!slot || routing_id_len > sizeof slot->routing_id)
    return NULL;
  memset(slot, 0, sizeof *slot);
  slot->in_use = 1;
  slot->state = COORD_MEMBER_JOINING;
  memcpy(slot->routing_id, routing_id, routing_id_len);
  slot->routing_id_len = routing_id_len;
  slot->pid = join->pid;
  snprintf(slot->host, sizeof slot->host, "%s", join->host);
  slot->launcher_rank = join->launcher_rank;
  slot->rank = -1;
  slot->join_seq = coord->join_seq++;
  slot->last_seen_ms = coord_now_ms();
  coord->stats.members = coord_member_count(coord);
  return slot;
}

static void s_member_remove(herd_coord_t *coord, coord_member_t *member)
{
  member->in_use = 0;
  coord->stats.members = coord_member_count(coord);
}

void coord_member_fail(herd_coord_t *coord, coord_member_t *member,
                       const char *reason)
{
  coord_member_state_t next;
  if (!coord_member_transition(member->state, COORD_MEMBER_EV_FAIL, &next))
    return;
  int was_admitted = member->state == COORD_MEMBER_ACTIVE;
  member->state = next;
  HERD_LOG(HERD_LOG_WARN, COORD_LOG, "member rank %d pid %d failed: %s",
           member->rank, member->pid, reason);
  coord_events_write(&coord->events, "member_failed",
                     json_pack("{s:i, s:i, s:o}", "rank", member->rank, "pid",
                               member->pid, "reason",
                               coord_json_string(reason)));
  coord->stats.failures++;
  s_member_remove(coord, member);
  /* After the job is done, ranks exiting are not a reason to re-form. */
  if (was_admitted && !coord->stats.done)
    coord_job_apply(coord, COORD_JOB_EV_MEMBER_LOST);
}

void coord_member_leave(herd_coord_t *coord, coord_member_t *member)
{
  coord_member_state_t next;
  if (!coord_member_transition(member->state, COORD_MEMBER_EV_LEAVE, &next))
    return;
  member->state = next;
  HERD_LOG(HERD_LOG_INFO, COORD_LOG, "member rank %d pid %d left", member->rank,
           member->pid);
  coord_events_write(
      &coord->events, "member_left",
      json_pack("{s:i, s:i}", "rank", member->rank, "pid", member->pid));
  s_member_remove(coord, member);
}

/* ---- generations --------------------------------------------------------- */

void coord_send_roster(herd_coord_t *coord, coord_member_t *member)
{
  int n = coord->stats.world_size;
  Herd__Member *items = calloc((size_t)n, sizeof *items);
  Herd__Member **ptrs = calloc((size_t)n, sizeof *ptrs);
  if (!items || !ptrs)
    goto out;
  for (int i = 0; i < coord->config.max_workers; i++) {
    coord_member_t *m = &coord->members[i];
    if (!m->in_use || m->state != COORD_MEMBER_ACTIVE || m->rank >= n ||
        m->rank < 0)
      continue;
    herd__member__init(&items[m->rank]);
    items[m->rank].rank = m->rank;
    items[m->rank].pid = m->pid;
    items[m->rank].host = m->host;
    ptrs[m->rank] = &items[m->rank];
  }
  Herd__Roster roster = HERD__ROSTER__INIT;
  roster.generation = coord->stats.generation;
  roster.rank = member->rank;
  roster.world_size = n;
  roster.n_members = (size_t)n;
  roster.members = ptrs;
  roster.state_source_rank = 0;
  roster.resume_step = coord->stats.generation > 1 ? coord->stats.step : -1;
  roster.heartbeat_interval_ms = coord->config.heartbeat_interval_ms;
  Herd__Envelope env;
  coord_codec_envelope_init(coord, &env);
  env.body_case = HERD__ENVELOPE__BODY_ROSTER;
  env.roster = &roster;
  if (herd_wire_send(coord->router, member->routing_id, member->routing_id_len,
                     &env) != HERD_OK)
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "roster to rank %d not delivered",
             member->rank);
out:
  free(items);
  free(ptrs);
}

static int s_by_rank_then_join(const void *a, const void *b)
{
  const coord_member_t *x = *(coord_member_t *const *)a;
  const coord_member_t *y = *(coord_member_t *const *)b;
  /* Members of the old generation (rank >= 0) first, in rank order. */
  int64_t kx = x->rank >= 0 ? x->rank : INT32_MAX + x->join_seq;
  int64_t ky = y->rank >= 0 ? y->rank : INT32_MAX + y->join_seq;
  return (kx > ky) - (kx < ky);
}

/* Ranks for generation 1: the launcher's rank where it is unique and in
 * range (so MPI rank i is herd rank i), then the lowest free rank. */
static void s_assign_first_ranks(coord_member_t **list, int n)
{
  char *taken = calloc((size_t)n, 1);
  if (!taken) {
    for (int i = 0; i < n; i++)
      list[i]->rank = i;
    return;
  }
  for (int i = 0; i < n; i++) {
    int want = list[i]->launcher_rank;
    list[i]->rank = -1;
    if (want >= 0 && want < n && !taken[want]) {
      taken[want] = 1;
      list[i]->rank = want;
    }
  }
  int next_free = 0;
  for (int i = 0; i < n; i++) {
    if (list[i]->rank >= 0)
      continue;
    while (taken[next_free])
      next_free++;
    taken[next_free] = 1;
    list[i]->rank = next_free;
  }
  free(taken);
}

/* Collects the members that go into the next generation, ordered. */
static int s_collect(herd_coord_t *coord, coord_member_t **list)
{
  int n = 0;
  for (int i = 0; i < coord->config.max_workers; i++) {
    coord_member_t *m = &coord->members[i];
    if (m->in_use &&
        (m->state == COORD_MEMBER_ACTIVE || m->state == COORD_MEMBER_JOINING))
      list[n++] = m;
  }
  qsort(list, (size_t)n, sizeof *list, s_by_rank_then_join);
  return n;
}

static void s_admit(herd_coord_t *coord, coord_member_t *member)
{
  coord_member_state_t next;
  int newcomer = member->state == COORD_MEMBER_JOINING;
  if (!coord_member_transition(member->state, COORD_MEMBER_EV_ADMIT, &next))
    return;
  member->state = next;
  if (newcomer)
    coord_events_write(&coord->events, "member_joined",
                       json_pack("{s:i, s:i, s:o}", "rank", member->rank, "pid",
                                 member->pid, "host",
                                 coord_json_string(member->host)));
}

static void s_form_generation(herd_coord_t *coord, coord_job_event_t event)
{
  coord_member_t **list =
      calloc((size_t)coord->config.max_workers, sizeof *list);
  if (!list)
    return; /* retried on the next tick */
  int n = s_collect(coord, list);
  if (coord->stats.generation == 0)
    s_assign_first_ranks(list, n);
  else
    for (int i = 0; i < n; i++)
      list[i]->rank = i;
  coord->stats.generation++;
  coord->stats.world_size = n;
  for (int i = 0; i < n; i++)
    s_admit(coord, list[i]);
  coord_job_apply(coord, event);
  HERD_LOG(HERD_LOG_INFO, COORD_LOG, "generation %lld formed, world size %d",
           (long long)coord->stats.generation, n);
  coord_events_write(&coord->events, "generation",
                     json_pack("{s:I, s:i}", "generation",
                               (json_int_t)coord->stats.generation,
                               "world_size", n));
  for (int i = 0; i < n; i++)
    coord_send_roster(coord, list[i]);
  free(list);
}

static void s_check_heartbeats(herd_coord_t *coord, int64_t now_ms)
{
  int64_t limit_ms = (int64_t)coord->config.heartbeat_interval_ms *
                     coord->config.heartbeat_misses;
  for (int i = 0; i < coord->config.max_workers; i++) {
    coord_member_t *m = &coord->members[i];
    if (!m->in_use || now_ms - m->last_seen_ms <= limit_ms)
      continue;
    char reason[128];
    snprintf(reason, sizeof reason, "no heartbeat for %lld ms",
             (long long)(now_ms - m->last_seen_ms));
    coord_member_fail(coord, m, reason);
  }
}

static void s_check_join_timeout(herd_coord_t *coord, int64_t now_ms)
{
  if (coord->job_state != COORD_JOB_FORMING ||
      now_ms - coord->started_ms < coord->config.join_timeout_ms)
    return;
  coord_job_apply(coord, COORD_JOB_EV_JOIN_TIMEOUT);
  coord->stats.failed = 1;
  snprintf(coord->stats.failure, sizeof coord->stats.failure,
           "only %d of %d workers joined within %g s",
           coord_member_count(coord), coord->config.min_workers,
           coord->config.join_timeout_ms / 1000.0);
  HERD_LOG(HERD_LOG_ERROR, COORD_LOG, "%s", coord->stats.failure);
  coord_events_write(&coord->events, "job_failed",
                     json_pack("{s:s}", "reason", coord->stats.failure));
}

void coord_members_tick(herd_coord_t *coord, int64_t now_ms)
{
  s_check_heartbeats(coord, now_ms);
  s_check_join_timeout(coord, now_ms);
  if (coord->job_state == COORD_JOB_FORMING &&
      coord_member_count(coord) >= coord->config.min_workers)
    s_form_generation(coord, COORD_JOB_EV_QUORUM);
  else if (coord->job_state == COORD_JOB_RECONFIGURING &&
           coord_member_count(coord) > 0)
    s_form_generation(coord, COORD_JOB_EV_REFORMED);
}
