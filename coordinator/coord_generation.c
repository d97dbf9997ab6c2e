/* Generations: when to form one, who is in it, and how a restarted
 * coordinator adopts the one its workers are still running.
 *
 * The job state machine (coord_members.c) says which step is next; this file
 * decides when its events fire:
 *
 *   forming   --min eligible--> last_call --window over or max--> running
 *   running   --member lost / waiting workers admittable--> reconfiguring
 *   reconfiguring --min eligible--> running (g+1)  | --fewer--> forming
 *
 * "Eligible" members are registered and not held out: a host in cool-down
 * (coord_detect.c) is skipped unless the generation would otherwise fall
 * below --min, so a flapping node cannot stall the job. Survivors keep their
 * relative order and are re-ranked 0..n-1, newcomers follow in join order,
 * never more than --max. Workers that arrive while a generation runs wait
 * (state waiting) and are admitted together after a last-call window.
 *
 * Restart: a worker re-registers with the generation and rank it holds. A
 * coordinator that has not formed a generation itself waits up to
 * rejoin_window_ms for every member of the newest claimed generation; when
 * all are back it adopts that generation unchanged (same number, same
 * ranks). Otherwise it forms a new one numbered above anything it has seen
 * (claims and events.jsonl).
 *
 * Rosters list every member up to COORD_ROSTER_FULL_MAX; bigger generations
 * send each worker only its own entry, which keeps forming O(n).
 *
 * Every function here runs with coord->lock held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "herd/clock.h"
#include "coord_internal.h"
#include "herd/herd.h"

/* The job state machine: state x event -> next state, -1 not allowed (an
 * event not allowed is ignored and logged: the network can cause it). */
/* clang-format off */
#define NO_  -1
#define FRM_ COORD_JOB_FORMING
#define RUN_ COORD_JOB_RUNNING
#define RCF_ COORD_JOB_RECONFIGURING
#define JFL_ COORD_JOB_FAILED
#define FIN_ COORD_JOB_FINISHED
#define LST_ COORD_JOB_LAST_CALL
static const int s_job_table[COORD_JOB_STATE_COUNT][COORD_JOB_EV_COUNT] = {
  /*                       QUORUM LOST  REFORMED TIMEOUT FINISH ADMIT BELOW ADOPTED */
  [COORD_JOB_FORMING]  = { LST_,  FRM_, RUN_,    JFL_,   FIN_,  NO_,  FRM_, RUN_ },
  [COORD_JOB_LAST_CALL]= { LST_,  LST_, RUN_,    NO_,    FIN_,  NO_,  FRM_, RUN_ },
  [COORD_JOB_RUNNING]  = { NO_,   RCF_, NO_,     NO_,    FIN_,  RCF_, NO_,  NO_  },
  [COORD_JOB_RECONFIGURING]
                       = { NO_,   RCF_, RUN_,    NO_,    FIN_,  RCF_, FRM_, NO_  },
  [COORD_JOB_FAILED]   = { NO_,   JFL_, NO_,     NO_,    FIN_,  NO_,  NO_,  NO_  },
  [COORD_JOB_FINISHED] = { NO_,   FIN_, NO_,     NO_,    FIN_,  NO_,  NO_,  NO_  },
};
#undef FRM_
#undef RUN_
#undef RCF_
#undef JFL_
#undef FIN_
#undef LST_
#undef NO_
/* clang-format on */

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
  if (!coord_job_transition(coord->gen.state, event, &next)) {
    HERD_LOG(HERD_LOG_DEBUG, COORD_LOG, "job event %d ignored in state %s",
             (int)event, coord_job_state_name(coord->gen.state));
    return;
  }
  if (next == COORD_JOB_FORMING && coord->gen.state != COORD_JOB_FORMING)
    coord->gen.forming_since_ms =
        herd_mono_ms(); /* the join timeout restarts */
  coord->gen.state = next;
}

const char *coord_job_state_name(coord_job_state_t state)
{
  static const char *const names[COORD_JOB_STATE_COUNT] = {
      "forming", "running", "reconfiguring", "failed", "finished", "last_call"};
  return (unsigned)state < COORD_JOB_STATE_COUNT ? names[state] : "?";
}

