/* herd-train: the reference data-parallel trainer (MLP on Fashion-MNIST).
 *
 * Every worker runs this program. The global batch is fixed; each step's
 * batch is split among the ranks by the deterministic global sampler, each
 * rank adds up its samples' gradients, one all-reduce sums them (with the
 * loss and counts riding along), and every rank applies the same update.
 * Options come from the table below, with HERD_* environment fallbacks so
 * `herd run` can pass the run directory and checkpoint policy.
 *
 * Graceful stop: SIGTERM or SIGUSR1 (Slurm's --signal, Kubernetes pod
 * termination, `herd run` on Ctrl-C) only sets a flag. The flag rides in the
 * gradient all-reduce (the step tail, step_tail.h), so every rank sees it after
 * the same step whatever rank got the signal first; then rank 0 saves and
 * waits for the commit, and all ranks exit 0. The next run resumes there.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herd/settings.h"
#include "herd/clock.h"
#include "herd/env.h"
#include "mlp_det.h"
#include "train.h"

static const herd_opt_t s_table[] = {
    HERD_OPT(DATA, herd_train_config_t, data),
    HERD_OPT(HIDDEN, herd_train_config_t, hidden),
    HERD_OPT(EPOCHS, herd_train_config_t, epochs),
    HERD_OPT(BATCH, herd_train_config_t, batch),
    HERD_OPT(LR, herd_train_config_t, lr),
    HERD_OPT(OPTIMIZER, herd_train_config_t, optimizer),
    HERD_OPT(MOMENTUM, herd_train_config_t, momentum),
    HERD_OPT(WEIGHT_DECAY, herd_train_config_t, weight_decay),
    HERD_OPT(SCHEDULE, herd_train_config_t, schedule),
    HERD_OPT(WARMUP_STEPS, herd_train_config_t, warmup_steps),
    HERD_OPT(LR_STEP_EVERY, herd_train_config_t, lr_step_every),
    HERD_OPT(LR_GAMMA, herd_train_config_t, lr_gamma),
    HERD_OPT(SEED, herd_train_config_t, seed),
    HERD_OPT(BACKEND, herd_train_config_t, backend),
    HERD_OPT(IFACE, herd_train_config_t, iface),
    HERD_OPT(CKPT_DIR, herd_train_config_t, ckpt_dir),
    HERD_OPT(CKPT_EVERY, herd_train_config_t, ckpt_every),
    HERD_OPT(CKPT_KEY_FILE, herd_train_config_t, ckpt_key_file),
    HERD_OPT(CKPT_KEEP, herd_train_config_t, keep),
    HERD_OPT(RESUME, herd_train_config_t, resume),
    HERD_OPT(MAX_STEPS, herd_train_config_t, max_steps),
    HERD_OPT(DUMP_PARAMS, herd_train_config_t, dump_params),
    HERD_OPT(DEVICE, herd_train_config_t, device),
    HERD_OPT(DETERMINISTIC, herd_train_config_t, deterministic),
    HERD_OPT(VIRTUAL_SHARDS, herd_train_config_t, virtual_shards),
    HERD_OPT(PEAK_GFLOPS, herd_train_config_t, peak_gflops),
    HERD_OPT(BUCKET_MB, herd_train_config_t, bucket_mb),
    HERD_OPT(GRAD_DTYPE, herd_train_config_t, grad_dtype),
    HERD_OPT(TIMELINE, herd_train_config_t, timeline),
};

/* Set by SIGTERM/SIGUSR1; read once per step into the all-reduce. */
static volatile sig_atomic_t s_stop_signal;

static void s_on_stop_signal(int signo) { s_stop_signal = signo; }

/* Fault injection for tests (tests/fault elastic.sh hung_compute): with
 * HERD_TEST_HANG_ON_SIGUSR2=SECONDS (1..600), SIGUSR2 makes the training
 * thread spin that long before its next step, as an endless loop in the
 * model code would, while the link thread heartbeats on. Without the
 * variable SIGUSR2 keeps its default action. */
static volatile sig_atomic_t s_hang_requested;
static int s_hang_seconds;

static void s_on_hang_signal(int signo)
{
  (void)signo;
  s_hang_requested = 1;
}

