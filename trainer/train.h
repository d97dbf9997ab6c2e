/* Private to herd-train, the reference trainer: its configuration and the
 * state one worker holds. The pattern a user's own C training program
 * follows: join (herd_worker_join), make a communicator (herd_comm_new),
 * resume (herd_ckpt_find_latest/load + broadcast), then per step compute a
 * local gradient sum, all-reduce it, update, report (herd_worker_report_*),
 * and checkpoint every so often (herd_ckpt_save).
 */
#ifndef HERD_WORKER_TRAIN_H
#define HERD_WORKER_TRAIN_H

#include <pthread.h>
#include <stdint.h>

#include "herd/herd.h"
#include "mlp.h"
#include "optim.h"
#include "sampler.h"
#include "step_tail.h"
#include "timeline.h"

typedef struct {
  const char *data;
  const char *hidden;
  int64_t epochs;
  int64_t batch;          /* global batch, whatever the world size */
  double lr;
  const char *optimizer;  /* sgd|adamw */
  double momentum;
  double weight_decay;
  const char *schedule;   /* cosine|step|constant */
  int64_t warmup_steps;
  int64_t lr_step_every;
  double lr_gamma;
  int64_t seed;
  const char *backend;
  const char *ckpt_dir;
  const char *ckpt_key_file; /* HMAC key for checkpoints; NULL: none */
  int64_t ckpt_every;
  int64_t keep;
  const char *resume;     /* auto|never|PATH */
  int64_t max_steps;      /* stop after this many steps in total (0: none) */
  const char *dump_params; /* rank 0 writes the final params here (raw f32) */
  const char *device;      /* cpu|cuda */
  int64_t virtual_shards;  /* pieces of the global batch (elastic) */
  int deterministic;       /* integer-summed shard gradients (train_determ.c) */
  const char *timeline;    /* Chrome trace of step phases (timeline.h) */
  const char *iface;       /* interface advertised to peers (herd/net.h) */
  double bucket_mb;        /* gradient all-reduce bucket (train_overlap.c) */
  const char *grad_dtype;  /* f32|bf16: the gradient on the wire */
  double peak_gflops;      /* the host's peak for MFU, 0: measure (peak.c) */
} herd_train_config_t;

/* --device cuda state (train_cuda.c): model, optimizer and data on the GPU. */
typedef struct herd_train_cuda herd_train_cuda_t;

/* Everything one worker holds while training. */
typedef struct {
  herd_train_config_t config;
  herd_result_t setup_rc;  /* HERD_EINVAL: bad configuration, exit 2 */
  int peer_usage_error;    /* the rank that failed the last agreement did
                            * so on bad configuration: exit 2 here too */
  herd_comm_t *comm;
  herd_worker_t *worker;  /* NULL when no coordinator (HERD_COORD unset) */
  herd_dataset_t *dataset;
  herd_mlp_t *mlp;
  herd_optim_t *optim;
  herd_optim_config_t optim_config; /* what optim was made with */
  herd_train_cuda_t *cuda;  /* --device cuda; NULL on the CPU path */
  herd_sampler_t *sampler;
  herd_lr_schedule_t schedule;
  herd_ckpt_writer_t *writer; /* rank 0 with a ckpt dir, created lazily */
  float *params;
  float *grad;            /* param_count + HERD_STEP_TAIL_LEN */
  int grad_in_comm;       /* grad is herd_comm_buffer's: comm frees it (only
                           * mpi gives one, and an mpi communicator lives as
                           * long as the process: generations are gloo) */
  size_t comm_buffer_bytes; /* what comm was asked to hold (s_grad_bytes) */
  uint16_t *grad16; /* --grad-dtype bf16: the gradient as sent (train_overlap.c) */
  size_t param_count;
  int rank, world_size;
  int64_t generation;
  struct herd_mlp_det *determ; /* --deterministic: the shard-wise pass */
  int64_t *determ_sum;    /* --deterministic: fixed-point sum + extras */
  int has_state;          /* holds a committed training state */
  pthread_mutex_t comm_lock; /* comm, rank, world_size, generation vs the
                              * roster hook on the worker's link thread */
  /* progress */
  int64_t step;           /* completed steps in total */
  int64_t epoch;
  int64_t step_in_epoch;
  int64_t steps_per_epoch;
  int64_t resumed_from_step; /* -1: fresh */
  int64_t last_ckpt_step;     /* last step submitted for saving */
  int stop_requested;         /* all ranks agreed to stop (SIGTERM/SIGUSR1) */
  int reconfigure_requested;  /* all ranks agreed to switch generation */
  double test_accuracy;
  double samples_per_second;
  herd_timeline_t *timeline;  /* --timeline; NULL: off */
  double flops_per_sample;    /* the model's (MFU) */
  double host_peak_flops;     /* measured or given; 0: not this worker's */
  int peak_known;             /* host_peak_flops was measured or given */
} herd_train_t;

