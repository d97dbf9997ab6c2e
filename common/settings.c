/* The settings registry (include/herd/settings.h). One entry per setting;
 * keep the entries in the order of herd_setting_id_t. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "herd/data.h"
#include "herd/fs.h"
#include "herd/settings.h"

const herd_setting_t herd_settings_g[HERD_S_COUNT] = {
    [HERD_S_DATA] = {"HERD_DATA", "data", 0, HERD_OPT_STRING, "data/fashion-mnist.h5", 0, 0, NULL,
        HERD_READ_DATA | HERD_READ_TRAIN,
        "dataset from 'herd data import fashion-mnist'"},
    [HERD_S_HIDDEN] = {"HERD_HIDDEN", "hidden", 0, HERD_OPT_STRING, "256,128", 0, 0, NULL,
        HERD_READ_TRAIN,
        "hidden layer widths, comma separated"},
    [HERD_S_EPOCHS] = {"HERD_EPOCHS", "epochs", 0, HERD_OPT_INT, "15", 1, 100000, NULL,
        HERD_READ_TRAIN,
        "passes over the training set"},
    [HERD_S_BATCH] = {"HERD_BATCH", "batch", 0, HERD_OPT_INT, "128", 1, 1 << 20, NULL,
        HERD_READ_TRAIN,
        "global batch size (constant whatever the world size)"},
    [HERD_S_LR] = {"HERD_LR", "lr", 0, HERD_OPT_DOUBLE, "0.001", 1e-9, 100, NULL,
        HERD_READ_TRAIN,
        "peak learning rate"},
    [HERD_S_OPTIMIZER] = {"HERD_OPTIMIZER", "optimizer", 0, HERD_OPT_CHOICE, "adamw", 0, 0, "sgd|adamw",
        HERD_READ_TRAIN,
        "optimizer"},
    [HERD_S_MOMENTUM] = {NULL, "momentum", 0, HERD_OPT_DOUBLE, "0.9", 0, 0.9999, NULL,
        HERD_READ_TRAIN,
        "SGD momentum"},
    [HERD_S_WEIGHT_DECAY] = {NULL, "weight-decay", 0, HERD_OPT_DOUBLE, "0.0001", 0, 1, NULL,
        HERD_READ_TRAIN,
        "weight decay (decoupled for AdamW)"},
    [HERD_S_SCHEDULE] = {NULL, "schedule", 0, HERD_OPT_CHOICE, "cosine", 0, 0, "cosine|step|constant",
        HERD_READ_TRAIN,
        "learning-rate schedule"},
    [HERD_S_WARMUP_STEPS] = {NULL, "warmup-steps", 0, HERD_OPT_INT, "200", 0, 1e12, NULL,
        HERD_READ_TRAIN,
        "linear warmup steps"},
    [HERD_S_LR_STEP_EVERY] = {NULL, "lr-step-every", 0, HERD_OPT_INT, "2000", 1, 1e12, NULL,
        HERD_READ_TRAIN,
        "step schedule: decay period in steps"},
    [HERD_S_LR_GAMMA] = {NULL, "lr-gamma", 0, HERD_OPT_DOUBLE, "0.5", 1e-6, 1, NULL,
        HERD_READ_TRAIN,
        "step schedule: decay factor"},
    [HERD_S_SEED] = {"HERD_SEED", "seed", 0, HERD_OPT_INT, "42", 0, 9.0e15, NULL,
        HERD_READ_TRAIN,
        "seed for initialisation and data order"},
    [HERD_S_BACKEND] = {"HERD_BACKEND", "backend", 0, HERD_OPT_CHOICE, NULL, 0, 0, "mpi|gloo|nccl",
        HERD_READ_RUN | HERD_READ_TRAIN | HERD_TO_WORKERS,
        "collectives backend of the workers (default: nccl with --device "
        "cuda; else mpi under mpirun/srun --mpi=pmix, gloo under any other "
        "launcher)"},
    [HERD_S_IFACE] = {"HERD_IFACE", "iface", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_COORD | HERD_READ_RUN | HERD_READ_TRAIN | HERD_TO_WORKERS,
        "network interface the hosts share: the coordinator listens on its "
        "address, workers advertise theirs to their peers (default: the "
        "one that routes to the coordinator, or to the first remote host)"},
    [HERD_S_CKPT_DIR] = {"HERD_CKPT_DIR", "ckpt-dir", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_TRAIN | HERD_TO_WORKERS,
        "checkpoint folder (unset: no checkpoints)"},
    [HERD_S_CKPT_EVERY] = {"HERD_CKPT_EVERY", "ckpt-every", 0, HERD_OPT_INT, "500", 0, 1e12, NULL,
        HERD_READ_RUN | HERD_READ_TRAIN | HERD_TO_WORKERS,
        "checkpoint every S steps (0: only at the end)"},
    [HERD_S_CKPT_KEEP] = {"HERD_CKPT_KEEP", "keep", 0, HERD_OPT_INT, "3", 0, 1000000, NULL,
        HERD_READ_TRAIN,
        "checkpoints to keep (0: all)"},
    [HERD_S_RESUME] = {"HERD_RESUME", "resume", 0, HERD_OPT_STRING, "auto", 0, 0, NULL,
        HERD_READ_RUN | HERD_READ_TRAIN | HERD_TO_WORKERS,
        "auto (newest good checkpoint), never, or a file"},
    [HERD_S_MAX_STEPS] = {"HERD_MAX_STEPS", "max-steps", 0, HERD_OPT_INT, "0", 0, 1e12, NULL,
        HERD_READ_TRAIN,
        "stop after this many steps in total (0: no limit)"},
    [HERD_S_DUMP_PARAMS] = {NULL, "dump-params", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_TRAIN,
        "rank 0 writes the final parameters (raw f32) here"},
    [HERD_S_DEVICE] = {"HERD_DEVICE", "device", 0, HERD_OPT_CHOICE, "cpu", 0, 0, "cpu|cuda",
        HERD_READ_TRAIN,
        "train on the CPU, or on one GPU per rank"},
    [HERD_S_DETERMINISTIC] = {"HERD_DETERMINISTIC", "deterministic", 0, HERD_OPT_FLAG, NULL, 0, 0, NULL,
        HERD_READ_TRAIN,
        "bitwise-reproducible: same weights whatever the world size/backend"},
    [HERD_S_VIRTUAL_SHARDS] = {"HERD_VIRTUAL_SHARDS", "virtual-shards", 0, HERD_OPT_INT, "16", 1, 4096, NULL,
        HERD_READ_TRAIN,
        "fixed pieces of each global batch, spread over the ranks"},
    [HERD_S_PEAK_GFLOPS] = {"HERD_PEAK_GFLOPS", "peak-gflops", 0, HERD_OPT_DOUBLE, "0", 0, 1e9, NULL,
        HERD_READ_TRAIN,
        "the host's peak GFLOP/s for model FLOP utilization (MFU); 0: "
        "measured at start-up (sgemm at the model's shapes, all cores; "
        "cuBLAS with --device cuda)"},
    [HERD_S_BUCKET_MB] = {"HERD_BUCKET_MB", "bucket-mb", 0, HERD_OPT_DOUBLE, "4", 0.0625, 1024, NULL,
        HERD_READ_TRAIN,
        "gradient all-reduce bucket in MiB: each starts as "
        "soon as the backward pass has finished it (like DDP's bucket_cap_mb)"},
    [HERD_S_GRAD_DTYPE] = {"HERD_GRAD_DTYPE", "grad-dtype", 0, HERD_OPT_CHOICE, "f32", 0, 0, "f32|bf16",
        HERD_READ_TRAIN,
        "element type of the gradient on the wire: bf16 halves the bytes "
        "(rounded to bfloat16 and summed in it, like DDP's bf16 compress "
        "hook); the step's counts and loss stay f32"},
    [HERD_S_TIMELINE] = {"HERD_TIMELINE", "timeline", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_TRAIN,
        "write step phases as a Chrome trace (Perfetto) here; "
        "rank N>0 adds .rankN"},
    [HERD_S_NPROC] = {"HERD_NPROC", "nproc", 'n', HERD_OPT_INT, "1", 1, 4096, NULL,
        HERD_READ_RUN,
        "number of workers"},
    [HERD_S_RUN_DIR] = {"HERD_RUN_DIR", "run-dir", 0, HERD_OPT_STRING, "runs/run", 0, 0, NULL,
        HERD_READ_CLIENT | HERD_READ_COORD | HERD_READ_RUN | HERD_TO_WORKERS,
        "run directory (events.jsonl, summary.json, ckpt/)"},
    [HERD_S_LAUNCHER] = {"HERD_LAUNCHER", "launcher", 0, HERD_OPT_CHOICE, NULL, 0, 0, "mpirun|local|srun",
        HERD_READ_RUN,
        "how workers start (default: mpirun when installed, else local)"},
    [HERD_S_HOSTFILE] = {"HERD_HOSTFILE", "hostfile", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_RUN,
        "mpirun hostfile (lines 'host slots=N')"},
    [HERD_S_HOSTS] = {"HERD_HOSTS", "hosts", 'H', HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_RUN,
        "mpirun hosts: host:N,host:N,..."},
    [HERD_S_PROGRESS_INTERVAL] = {"HERD_PROGRESS_INTERVAL", "progress-interval", 0, HERD_OPT_DOUBLE, "2", 0.1, 3600, NULL,
        HERD_READ_RUN,
        "seconds between progress lines"},
    [HERD_S_JOIN_TIMEOUT] = {"HERD_JOIN_TIMEOUT", "join-timeout", 0, HERD_OPT_DOUBLE, "120", 1, 86400, NULL,
        HERD_READ_COORD | HERD_READ_RUN | HERD_READ_TRAIN | HERD_TO_WORKERS,
        "seconds to wait for all workers to join"},
    [HERD_S_HEARTBEAT_MS] = {"HERD_HEARTBEAT_MS", "heartbeat-ms", 0, HERD_OPT_INT, "100", 10, 60000, NULL,
        HERD_READ_COORD | HERD_READ_RUN,
        "worker heartbeat interval"},
    [HERD_S_HEARTBEAT_MISSES] = {"HERD_HEARTBEAT_MISSES", "heartbeat-misses", 0, HERD_OPT_INT, "20", 1, 100, NULL,
        HERD_READ_COORD | HERD_READ_RUN,
        "missed heartbeats before a worker is failed"},
    [HERD_S_MIN] = {"HERD_MIN", "min", 0, HERD_OPT_INT, "0", 0, 100000, NULL,
        HERD_READ_COORD | HERD_READ_RUN,
        "elastic: fewest workers to train with (0: -n)"},
    [HERD_S_MAX] = {"HERD_MAX", "max", 0, HERD_OPT_INT, "0", 0, 100000, NULL,
        HERD_READ_COORD | HERD_READ_RUN,
        "elastic: most workers admitted (0: -n)"},
    [HERD_S_MAX_RESTARTS] = {"HERD_MAX_RESTARTS", "max-restarts", 0, HERD_OPT_INT, "0", 0, 100000, NULL,
        HERD_READ_RUN,
        "restart failed workers (gloo, local) or the job (mpi) this often"},
    [HERD_S_COORD_PORT] = {"HERD_COORD_PORT", "coord-port", 0, HERD_OPT_INT, "0", 0, 65535, NULL,
        HERD_READ_COORD | HERD_READ_RUN | HERD_READ_LIB,
        "coordinator TCP port (0: a free one); fix it when "
        "a firewall sits between the hosts"},
    [HERD_S_COORD_BIND] = {"HERD_COORD_BIND", "bind", 0, HERD_OPT_STRING, "127.0.0.1", 0, 0, NULL,
        HERD_READ_COORD,
        "address to bind (the workers' side of this host; "
        "0.0.0.0 binds every interface)"},
    [HERD_S_COORD_ADVERTISE] = {"HERD_COORD_ADVERTISE", "advertise", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_COORD,
        "address workers dial, when not the bound one (NAT, "
        "0.0.0.0; default: the bound address)"},
    [HERD_S_TOKEN] = {"HERD_TOKEN", "token", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_CLIENT | HERD_READ_LIB | HERD_READ_TRAIN | HERD_READ_COORD | HERD_TO_WORKERS,
        "job token workers must present (random if none is given, and then "
        "printed); on the command line it is visible to every user: prefer "
        "--token-file or this variable"},
    [HERD_S_TOKEN_FILE] = {"HERD_TOKEN_FILE", "token-file", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_CLIENT | HERD_READ_LIB | HERD_READ_TRAIN | HERD_READ_COORD,
        "file holding the job token (a Kubernetes Secret, mode 600); used "
        "when no token is given"},
    [HERD_S_COORD_KEY] = {"HERD_COORD_KEY", "coord-key", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_CLIENT | HERD_READ_LIB | HERD_READ_TRAIN | HERD_TO_WORKERS,
        "the coordinator's CURVE public key (Z85, printed by herd coord; not "
        "a secret): set, the control plane is encrypted and authenticated"},
    [HERD_S_COORD_KEY_FILE] = {"HERD_COORD_KEY_FILE", "key-file", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_COORD,
        "file holding the coordinator's CURVE secret key (Z85, 40 "
        "characters; a Kubernetes Secret); default with CURVE on: "
        "RUN_DIR/coord.key, made on first use and kept for restarts"},
    [HERD_S_CURVE] = {"HERD_CURVE", "curve", 0, HERD_OPT_CHOICE, "auto", 0, 0, "auto|on|off",
        HERD_READ_RUN | HERD_READ_COORD,
        "CURVE encryption and authenticated sessions on the control plane: "
        "auto = on whenever the coordinator listens beyond loopback; off "
        "there is plain text (warned)"},
    [HERD_S_CKPT_KEY_FILE] = {"HERD_CKPT_KEY_FILE", "ckpt-key-file", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_TRAIN | HERD_READ_LIB | HERD_TO_WORKERS,
        "file holding a checkpoint key (16-4096 bytes): checkpoints are "
        "signed with HMAC-SHA256, and verify and resume refuse one whose "
        "signature does not match (tampered)"},
    [HERD_S_JOB_ID] = {"HERD_JOB_ID", "job-id", 0, HERD_OPT_STRING, "herd", 0, 0, NULL,
        HERD_READ_CLIENT | HERD_READ_LIB | HERD_READ_COORD | HERD_TO_WORKERS,
        "job id workers must name"},
    [HERD_S_LAST_CALL_MS] = {"HERD_LAST_CALL_MS", "last-call-ms", 0, HERD_OPT_INT, "500", -1, 600000, NULL,
        HERD_READ_COORD,
        "after --min joined, wait this long for more (up to --max); -1 none"},
    [HERD_S_WATCHDOG] = {"HERD_WATCHDOG", "watchdog", 0, HERD_OPT_INT, "10", -1, 100000, NULL,
        HERD_READ_COORD,
        "evict a rank stuck this many median step times (at least 4 s) while "
        "all others wait for it; -1 off"},
    [HERD_S_HOST_COOLDOWN_FAILURES] = {"HERD_HOST_COOLDOWN_FAILURES", "host-cooldown-failures", 0, HERD_OPT_INT, "3", -1, 1000, NULL,
        HERD_READ_COORD,
        "failures of one host within 60 s before it is held out; -1 off"},
    [HERD_S_REJOIN_WINDOW_MS] = {"HERD_REJOIN_WINDOW_MS", "rejoin-window-ms", 0, HERD_OPT_INT, "2000", 1, 600000, NULL,
        HERD_READ_COORD,
        "after a restart, wait this long for a whole generation to re-register"},
    [HERD_S_RUN_ID] = {"HERD_RUN_ID", "run-id", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_COORD,
        "run id for pushes and alerts (default: run dir name)"},
    [HERD_S_COORD] = {"HERD_COORD", "coord", 'c', HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_CLIENT | HERD_READ_LIB | HERD_READ_TRAIN | HERD_TO_WORKERS,
        "coordinator address (tcp://HOST:PORT)"},
    [HERD_S_STATUS_TIMEOUT] = {"HERD_STATUS_TIMEOUT", "timeout", 0, HERD_OPT_DOUBLE, "3", 0.1, 600, NULL,
        HERD_READ_CLIENT,
        "seconds to wait for the answer"},
    [HERD_S_STATUS_JSON] = {"HERD_STATUS_JSON", "json", 0, HERD_OPT_FLAG, "0", 0, 1, NULL,
        HERD_READ_CLIENT,
        "print the coordinator's answer as one JSON object"},
    [HERD_S_HTTP] = {"HERD_HTTP", "url", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_CLIENT,
        "coordinator monitoring URL (http://127.0.0.1:PORT/)"},
    [HERD_S_TOP_INTERVAL] = {NULL, "interval", 'd', HERD_OPT_DOUBLE, "2", 0.1, 3600, NULL,
        HERD_READ_CLIENT,
        "seconds between refreshes"},
    [HERD_S_TOP_ONCE] = {NULL, "once", 0, HERD_OPT_FLAG, "0", 0, 1, NULL,
        HERD_READ_CLIENT,
        "print one frame and exit (no screen clearing)"},
    [HERD_S_TOP_ITERATIONS] = {NULL, "iterations", 'n', HERD_OPT_INT, "0", 0, 1e9, NULL,
        HERD_READ_CLIENT,
        "frames to show (0: until Ctrl-C or the job ends)"},
    [HERD_S_TOP_ROWS] = {NULL, "rows", 0, HERD_OPT_INT, "32", 1, 100000, NULL,
        HERD_READ_CLIENT,
        "rank rows to show at most"},
    [HERD_S_TOP_TIMEOUT] = {NULL, "timeout", 0, HERD_OPT_DOUBLE, "3", 0.1, 600, NULL,
        HERD_READ_CLIENT,
        "seconds to wait for each answer"},
    [HERD_S_DATA_SRC] = {"HERD_DATA_SRC", "src", 0, HERD_OPT_STRING, HERD_FASHION_MNIST_DIR, 0, 0, NULL,
        HERD_READ_DATA,
        "folder with the IDX .gz files (Debian's dataset-fashion-mnist)"},
    [HERD_S_HTTP_ADDR] = {"HERD_HTTP_ADDR", "http", 0, HERD_OPT_STRING, "127.0.0.1:0", 0, 0, NULL,
        HERD_READ_RUN | HERD_READ_COORD,
        "monitoring HTTP server ADDR:PORT (port 0: free "   
   "port; 0.0.0.0:PORT exposes it; off: none)"},
    [HERD_S_PUSH_GATEWAY] = {"HERD_PUSH_GATEWAY", "push-gateway", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_RUN | HERD_READ_COORD,
        "Prometheus Pushgateway URL for metrics"},
    [HERD_S_PUSH_INTERVAL] = {"HERD_PUSH_INTERVAL", "push-interval", 0, HERD_OPT_DOUBLE, "10", 0.1, 86400, NULL,
        HERD_READ_RUN | HERD_READ_COORD,
        "seconds between pushes"},
    [HERD_S_ALERT_WEBHOOK] = {"HERD_ALERT_WEBHOOK", "alert-webhook", 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_RUN | HERD_READ_COORD,
        "URL to POST JSON alerts to"},
    [HERD_S_STALL_ALERT] = {"HERD_STALL_ALERT", "stall-alert", 0, HERD_OPT_DOUBLE, "120", 0, 86400, NULL,
        HERD_READ_RUN | HERD_READ_COORD,
        "alert after this many seconds without a step (0: never)"},
    [HERD_S_LOG_LEVEL] = {"HERD_LOG_LEVEL", NULL, 0, HERD_OPT_CHOICE, "warn", 0, 0, "error|warn|info|debug|trace",
        HERD_READ_ANY | HERD_TO_WORKERS,
        "log level of every herd process"},
    [HERD_S_LOG_SUBSYS] = {"HERD_LOG_SUBSYS", NULL, 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_ANY | HERD_TO_WORKERS,
        "log only these subsystems (comma-separated; unset: all)"},
    [HERD_S_RANK] = {"HERD_RANK", NULL, 0, HERD_OPT_INT, NULL, 0, 1e6, NULL,
        HERD_READ_LIB,
        "this worker's rank, when no launcher variable gives it (herd run --launcher local sets it)"},
    [HERD_S_WORLD_SIZE] = {"HERD_WORLD_SIZE", NULL, 0, HERD_OPT_INT, NULL, 1, 1e6, NULL,
        HERD_READ_LIB,
        "the number of workers, when no launcher variable gives it"},
    [HERD_S_LOCAL_RANK] = {"HERD_LOCAL_RANK", NULL, 0, HERD_OPT_INT, NULL, 0, 1e6, NULL,
        HERD_READ_LIB,
        "this worker's rank on its host (picks its GPU)"},
    [HERD_S_LAUNCHER_PID] = {"HERD_LAUNCHER_PID", NULL, 0, HERD_OPT_INT, NULL, 1, 4194304, NULL,
        HERD_READ_TRAIN,
        "set by herd run --launcher local: workers stop with a checkpoint once re-parented"},
    [HERD_S_K8S_JOB_NAME] = {"HERD_K8S_JOB_NAME", NULL, 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_LIB,
        "Kubernetes: the Indexed Job's name (pod host names are NAME-INDEX)"},
    [HERD_S_K8S_SERVICE] = {"HERD_K8S_SERVICE", NULL, 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_LIB,
        "Kubernetes: the headless Service the pods resolve through"},
    [HERD_S_CKPT_PREFLIGHT] = {"HERD_CKPT_PREFLIGHT", NULL, 0, HERD_OPT_FLAG, "1", 0, 1, NULL,
        HERD_READ_LIB,
        "0: skip the free-space check before a checkpoint save (tests)"},
    [HERD_S_CKPT_FAULT] = {"HERD_CKPT_FAULT", NULL, 0, HERD_OPT_STRING, NULL, 0, 0, NULL,
        HERD_READ_LIB,
        "tests: POINT[:N] makes the checkpoint writer SIGKILL itself there (checkpoint/FORMAT.md)"},
    [HERD_S_DET_GEMM] = {"HERD_DET_GEMM", NULL, 0, HERD_OPT_CHOICE, NULL, 0, 0, "portable|avx2",
        HERD_READ_TRAIN,
        "tests: force a narrower --deterministic arithmetic path"},
    [HERD_S_TEST_HANG_ON_SIGUSR2] = {"HERD_TEST_HANG_ON_SIGUSR2", NULL, 0, HERD_OPT_INT, NULL, 1, 600, NULL,
        HERD_READ_TRAIN,
        "tests: SIGUSR2 makes herd-train spin this many seconds (a hung rank)"},
};

const herd_setting_t *herd_setting_find(const char *env)
{
  for (int i = 0; env && i < HERD_S_COUNT; i++)
    if (herd_settings_g[i].env && !strcmp(herd_settings_g[i].env, env))
      return &herd_settings_g[i];
  return NULL;
}

/* The environment's text, or the default; NULL when neither. */
static const char *s_text(const herd_setting_t *s)
{
  const char *value = s->env ? getenv(s->env) : NULL;
  return value && *value ? value : s->default_value;
}