static void s_spin_if_asked(void)
{
  if (!s_hang_requested)
    return;
  s_hang_requested = 0;
  fprintf(stderr, "herd-train: SIGUSR2: spinning for %d s (fault injection)\n",
          s_hang_seconds);
  double until = herd_mono_s() + s_hang_seconds;
  volatile uint64_t spins = 0;
  while (herd_mono_s() < until)
    for (int i = 0; i < 100000; i++)
      spins++;
}

/* Under `herd run --launcher local` (which sets HERD_LAUNCHER_PID): once
 * the parent this rank started with is gone (herd run was killed, or a
 * wrapper between them; the rank is re-parented) nobody watches the job,
 * so the rank stops as on SIGTERM, which every rank agrees on in the next
 * all-reduce, and rank 0 saves. Checked once per step: getppid is cheap. */
static pid_t s_first_parent;

static void s_stop_if_orphaned(void)
{
  if (s_first_parent <= 1 || s_stop_signal || getppid() == s_first_parent)
    return;
  fprintf(stderr, "herd-train: its launcher (pid %d) is gone: stopping "
                  "with a checkpoint\n", (int)s_first_parent);
  s_stop_signal = SIGTERM;
}

static void s_catch_stop_signals(void)
{
  if (herd_setting_string(HERD_S_LAUNCHER_PID))
    s_first_parent = getppid();
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = s_on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGUSR1, &action, NULL);
  int64_t hang = 0;
  if (herd_setting_int(HERD_S_TEST_HANG_ON_SIGUSR2, &hang) == HERD_OK &&
      hang >= 1) {
    s_hang_seconds = (int)hang;
    action.sa_handler = s_on_hang_signal;
    sigaction(SIGUSR2, &action, NULL);
  }
  /* A peer that closed its socket (dropped from the generation while this
   * rank was stopped or cut off) must be an error from send(), which the
   * elastic path recovers from, not a silent death. */
  signal(SIGPIPE, SIG_IGN);
}

static const char s_usage[] =
    "usage: herd-train [OPTIONS]\n\n"
    "Trains an MLP on Fashion-MNIST, data parallel. Start it with\n"
    "'herd run -n N -- herd-train ...', or under mpirun/srun with HERD_COORD\n"
    "and HERD_TOKEN pointing at a 'herd coord'.";

static herd_result_t s_parse_hidden(const char *text, int *dims, int *n_dims)
{
  *n_dims = 0;
  dims[(*n_dims)++] = HERD_MLP_INPUTS;
  for (const char *p = text; *p;) {
    char *end = NULL;
    long width = strtol(p, &end, 10);
    if (end == p || width < 1 || width > HERD_MLP_MAX_WIDTH ||
        *n_dims >= HERD_MLP_MAX_DIMS - 1 || (*end && *end != ','))
      return herd_error_set(HERD_EINVAL, "--hidden '%s': expected widths "
                                         "like 256,128", text);
    dims[(*n_dims)++] = (int)width;
    p = *end ? end + 1 : end;
  }
  dims[(*n_dims)++] = HERD_MLP_CLASSES;
  return HERD_OK;
}

static herd_result_t s_make_optim(herd_train_t *train)
{
  const herd_train_config_t *c = &train->config;
  herd_optim_config_t oc = HERD_OPTIM_CONFIG_INIT;
  oc.kind = strcmp(c->optimizer, "sgd") ? HERD_OPTIM_ADAMW : HERD_OPTIM_SGD;
  oc.momentum = (float)c->momentum;
  oc.weight_decay = (float)c->weight_decay;
  train->optim_config = oc;
  HERD_CHECK(herd_optim_new(&oc, train->param_count, &train->optim));
  herd_lr_schedule_t s = HERD_LR_SCHEDULE_INIT;
  s.kind = !strcmp(c->schedule, "cosine") ? HERD_LR_COSINE
           : !strcmp(c->schedule, "step") ? HERD_LR_STEP
                                          : HERD_LR_CONSTANT;
  s.base_lr = c->lr;
  s.warmup_steps = c->warmup_steps;
  s.total_steps = c->epochs * train->steps_per_epoch;
  s.min_ratio = 0.0;
  s.step_every = c->lr_step_every;
  s.gamma = c->lr_gamma;
  train->schedule = s;
  return herd_lr_validate(&train->schedule);
}

/* The gradient buffer's bytes (parameters and the step tail), known before
 * the model is made, for the communicator that may hold it
 * (herd_comm_buffer); 0 when --hidden is bad (s_make_model says why). */