/* peak.c: this host's peak FLOP/s for the model: --peak-gflops, else
 * measured (sgemm at the model's largest layer, all cores; cuBLAS with
 * --device cuda) when this is the host's first worker, else 0. */
double herd_train_host_peak_flops(herd_train_t *train);
/* train_cuda.c: cuBLAS sgemm (m x k by k x n) FLOP/s on this rank's GPU. */
herd_result_t herd_train_cuda_peak_flops(herd_train_t *train, int m, int n,
                                         int k, double *flops_out);



/* train_overlap.c: forward and backward pass with the gradient all-reduce
 * started bucket by bucket as the backward pass finishes them; returns once
 * all are reduced (grad holds the SUM, extras included). The extras' stop,
 * count and reconfigure slots must be set before; loss and correct are
 * filled in. *backward_done_s: when the computation ended. */
herd_result_t herd_train_overlap_step(herd_train_t *train, const float *x,
                                      const uint8_t *labels, int batch,
                                      double *loss_sum, int *correct,
                                      double *backward_done_s);

/* train_elastic.c: generations (gloo under a coordinator). */
/* How long a worker waits for a roster (the first, or the next after a
 * failure): the coordinator's wait, once a roster said it; before that
 * HERD_JOIN_TIMEOUT seconds, which herd run sets from its --join-timeout,
 * else 120 s. train may be NULL (before the join). */
int herd_train_join_timeout_ms(herd_train_t *train);
/* 1 when membership may change: the gloo backend under a coordinator. */
int herd_train_is_elastic(const herd_train_t *train);
/* Opens this generation's communicator from `roster` (gloo, KV rendezvous)
 * and installs the roster hook that aborts it when members are lost. */
herd_result_t herd_train_open_comm(herd_train_t *train,
                                   const herd_roster_t *roster);
/* First collective of a generation, on every member: agree on `local_rc`
 * (newcomers' setup), then take the newest state a member holds, or the
 * newest checkpoint when none does. */
herd_result_t herd_train_enter_generation(herd_train_t *train,
                                          herd_result_t local_rc);
/* After a failed collective (`why` != OK: the step is discarded) or an
 * agreed admission (`why` == OK): waits for the next roster, rebuilds the
 * communicator and re-syncs the state. */
herd_result_t herd_train_reconfigure(herd_train_t *train, herd_result_t why);
/* 1 when `rc` is a collective failure a new generation can recover from. */
int herd_train_recoverable(herd_result_t rc);

/* train_determ.c: one step of --deterministic training. */
herd_result_t herd_train_step_deterministic(herd_train_t *train, float *x,
                                            uint8_t *labels, int stop,
                                            int reconfigure,
                                            herd_step_report_t *report);
/* Hex SHA-256 of the parameters (65 bytes with the NUL). */
void herd_train_param_sha256(const herd_train_t *train, char *out);

/* train_state.c: checkpoints and state agreement across ranks. */
/* Every rank takes the state of `root`: header {has_state, step, epoch,
 * step_in_epoch, optimizer step}, parameters, optimizer buffers. */
#define HERD_TRAIN_HEADER_LEN 5
herd_result_t herd_train_broadcast_state(herd_train_t *train, int root,
                                         int64_t *header);
herd_result_t herd_train_resume(herd_train_t *train);
/* Rank 0: snapshots the state into the asynchronous writer (the step waits
 * only for the copy). Other ranks: no-op. A failed save is logged, counted
 * and reported by herd_train_poll_saves; training goes on. */
herd_result_t herd_train_save(herd_train_t *train);
/* Main thread: reports committed saves to the coordinator
 * (checkpoint_committed). `wait` first waits for the save in flight. */
void herd_train_poll_saves(herd_train_t *train, int wait);
/* All ranks agree whether everyone succeeded (MIN all-reduce of a flag);
 * returns HERD_EPEER on ranks whose own rc was OK but a peer failed, and
 * sets peer_usage_error when that peer's rc was HERD_EINVAL. */
