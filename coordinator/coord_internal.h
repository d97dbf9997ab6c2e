/* Private state of the coordinator. It is made of parts, each a struct with
 * one file that owns (writes) it; the others read it:
 *
 *   part                    struct               owner
 *   members and hosts       coord_members_t      coord_members.c
 *   generations, job state  coord_generations_t  coord_generation.c
 *   failure detection       coord_detector_t     coord_detect.c
 *   progress (rank 0)       coord_progress_t     coord_handlers.c
 *   rendezvous KV store     coord_kv_t           coord_kv.c
 *   events, summary         coord_events_t       coord_events.c
 *   metrics                 coord_metrics_t      coord_metrics.c (+links)
 *   HTTP, push              struct coord_http/_push  coord_http.c, coord_push.c
 *
 * coord.c owns the lifecycle and the loop (it sets the parts' first values
 * and calls their init/free), coord_handlers.c turns each decoded message
 * into calls on the parts, coord_codec.c frames and checks messages,
 * coord_curve.c runs CURVE/ZAP and coord_status.c answers `herd status`.
 * herd_coord_stats_t is not state: coord_stats_take assembles it from the
 * parts on demand.
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
#define COORD_MAX_HOSTS 4096 /* distinct hosts remembered for cool-downs */
#define COORD_ROUTING_ID_MAX 255 /* ZeroMQ's limit */

/* ---- worker (member) state machine ------------------------------------ */

typedef enum {
  COORD_MEMBER_JOINING = 0, /* registered before any generation formed */
  COORD_MEMBER_ACTIVE,      /* holds a rank in the current generation */
  COORD_MEMBER_LEAVING,     /* sent Leave; slot freed after the event */
  COORD_MEMBER_FAILED,      /* declared dead; slot freed after the event */
  COORD_MEMBER_WAITING,     /* registered while a generation runs (or held
                               out): admitted at the next generation */
  COORD_MEMBER_STATE_COUNT
} coord_member_state_t;

typedef enum {
  COORD_MEMBER_EV_ADMIT = 0, /* placed in a (new) generation */
  COORD_MEMBER_EV_LEAVE,     /* clean Leave */
  COORD_MEMBER_EV_FAIL,      /* heartbeat timeout, lost connection, bad exit,
                                peer report, progress watchdog */
  COORD_MEMBER_EV_DEFER,     /* a generation formed without it (full, or its
                                host is cooling down) */
  COORD_MEMBER_EV_COUNT
} coord_member_event_t;

/* ---- job state machine ------------------------------------------------- */

typedef enum {
  COORD_JOB_FORMING = 0,   /* waiting for min_workers joins */
  COORD_JOB_RUNNING,       /* a generation is live */
  COORD_JOB_RECONFIGURING, /* membership changed; next tick forms g+1 */
  COORD_JOB_FAILED,        /* gave up (join timeout) */
  COORD_JOB_FINISHED,      /* herd_coord_finish was called */
  COORD_JOB_LAST_CALL,     /* min reached; a short window for more joiners */
  COORD_JOB_STATE_COUNT
} coord_job_state_t;

typedef enum {
  COORD_JOB_EV_QUORUM = 0,   /* enough members to form a generation */
  COORD_JOB_EV_MEMBER_LOST,  /* an admitted member failed or left */
  COORD_JOB_EV_REFORMED,     /* a generation formed */
  COORD_JOB_EV_JOIN_TIMEOUT, /* min_workers never joined */
  COORD_JOB_EV_FINISH,       /* the launcher ended the job */
  COORD_JOB_EV_ADMIT,        /* waiting workers can be admitted */
  COORD_JOB_EV_BELOW_MIN,    /* too few members left to re-form */
  COORD_JOB_EV_ADOPTED,      /* a restarted coordinator adopted the
                                re-registered members' generation */
  COORD_JOB_EV_COUNT
} coord_job_event_t;