#define COORD_ROSTER_FULL_MAX 1024

/* ---- rosters -------------------------------------------------------------- */

static void s_fill_member(Herd__Member *item, const coord_member_t *m)
{
  herd__member__init(item);
  item->rank = m->rank;
  item->pid = m->pid;
  item->host = (char *)m->host;
}

void coord_send_roster(herd_coord_t *coord, coord_member_t *member)
{
  int n = coord->gen.world_size;
  int full = n <= COORD_ROSTER_FULL_MAX;
  int listed = full ? n : 1;
  Herd__Member *items = calloc((size_t)listed, sizeof *items);
  Herd__Member **ptrs = calloc((size_t)listed, sizeof *ptrs);
  if (!items || !ptrs)
    goto out;
  if (!full) {
    s_fill_member(&items[0], member);
    ptrs[0] = &items[0];
  }
  for (int i = 0; full && i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (!m->in_use || m->state != COORD_MEMBER_ACTIVE || m->rank >= n ||
        m->rank < 0)
      continue;
    s_fill_member(&items[m->rank], m);
    ptrs[m->rank] = &items[m->rank];
  }
  for (int i = 0; i < listed; i++)
    if (!ptrs[i]) { /* a rank left since forming: keep the list dense */
      herd__member__init(&items[i]);
      items[i].rank = i, items[i].pid = -1, items[i].host = "";
      ptrs[i] = &items[i];
    }
  Herd__Roster roster = HERD__ROSTER__INIT;
  roster.generation = coord->gen.number;
  roster.rank = member->rank;
  roster.world_size = n;
  roster.n_members = (size_t)listed;
  roster.members = ptrs;
  roster.state_source_rank = coord->gen.state_source_rank;
  roster.resume_step = coord->gen.formed_count > 1 ? coord->progress.step : -1;
  roster.heartbeat_interval_ms = coord->config.heartbeat_interval_ms;
  roster.join_timeout_ms = coord->config.join_timeout_ms;
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

/* ---- who goes into the next generation ---------------------------------- */

static int s_registered(const coord_member_t *m)
{
  return m->in_use && (m->state == COORD_MEMBER_ACTIVE ||
                       m->state == COORD_MEMBER_JOINING ||
                       m->state == COORD_MEMBER_WAITING);
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

/* Fills `list` with the next generation's members, ordered, at most max;
 * returns how many. Held-out hosts only fill a gap below min. */
static int s_collect(herd_coord_t *coord, coord_member_t **list,
                     int64_t now_ms)
{
  int n = 0, held = 0;
  int cap = coord->members.capacity;
  coord_member_t **held_out = list + cap; /* second half of the buffer */
  for (int i = 0; i < cap; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (!s_registered(m))
      continue;
    if (coord_host_cooling(coord, m, now_ms))
      held_out[held++] = m;
    else
      list[n++] = m;
  }
  qsort(list, (size_t)n, sizeof *list, s_by_rank_then_join);
  qsort(held_out, (size_t)held, sizeof *held_out, s_by_rank_then_join);
  for (int i = 0; n < coord->config.min_workers && i < held; i++)
    list[n++] = held_out[i];
  return n < coord->config.max_workers ? n : coord->config.max_workers;
}

/* How many s_collect would return, without sorting (runs every tick). */
static int s_eligible_count(herd_coord_t *coord, int64_t now_ms)
{
  int n = 0, held = 0;
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (!s_registered(m))
      continue;
    if (coord_host_cooling(coord, m, now_ms))
      held++;
    else
      n++;
  }
  int gap = coord->config.min_workers - n;
  if (gap > 0)
    n += held < gap ? held : gap;
  return n < coord->config.max_workers ? n : coord->config.max_workers;
}

/* Ranks for the first generation: the launcher's rank where it is unique
 * and in range (so MPI rank i is herd rank i), then the lowest free rank. */
static void s_assign_first_ranks(coord_member_t **list, int n)
{
  char *taken = calloc(n > 0 ? (size_t)n : 1, 1);
  for (int i = 0; i < n; i++) {
    int want = list[i]->launcher_rank;
    list[i]->rank = -1;
    if (taken && want >= 0 && want < n && !taken[want]) {
      taken[want] = 1;
      list[i]->rank = want;
    }
  }
  int next_free = 0;
  for (int i = 0; i < n; i++) {
    if (list[i]->rank >= 0)
      continue;
    while (taken && taken[next_free])
      next_free++;
    if (taken)
      taken[next_free] = 1;
    list[i]->rank = taken ? next_free : i;
  }
  free(taken);
}

static void s_admit(herd_coord_t *coord, coord_member_t *member)
{
  int newcomer = member->state != COORD_MEMBER_ACTIVE;
  if (!coord_member_apply(coord, member, COORD_MEMBER_EV_ADMIT))
    return;
  if (newcomer)
    coord_events_write(&coord->events, "member_joined",
                       json_pack("{s:i, s:i, s:o}", "rank", member->rank, "pid",
                                 member->pid, "host",
                                 coord_json_string(member->host)));
}

/* Registered members left out of a generation wait for the next one. */
static void s_defer_rest(herd_coord_t *coord)
{
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (!m->in_use || m->state == COORD_MEMBER_ACTIVE)
      continue;
    if (coord_member_apply(coord, m, COORD_MEMBER_EV_DEFER))
      m->rank = -1;
  }
}

