/* Members and hosts: the member table and the worker state machine.
 *
 * The state machine is an explicit table (state x event -> next state, or
 * -1 for "not allowed"; coord_generation.c has the job's) so behaviour is
 * read off one place. An event that is not allowed in a state is ignored
 * and logged, never asserted: it can be caused by the network (a Leave
 * racing a heartbeat timeout).
 *
 * The table is sized for 10,000+ workers heartbeating ten times a second,
 * so nothing on the per-message path is O(members): the routing id is
 * hashed to its slot (coord_index_t), free slots are a stack, the member
 * count is kept, and the connection a member's messages arrive on (its fd)
 * maps back to the member so a closed connection fails it at once.
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

#define COORD_FD_OWNER_MAX (1 << 20)

/* clang-format off */
#define NO_  -1
#define ACT_ COORD_MEMBER_ACTIVE
#define LVG_ COORD_MEMBER_LEAVING
#define FLD_ COORD_MEMBER_FAILED
#define WAI_ COORD_MEMBER_WAITING
static const int s_member_table[COORD_MEMBER_STATE_COUNT]
                               [COORD_MEMBER_EV_COUNT] = {
  /*                          ADMIT  LEAVE  FAIL   DEFER */
  [COORD_MEMBER_JOINING] = { ACT_,  LVG_,  FLD_,  WAI_ },
  [COORD_MEMBER_ACTIVE]  = { ACT_,  LVG_,  FLD_,  NO_  },
  [COORD_MEMBER_LEAVING] = { NO_,   NO_,   NO_,   NO_  },
  [COORD_MEMBER_FAILED]  = { NO_,   NO_,   NO_,   NO_  },
  [COORD_MEMBER_WAITING] = { ACT_,  LVG_,  FLD_,  WAI_ },
};
#undef ACT_
#undef LVG_
#undef FLD_
#undef WAI_

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

const char *coord_member_state_name(coord_member_state_t state)
{
  static const char *const names[COORD_MEMBER_STATE_COUNT] = {
      "joining", "active", "leaving", "failed", "waiting"};
  return (unsigned)state < COORD_MEMBER_STATE_COUNT ? names[state] : "?";
}

/* ---- the table and its index -------------------------------------------- */

herd_result_t coord_members_init(herd_coord_t *coord)
{
  int cap = coord->config.max_workers + coord->config.max_workers / 4 + 16;
  size_t index_size = 1;
  while (index_size < (size_t)cap * 2)
    index_size <<= 1;
  coord->members.capacity = cap;
  coord->members.slot = calloc((size_t)cap, sizeof *coord->members.slot);
  coord->members.free_slots =
      calloc((size_t)cap, sizeof *coord->members.free_slots);
  coord->members.index.slots =
      malloc(index_size * sizeof *coord->members.index.slots);
  coord->members.hosts = calloc(COORD_MAX_HOSTS, sizeof *coord->members.hosts);
  if (!coord->members.slot || !coord->members.free_slots ||
      !coord->members.index.slots || !coord->members.hosts)
    return herd_error_set(HERD_ENOMEM, "no memory for %d members", cap);
  coord->members.index.mask = index_size - 1;
  memset(coord->members.index.slots, 0xff,
         index_size * sizeof *coord->members.index.slots);
  for (int i = 0; i < cap; i++)
    coord->members.free_slots[i] = cap - 1 - i;
  coord->members.n_free = cap;
  return HERD_OK;
}

void coord_members_free(herd_coord_t *coord)
{
  free(coord->members.slot);
  free(coord->members.free_slots);
  free(coord->members.index.slots);
  free(coord->members.fd_owner);
  free(coord->members.hosts);
}

static size_t s_hash(const void *data, size_t len)
{
  const uint8_t *p = data;
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return (size_t)(h ^ (h >> 29));
}

static int s_id_equal(const coord_member_t *m, const void *id, size_t len)
{
  return m->routing_id_len == len && memcmp(m->routing_id, id, len) == 0;
}

