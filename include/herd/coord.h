/* The herd coordinator (libherd_coord).
 *
 * A ZeroMQ ROUTER that keeps the list of live workers, forms numbered
 * generations (rosters), tracks heartbeats and step reports, and writes the
 * run directory's `events.jsonl` and `summary.json`. It runs on its own
 * thread; `herd coord` runs it standalone and `herd run` embeds it. It is
 * never on the data path.
 *
 * Thread safety: all functions may be called from any thread.
 */
#ifndef HERD_COORD_H
#define HERD_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct herd_coord herd_coord_t;

#define HERD_COORD_CONFIG_VERSION 1
typedef struct {
  int version;                /* HERD_COORD_CONFIG_VERSION */
  const char *bind_host;      /* "127.0.0.1" by default */
  int port;                   /* 0: pick a free port */
  const char *token;          /* job token workers must present; required */
  const char *job_id;         /* "herd" by default */
  const char *run_dir;        /* events.jsonl/summary.json; NULL: none */
  int min_workers;            /* generation forms once this many joined */
  int max_workers;            /* never admit more */
  int heartbeat_interval_ms;  /* workers' interval, default 100 */
  int heartbeat_misses;       /* silent intervals before suspect, default 20 */
  int join_timeout_ms;        /* fail when min never reached, default 120000 */
  size_t max_message_bytes;   /* dropped before decoding, default 68 KiB
                                 (a 64 KiB KV value plus its key) */
  /* Elastic membership and failure detection (fields added later; the
   * INITIALIZER fills them, a zero means the default). */
  int last_call_ms;           /* after min is reached, wait this long for
                                 more joiners (up to max), default 500;
                                 -1: none */
  int disconnect_is_failure;  /* a member's TCP connection closing fails it
                                 at once, default 1; -1: heartbeats only */
  int watchdog_multiple;      /* evict a rank whose step is stuck for this
                                 many median step times while all others
                                 wait for it, default 10; -1: off */
  int watchdog_min_ms;        /* never evict for progress sooner, 4000 (a
                                 hung rank is failed within 5 s) */
  int host_cooldown_failures; /* failures of one host within 60 s before it
                                 is held out, default 3; -1: off */
  int host_cooldown_ms;       /* first hold-out, doubled each time (capped
                                 at 10 min), default 10000 */
  int rejoin_window_ms;       /* restarted coordinator: how long to wait for
                                 all members of a generation to re-register
                                 before forming a new one, default 2000 */
  /* Monitoring (fields added later; NULL / 0: off or the default). */
  const char *http_address;   /* "ADDR:PORT" of the HTTP server (/metrics,
                                 /status, /healthz, /); port 0 picks a free
                                 one; NULL: no server. Loopback unless an
                                 operator names another address. */
  const char *push_gateway_url; /* Prometheus Pushgateway base URL; NULL:
                                   none. PUT /metrics/job/herd/run/<run_id>
                                   every push_interval_ms and at the end */
  int push_interval_ms;       /* default 10000 */
  const char *alert_webhook_url; /* POSTs a JSON alert on member failure,
                                    stall, job failure and completion */
  int stall_alert_ms;         /* no step progress this long while running:
                                 a stall alert, default 120000; -1 off */
  const char *run_id;         /* Pushgateway grouping key and alert field;
                                 NULL: the run dir's last component, else
                                 job_id */
  int continue_run;           /* 1: this coordinator replaces one that died
                                 (herd coord): generation numbers and the
                                 step log continue from events.jsonl. 0 (herd
                                 run): a new job, numbered from 1 */
  const char *advertise_host; /* the address workers dial (herd_coord_
                                 endpoint); NULL: bind_host, or for a
                                 wildcard bind (0.0.0.0, ::) this host's
                                 first non-loopback address */
  const char *curve_secret_key; /* Z85 (40 characters): CURVE encryption
                                 and authenticated sessions on the
                                 control plane; workers need the public
                                 key (herd_coord_public_key). NULL: plain
                                 text (loopback) */
} herd_coord_config_t;

#define HERD_COORD_CONFIG_INIT                                                 \
  { HERD_COORD_CONFIG_VERSION, "127.0.0.1", 0, NULL, "herd", NULL, 1, 1,      \
    100, 20, 120000, 69632, 0, 0, 0, 0, 0, 0, 0,                               \
    NULL, NULL, 0, NULL, 0, NULL, 0, NULL, NULL }

/* Binds, opens the run dir files and starts the coordinator thread.
 * Caller owns *coord_out. */
herd_result_t herd_coord_new(const herd_coord_config_t *config,
                             herd_coord_t **coord_out);
/* Stops the thread, closes sockets and files; NULLs *coord_p. */
void herd_coord_destroy(herd_coord_t **coord_p);

/* "tcp://ADDR:PORT" as workers should dial it (the advertised address
 * and the bound port), valid until destroy. */