/* Waiting members held out only because their host is cooling down are
 * admitted when the cool-down ends: nothing else would wake the admission
 * (no new Join comes). Returns that time, 0 when nobody is held out. */
static int64_t s_cooldown_admit_ms(const herd_coord_t *coord)
{
  int64_t first = 0;
  for (int i = 0; i < coord->members.capacity; i++) {
    const coord_member_t *m = &coord->members.slot[i];
    if (!m->in_use || m->state != COORD_MEMBER_WAITING || m->host_index < 0)
      continue;
    int64_t until = coord->members.hosts[m->host_index].cooldown_until_ms;
    if (until > 0 && (!first || until < first))
      first = until;
  }
  return first;
}

static int64_t s_next_generation(const herd_coord_t *coord)
{
  int64_t g = coord->gen.number;
  if (coord->gen.file_generation > g)
    g = coord->gen.file_generation;
  if (coord->gen.adopt_generation > g)
    g = coord->gen.adopt_generation;
  return g + 1;
}

static void s_generation_formed(herd_coord_t *coord, coord_member_t **list,
                                int n, int adopted)
{
  coord->gen.world_size = n;
  coord->gen.formed_here = 1;
  coord->gen.formed_count++;
  coord->gen.formed_ms = herd_mono_ms();
  s_defer_rest(coord);
  coord->gen.admit_at_ms = coord->gen.world_size < coord->config.max_workers
                               ? s_cooldown_admit_ms(coord)
                               : 0;
  coord_kv_prune(&coord->kv, coord->gen.number);
  HERD_LOG(HERD_LOG_INFO, COORD_LOG, "generation %lld %s, world size %d",
           (long long)coord->gen.number, adopted ? "adopted" : "formed", n);
  coord_events_write(&coord->events, "generation",
                     json_pack("{s:I, s:i, s:b}", "generation",
                               (json_int_t)coord->gen.number, "world_size", n,
                               "adopted", adopted));
  for (int i = 0; i < n; i++)
    coord_send_roster(coord, list[i]);
}

static void s_form_generation(herd_coord_t *coord, int64_t now_ms)
{
  coord_member_t **list =
      calloc((size_t)coord->members.capacity * 2, sizeof *list);
  if (!list)
    return; /* retried on the next tick */
  int n = s_collect(coord, list, now_ms);
  int survivors = 0;
  for (int i = 0; i < n; i++)
    survivors += list[i]->state == COORD_MEMBER_ACTIVE;
  /* With no survivors (a fresh job, or a relaunched static MPI world) the
   * launcher's ranks are kept, so MPI rank i is herd rank i again. */
  if (!coord->gen.formed_here || survivors == 0)
    s_assign_first_ranks(list, n);
  else
    for (int i = 0; i < n; i++)
      list[i]->rank = i;
  coord->gen.state_source_rank = !coord->gen.formed_here || survivors ? 0 : -1;
  coord->gen.number = s_next_generation(coord);
  coord->gen.adopt_generation = -1; /* past the point of adopting */
  for (int i = 0; i < n; i++)
    s_admit(coord, list[i]);
  coord_job_apply(coord, COORD_JOB_EV_REFORMED);
  s_generation_formed(coord, list, n, 0);
  free(list);
}

