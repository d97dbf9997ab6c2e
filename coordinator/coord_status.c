/* The answer to `herd status`: membership, generation, step, throughput.
 *
 * A StatusRequest carries the job token (checked in coord_codec.c), since
 * the member list names hosts and pids. The reply lists at most
 * COORD_STATUS_MEMBERS_MAX members (active ones first, by rank) so it stays
 * well below a client's message limit even for 10,000 workers;
 * member_count has the true number. Runs with coord->lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "herd/clock.h"
#include "coord_internal.h"
#include "herd/herd.h"

#define COORD_STATUS_MEMBERS_MAX 1024

static int s_by_state_then_rank(const void *a, const void *b)
{
  const coord_member_t *x = *(coord_member_t *const *)a;
  const coord_member_t *y = *(coord_member_t *const *)b;
  int64_t kx = x->rank >= 0 ? x->rank : INT32_MAX + x->join_seq;
  int64_t ky = y->rank >= 0 ? y->rank : INT32_MAX + y->join_seq;
  return (kx > ky) - (kx < ky);
}

static int s_listed(herd_coord_t *coord, coord_member_t **list)
{
  int n = 0;
  for (int i = 0; i < coord->members.capacity; i++)
    if (coord->members.slot[i].in_use)
      list[n++] = &coord->members.slot[i];
  qsort(list, (size_t)n, sizeof *list, s_by_state_then_rank);
  return n < COORD_STATUS_MEMBERS_MAX ? n : COORD_STATUS_MEMBERS_MAX;
}

static void s_fill_reply(herd_coord_t *coord, Herd__StatusReply *r)
{
  herd_coord_stats_t stats;
  coord_stats_take(coord, &stats);
  const herd_coord_stats_t *s = &stats;
  r->generation = s->generation;
  r->world_size = s->world_size;
  r->job_state = (char *)coord_job_state_name(coord->gen.state);
  r->step = s->step;
  r->epoch = s->epoch;
  r->loss = s->loss;
  r->samples_per_second = s->samples_per_second;
  r->failures = s->failures;
  r->malformed_messages = s->malformed_messages;
  r->member_count = s->members;
  r->min_workers = coord->config.min_workers;
  r->max_workers = coord->config.max_workers;
  r->failure = (char *)s->failure;
  r->uptime_seconds = (double)(herd_mono_ms() - coord->started_ms) / 1000.0;
}

void coord_status_reply(herd_coord_t *coord, const void *routing_id,
                        size_t routing_id_len)
{
  Herd__StatusReply reply = HERD__STATUS_REPLY__INIT;
  coord_member_t **list = calloc((size_t)coord->members.capacity, sizeof *list);
  Herd__MemberStatus *items =
      calloc(COORD_STATUS_MEMBERS_MAX, sizeof *items);
  Herd__MemberStatus **ptrs = calloc(COORD_STATUS_MEMBERS_MAX, sizeof *ptrs);
  if (!list || !items || !ptrs)
    goto out;
  int n = s_listed(coord, list);
  int64_t now_ms = herd_mono_ms();
  for (int i = 0; i < n; i++) {
    herd__member_status__init(&items[i]);
    items[i].rank = list[i]->state == COORD_MEMBER_ACTIVE ? list[i]->rank : -1;
    items[i].pid = list[i]->pid;
    items[i].host = list[i]->host;
    items[i].state = (char *)coord_member_state_name(list[i]->state);
    items[i].step = list[i]->step;
    items[i].last_seen_ms_ago = now_ms - list[i]->last_seen_ms;
    ptrs[i] = &items[i];
  }
  s_fill_reply(coord, &reply);
  reply.n_members = (size_t)n;
  reply.members = ptrs;
  Herd__Envelope env;
  coord_codec_envelope_init(coord, &env);
  env.body_case = HERD__ENVELOPE__BODY_STATUS_REPLY;
  env.status_reply = &reply;
  herd_wire_send(coord->router, routing_id, routing_id_len, &env);
out:
  free(list);
  free(items);
  free(ptrs);
}