typedef struct {
  int in_use;
  coord_member_state_t state;
  uint8_t routing_id[COORD_ROUTING_ID_MAX];
  size_t routing_id_len;
  int pid;
  char host[COORD_HOST_MAX];
  int host_index;       /* into coord->hosts, -1 none */
  int launcher_rank;    /* -1 unknown */
  int rank;             /* rank in the current generation, -1 none */
  int64_t join_seq;     /* join order: newcomers rank after survivors */
  int64_t last_seen_ms; /* monotonic; any message counts as a heartbeat */
  int64_t heard_ms;     /* when its last message came (last_seen_ms may
                           be moved on for the coordinator's deafness) */
  /* heartbeat arrival statistics (coord_detect.c): EWMA of the gaps */
  int64_t last_heartbeat_ms;
  double gap_mean_ms, gap_var_ms2;
  int suspect; /* silent past the floor, not yet past its own deadline */
  int fd;               /* connection its messages came from, -1 unknown */
  char session[41];     /* CURVE: the Z85 client key it joined with; its
                           routing id is bound to it (coord_curve.c) */
  int64_t disconnected_ms; /* its connection closed at, 0: connected */
  /* re-registration claim (Join.generation/rank/world_size) */
  int64_t claimed_generation;
  int claimed_rank, claimed_world;
  int claimed_pending; /* Join.rendezvous_pending: not adoptable */
  /* progress watchdog */
  int64_t step;             /* last step seen, -1 none */
  int64_t waiting_since_ms; /* waiting on its peers since, 0: not (Heartbeat) */
  int64_t step_advanced_ms; /* when step last grew */
  double step_ms_avg;       /* moving average of ms per step, 0 unknown */
} coord_member_t;

/* Routing id -> member slot: open addressing, linear probing, backward
 * shift deletion; 2x the slots so probes stay short. */
typedef struct {
  int32_t *slots; /* member index, -1 empty */
  size_t mask;
} coord_index_t;

/* Per-host failure record for the cool-down. */
typedef struct {
  char name[COORD_HOST_MAX];
  int failures;            /* within the current window */
  int64_t window_start_ms;
  int strikes;             /* cool-downs so far */
  int64_t cooldown_until_ms;
  int64_t last_failure_ms; /* failures this close together are one event */
} coord_host_t;

/* ---- rendezvous KV store ---------------------------------------------- */

#define COORD_KV_KEY_MAX 256
#define COORD_KV_VALUE_MAX 65536
#define COORD_KV_MAX_KEYS 65536
#define COORD_KV_MAX_BYTES ((size_t)64 << 20)
#define COORD_KV_MAX_WAITS 65536

typedef struct coord_kv_entry {
  struct coord_kv_entry *next;
  int64_t generation;
  char *key;
  uint8_t *value;
  size_t len;
} coord_kv_entry_t;

typedef struct {
  uint8_t routing_id[COORD_ROUTING_ID_MAX];
  size_t routing_id_len;
  int64_t generation;
  char key[COORD_KV_KEY_MAX + 1];
  uint64_t request_id;
  int64_t deadline_ms;
} coord_kv_wait_t;

typedef struct {
  coord_kv_entry_t **buckets;
  size_t n_buckets; /* power of two */
  size_t count, bytes;
  coord_kv_wait_t *waits;
  size_t n_waits, cap_waits;
} coord_kv_t;

/* ---- events.jsonl / summary.json --------------------------------------- */

typedef struct {
  FILE *file; /* events.jsonl, NULL without a run dir */
  char *run_dir;
  char **checkpoints; /* committed paths, in order */
  size_t n_checkpoints, cap_checkpoints;
  /* Sees every event line (json_t *), run dir or not; coord->lock held. */
  void (*on_event)(void *arg, const char *event, void *line);
  void *on_event_arg;
} coord_events_t;

/* ---- monitoring (coord_metrics.c) --------------------------------------- */

#define COORD_METRICS_RANKS_MAX 256 /* per-rank series: ranks below this */
#define COORD_STEP_BUCKETS 14       /* step duration histogram */
#define COORD_CKPT_BUCKETS 11       /* checkpoint duration histogram */
#define COORD_RECENT_STEPS 64       /* step times for the median */
#define COORD_RECENT_EVENTS 16      /* non-step events for herd top */
#define COORD_EVENT_TEXT_MAX 240

typedef enum {
  COORD_PHASE_COMPUTE = 0,
  COORD_PHASE_COMM,
  COORD_PHASE_DATA,
  COORD_PHASE_CHECKPOINT,
  COORD_PHASE_COUNT
} coord_phase_t;

#define COORD_LINKS_MAX 16     /* link rates kept per rank */
#define COORD_LINK_ADDR_MAX 64
/* A rank whose best link moves less than this fraction of the median is
 * a network straggler (one-second TCP samples vary by 2x and more). */
#define COORD_LINK_STRAGGLER_FRACTION 0.25