static size_t s_grad_bytes(const herd_train_t *train)
{
  int dims[HERD_MLP_MAX_DIMS], n_dims = 0;
  herd_mlp_t *mlp = NULL;
  if (s_parse_hidden(train->config.hidden, dims, &n_dims) != HERD_OK ||
      herd_mlp_new(dims, n_dims, 1, &mlp) != HERD_OK)
    return 0;
  size_t bytes = (herd_mlp_param_count(mlp) + HERD_STEP_TAIL_LEN) * sizeof(float);
  herd_mlp_destroy(&mlp);
  return bytes;
}

/* Model, optimizer, sampler and buffers; identical on every rank. */
static herd_result_t s_make_model(herd_train_t *train)
{
  int dims[HERD_MLP_MAX_DIMS], n_dims = 0;
  HERD_CHECK(s_parse_hidden(train->config.hidden, dims, &n_dims));
  int max_local = (int)train->config.batch; /* worlds may shrink */
  HERD_CHECK(herd_mlp_new(dims, n_dims, max_local, &train->mlp));
  train->param_count = herd_mlp_param_count(train->mlp);
  train->params = malloc(train->param_count * sizeof(float));
  /* In the communicator's memory where it has some (one host's ranks
   * then sum it in place, copying nothing in or out), else our own. */
  size_t grad_bytes = (train->param_count + HERD_STEP_TAIL_LEN) * sizeof(float);
  train->grad = herd_comm_buffer(train->comm);
  train->grad_in_comm = train->grad && train->comm_buffer_bytes == grad_bytes;
  if (!train->grad_in_comm)
    train->grad = malloc(grad_bytes);
  size_t train_count = train->dataset->train.count;
  train->sampler = herd_sampler_new((uint64_t)train->config.seed, train_count);
  int bf16 = !strcmp(train->config.grad_dtype, "bf16");
  if (bf16)
    train->grad16 = malloc(train->param_count * sizeof(uint16_t));
  if (!train->params || !train->grad || !train->sampler ||
      (bf16 && !train->grad16))
    return HERD_ENOMEM;
  train->steps_per_epoch =
      (int64_t)herd_sampler_steps_per_epoch(train_count, (size_t)train->config.batch);
  herd_rng_t rng;
  herd_rng_seed(&rng, (uint64_t)train->config.seed);
  herd_mlp_init_params(train->mlp, train->params, &rng);
  return s_make_optim(train);
}

static herd_result_t s_join(herd_train_t *train)
{
  herd_launch_env_t env; /* HERD_COORD, else derived from Slurm/k8s */
  HERD_CHECK(herd_env_discover(&env));
  if (!env.coord[0] || (!herd_setting_string(HERD_S_COORD) &&
                        !herd_setting_string(HERD_S_TOKEN) &&
                        !herd_setting_string(HERD_S_TOKEN_FILE))) {
    HERD_LOG(HERD_LOG_INFO, "train", "no HERD_COORD (or HERD_TOKEN[_FILE] for a "
                                     "derived address): no coordinator");
    return HERD_OK;
  }
  herd_worker_config_t wc = HERD_WORKER_CONFIG_INIT;
  wc.coord_endpoint = env.coord;
  wc.launcher_rank = train->rank;
  wc.launcher_world_size = train->world_size;
  /* The launcher's env, where the backend has no world of its own (not
   * mpi, or a singleton MPI without mpirun: a Kubernetes pod). */
  if (env.rank >= 0 && (!train->comm || train->world_size <= 1 ||
                        herd_comm_backend(train->comm) != HERD_BACKEND_MPI)) {
    wc.launcher_rank = env.rank;
    wc.launcher_world_size = env.world_size;
  }
  wc.iface = train->config.iface;
  wc.join_timeout_ms = herd_train_join_timeout_ms(NULL);
  /* The heartbeat interval is the coordinator's (it judges liveness): it
   * comes in the roster, not from this process's environment. */
  HERD_CHECK(herd_worker_join(&wc, &train->worker));
  /* NCCL picks its own interface for bootstrap and rings; make it the one
   * herd advertises, unless the user chose one for NCCL already. */
  const char *iface = herd_worker_advertise_iface(train->worker);
  if (iface[0])
    setenv("NCCL_SOCKET_IFNAME", iface, 0);
  herd_roster_t roster;
  HERD_CHECK(herd_worker_roster(train->worker, &roster));
  train->generation = roster.generation;
  herd_log_set_context(train->rank, roster.generation);
  if (train->comm) { /* mpi, or a single rank: formed before the roster */
    herd_worker_generation_formed(train->worker, roster.generation);
    return HERD_OK;
  }
  /* gloo: this generation's communicator from the roster and the KV
   * store; it is rebuilt for every later generation (train_elastic.c). */
  return herd_train_open_comm(train, &roster);
}