/* ---- restart: adopting the workers' generation ---------------------------- */

/* The members claiming generation g, when they are all of it (ranks
 * 0..world-1 each exactly once); else 0; -1 when one of them was still in
 * g's rendezvous (its keys died with the old store: g can never finish). */
static int s_adoptable(herd_coord_t *coord, int64_t g, coord_member_t **list)
{
  int n = 0, world = -1;
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (!m->in_use || m->claimed_generation != g)
      continue;
    if (m->claimed_pending)
      return -1;
    if (world >= 0 && m->claimed_world != world)
      return 0;
    world = m->claimed_world;
    /* The claim comes from the wire: a world larger than the member table
     * can never be complete here (and would index past `list`). */
    if (world > coord->members.capacity || m->claimed_rank < 0 ||
        m->claimed_rank >= world || list[m->claimed_rank])
      return 0;
    list[m->claimed_rank] = m;
    n++;
  }
  return world > 0 && n == world ? n : 0;
}

static void s_adopt(herd_coord_t *coord, coord_member_t **list, int n)
{
  coord->gen.number = coord->gen.adopt_generation;
  coord->gen.adopted_generation = coord->gen.adopt_generation;
  coord->gen.state_source_rank = 0;
  for (int i = 0; i < n; i++) {
    list[i]->rank = i;
    if (list[i]->step > coord->progress.step)
      coord->progress.step = list[i]->step;
    coord_member_apply(coord, list[i], COORD_MEMBER_EV_ADMIT);
    coord_events_write(&coord->events, "member_adopted",
                       json_pack("{s:i, s:i, s:o}", "rank", i, "pid",
                                 list[i]->pid, "host",
                                 coord_json_string(list[i]->host)));
  }
  coord->gen.formed_count = 2; /* rosters carry resume_step from now on */
  coord_job_apply(coord, COORD_JOB_EV_ADOPTED);
  s_generation_formed(coord, list, n, 1);
}

/* Returns 1 while an adoption is still possible (do not form yet). */
static int s_try_adopt(herd_coord_t *coord, int64_t now_ms)
{
  if (coord->gen.formed_here || coord->gen.adopt_generation <= 0)
    return 0;
  coord_member_t **list = calloc((size_t)coord->members.capacity, sizeof *list);
  if (!list)
    return 0;
  int n = s_adoptable(coord, coord->gen.adopt_generation, list);
  if (n > 0)
    s_adopt(coord, list, n);
  free(list);
  if (n > 0)
    return 1;
  if (n == 0 && now_ms < coord->gen.adopt_deadline_ms)
    return 1;
  if (n < 0)
    HERD_LOG(HERD_LOG_WARN, COORD_LOG,
             "generation %lld was still in its rendezvous; forming a new one",
             (long long)coord->gen.adopt_generation);
  else
    HERD_LOG(HERD_LOG_WARN, COORD_LOG,
             "generation %lld did not fully re-register within %d ms; "
             "forming a new one",
             (long long)coord->gen.adopt_generation,
             coord->config.rejoin_window_ms);
  coord->gen.file_generation = s_next_generation(coord) - 1;
  coord->gen.adopt_generation = -1;
  return 0;
}

/* ---- events from the handlers ---------------------------------------------- */