typedef struct {
  int64_t reports;          /* step reports from this rank */
  double host_peak_flops;   /* its host's peak, if this rank measured it */
  char host[COORD_HOST_MAX];
  int64_t step;             /* last reported, -1 none */
  double step_seconds, compute_seconds, comm_seconds, data_seconds; /* last */
  double samples_per_second; /* last, as the rank measures it */
  double phase_seconds_total[COORD_PHASE_COUNT];
  /* its advertised address and latest link rates (coord_links.c) */
  char addr[COORD_LINK_ADDR_MAX];
  int n_links;
  int64_t link_samples; /* reports that carried rates */
  struct {
    char peer[COORD_LINK_ADDR_MAX];
    double mbps;
  } links[COORD_LINKS_MAX];
} coord_rank_metrics_t;

/* What coord_links_judge makes of the ranks' link rates. */
typedef struct {
  double best_mbps[COORD_METRICS_RANKS_MAX]; /* fastest link to another
                                                host, 0 unknown */
  int straggler[COORD_METRICS_RANKS_MAX];
  double median_mbps; /* over ranks with a rate, 0 when too few */
} coord_link_verdict_t;

typedef struct {
  double ts;                       /* unix seconds */
  char event[32];
  char text[COORD_EVENT_TEXT_MAX]; /* the line's other fields, compact */
} coord_recent_event_t;

typedef struct {
  int64_t steps_total, samples_total; /* rank 0's reports */
  uint64_t step_buckets[COORD_STEP_BUCKETS]; /* not cumulative */
  uint64_t step_count;
  double step_seconds_sum;
  double recent_step_seconds[COORD_RECENT_STEPS];
  int n_recent_steps;
  int64_t total_steps;              /* the job's length, 0 unknown */
  int64_t ckpt_count, ckpt_bytes_total, ckpt_last_bytes, ckpt_last_step;
  uint64_t ckpt_buckets[COORD_CKPT_BUCKETS];
  double ckpt_seconds_sum, ckpt_last_seconds, ckpt_last_unix;
  char ckpt_last_path[512];
  coord_rank_metrics_t ranks[COORD_METRICS_RANKS_MAX];
  int n_ranks;                      /* highest rank seen + 1 */
  coord_recent_event_t recent[COORD_RECENT_EVENTS];
  int64_t n_recent;                 /* events ever recorded (ring index) */
  int64_t progress_ms;              /* monotonic: last step advance */
  int64_t next_ranks_ms, ranks_steps; /* the `ranks` event: next at, and
                                         steps_total when last written */
  double job_peak_flops;              /* coord_metrics_job_peak's cache */
  int64_t job_peak_at_ms;
  double started_unix;
} coord_metrics_t;

struct coord_http;
struct coord_push;
typedef struct coord_timeline coord_timeline_t;

/* ---- the coordinator's parts --------------------------------------------
 * Each part is one struct with one owner file that writes it; other files
 * read it (all under coord->lock). herd_coord_stats_t is not live state: it
 * is assembled from the parts when asked for (coord_stats_take). */

/* Members and hosts (coord_members.c; host strikes in coord_detect.c). */
typedef struct {
  coord_member_t *slot;    /* capacity = max_workers plus room for waiting */
  int capacity;
  int used;                /* slots in use: live registered workers */
  int32_t *free_slots;     /* stack of unused slot indices */
  int n_free;
  coord_index_t index;     /* routing id -> slot */
  int32_t *fd_owner;       /* fd -> slot index + 1 (0 none) */
  int fd_owner_cap;
  coord_host_t *hosts;
  int n_hosts;
  int64_t join_seq;
  int waiting;             /* registered, waiting for the next generation */
  int64_t failures;        /* member_failed events so far */
  int64_t session_refusals; /* CURVE: claims from another client key */
} coord_members_t;

/* Generations and the job state machine (coord_generation.c). */
typedef struct {
  coord_job_state_t state;
  int64_t number;            /* current generation, 0 before the first */
  int world_size;            /* members of the current generation */
  int64_t forming_since_ms;  /* join timeout counts from here */
  int64_t last_call_until_ms;
  int64_t admit_at_ms;       /* waiting workers: admit at this time, 0 none */
  int64_t formed_ms;         /* the newest roster went out at */
  int formed_here;           /* a generation formed or was adopted here */
  int64_t file_generation;   /* newest generation found in events.jsonl */
  int64_t adopt_generation;  /* restart: generation re-registrations claim */
  int64_t adopted_generation; /* the one adopted after a restart, 0 none */
  int64_t adopt_deadline_ms;
  int state_source_rank;     /* of the current generation, -1 none */
  int64_t formed_count;      /* generations formed or adopted here */
  int failed;                /* gave up (e.g. join timeout) */
  char failure[256];         /* why */
} coord_generations_t;

