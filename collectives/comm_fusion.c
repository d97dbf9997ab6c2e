/* Fusion: many small tensors, few collectives (herd_comm_allreduce_tensors).
 *
 * The tensor list is cut into groups in order. A run of tensors that already
 * lie back to back in memory (the flat gradient buffer case) is one group
 * reduced where it lies: no copy. Other tensors are packed into a staging
 * bucket (first bucket small, then bucket_bytes, as PyTorch DDP does), one
 * all-reduce per bucket, and unpacked.
 *
 * Packing overlaps the network: bucket k is reduced on the communicator's
 * progress thread (herd_comm_iallreduce) while this thread packs bucket k+1,
 * with two staging buffers in rotation. Every rank must pass the same counts
 * so that the groups, and therefore the collectives, match.
 */
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"

typedef struct {
  size_t first, last;  /* tensor index range [first, last) */
  size_t count;        /* elements in the group */
  int contiguous;      /* 1: reduce in place at bufs[first] */
} s_group_t;

typedef struct {
  herd_comm_t *comm;
  void **bufs;
  const size_t *counts;
  size_t n;
  herd_dtype_t dtype;
  herd_op_t op;
  size_t elem;
} s_job_t;

/* The next group starting at tensor `first`, at most `cap` elements unless a
 * single tensor or a contiguous run is bigger (those need no staging). */
static s_group_t s_next_group(const s_job_t *job, size_t first, size_t cap)
{
  s_group_t g = {first, first + 1, job->counts[first], 1};
  while (g.last < job->n) {
    char *end = (char *)job->bufs[g.last - 1] + job->counts[g.last - 1] * job->elem;
    if (job->bufs[g.last] != end || !g.contiguous)
      break;
    g.count += job->counts[g.last++];
  }
  if (g.last > first + 1 || g.count >= cap)
    return g; /* a contiguous run, or one big tensor: in place */
  while (g.last < job->n && g.count + job->counts[g.last] <= cap) {
    g.count += job->counts[g.last++];
    g.contiguous = 0;
  }
  if (g.last == first + 1)
    g.contiguous = 1; /* a lone tensor needs no staging either */
  return g;
}

static void s_pack(const s_job_t *job, const s_group_t *g, char *stage, int in)
{
  size_t offset = 0;
  for (size_t i = g->first; i < g->last; i++) {
    size_t bytes = job->counts[i] * job->elem;
    if (in)
      memcpy(stage + offset, job->bufs[i], bytes);
    else
      memcpy(job->bufs[i], stage + offset, bytes);
    offset += bytes;
  }
}

/* Starts one group's all-reduce; packs into `stage` unless contiguous. */
static herd_result_t s_start(const s_job_t *job, const s_group_t *g,
                             char *stage, herd_comm_request_t **req)
{
  void *where = g->contiguous ? job->bufs[g->first] : stage;
  if (!g->contiguous)
    s_pack(job, g, stage, 1);
  return herd_comm_iallreduce(job->comm, where, where, g->count, job->dtype,
                              job->op, req);
}

static herd_result_t s_finish(const s_job_t *job, const s_group_t *g,
                              char *stage, herd_comm_request_t **req)
{
  if (!*req)
    return HERD_OK;
  herd_result_t rc = herd_comm_wait(req);
  if (rc == HERD_OK && !g->contiguous)
    s_pack(job, g, stage, 0);
  return rc;
}

static herd_result_t s_pipeline(const s_job_t *job, char *stages[2])
{
  const herd_comm_config_t *cfg = &job->comm->config;
  size_t cap = cfg->first_bucket_bytes / job->elem;
  herd_comm_request_t *reqs[2] = {NULL, NULL};
  s_group_t groups[2];
  herd_result_t rc = HERD_OK, wait_rc;
  size_t next = 0;
  for (int k = 0; next < job->n && rc == HERD_OK; k ^= 1) {
    groups[k] = s_next_group(job, next, cap ? cap : 1);
    next = groups[k].last;
    cap = cfg->bucket_bytes / job->elem;
    rc = s_start(job, &groups[k], stages[k], &reqs[k]);
    wait_rc = s_finish(job, &groups[k ^ 1], stages[k ^ 1], &reqs[k ^ 1]);
    rc = rc != HERD_OK ? rc : wait_rc;
  }
  for (int k = 0; k < 2; k++) {
    wait_rc = s_finish(job, &groups[k], stages[k], &reqs[k]);
    rc = rc != HERD_OK ? rc : wait_rc;
  }
  return rc;
}

/* Staging buffers live as long as the communicator: no page faults per call. */
static herd_result_t s_stages(herd_comm_t *comm)
{
  size_t bytes = comm->config.bucket_bytes > comm->config.first_bucket_bytes
                     ? comm->config.bucket_bytes
                     : comm->config.first_bucket_bytes;
  if (comm->stage[0] && comm->stage[1] && comm->stage_bytes >= bytes)
    return HERD_OK;
  for (int k = 0; k < 2; k++) {
    free(comm->stage[k]);
    comm->stage[k] = malloc(bytes + 1);
  }
  comm->stage_bytes = bytes;
  if (comm->stage[0] && comm->stage[1])
    return HERD_OK;
  return herd_error_set(HERD_ENOMEM, "allreduce_tensors: staging %zu bytes", bytes);
}

herd_result_t herd_comm_allreduce_tensors(herd_comm_t *comm, void **bufs,
                                          const size_t *counts, size_t n,
                                          herd_dtype_t dtype, herd_op_t op)
{
  if (!comm || (n && (!bufs || !counts)))
    return herd_error_set(HERD_EINVAL, "allreduce_tensors: bad arguments");
  HERD_CHECK(herd_comm_allreduce_args(comm, NULL, NULL, 0, dtype, op));
  for (size_t i = 0; i < n; i++) {
    if (counts[i] && !bufs[i])
      return herd_error_set(HERD_EINVAL, "allreduce_tensors: NULL tensor %zu", i);
    /* Packing is a host memcpy, whatever the backend. */
    if (herd_comm_is_device_memory(bufs[i]))
      return herd_error_set(HERD_EINVAL,
                            "allreduce_tensors: tensor %zu is GPU memory, "
                            "but fusion packs through host memory (reduce "
                            "GPU tensors with herd_comm_allreduce_buckets on "
                            "the nccl backend)", i);
  }
  s_job_t job = {comm, bufs, counts, n, dtype, op, herd_dtype_size(dtype)};
  HERD_CHECK(s_stages(comm));
  herd_result_t rc = s_pipeline(&job, comm->stage);
  return rc;
}