herd_result_t herd_train_agree(herd_train_t *train, herd_result_t rc);
/* The training configuration as compact JSON, as checkpoints record it. */
void herd_train_config_json(const herd_train_t *train, char *out, size_t cap);

/* train_resume.c: what a checkpoint may be resumed with (README.md,
 * "Resuming"). Rank 0, before loading: HERD_EINVAL naming the setting,
 * both values and how to start over when the run's config contradicts the
 * one recorded in `meta`; HERD_EFORMAT when the record is unreadable.
 * Prints one line listing the settings that changed but may. */
herd_result_t herd_train_check_resume_config(const herd_train_t *train,
                                             const herd_ckpt_meta_t *meta,
                                             const char *path);
/* After loading: the cursor is within bounds and consistent with this
 * run's steps per epoch, and not past --epochs / --max-steps. */
herd_result_t herd_train_check_resume_cursor(const herd_train_t *train,
                                             const herd_ckpt_meta_t *meta,
                                             int64_t optim_step,
                                             const char *path);
/* HERD_ENONFINITE naming the step when any of `count` values is NaN/inf;
 * `what` ends in a verb ("the summed loss is"). */
herd_result_t herd_train_check_finite(const float *values, size_t count,
                                      const char *what, int64_t step);
/* After the all-reduce, before the update: a NaN or infinity in the sums
 * (a diverging --lr, bad data) would reach every replica's parameters and
 * then every checkpoint, and an empty global batch would divide by zero.
 * Every rank holds the same sums, so all refuse the same step. tail: the
 * decoded sums (float buffers); grad: the summed gradient on the host, or
 * NULL when the caller checked it elsewhere (the GPU step). */
herd_result_t herd_train_check_sums(const herd_train_t *train,
                                    const herd_step_tail_t *tail,
                                    const float *grad);
/* This step's samples: this rank's [begin, end) of the sampler's
 * permutation (its shards of --virtual-shards) and the global batch's
 * [global_begin, global_end), as every step path cuts them. */
void herd_train_step_ranges(const herd_train_t *train, size_t *begin,
                            size_t *end, size_t *global_begin,
                            size_t *global_end);
/* 1 when this rank holds a roster newer than its generation: its
 * `reconfigure` in the step tail before the SUM. */
int herd_train_newer_roster(herd_train_t *train);

/* train_cuda.c (--device cuda; train_cuda_stub.c in a build without CUDA).
 * The GPU path keeps params, gradients and optimizer state in device memory
 * and all-reduces the gradient from there: with --backend nccl over its own
 * NCCL communicator, while train->comm (mpi) carries the host-side calls
 * (agreement, resume broadcast, evaluation sums); with mpi/gloo staged
 * through train->grad. train->params and the host optimizer's state are
 * refreshed only by herd_train_cuda_download (checkpoints, --dump-params). */
/* HERD_EUNSUPPORTED "no CUDA device found" (or "built without CUDA"). Local,
 * no collective: call before the communicator exists. */
herd_result_t herd_train_cuda_probe(void);
/* Collective, after herd_train_resume: picks this rank's GPU, uploads the
 * data, params and optimizer state, opens the nccl communicator. On failure
 * train->cuda may be half made: herd_train_cuda_destroy frees it. */
herd_result_t herd_train_cuda_setup(herd_train_t *train);
/* One step on the GPU, like herd-train's CPU step (stop: this rank got a
 * stop signal; reconfigure: herd_train_newer_roster). Sets
 * train->stop_requested / reconfigure_requested when any rank did, and
 * refuses a step whose sums are not finite, as the CPU step does. */
herd_result_t herd_train_cuda_step(herd_train_t *train, int stop,
                                   int reconfigure,
                                   herd_step_report_t *report);
/* Host params and optimizer state -> the device (after a broadcast of the
 * state to a new generation). */
herd_result_t herd_train_cuda_upload(herd_train_t *train);
/* Adds the loss sum and correct count over test samples [begin, end). */
herd_result_t herd_train_cuda_evaluate(herd_train_t *train, size_t begin,
                                       size_t end, double *loss_sum,
                                       int64_t *correct);
/* Device params and optimizer state -> train->params and train->optim. */
herd_result_t herd_train_cuda_download(herd_train_t *train);
/* Safe on NULL and twice; nulls *cuda_p. */
void herd_train_cuda_destroy(herd_train_cuda_t **cuda_p);

#endif