/* mpirun and srun --mpi=pmix give MPI a world of their own; any other
 * launcher (Kubernetes, torchrun, herd run --launcher local, plain srun)
 * leaves MPI a singleton, so the world must form through the coordinator. */
static int s_mpi_launched(const herd_launch_env_t *env)
{
  return !strcmp(env->source, "openmpi") || !strcmp(env->source, "pmix");
}

static void s_default_backend(herd_train_t *train, const herd_launch_env_t *env,
                              int cuda)
{
  if (train->config.backend)
    return;
  int elastic = env->world_size > 1 && !s_mpi_launched(env);
  train->config.backend =
      herd_backend_name(cuda ? HERD_BACKEND_NCCL
                             : elastic ? HERD_BACKEND_GLOO : HERD_BACKEND_MPI);
  HERD_LOG(HERD_LOG_INFO, "train", "backend %s (launcher: %s)",
           train->config.backend, env->source);
}

/* An mpi world that is not the launcher's (MPI without mpirun: every pod
 * of an Indexed Job a world of one) would train N separate models. */
static herd_result_t s_check_world(const herd_train_t *train,
                                   const herd_launch_env_t *env)
{
  if (env->world_size <= 0 || train->world_size == env->world_size)
    return HERD_OK;
  return herd_error_set(HERD_EINVAL,
                        "backend mpi formed a world of %d, but the launcher "
                        "(%s) says %d: MPI needs mpirun or srun --mpi=pmix; "
                        "under %s set HERD_BACKEND=gloo (--backend gloo)",
                        train->world_size, env->world_source, env->world_size,
                        env->world_source);
}

/* The loader takes images of any size; the model's input is fixed, and a
 * mismatch would read past each image or train on pieces of two. */
static herd_result_t s_check_data_shape(const herd_train_t *train)
{
  const herd_data_split_t *splits[2] = {&train->dataset->train,
                                        &train->dataset->test};
  const char *names[2] = {"train", "test"};
  for (int i = 0; i < 2; i++) {
    int rows = splits[i]->rows, cols = splits[i]->cols;
    if ((size_t)rows * (size_t)cols == HERD_MLP_INPUTS)
      continue;
    return herd_error_set(HERD_EINVAL,
                          "--data %s: %s images are %dx%d (%d inputs), but "
                          "the model takes %d inputs (28x28 images); see "
                          "'herd data inspect %s'",
                          train->config.data, names[i], rows, cols, rows * cols,
                          HERD_MLP_INPUTS, train->config.data);
  }
  return HERD_OK;
}