const char *herd_coord_endpoint(const herd_coord_t *coord);
/* The Z85 public key workers need (HERD_COORD_KEY) when the coordinator
 * runs CURVE; NULL when it does not. */
const char *herd_coord_public_key(const herd_coord_t *coord);
/* A new CURVE keypair, Z85 (41 bytes each with the NUL); HERD_EUNSUPPORTED
 * when this libzmq has no CURVE. */
herd_result_t herd_curve_keypair(char *public_key, char *secret_key);
/* "http://ADDR:PORT/" of the monitoring server (the bound port, also when
 * config.http_address asked for port 0), or NULL without one. Valid until
 * destroy. */
const char *herd_coord_http_url(const herd_coord_t *coord);

typedef struct {
  int64_t generation;     /* 0 until the first generation forms */
  int world_size;         /* members of the current generation */
  int members;            /* live registered workers */
  int64_t step;           /* newest committed step reported */
  int64_t epoch;
  double loss;
  double samples_per_second;
  int64_t failures;       /* member_failed events so far */
  int done;               /* rank 0 reported the job done */
  int failed;             /* the coordinator gave up (e.g. join timeout) */
  char failure[256];      /* why, when failed */
  double test_accuracy;   /* last reported, -1 if none */
  int64_t malformed_messages;
  /* added for elastic membership */
  int waiting;            /* registered, waiting for the next generation */
  int64_t adopted_generation; /* generation adopted after a restart, 0 none */
  int64_t kv_keys;        /* keys in the rendezvous store */
  int64_t watchdog_evictions;
  /* CURVE: connections and messages refused for claiming a member's
   * routing id from another session (another client key) */
  int64_t session_refusals;
  /* model FLOP utilization: rank 0's samples/s x the model's FLOP per
   * sample, over the sum of the job's hosts' peaks (one per host) */
  double model_flops_per_second;
  double peak_flops_per_second; /* 0: unknown */
  double mfu;                   /* achieved / peak, -1 unknown */
  double mfu_mean;              /* over the run's step reports, -1 unknown */
} herd_coord_stats_t;

herd_result_t herd_coord_stats(herd_coord_t *coord, herd_coord_stats_t *out);

/* ---- the report of a run ------------------------------------------------ */

typedef struct {
  int64_t lines;       /* lines read from events.jsonl */
  int64_t bad_lines;   /* unreadable (not JSON, no ts/event, too long) */
  int64_t kept_events; /* events the report draws (evenly thinned) */
  int64_t failures;    /* member_failed events */
  int64_t bytes;       /* size of the HTML file */
} herd_report_stats_t;

/* Writes one self-contained HTML report (charts, summary, failures,
 * checkpoints, settings, events) of the run in run_dir from its
 * events.jsonl (and summary.json where present) to out_path (NULL:
 * RUN_DIR/report.html), atomically. Works for finished, failed and
 * interrupted runs and for events.jsonl files of earlier versions. */
herd_result_t herd_report_write(const char *run_dir, const char *out_path,
                                herd_report_stats_t *stats);

/* The launcher saw worker process `pid` exit with wait status `status`;
 * a non-clean exit of a member is a failure signal. */
herd_result_t herd_coord_note_exit(herd_coord_t *coord, int pid, int status);

/* Changes --min/--max while running (the launcher relaunches a job on
 * fewer hosts); takes effect at the next generation. Thread-safe. */
herd_result_t herd_coord_set_workers(herd_coord_t *coord, int min_workers,
                                    int max_workers);

/* Appends a free-form event line (`event` plus a JSON object text of extra
 * fields, or NULL) to events.jsonl; used by the launcher. */
herd_result_t herd_coord_add_event(herd_coord_t *coord, const char *event,
                                   const char *fields_json);

/* Writes the `done` event and summary.json (atomically: temp + rename).
 * job_ok = 0 records the failure reason. */
herd_result_t herd_coord_finish(herd_coord_t *coord, int job_ok,
                                const char *reason);

/* Asks the coordinator at `endpoint` ("tcp://host:port") for its status
 * (`herd status`): sends a StatusRequest with the job token and waits up to
 * timeout_ms. On success *json_out is a JSON object text the caller frees
 * with free(): generation, world_size, job_state, step, epoch, loss,
 * samples_per_second, failures, malformed_messages, member_count,
 * min_workers, max_workers, failure, uptime_seconds, and members (at most
 * 1024: rank, pid, host, state, step, last_seen_ms_ago). HERD_EAUTH: refused
 * (wrong token/job id, with the reason in herd_error_detail());
 * HERD_ETIMEDOUT: no answer. Thread-safe (own ZeroMQ context). */
herd_result_t herd_coord_query_status(const char *endpoint, const char *token,
                                      const char *job_id, int timeout_ms,
                                      char **json_out);

#ifdef __cplusplus
}
#endif
#endif