/* Failure detection (coord_detect.c). */
typedef struct {
  int64_t next_scan_ms;      /* heartbeat/watchdog scans are rate-limited */
  int scan_interval_ms;
  int64_t next_watchdog_ms;
  int router_drained;        /* last receive found the ROUTER empty */
  int64_t last_scan_ms;      /* a longer gap than usual: the loop stalled */
  int isolated;              /* every member silent at once */
  int64_t rejoin_until_ms;   /* after an isolation: closes are reconnects */
  double *scratch;           /* watchdog median */
  int64_t watchdog_evictions;
} coord_detector_t;

/* The job's progress as rank 0 reports it (coord_handlers.c). */
typedef struct {
  int64_t step, epoch;       /* newest committed step reported, its epoch */
  double loss, samples_per_second;
  double test_accuracy;      /* last reported, -1 none */
  int done;                  /* rank 0 reported the job done */
  int have_done;
  herd_done_report_t report;
  int64_t last_epoch_logged;
  int64_t step_logged;       /* newest step with a `step` event */
  double model_flops_per_second, peak_flops_per_second, mfu; /* mfu -1 */
  double mfu_sum;            /* over step reports with an MFU */
  int64_t mfu_n;
} coord_progress_t;

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

  void *monitor; /* PAIR: the ROUTER's connection events */
  char monitor_endpoint[64];

  pthread_mutex_t lock;
  /* The parts, each owned by its file (see the top of this header). */
  coord_members_t members;
  coord_generations_t gen;
  coord_detector_t detect;
  coord_progress_t progress;
  coord_kv_t kv;
  coord_events_t events;
  coord_metrics_t *metrics; /* under lock, like the rest */
  struct coord_timeline *timeline; /* what the run page draws */
  /* Monitoring servers: made after the thread starts, stopped first. */
  struct coord_http *http;
  struct coord_push *push;
  /* The coordinator loop's own state (coord.c). */
  int64_t started_ms;
  int current_fd;            /* connection of the message being handled */
  const char *current_user;  /* its ZAP user id (CURVE client key), or "" */
  int64_t malformed_messages;
  void *zap;                 /* CURVE: the ZAP handler's REP socket */
  int sessions;              /* CURVE: members are bound to client keys */
  char public_key[41];       /* CURVE: Z85, "" without */
  char *run_id;
};

/* coord.c */
/* herd_coord_stats_t assembled from the parts (coord->lock held). */
void coord_stats_take(const herd_coord_t *coord, herd_coord_stats_t *out);
/* A coordinator without sockets or thread (fuzzing); destroy as usual. */
herd_result_t coord_new_detached(const herd_coord_config_t *config,
                                 herd_coord_t **coord_out);

/* coord_members.c (all with coord->lock held) */
herd_result_t coord_members_init(herd_coord_t *coord);
void coord_members_free(herd_coord_t *coord);
const char *coord_member_state_name(coord_member_state_t state);
const char *coord_job_state_name(coord_job_state_t state);
void coord_member_note_fd(herd_coord_t *coord, coord_member_t *member, int fd);
void coord_member_disconnected(herd_coord_t *coord, int fd, int64_t now_ms);
coord_member_t *coord_member_by_pid(herd_coord_t *coord, int pid,
                                    const char *host);
int coord_member_transition(coord_member_state_t state,
                            coord_member_event_t event,
                            coord_member_state_t *next);
int coord_member_apply(herd_coord_t *coord, coord_member_t *member,
                       coord_member_event_t event);
int coord_job_transition(coord_job_state_t state, coord_job_event_t event,
                         coord_job_state_t *next);
void coord_job_apply(herd_coord_t *coord, coord_job_event_t event);
coord_member_t *coord_member_find(herd_coord_t *coord, const void *routing_id,
                                  size_t routing_id_len);
coord_member_t *coord_member_by_rank(herd_coord_t *coord, int rank);
coord_member_t *coord_member_add(herd_coord_t *coord, const void *routing_id,
                                 size_t routing_id_len, const Herd__Join *join);
/* signal: what decided it (the member_failed event's "signal"):
 * connection_closed, child_exit, peer_report, heartbeat_silence, watchdog. */
void coord_member_fail(herd_coord_t *coord, coord_member_t *member,
                       const char *signal, const char *reason);