static herd_result_t s_setup(herd_train_t *train)
{
  int cuda = !strcmp(train->config.device, "cuda");
  if (!strcmp(train->config.grad_dtype, "bf16") &&
      (cuda || train->config.deterministic))
    return herd_error_set(HERD_EINVAL,
                          "--grad-dtype bf16 works with the CPU's default "
                          "mode only (%s sums the gradient in f32)",
                          cuda ? "--device cuda" : "--deterministic");
  herd_launch_env_t env;
  HERD_CHECK(herd_env_discover(&env));
  s_default_backend(train, &env, cuda);
  if (cuda)
    HERD_CHECK(herd_train_cuda_probe());
  herd_comm_config_t cc = HERD_COMM_CONFIG_INIT;
  HERD_CHECK(herd_backend_parse(train->config.backend, &cc.backend));
  /* nccl: train_cuda.c opens it; the host side is mpi in an MPI world,
   * else gloo through the coordinator (nccl's unique id then travels through
   * the coordinator's KV store too). */
  if (cuda && cc.backend == HERD_BACKEND_NCCL)
    cc.backend = s_mpi_launched(&env) || env.world_size <= 1
                     ? HERD_BACKEND_MPI
                     : HERD_BACKEND_GLOO;
  /* The launcher's view (herd run local, mpirun, srun, k8s): a gloo job of
   * several ranks gets its communicator from the coordinator's roster. */
  train->rank = env.rank >= 0 ? env.rank : 0;
  train->world_size = env.world_size > 0 ? env.world_size : 1;
  if (cc.backend == HERD_BACKEND_GLOO && train->world_size <= 1) {
    cc.rank = 0; /* a single rank needs no rendezvous */
    cc.world_size = 1;
  }
  if (cc.backend != HERD_BACKEND_GLOO || train->world_size <= 1) {
    cc.buffer_bytes = train->comm_buffer_bytes = s_grad_bytes(train);
    HERD_CHECK(herd_comm_new(&cc, &train->comm));
    train->rank = herd_comm_rank(train->comm);
    train->world_size = herd_comm_world_size(train->comm);
    HERD_CHECK(s_check_world(train, &env));
  }
  herd_log_set_context(train->rank, 0);
  herd_result_t rc = s_join(train); /* gloo on >1 rank: makes train->comm */
  /* A newcomer whose first generation did not form (a member died or the
   * coordinator restarted during the rendezvous, or a newer roster
   * superseded it: HERD_ERECONFIG) waits for the next one, as a member
   * would. */
  int retry = rc != HERD_OK && !train->comm && train->worker &&
              (herd_train_recoverable(rc) || rc == HERD_ERECONFIG);
  if (rc == HERD_OK && !train->comm)
    rc = herd_error_set(HERD_EINVAL, "--backend gloo on %d ranks needs the "
                        "coordinator (herd run) for its rendezvous",
                        train->world_size);
  if (!train->comm && !retry)
    return rc; /* nothing to agree over */
  /* The checkpoint key before any checkpoint is read: resume refuses one
   * not signed with it. An unreadable key file fails every rank alike. */
  herd_result_t local = herd_ckpt_set_key_file(train->config.ckpt_key_file);
  if (local == HERD_OK)
    local = herd_dataset_load(train->config.data, &train->dataset);
  if (local == HERD_OK)
    local = s_check_data_shape(train);
  if (local == HERD_OK)
    local = s_make_model(train);
  if (retry) {
    HERD_CHECK(local);
    rc = herd_train_reconfigure(train, rc);
  } else {
    /* Agree, then take a member's state, or the newest checkpoint when no
     * member holds one (a fresh job, or every worker restarted). */
    /* Not retried: an agreed setup failure of any rank (a missing data
     * file) is HERD_EPEER here too, and must end the job. */
    rc = herd_train_enter_generation(train, rc == HERD_OK ? local : rc);
  }
  HERD_CHECK(rc);
  return cuda ? herd_train_cuda_setup(train) : HERD_OK;
}

/* This rank's test samples [begin, end) on the CPU. */
static herd_result_t s_evaluate_cpu(herd_train_t *train, size_t begin,
                                    size_t end, double *loss_sum,
                                    int64_t *correct)
{
  const herd_data_split_t *test = &train->dataset->test;
  size_t pixels = (size_t)test->rows * (size_t)test->cols;
  float *x = malloc((end - begin + 1) * pixels * sizeof(float));
  if (!x)
    return HERD_ENOMEM;
  herd_mlp_normalize_u8(test->images + begin * pixels, (end - begin) * pixels, x);
  herd_result_t rc = herd_mlp_evaluate(train->mlp, train->params, x,
                                       test->labels + begin, end - begin,
                                       loss_sum, correct);
  free(x);
  return rc;
}

/* Test-set accuracy; each rank evaluates a slice, one all-reduce sums. */
static herd_result_t s_evaluate(herd_train_t *train)
{
  const herd_data_split_t *test = &train->dataset->test;
  size_t begin = test->count * (size_t)train->rank / (size_t)train->world_size;
  size_t end = test->count * (size_t)(train->rank + 1) / (size_t)train->world_size;
  double sums[2] = {0, 0}; /* loss sum, correct */
  int64_t correct = 0;
  herd_result_t rc =
      train->cuda ? herd_train_cuda_evaluate(train, begin, end, &sums[0], &correct)
                  : s_evaluate_cpu(train, begin, end, &sums[0], &correct);
  sums[1] = (double)correct;
  HERD_CHECK(herd_train_agree(train, rc));
  HERD_CHECK(herd_comm_allreduce(train->comm, sums, sums, 2, HERD_DTYPE_F64,
                                 HERD_OP_SUM));
  train->test_accuracy = sums[1] / (double)test->count;
  if (train->rank == 0)
    printf("herd-train: epoch %lld: test accuracy %.4f, test loss %.4f\n",
           (long long)train->epoch, train->test_accuracy,
           sums[0] / (double)test->count);
  fflush(stdout);
  if (train->worker)
    herd_worker_report_epoch(train->worker, train->epoch, train->test_accuracy,
                             sums[0] / (double)test->count);
  return HERD_OK;
}

