/* The settings registry: every setting herd reads, declared once.
 *
 * Each entry is a setting's environment variable, its command-line flag,
 * type, default, range, help, and which processes read it. From it come
 * the option tables of every command (herd_opt_t entries that name a
 * setting: HERD_OPT), their --help, the list of variables `herd run` hands
 * to its workers under every launcher (mpirun -x, srun --export), and the
 * values libraries read (herd_setting_*: validated, default when unset).
 * `herd settings` prints the whole registry.
 *
 * A new setting: one entry in herd_settings_g (common/settings.c) and its
 * id in herd_setting_id_t below, then the code that uses it: an HERD_OPT
 * line in a command's table, or herd_setting_int/double/string in a
 * library. HERD_TO_WORKERS makes herd run pass it on, and
 * herd_options_reach_workers / system_slurm check that it arrives.
 */
#ifndef HERD_SETTINGS_H
#define HERD_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HERD_OPT_INT,    /* int64_t field, checked against [min, max] */
  HERD_OPT_DOUBLE, /* double field, checked against [min, max] */
  HERD_OPT_STRING, /* const char * field */
  HERD_OPT_CHOICE, /* const char * field, one of `choices` ("a|b|c") */
  HERD_OPT_FLAG    /* int field, 1 when given (env: 1/0/true/false) */
} herd_opt_type_t;

/* Who reads a setting (bits of herd_setting_t.readers). */
enum {
  HERD_READ_RUN = 1 << 0,    /* herd run */
  HERD_READ_COORD = 1 << 1,  /* herd coord */
  HERD_READ_CLIENT = 1 << 2, /* herd status, herd top */
  HERD_READ_DATA = 1 << 3,   /* herd data */
  HERD_READ_TRAIN = 1 << 4,  /* herd-train, the reference trainer */
  HERD_READ_LIB = 1 << 5,    /* libherd, in every training program */
  HERD_READ_ANY = 0x3f,      /* every herd process */
  /* herd run passes it to its workers under every launcher (it sets it,
   * or passes on the value it was given). */
  HERD_TO_WORKERS = 1 << 8,
};

typedef struct {
  const char *env;           /* "HERD_EPOCHS"; NULL: a flag only */
  const char *flag;          /* long flag without dashes; NULL: env only */
  char short_flag;           /* 'n', or 0 */
  herd_opt_type_t type;
  const char *default_value; /* as text; NULL: none */
  double min, max;           /* numeric range, inclusive */
  const char *choices;       /* HERD_OPT_CHOICE: "a|b|c" */
  unsigned readers;          /* HERD_READ_* | HERD_TO_WORKERS */
  const char *help;
} herd_setting_t;

typedef enum {
  HERD_S_DATA,
  HERD_S_HIDDEN,
  HERD_S_EPOCHS,
  HERD_S_BATCH,
  HERD_S_LR,
  HERD_S_OPTIMIZER,
  HERD_S_MOMENTUM,
  HERD_S_WEIGHT_DECAY,
  HERD_S_SCHEDULE,
  HERD_S_WARMUP_STEPS,
  HERD_S_LR_STEP_EVERY,
  HERD_S_LR_GAMMA,
  HERD_S_SEED,
  HERD_S_BACKEND,
  HERD_S_IFACE,
  HERD_S_CKPT_DIR,
  HERD_S_CKPT_EVERY,
  HERD_S_CKPT_KEEP,
  HERD_S_RESUME,
  HERD_S_MAX_STEPS,
  HERD_S_DUMP_PARAMS,
  HERD_S_DEVICE,
  HERD_S_DETERMINISTIC,
  HERD_S_VIRTUAL_SHARDS,
  HERD_S_BUCKET_MB,
  HERD_S_GRAD_DTYPE,
  HERD_S_PEAK_GFLOPS,
  HERD_S_TIMELINE,
  HERD_S_NPROC,
  HERD_S_RUN_DIR,
  HERD_S_LAUNCHER,
  HERD_S_HOSTFILE,
  HERD_S_HOSTS,
  HERD_S_PROGRESS_INTERVAL,
  HERD_S_JOIN_TIMEOUT,
  HERD_S_HEARTBEAT_MS,
  HERD_S_HEARTBEAT_MISSES,
  HERD_S_MIN,
  HERD_S_MAX,
  HERD_S_MAX_RESTARTS,
  HERD_S_COORD_PORT,
  HERD_S_COORD_BIND,
  HERD_S_COORD_ADVERTISE,
  HERD_S_TOKEN,
  HERD_S_TOKEN_FILE,
  HERD_S_COORD_KEY,
  HERD_S_COORD_KEY_FILE,
  HERD_S_CURVE,
  HERD_S_CKPT_KEY_FILE,
  HERD_S_JOB_ID,
  HERD_S_LAST_CALL_MS,
  HERD_S_WATCHDOG,
  HERD_S_HOST_COOLDOWN_FAILURES,
  HERD_S_REJOIN_WINDOW_MS,
  HERD_S_RUN_ID,
  HERD_S_COORD,
  HERD_S_STATUS_TIMEOUT,
  HERD_S_STATUS_JSON,
  HERD_S_HTTP,
  HERD_S_TOP_INTERVAL,
  HERD_S_TOP_ONCE,
  HERD_S_TOP_ITERATIONS,
  HERD_S_TOP_ROWS,
  HERD_S_TOP_TIMEOUT,
  HERD_S_DATA_SRC,
  HERD_S_HTTP_ADDR,
  HERD_S_PUSH_GATEWAY,
  HERD_S_PUSH_INTERVAL,
  HERD_S_ALERT_WEBHOOK,
  HERD_S_STALL_ALERT,
  HERD_S_LOG_LEVEL,
  HERD_S_LOG_SUBSYS,
  HERD_S_RANK,
  HERD_S_WORLD_SIZE,
  HERD_S_LOCAL_RANK,
  HERD_S_LAUNCHER_PID,
  HERD_S_K8S_JOB_NAME,
  HERD_S_K8S_SERVICE,
  HERD_S_CKPT_PREFLIGHT,
  HERD_S_CKPT_FAULT,
  HERD_S_DET_GEMM,
  HERD_S_TEST_HANG_ON_SIGUSR2,
  HERD_S_COUNT
} herd_setting_id_t;

extern const herd_setting_t herd_settings_g[HERD_S_COUNT];

/* The setting named by its environment variable; NULL if none. */
const herd_setting_t *herd_setting_find(const char *env);

/* A setting's value from the environment, checked like a command-line
 * value (type, range, choices), else its default. An invalid value is an
 * error naming the variable. string: NULL when unset without a default. */
herd_result_t herd_setting_int(herd_setting_id_t id, int64_t *out);
herd_result_t herd_setting_double(herd_setting_id_t id, double *out);
const char *herd_setting_string(herd_setting_id_t id);

/* Room for a job token and its NUL. */
#define HERD_TOKEN_MAX 1024

/* The job token: `given` (a command's --token), else HERD_TOKEN, else the
 * contents of `given_file` (--token-file), else of HERD_TOKEN_FILE. out
 * is "" when there is none. A file that cannot be read is an error. */
herd_result_t herd_setting_token(const char *given, const char *given_file,
                                 char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
