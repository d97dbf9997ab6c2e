/* Private state of the coordinator, shared by its files:
 *
 *   coord.c          lifecycle, the coordinator thread's loop, public API
 *   coord_members.c  member table, worker/job state machines, generations
 *   coord_handlers.c what each decoded message does
 *   coord_events.c   events.jsonl and summary.json
 *   coord_codec.c    frame -> checked Envelope, Envelope -> frame
 *
 * Locking: one mutex (`lock`) guards everything below it in herd_coord. The
 * coordinator thread holds it while it handles a batch of messages or a
 * tick; public calls from other threads take it too. Only the coordinator
 * thread touches the ROUTER socket (ZeroMQ sockets are not thread-safe), so
 * a public call that needs to message workers (note_exit) only changes state
 * and leaves the sending to the thread's next tick.
 */
#ifndef HERD_COORD_INTERNAL_H
#define HERD_COORD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "herd/coord.h"
#include "herd/worker.h"
#include "herd_wire.h"

#define COORD_LOG "coord"
#define COORD_HOST_MAX 256
#define COORD_ROUTING_ID_MAX 255 /* ZeroMQ's limit */

/* ---- worker (member) state machine ------------------------------------ */

typedef enum {
  COORD_MEMBER_JOINING = 0, /* registered, waiting for a generation */
  COORD_MEMBER_ACTIVE,      /* holds a rank in the current generation */
  COORD_MEMBER_LEAVING,     /* sent Leave; slot freed after the event */
  COORD_MEMBER_FAILED,      /* declared dead; slot freed after the event */
  COORD_MEMBER_STATE_COUNT
} coord_member_state_t;

typedef enum {
  COORD_MEMBER_EV_ADMIT = 0, /* placed in a (new) generation */
  COORD_MEMBER_EV_LEAVE,     /* clean Leave */
  COORD_MEMBER_EV_FAIL,      /* heartbeat timeout, bad exit, peer report */
  COORD_MEMBER_EV_COUNT
} coord_member_event_t;

/* ---- job state machine ------------------------------------------------- */

typedef enum {
  COORD_JOB_FORMING = 0,   /* waiting for min_workers joins */
  COORD_JOB_RUNNING,       /* a generation is live */
  COORD_JOB_RECONFIGURING, /* a member was lost; next tick forms g+1 */
  COORD_JOB_FAILED,        /* gave up (join timeout) */
  COORD_JOB_FINISHED,      /* herd_coord_finish was called */
  COORD_JOB_STATE_COUNT
} coord_job_state_t;

typedef enum {
  COORD_JOB_EV_QUORUM = 0,   /* enough members to form a generation */
  COORD_JOB_EV_MEMBER_LOST,  /* an admitted member failed */
  COORD_JOB_EV_REFORMED,     /* survivors got generation g+1 */
  COORD_JOB_EV_JOIN_TIMEOUT, /* min_workers never joined */
  COORD_JOB_EV_FINISH,       /* the launcher ended the job */
  COORD_JOB_EV_COUNT
} coord_job_event_t;

typedef struct {
  int in_use;
  coord_member_state_t state;
  uint8_t routing_id[COORD_ROUTING_ID_MAX];
  size_t routing_id_len;
  int pid;
  char host[COORD_HOST_MAX];
  int launcher_rank;    /* -1 unknown */
  int rank;             /* rank in the current generation, -1 none */
  int64_t join_seq;     /* join order: newcomers rank after survivors */
  int64_t last_seen_ms; /* monotonic; any message counts as a heartbeat */
} coord_member_t;

/* ---- events.jsonl / summary.json --------------------------------------- */

typedef struct {
  FILE *file; /* events.jsonl, NULL without a run dir */
  char *run_dir;
  char **checkpoints; /* committed paths, in order */
  size_t n_checkpoints, cap_checkpoints;
} coord_events_t;

/* ---- codec --------------------------------------------------------------- */

typedef struct {
  const char *job_id;
  const char *token;
  size_t max_message_bytes;
} coord_codec_limits_t;

struct herd_coord {
  /* immutable after herd_coord_new */
  herd_coord_config_t config; /* strings point at the copies below */
  char *bind_host, *token, *job_id;
  char endpoint[256];
  void *zmq_ctx;
  void *router;
  pthread_t thread;
  int thread_started;
  atomic_int stop;
  int poll_timeout_ms;
  coord_codec_limits_t limits;

  pthread_mutex_t lock;
  coord_job_state_t job_state;
  coord_member_t *members; /* capacity = config.max_workers */
  int64_t join_seq;
  int64_t started_ms;
  herd_coord_stats_t stats;
  int have_done;
  herd_done_report_t done_report;
  int64_t last_epoch_logged;
  coord_events_t events;
};

/* coord.c */
int64_t coord_now_ms(void);

/* coord_members.c (all with coord->lock held) */
int coord_member_transition(coord_member_state_t state,
                            coord_member_event_t event,
                            coord_member_state_t *next);
int coord_job_transition(coord_job_state_t state, coord_job_event_t event,
                         coord_job_state_t *next);
void coord_job_apply(herd_coord_t *coord, coord_job_event_t event);
coord_member_t *coord_member_find(herd_coord_t *coord, const void *routing_id,
                                  size_t routing_id_len);
coord_member_t *coord_member_by_rank(herd_coord_t *coord, int rank);
coord_member_t *coord_member_add(herd_coord_t *coord, const void *routing_id,
                                 size_t routing_id_len, const Herd__Join *join);
void coord_member_fail(herd_coord_t *coord, coord_member_t *member,
                       const char *reason);
void coord_member_leave(herd_coord_t *coord, coord_member_t *member);
int coord_member_count(const herd_coord_t *coord);
void coord_members_tick(herd_coord_t *coord, int64_t now_ms);
void coord_send_roster(herd_coord_t *coord, coord_member_t *member);

/* coord_handlers.c (coord->lock held) */
void coord_handle_frame(herd_coord_t *coord, const void *routing_id,
                        size_t routing_id_len, const void *data, size_t size);

/* coord_events.c */
herd_result_t coord_events_open(coord_events_t *events, const char *run_dir);
void coord_events_close(coord_events_t *events);
/* Writes {"ts":..,"event":event, ...fields}; steals `fields` (may be NULL). */
void coord_events_write(coord_events_t *events, const char *event,
                        void *fields /* json_t * */);
herd_result_t coord_events_add_checkpoint(coord_events_t *events,
                                          const char *path);
herd_result_t coord_events_write_summary(herd_coord_t *coord, int job_ok,
                                         const char *reason);
/* json_t * of a wire string, made valid UTF-8 if needed; never NULL. */
void *coord_json_string(const char *text);
/* json_t * of a double; null when not finite (JSON has no NaN). */
void *coord_json_real(double value);

/* coord_codec.c */
/* Decodes and checks one frame. HERD_ETOOBIG / HERD_EFORMAT: malformed
 * (count and drop). HERD_EPROTO: wrong protocol version or job id,
 * HERD_EAUTH: a Join with a wrong token; `reason` says which, msg->env is
 * still set so the caller can answer, and must be cleared. */
herd_result_t coord_codec_decode(const coord_codec_limits_t *limits,
                                 const void *data, size_t size,
                                 herd_wire_msg_t *msg, char *reason,
                                 size_t reason_size);
int coord_codec_token_equal(const char *given, const char *expected);
void coord_codec_envelope_init(const herd_coord_t *coord, Herd__Envelope *env);
void coord_codec_send_refused(herd_coord_t *coord, const void *routing_id,
                              size_t routing_id_len, const char *reason);

#endif