/* Global throughput over windows of about a second. */
static void s_update_throughput(herd_train_t *train, double now,
                                int64_t samples, double *window_start,
                                int64_t *window_samples)
{
  *window_samples += samples;
  double elapsed = now - *window_start;
  if (elapsed >= 1.0 || train->samples_per_second == 0) {
    if (elapsed > 0)
      train->samples_per_second = (double)*window_samples / elapsed;
    *window_start = now;
    *window_samples = 0;
  }
}

/* 1.0 when this rank holds a roster newer than its generation. */
int herd_train_newer_roster(herd_train_t *train)
{
  herd_roster_t roster;
  return train->worker && herd_worker_roster(train->worker, &roster) == HERD_OK &&
         roster.generation > train->generation;
}

/* One step: local gradient sum, one all-reduce, identical update. */
static herd_result_t s_step(herd_train_t *train, float *x, uint8_t *labels,
                            herd_step_report_t *report)
{
  if (train->cuda)
    return herd_train_cuda_step(train, s_stop_signal != 0,
                                herd_train_newer_roster(train), report);
  if (train->config.deterministic)
    return herd_train_step_deterministic(train, x, labels, s_stop_signal != 0,
                                         herd_train_newer_roster(train), report);
  const herd_data_split_t *data = &train->dataset->train;
  size_t pixels = (size_t)data->rows * (size_t)data->cols;
  size_t begin, end, global_begin, global_end;
  herd_train_step_ranges(train, &begin, &end, &global_begin, &global_end);
  double t0 = herd_mono_s();
  herd_mlp_gather(data->images, data->labels, pixels,
                  herd_sampler_perm(train->sampler) + begin, end - begin, x, labels);
  double t1 = herd_mono_s();
  size_t p = train->param_count;
  memset(train->grad, 0, p * sizeof(float));
  double loss_sum = 0, t2 = 0;
  int correct = 0;
  herd_step_tail_t tail = {.samples = (int64_t)(end - begin),
                           .stop = s_stop_signal != 0,
                           .reconfigure = herd_train_newer_roster(train)};
  herd_step_tail_encode_f32(&tail, train->grad + p); /* loss, correct: 0 */
  HERD_CHECK(herd_train_overlap_step(train, x, labels, (int)(end - begin),
                                     &loss_sum, &correct, &t2));
  double t3 = herd_mono_s();
  herd_step_tail_decode_f32(train->grad + p, &tail);
  HERD_CHECK(herd_train_check_sums(train, &tail, train->grad));
  if (tail.stop)
    train->stop_requested = 1;
  train->reconfigure_requested = tail.reconfigure;
  herd_optim_step_scaled(train->optim, train->params, train->grad,
                         1.0f / (float)tail.samples,
                         (float)herd_lr_at(&train->schedule, train->step));
  *report = (herd_step_report_t){
      .step = train->step + 1, .epoch = train->epoch,
      .generation = train->generation, .world_size = train->world_size,
      .loss = (float)tail.loss_sum / (float)tail.samples,
      .samples = tail.samples,
      .data_seconds = t1 - t0, .compute_seconds = (t2 - t1) + (herd_mono_s() - t3),
      .comm_seconds = t3 - t2, .step_seconds = herd_mono_s() - t0,
      .sample_begin = (int64_t)global_begin, .sample_end = (int64_t)global_end};
  herd_timeline_step(train->timeline, report->step, t0, t1, t2, t3, herd_mono_s());
  return HERD_OK;
}

/* herd_train_save, of the GPU's state (fetched first) with --device cuda;
 * a failed fetch skips the save, logged, like a failed save. On the CPU
 * every rank holds the same parameters, so all check them and agree:
 * finite gradients can still overflow them, and a checkpoint of NaN would
 * be resumed from forever. That one stops the job; others are logged. */