void coord_member_leave(herd_coord_t *coord, coord_member_t *member);
int coord_member_count(const herd_coord_t *coord);
void coord_members_tick(herd_coord_t *coord, int64_t now_ms);
/* The host's slot in coord->members.hosts; -1 when the table is full. */
int coord_host_intern(herd_coord_t *coord, const char *host);

/* coord_generation.c (coord->lock held) */
void coord_send_roster(herd_coord_t *coord, coord_member_t *member);
void coord_generation_tick(herd_coord_t *coord, int64_t now_ms);
void coord_generation_on_join(herd_coord_t *coord, coord_member_t *member);
void coord_generation_on_lost(herd_coord_t *coord);
int coord_host_cooling(const herd_coord_t *coord, const coord_member_t *m,
                       int64_t now_ms);

/* coord_detect.c (coord->lock held): failure detection */
herd_result_t coord_detect_init(coord_detector_t *detect, int capacity);
void coord_detect_free(coord_detector_t *detect);
void coord_detect_note_drained(coord_detector_t *detect, int drained);
void coord_detect_tick(herd_coord_t *coord, int64_t now_ms);
void coord_detect_heard(herd_coord_t *coord, coord_member_t *member,
                        int is_heartbeat, int64_t now_ms);
void coord_detect_step(herd_coord_t *coord, coord_member_t *member,
                       int64_t step, int64_t now_ms);
void coord_detect_waiting(coord_member_t *member, int64_t waiting_ms,
                          int64_t now_ms);
void coord_detect_host_failed(herd_coord_t *coord, coord_member_t *member,
                              int64_t now_ms);

/* coord_kv.c (coord->lock held) */
herd_result_t coord_kv_init(coord_kv_t *kv);
void coord_kv_free(coord_kv_t *kv);
/* Stores a copy; HERD_ETOOBIG past the key/value/total limits. */
herd_result_t coord_kv_set(coord_kv_t *kv, int64_t generation, const char *key,
                           const void *value, size_t len);
const coord_kv_entry_t *coord_kv_get(const coord_kv_t *kv, int64_t generation,
                                     const char *key);
/* Drops every namespace older than `generation`. */
void coord_kv_prune(coord_kv_t *kv, int64_t generation);
herd_result_t coord_kv_wait_add(coord_kv_t *kv, const coord_kv_wait_t *wait);
/* Removes and returns (through *out) one wait that is satisfied by the
 * store or expired at now_ms, or older than min_generation; 0: none. */
int coord_kv_wait_take(coord_kv_t *kv, int64_t now_ms, int64_t min_generation,
                       coord_kv_wait_t *out);

/* coord_handlers.c */
void coord_kv_reply(herd_coord_t *coord, const coord_kv_wait_t *wait);
/* Answers parked gets whose key arrived or whose time is up. */
void coord_kv_service(herd_coord_t *coord, int64_t now_ms);
/* The StatusReply for `herd status` (coord_status.c). */
void coord_status_reply(herd_coord_t *coord, const void *routing_id,
                        size_t routing_id_len);

/* coord_handlers.c (coord->lock held) */
/* coord_curve.c: CURVE on the ROUTER and the ZAP handler that binds each
 * member's routing id to the client key it joined with. */
herd_result_t coord_curve_setup(herd_coord_t *coord);
/* Answers the waiting ZAP requests (coordinator thread, lock held). */
void coord_curve_service(herd_coord_t *coord);
/* Whether a message on a connection of `user` may act for `member`
 * (binds the member on first use). 1 without CURVE. */
int coord_curve_session_ok(herd_coord_t *coord, coord_member_t *member,
                           const char *user);
void coord_curve_close(herd_coord_t *coord);

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
/* Newest generation number and step in the last 4 MiB of events.jsonl, and
 * the committed checkpoints there (added to events->checkpoints); 0 / 0
 * without a file. */
void coord_events_recover(coord_events_t *events, int64_t *generation_out,
                          int64_t *step_out);
/* json_t * of a wire string, made valid UTF-8 if needed; never NULL. */
void *coord_json_string(const char *text);
/* json_t * of a double; null when not finite (JSON has no NaN). */
void *coord_json_real(double value);

/* coord_metrics.c */
herd_result_t coord_metrics_init(herd_coord_t *coord);
void coord_metrics_free(herd_coord_t *coord);
/* coord->lock held: a step report from `member`, a committed checkpoint. */
/* coord_links.c: network stragglers from the workers' TCP link rates. */
void coord_links_on_report(coord_rank_metrics_t *x, const Herd__StepReport *r);
void coord_links_judge(const coord_metrics_t *m, coord_link_verdict_t *out);
void coord_metrics_on_step(herd_coord_t *coord, const coord_member_t *member,
                           const Herd__StepReport *report);