static herd_result_t s_number(herd_setting_id_t id, double *out)
{
  const herd_setting_t *s = &herd_settings_g[id];
  const char *text = s_text(s);
  *out = 0;
  if (!text)
    return HERD_OK;
  char *end = NULL;
  errno = 0;
  double value = strtod(text, &end);
  if (end == text || *end || errno || !isfinite(value))
    return herd_error_set(HERD_EINVAL, "%s: '%s' is not a number", s->env,
                          text);
  if (s->type == HERD_OPT_INT && value != floor(value))
    return herd_error_set(HERD_EINVAL, "%s: '%s' is not a whole number",
                          s->env, text);
  if (value < s->min || value > s->max)
    return herd_error_set(HERD_EINVAL, "%s: %s is outside [%g, %g]", s->env,
                          text, s->min, s->max);
  *out = value;
  return HERD_OK;
}

herd_result_t herd_setting_int(herd_setting_id_t id, int64_t *out)
{
  double value = 0;
  herd_result_t rc = s_number(id, &value);
  *out = (int64_t)value;
  return rc;
}

herd_result_t herd_setting_double(herd_setting_id_t id, double *out)
{
  return s_number(id, out);
}

const char *herd_setting_string(herd_setting_id_t id)
{
  return s_text(&herd_settings_g[id]);
}

herd_result_t herd_setting_token(const char *given, const char *given_file,
                                 char *out, size_t cap)
{
  const char *token = given ? given : herd_setting_string(HERD_S_TOKEN);
  const char *file =
      given_file ? given_file : herd_setting_string(HERD_S_TOKEN_FILE);
  if (!out || !cap)
    return herd_error_set(HERD_EINVAL, "token: bad arguments");
  out[0] = '\0';
  if (token && *token) {
    if (strlen(token) >= cap)
      return herd_error_set(HERD_ETOOBIG, "the job token is over %zu bytes",
                            cap - 1);
    memcpy(out, token, strlen(token) + 1);
    return HERD_OK;
  }
  return file && *file ? herd_read_secret_file(file, out, cap, NULL)
                       : HERD_OK;
}