static herd_result_t s_save(herd_train_t *train)
{
  double start = herd_mono_s();
  if (!train->cuda)
    HERD_CHECK(herd_train_check_finite(train->params, train->param_count,
                                       "the parameters are", train->step));
  herd_result_t rc = train->rank == 0 ? herd_train_cuda_download(train) : HERD_OK;
  if (rc == HERD_OK)
    herd_train_save(train);
  else
    HERD_LOG(HERD_LOG_ERROR, "train", "checkpoint at step %lld: %s",
             (long long)train->step, herd_error_detail());
  if (train->rank == 0 && train->config.ckpt_dir)
    herd_timeline_phase(train->timeline, HERD_TIMELINE_CHECKPOINT,
                        train->step, start, herd_mono_s());
  return HERD_OK;
}

/* Bookkeeping after a committed step: epoch end, reports, checkpoints. */
static herd_result_t s_after_step(herd_train_t *train, herd_step_report_t *report)
{
  train->step++;
  report->samples_per_second = train->samples_per_second;
  report->flops_per_sample = train->flops_per_sample;
  report->host_peak_flops = train->host_peak_flops;
  report->total_steps = train->config.epochs * train->steps_per_epoch;
  if (train->config.max_steps && train->config.max_steps < report->total_steps)
    report->total_steps = train->config.max_steps; /* for the ETA */
  if (train->worker)
    herd_worker_report_step(train->worker, report);
  if (++train->step_in_epoch == train->steps_per_epoch) {
    train->step_in_epoch = 0; /* the step is committed whatever eval does */
    herd_result_t rc = s_evaluate(train);
    train->epoch++;
    HERD_CHECK(rc);
  }
  if (train->config.ckpt_every > 0 && train->step % train->config.ckpt_every == 0)
    HERD_CHECK(s_save(train)); /* fails on non-finite parameters only */
  herd_train_poll_saves(train, 0);
  return HERD_OK;
}

static herd_result_t s_train(herd_train_t *train)
{
  size_t pixels = (size_t)train->dataset->train.rows * train->dataset->train.cols;
  size_t local_max = (size_t)train->config.batch; /* worlds may shrink */
  float *x = malloc(local_max * pixels * sizeof(float));
  uint8_t *labels = malloc(local_max);
  herd_result_t rc = x && labels ? HERD_OK : HERD_ENOMEM;
  if (!train->peak_known) { /* once, before the first step */
    train->flops_per_sample = herd_mlp_flops_per_sample(train->mlp);
    train->host_peak_flops = herd_train_host_peak_flops(train);
    train->peak_known = 1;
  }
  double window_start = herd_mono_s();
  int64_t window_samples = 0;
  int evaluated = 0; /* a resumed, finished run still reports accuracy */
  while (rc == HERD_OK && !train->stop_requested &&
         train->epoch < train->config.epochs &&
         (!train->config.max_steps || train->step < train->config.max_steps)) {
    if (train->step_in_epoch == 0 || herd_sampler_epoch(train->sampler) !=
                                         (uint64_t)train->epoch)
      herd_sampler_set_epoch(train->sampler, (uint64_t)train->epoch);
    herd_step_report_t report;
    s_spin_if_asked();
    s_stop_if_orphaned();
    rc = s_step(train, x, labels, &report);
    if (rc != HERD_OK && herd_train_is_elastic(train) &&
        herd_train_recoverable(rc)) {
      rc = herd_train_reconfigure(train, rc); /* the step is redone */
      continue;
    }
    if (rc == HERD_OK) {
      s_update_throughput(train, herd_mono_s(), report.samples, &window_start,
                          &window_samples);
      rc = s_after_step(train, &report);
      evaluated = train->step_in_epoch == 0;
      if (rc != HERD_OK && herd_train_is_elastic(train) &&
          herd_train_recoverable(rc))
        rc = herd_train_reconfigure(train, rc);
    }
    if (rc == HERD_OK && train->reconfigure_requested &&
        herd_train_is_elastic(train))
      rc = herd_train_reconfigure(train, HERD_OK); /* admit newcomers */
  }
  if (rc == HERD_OK && train->stop_requested && train->rank == 0)
    fprintf(stderr, "herd-train: stop requested by signal: saving step %lld "
                    "and exiting\n", (long long)train->step);
  if (rc == HERD_OK && !evaluated && !train->stop_requested)
    rc = s_evaluate(train);
  free(x);
  free(labels);
  return rc;
}