void coord_metrics_on_checkpoint(herd_coord_t *coord,
                                 const Herd__CkptCommitted *c);
/* The job's peak FLOP/s: one peak per host (the largest its ranks
 * reported) summed over the current generation's hosts; 0 unknown.
 * Recomputed at most once a second. */
double coord_metrics_job_peak(herd_coord_t *coord, int64_t now_ms);
/* Writes the periodic `ranks` event (coord->lock held). */
void coord_metrics_tick(herd_coord_t *coord, int64_t now_ms);

/* A copy of what the monitoring endpoints show, taken under coord->lock
 * (coord_snapshot_take) and rendered outside it. */
typedef struct {
  int rank, pid;
  char host[COORD_HOST_MAX];
  const char *state; /* static */
  int64_t step, last_seen_ms_ago;
} coord_snapshot_member_t;

typedef struct {
  char job_id[128], run_id[128];
  const char *job_state; /* static */
  herd_coord_stats_t stats;
  coord_metrics_t metrics;
  int min_workers, max_workers;
  int64_t restarts;
  double uptime_seconds, now_unix, step_seconds_median;
  int64_t progress_ms_ago;
  coord_snapshot_member_t *members; /* n_members, when asked for */
  int n_members;
} coord_snapshot_t;

/* Allocates *out (coord_snapshot_free); with_members copies up to 1024. */
herd_result_t coord_snapshot_take(herd_coord_t *coord, int with_members,
                                  coord_snapshot_t **out);
void coord_snapshot_free(coord_snapshot_t **snap_p);
/* Prometheus text format 0.0.4; caller frees. NULL: no memory. */
char *coord_metrics_render(const coord_snapshot_t *snap);
/* The /status JSON object text; caller frees. NULL: no memory. */
char *coord_status_render(const coord_snapshot_t *snap);

/* coord_http.c */
/* Parses "ADDR:PORT" ("[v6]:PORT" too) into a socket address. */
herd_result_t coord_http_parse_address(const char *text, void *sockaddr_out,
                                       size_t cap, size_t *len_out);
herd_result_t coord_http_start(herd_coord_t *coord, const char *address,
                               struct coord_http **out);
void coord_http_stop(struct coord_http **http_p);
const char *coord_http_url(const struct coord_http *http);
/* coord_page.c: the run page as one self-contained HTML document; data_json
 * NULL: the live page (polls /timeline and /status), else the report's
 * {"timeline":[...],"summary":{...}} (no "</" inside). Caller frees. */
char *coord_page_render(const char *data_json);

/* coord_timeline.c: the bounded, evenly thinned record of a run's events
 * that the page and the report draw. */
herd_result_t coord_timeline_new(coord_timeline_t **out);
void coord_timeline_free(coord_timeline_t **tl);
/* Adds one event line (json_t * with ts and event); may drop it or thin. */
void coord_timeline_add(coord_timeline_t *tl, void *line);
/* JSON array text of the kept entries with seq > after; caller frees. */
char *coord_timeline_render(const coord_timeline_t *tl, int64_t after);
int64_t coord_timeline_last_seq(const coord_timeline_t *tl);
/* Whether an event of this kind at ts would be kept (it is not too close
 * to the last one kept): lets a reader skip parsing lines it would drop. */
int coord_timeline_wants(coord_timeline_t *tl, const char *event, double ts);
size_t coord_timeline_kept(const coord_timeline_t *tl);
size_t coord_timeline_bytes(const coord_timeline_t *tl);
/* The event in a few words with numbers rounded (herd top, the page). */
void coord_event_text(const void *line, char *out, size_t cap);

/* coord_push.c */
herd_result_t coord_push_start(herd_coord_t *coord, struct coord_push **out);
/* Final push and alert flush (bounded), then stops the thread. */
void coord_push_stop(struct coord_push **push_p);
/* coord->lock held: queues an alert for `event` (json_t *line) if it is one
 * (member_failed, job_failed, done); never blocks, drops when full. */
void coord_push_on_event(struct coord_push *push, const char *event,
                         void *line);

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
/* Refused with job_done set: the job finished without this worker. */
void coord_codec_send_job_done(herd_coord_t *coord, const void *routing_id,
                               size_t routing_id_len);

#endif
