/* Private state of the worker runtime (runtime.c: public API and join;
 * runtime_kv.c: the rendezvous calls; runtime_link.c: the background thread
 * that owns the DEALER socket).
 *
 * Threads and sockets: the caller's thread owns `queue_in` and `steps_in`
 * (inproc PAIRs) and only ever sends on them without blocking; the link
 * thread owns `dealer`, `queue_out` and `steps_out`. ZeroMQ sockets are not
 * thread-safe, so nothing else crosses between the two except through
 * `lock` (roster, refusal) and atomics.
 */
#ifndef HERD_RUNTIME_INTERNAL_H
#define HERD_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "herd/net.h"
#include "herd/worker.h"
#include "herd_wire.h"

#define WORKER_LOG "worker"
#define WORKER_DEFAULT_HEARTBEAT_MS 100
#define WORKER_DEFAULT_JOIN_TIMEOUT_MS 120000
/* Step reports kept for replay after a reconnect: reports sent into a
 * connection that then died are lost, and a cut link is noticed only after
 * the ZMTP heartbeat timeout (3 s): this covers that at ~600 steps/s. */
#define WORKER_REPLAY_STEPS 2048
#define WORKER_LINKS_EVERY_MS 1000
/* Step reports go to the coordinator in batches, at most one batch per
 * this many ms; the first report after a quiet spell goes at once. At a
 * few hundred steps a second, a wake-up of the link thread, the ZeroMQ
 * I/O threads and the coordinator per step took 9 % of a core, batches
 * 4-5 % (bench/step_efficiency/background_cpu.sh). */
#define WORKER_STEPS_EVERY_MS 20
#define WORKER_LINKS_REPORTED 16 /* peers per report; COORD_LINKS_MAX */

/* A roster of a few thousand members fits easily; anything larger is not
 * from an honest coordinator. */
#define WORKER_MAX_MESSAGE_BYTES (1u << 20)
#define WORKER_KV_SLOTS 64 /* KV calls in flight at once */

typedef struct {
  int in_use, done, found;
  uint64_t request_id;
  void *buf; /* caller's buffer, NULL for a set */
  size_t cap, len;
} worker_kv_slot_t;

struct herd_worker {
  /* immutable after join */
  char *endpoint, *token, *job_id;
  int launcher_rank, launcher_world_size;
  int join_timeout_ms;
  int heartbeat_from_config; /* 0: adopt the coordinator's interval */
  char routing_id[256];
  char coord_key[41]; /* the coordinator's CURVE public key; "": none */
  char host[200];
  char *iface;                        /* NULL: route to the coordinator */
  char advertise_addr[HERD_NET_ADDR_MAX]; /* set once the join succeeded */
  /* link rates, sampled about once a second by the reporting thread */
  herd_net_link_t links_prev[HERD_NET_LINKS_MAX];
  int n_links_prev;
  int64_t links_at_ms;
  char advertise_iface[64];
  int pid;
  void *zmq_ctx;
  void *dealer;    /* link thread */
  void *queue_in;  /* caller's thread: reports go in here */
  void *queue_out; /* link thread: reports come out here */
  void *steps_in;  /* caller's thread: step reports go in here */
  void *steps_out; /* link thread: forwarded in batches */
  int64_t steps_sent_ms; /* link thread: when the last batch went */
  void *monitor;   /* link thread: the DEALER's connection events */
  pthread_mutex_t queue_lock; /* serialises senders on queue_in, steps_in */
  pthread_t thread;
  int thread_started;

  int heartbeat_interval_ms; /* link thread only after start */
  atomic_int stop;
  atomic_llong dropped_reports;
  atomic_llong last_step;

  pthread_mutex_t lock;
  pthread_cond_t changed; /* roster or refusal arrived */
  herd_roster_t roster;
  int have_roster;
  int64_t formed_generation; /* herd_worker_generation_formed; 0 none */
  herd_worker_roster_hook_t roster_hook; /* called on the link thread */
  void *roster_hook_arg;
  int refused;
  int job_done; /* refused because the job finished (Refused.job_done) */
  char refused_reason[256];
  worker_kv_slot_t kv[WORKER_KV_SLOTS];
  uint64_t next_request_id;
  /* link thread only */
  int connected;
  int ever_connected;
  /* The last step reports sent, resent after a reconnect: frames in
   * flight when the coordinator died are lost with its connection, and a
   * restarted coordinator logs each step number once (duplicates skipped). */
  struct {
    unsigned char *data;
    size_t size;
  } replay[WORKER_REPLAY_STEPS];
  int replay_next;
  int64_t last_join_ms;
  /* Signs of life from the training thread (any call into the runtime),
   * CLOCK_MONOTONIC ms; awaiting_roster: it is in herd_worker_wait_roster.
   * A dropped worker re-registers only while these say its trainer runs
   * (worker_trainer_alive). */
  atomic_llong trainer_seen_ms;
  atomic_int awaiting_roster;
};

/* runtime.c */
/* Whether the training thread called into the runtime within the last
 * second, is waiting for a roster or is blocked in a collective. */
int worker_trainer_alive(herd_worker_t *worker, int64_t now_ms);
void worker_trainer_seen(herd_worker_t *worker);
/* Queues a packed envelope for the link thread; 0 when the queue is full. */
int worker_queue(herd_worker_t *worker, Herd__Envelope *env);

/* runtime_kv.c (link thread) */
void worker_kv_apply(herd_worker_t *worker, const Herd__KvValue *value);

/* runtime_link.c */
void worker_replay_free(herd_worker_t *worker);
void *worker_link_main(void *arg);
void worker_envelope_init(const herd_worker_t *worker, Herd__Envelope *env);

#endif