/* Rank 0 only: the final parameters as raw little-endian f32. */
static void s_dump_params(const herd_train_t *train)
{
  if (train->rank != 0 || !train->config.dump_params)
    return;
  FILE *f = fopen(train->config.dump_params, "wb");
  size_t n = f ? fwrite(train->params, sizeof(float), train->param_count, f)
               : 0;
  if (!f || n != train->param_count || fclose(f) != 0)
    fprintf(stderr, "herd-train: error: cannot write '%s'\n",
            train->config.dump_params);
}

static herd_result_t s_finish(herd_train_t *train)
{
  if (train->step != train->last_ckpt_step)
    HERD_CHECK(s_save(train));     /* also brings rank 0 the GPU's params */
  herd_train_poll_saves(train, 1); /* the final save is durable before exit */
  s_dump_params(train);
  if (train->worker && train->rank == 0 && !train->stop_requested) {
    herd_done_report_t done = {
        .final_step = train->step, .epochs = train->epoch,
        .test_accuracy = train->test_accuracy,
        .samples_per_second = train->samples_per_second,
        .world_size = train->world_size,
        .resumed_from_step = train->resumed_from_step};
    herd_train_param_sha256(train, done.param_sha256);
    herd_worker_report_done(train->worker, &done);
  }
  return HERD_OK;
}

static void s_cleanup(herd_train_t *train)
{
  herd_timeline_close(&train->timeline);
  herd_ckpt_writer_destroy(&train->writer);
  herd_worker_leave(&train->worker);
  herd_train_cuda_destroy(&train->cuda);
  herd_comm_destroy(&train->comm);
  herd_mlp_destroy(&train->mlp);
  herd_optim_destroy(&train->optim);
  herd_sampler_destroy(&train->sampler);
  herd_dataset_destroy(&train->dataset);
  free(train->params);
  if (!train->grad_in_comm)
    free(train->grad);
  free(train->grad16);
  herd_mlp_det_destroy(&train->determ);
  free(train->determ_sum);
  herd_comm_global_shutdown();
}

int main(int argc, char **argv)
{
  herd_train_t train;
  memset(&train, 0, sizeof train);
  pthread_mutex_init(&train.comm_lock, NULL);
  train.resumed_from_step = -1;
  train.last_ckpt_step = -1;
  int code = herd_opts_main("herd-train", s_usage, s_table,
                            sizeof s_table / sizeof *s_table, &train.config,
                            argc, argv, NULL);
  if (code >= 0)
    return code;
  s_catch_stop_signals();
  herd_result_t rc = s_setup(&train);
  train.setup_rc = rc;
  if (rc == HERD_OK && train.config.timeline)
    rc = herd_timeline_open(train.config.timeline, train.rank, &train.timeline);
  if (rc == HERD_OK)
    rc = s_train(&train);
  if (rc == HERD_OK)
    rc = s_finish(&train);
  else
    herd_train_poll_saves(&train, 1); /* committed ones are still reported */
  if (rc != HERD_OK && herd_worker_job_done(train.worker)) {
    /* Admitted too late: the others finished the job meanwhile. */
    fprintf(stderr, "herd-train: the job finished before this rank could "
                    "take part; exiting\n");
    rc = HERD_OK;
  }
  /* A peer's failure is its to report; a non-finite step is the same on
   * every rank, so rank 0 alone reports it. */
  if (rc != HERD_OK && rc != HERD_EPEER &&
      (rc != HERD_ENONFINITE || train.rank == 0))
    fprintf(stderr, "herd-train: error (rank %d): %s\n", train.rank,
            herd_error_detail()[0] ? herd_error_detail() : herd_strerror(rc));
  s_cleanup(&train);
  /* 2: the configuration is wrong, here or on the rank that failed first
   * (herd run and Kubernetes' podFailurePolicy then stop instead of
   * retrying). */
  int usage = train.setup_rc == HERD_EINVAL ||
              (train.setup_rc == HERD_EPEER && train.peer_usage_error);
  return rc == HERD_OK ? 0 : usage ? 2 : 1;
}
