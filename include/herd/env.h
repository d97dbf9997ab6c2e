/* Rank discovery: where a worker stands in its job, from the launcher's
 * environment.
 *
 * Launchers announce rank and world size in environment variables of their
 * own. herd_env_discover() reads them in a fixed order, the first that gives
 * a rank winning; fields it lacks (world size, local rank, node id) are
 * filled from later sources in the same order:
 *
 *   1. openmpi   OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK (mpirun)
 *   2. pmix      PMIX_RANK as set when the process started (srun
 *                --mpi=pmix, prrte; not the one a singleton MPI_Init adds)
 *   3. slurm     SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID
 *   4. k8s       JOB_COMPLETION_INDEX (Indexed Job) + HERD_WORLD_SIZE
 *   5. torchrun  RANK, WORLD_SIZE, LOCAL_RANK
 *   6. herd      HERD_RANK, HERD_WORLD_SIZE, HERD_LOCAL_RANK (herd run)
 *
 * The coordinator address is HERD_COORD when set; otherwise it is derived:
 * on Slurm, the first host of SLURM_JOB_NODELIST (or SLURM_NODELIST); on
 * Kubernetes, `<job>-0.<service>` where <job> is HERD_K8S_JOB_NAME (default:
 * the pod's hostname, `<job>-<index>`, less its index) and <service> is
 * HERD_K8S_SERVICE (the worker Job's headless Service). A derived address
 * uses port HERD_COORD_PORT (default HERD_ENV_DEFAULT_PORT).
 *
 * Thread safety: reads the environment; call it before starting threads
 * that call setenv().
 */
#ifndef HERD_ENV_H
#define HERD_ENV_H

#include <stddef.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_ENV_DEFAULT_PORT 29400
#define HERD_ENV_MAX_HOST 256

typedef struct {
  int rank;              /* -1: no launcher variables found */
  int world_size;        /* -1: unknown */
  int local_rank;        /* -1: unknown */
  int node_id;           /* -1: unknown */
  const char *source;    /* who gave the rank: "openmpi", "pmix", "slurm",
                            "k8s", "torchrun", "herd", or "none" (static) */
  const char *world_source; /* who gave the world size, or "none" (static) */
  char coord[HERD_ENV_MAX_HOST + 32]; /* tcp://host:port; "" when unknown */
  const char *coord_source; /* "HERD_COORD", "slurm", "k8s" or "none" */
} herd_launch_env_t;

/* Fills *out from the environment. A set but malformed variable (a rank
 * that is not a number, a rank not below the world size, an unparsable
 * nodelist) returns HERD_EINVAL naming the variable; finding nothing is not
 * an error (rank -1, source "none"). Logs one line (subsystem "env") saying
 * which sources were used. */
herd_result_t herd_env_discover(herd_launch_env_t *out);

/* Slurm's compressed host lists ("node[01-03,07],gpu5",
 * "rack[1-2]-n[1-2]"): the number of hosts, and the host at `index` in
 * Slurm's order. Bounded: at most 4 bracket groups per name, 64 ranges per
 * group, names under HERD_ENV_MAX_HOST; HERD_EINVAL on malformed input,
 * HERD_ENOENT when index >= count. */
herd_result_t herd_env_nodelist_count(const char *list, size_t *count_out);
herd_result_t herd_env_nodelist_host(const char *list, size_t index,
                                     char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