static void s_index_insert(herd_coord_t *coord, int32_t member_index)
{
  coord_member_t *m = &coord->members.slot[member_index];
  size_t pos =
      s_hash(m->routing_id, m->routing_id_len) & coord->members.index.mask;
  while (coord->members.index.slots[pos] >= 0)
    pos = (pos + 1) & coord->members.index.mask;
  coord->members.index.slots[pos] = member_index;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void s_index_remove(herd_coord_t *coord, int32_t member_index)
{
  coord_index_t *ix = &coord->members.index;
  coord_member_t *m = &coord->members.slot[member_index];
  size_t pos = s_hash(m->routing_id, m->routing_id_len) & ix->mask;
  while (ix->slots[pos] != member_index) {
    if (ix->slots[pos] < 0)
      return;
    pos = (pos + 1) & ix->mask;
  }
  size_t hole = pos;
  for (size_t next = (hole + 1) & ix->mask; ix->slots[next] >= 0;
       next = (next + 1) & ix->mask) {
    coord_member_t *o = &coord->members.slot[ix->slots[next]];
    size_t home = s_hash(o->routing_id, o->routing_id_len) & ix->mask;
    /* Move it into the hole unless its home lies cyclically in (hole, next]. */
    int stays = hole <= next ? (home > hole && home <= next)
                             : (home > hole || home <= next);
    if (!stays) {
      ix->slots[hole] = ix->slots[next];
      hole = next;
    }
  }
  ix->slots[hole] = -1;
}

coord_member_t *coord_member_find(herd_coord_t *coord, const void *routing_id,
                                  size_t routing_id_len)
{
  size_t pos = s_hash(routing_id, routing_id_len) & coord->members.index.mask;
  for (int32_t i; (i = coord->members.index.slots[pos]) >= 0;
       pos = (pos + 1) & coord->members.index.mask)
    if (s_id_equal(&coord->members.slot[i], routing_id, routing_id_len))
      return &coord->members.slot[i];
  return NULL;
}

coord_member_t *coord_member_by_rank(herd_coord_t *coord, int rank)
{
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (m->in_use && m->state == COORD_MEMBER_ACTIVE && m->rank == rank)
      return m;
  }
  return NULL;
}

coord_member_t *coord_member_by_pid(herd_coord_t *coord, int pid,
                                    const char *host)
{
  for (int i = 0; i < coord->members.capacity; i++) {
    coord_member_t *m = &coord->members.slot[i];
    if (m->in_use && m->pid == pid && strcmp(m->host, host) == 0)
      return m;
  }
  return NULL;
}

int coord_member_count(const herd_coord_t *coord)
{
  return coord->members.used;
}

/* ---- hosts (their strikes and cool-downs: coord_detect.c) ---------------- */

int coord_host_intern(herd_coord_t *coord, const char *host)
{
  for (int i = 0; i < coord->members.n_hosts; i++)
    if (strcmp(coord->members.hosts[i].name, host) == 0)
      return i;
  if (coord->members.n_hosts == COORD_MAX_HOSTS)
    return -1; /* not tracked: never cooled */
  coord_host_t *h = &coord->members.hosts[coord->members.n_hosts];
  memset(h, 0, sizeof *h);
  snprintf(h->name, sizeof h->name, "%s", host);
  return coord->members.n_hosts++;
}

/* ---- connections ---------------------------------------------------------- */

void coord_member_note_fd(herd_coord_t *coord, coord_member_t *member, int fd)
{
  if (fd < 0 || fd >= COORD_FD_OWNER_MAX || member->fd == fd)
    return;
  if (fd >= coord->members.fd_owner_cap) {
    int cap = coord->members.fd_owner_cap ? coord->members.fd_owner_cap : 1024;
    while (cap <= fd)
      cap *= 2;
    int32_t *grown =
        realloc(coord->members.fd_owner, (size_t)cap * sizeof *grown);
    if (!grown)
      return; /* heartbeats still detect it */
    memset(grown + coord->members.fd_owner_cap, 0,
           (size_t)(cap - coord->members.fd_owner_cap) * sizeof *grown);
    coord->members.fd_owner = grown;
    coord->members.fd_owner_cap = cap;
  }
  if (member->fd >= 0 && member->fd < coord->members.fd_owner_cap &&
      coord->members.fd_owner[member->fd] ==
          (int32_t)(member - coord->members.slot) + 1)
    coord->members.fd_owner[member->fd] = 0;
  member->fd = fd;
  member->disconnected_ms = 0; /* back on a new connection: not lost */
  coord->members.fd_owner[fd] = (int32_t)(member - coord->members.slot) + 1;
}

/* The ROUTER's monitor saw connection `fd` close. The failure itself waits
 * for the tick, so a Leave still queued on that connection is seen first. */
void coord_member_disconnected(herd_coord_t *coord, int fd, int64_t now_ms)
{
  if (fd < 0 || fd >= coord->members.fd_owner_cap ||
      !coord->members.fd_owner[fd])
    return;
  coord_member_t *m = &coord->members.slot[coord->members.fd_owner[fd] - 1];
  coord->members.fd_owner[fd] = 0;
  if (m->in_use && m->fd == fd) {
    m->fd = -1;
    m->disconnected_ms = now_ms;
  }
}