void coord_generation_on_join(herd_coord_t *coord, coord_member_t *member)
{
  int64_t now_ms = herd_mono_ms();
  if (member->claimed_generation > 0 && !coord->gen.formed_here &&
      coord->gen.adopt_generation >= 0 &&
      member->claimed_generation > coord->gen.file_generation - 1) {
    if (member->claimed_generation > coord->gen.adopt_generation)
      coord->gen.adopt_generation = member->claimed_generation;
    if (!coord->gen.adopt_deadline_ms)
      coord->gen.adopt_deadline_ms = now_ms + coord->config.rejoin_window_ms;
  }
  if (coord->gen.state == COORD_JOB_RUNNING ||
      coord->gen.state == COORD_JOB_RECONFIGURING) {
    coord_member_apply(coord, member, COORD_MEMBER_EV_DEFER);
    int window = coord->config.last_call_ms > 0 ? coord->config.last_call_ms : 0;
    if (!coord->gen.admit_at_ms &&
        coord->gen.world_size < coord->config.max_workers)
      coord->gen.admit_at_ms = now_ms + window;
  }
}

void coord_generation_on_lost(herd_coord_t *coord)
{
  coord_job_apply(coord, COORD_JOB_EV_MEMBER_LOST);
}

/* ---- the tick --------------------------------------------------------------- */

static void s_check_join_timeout(herd_coord_t *coord, int64_t now_ms)
{
  if (coord->gen.state != COORD_JOB_FORMING ||
      now_ms - coord->gen.forming_since_ms < coord->config.join_timeout_ms)
    return;
  coord_job_apply(coord, COORD_JOB_EV_JOIN_TIMEOUT);
  coord->gen.failed = 1;
  snprintf(coord->gen.failure, sizeof coord->gen.failure,
           "only %d of %d workers joined within %g s",
           coord_member_count(coord), coord->config.min_workers,
           coord->config.join_timeout_ms / 1000.0);
  HERD_LOG(HERD_LOG_ERROR, COORD_LOG, "%s", coord->gen.failure);
  coord_events_write(&coord->events, "job_failed",
                     json_pack("{s:s}", "reason", coord->gen.failure));
}

static void s_tick_forming(herd_coord_t *coord, int64_t now_ms)
{
  if (s_try_adopt(coord, now_ms))
    return;
  int n = s_eligible_count(coord, now_ms);
  if (coord->gen.state == COORD_JOB_FORMING) {
    if (n >= coord->config.max_workers ||
        (n >= coord->config.min_workers && coord->config.last_call_ms <= 0)) {
      s_form_generation(coord, now_ms);
    } else if (n >= coord->config.min_workers) {
      coord_job_apply(coord, COORD_JOB_EV_QUORUM);
      coord->gen.last_call_until_ms = now_ms + coord->config.last_call_ms;
    }
    return;
  }
  /* last call */
  if (n < coord->config.min_workers)
    coord_job_apply(coord, COORD_JOB_EV_BELOW_MIN);
  else if (n >= coord->config.max_workers ||
           now_ms >= coord->gen.last_call_until_ms)
    s_form_generation(coord, now_ms);
}

static void s_tick_running(herd_coord_t *coord, int64_t now_ms)
{
  if (!coord->gen.admit_at_ms || now_ms < coord->gen.admit_at_ms)
    return;
  coord->gen.admit_at_ms = 0;
  if (coord->gen.world_size < coord->config.max_workers &&
      coord->members.waiting > 0 && !coord->progress.done)
    coord_job_apply(coord, COORD_JOB_EV_ADMIT);
}

void coord_generation_tick(herd_coord_t *coord, int64_t now_ms)
{
  s_check_join_timeout(coord, now_ms);
  switch (coord->gen.state) {
  case COORD_JOB_FORMING:
  case COORD_JOB_LAST_CALL:
    s_tick_forming(coord, now_ms);
    break;
  case COORD_JOB_RUNNING:
    s_tick_running(coord, now_ms);
    break;
  case COORD_JOB_RECONFIGURING:
    if (s_eligible_count(coord, now_ms) >= coord->config.min_workers) {
      s_form_generation(coord, now_ms);
    } else {
      HERD_LOG(HERD_LOG_WARN, COORD_LOG,
               "%d workers left, below --min %d: waiting for joins",
               coord_member_count(coord), coord->config.min_workers);
      coord_events_write(&coord->events, "waiting_for_workers",
                         json_pack("{s:i, s:i}", "members",
                                   coord_member_count(coord), "min",
                                   coord->config.min_workers));
      coord_job_apply(coord, COORD_JOB_EV_BELOW_MIN);
    }
    break;
  default:
    break;
  }
}