/* ---- joining, leaving, failing ------------------------------------------ */

/* Every member state change goes through here, which keeps the count of
 * waiting members. 0: the event does not apply in the member's state. */
int coord_member_apply(herd_coord_t *coord, coord_member_t *member,
                       coord_member_event_t event)
{
  coord_member_state_t next;
  if (!coord_member_transition(member->state, event, &next))
    return 0;
  coord->members.waiting +=
      (next == COORD_MEMBER_WAITING) - (member->state == COORD_MEMBER_WAITING);
  member->state = next;
  return 1;
}

coord_member_t *coord_member_add(herd_coord_t *coord, const void *routing_id,
                                 size_t routing_id_len, const Herd__Join *join)
{
  if (coord->members.n_free == 0 || routing_id_len > COORD_ROUTING_ID_MAX)
    return NULL;
  int32_t index = coord->members.free_slots[--coord->members.n_free];
  coord_member_t *slot = &coord->members.slot[index];
  memset(slot, 0, sizeof *slot);
  slot->in_use = 1;
  slot->state = COORD_MEMBER_JOINING;
  memcpy(slot->routing_id, routing_id, routing_id_len);
  slot->routing_id_len = routing_id_len;
  slot->pid = join->pid;
  snprintf(slot->host, sizeof slot->host, "%s", join->host);
  slot->host_index = coord_host_intern(coord, slot->host);
  slot->launcher_rank = join->launcher_rank;
  slot->rank = -1;
  slot->fd = -1;
  slot->join_seq = coord->members.join_seq++;
  slot->last_seen_ms = slot->heard_ms = herd_mono_ms();
  slot->claimed_generation = join->generation;
  slot->claimed_rank = join->rank;
  slot->claimed_world = join->world_size;
  slot->claimed_pending = join->rendezvous_pending;
  slot->step = join->generation > 0 ? join->step : -1;
  slot->step_advanced_ms = slot->last_seen_ms;
  s_index_insert(coord, index);
  coord->members.used++;
  return slot;
}

static void s_member_remove(herd_coord_t *coord, coord_member_t *member)
{
  int32_t index = (int32_t)(member - coord->members.slot);
  s_index_remove(coord, index);
  if (member->fd >= 0 && member->fd < coord->members.fd_owner_cap &&
      coord->members.fd_owner[member->fd] == index + 1)
    coord->members.fd_owner[member->fd] = 0;
  member->in_use = 0;
  coord->members.free_slots[coord->members.n_free++] = index;
  coord->members.used--;
}

void coord_member_fail(herd_coord_t *coord, coord_member_t *member,
                       const char *signal, const char *reason)
{
  int was_admitted = member->state == COORD_MEMBER_ACTIVE;
  if (!coord_member_apply(coord, member, COORD_MEMBER_EV_FAIL))
    return;
  HERD_LOG(HERD_LOG_WARN, COORD_LOG, "member rank %d pid %d failed (%s): %s",
           member->rank, member->pid, signal, reason);
  coord_events_write(&coord->events, "member_failed",
                     json_pack("{s:i, s:i, s:s, s:o, s:o}", "rank", member->rank,
                               "pid", member->pid, "signal", signal, "reason",
                               coord_json_string(reason), "host",
                               coord_json_string(member->host)));
  coord->members.failures++;
  coord_detect_host_failed(coord, member, herd_mono_ms());
  s_member_remove(coord, member);
  /* After the job is done, ranks exiting are not a reason to re-form. */
  if (was_admitted && !coord->progress.done)
    coord_generation_on_lost(coord);
}

void coord_member_leave(herd_coord_t *coord, coord_member_t *member)
{
  if (!coord_member_apply(coord, member, COORD_MEMBER_EV_LEAVE))
    return;
  HERD_LOG(HERD_LOG_INFO, COORD_LOG, "member rank %d pid %d left", member->rank,
           member->pid);
  coord_events_write(
      &coord->events, "member_left",
      json_pack("{s:i, s:i}", "rank", member->rank, "pid", member->pid));
  s_member_remove(coord, member);
  /* A clean Leave does not re-form: at the end of a job ranks leave in any
   * order, and re-forming for each would only produce churn. */
}

void coord_members_tick(herd_coord_t *coord, int64_t now_ms)
{
  coord_detect_tick(coord, now_ms);
  coord_generation_tick(coord, now_ms);
  coord_metrics_tick(coord, now_ms);
}
