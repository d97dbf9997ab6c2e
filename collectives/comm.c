/* herd_comm front end: argument checks, abort state, fusion buckets and the
 * host-side arithmetic every backend shares.
 *
 * Backends never see invalid arguments or an aborted communicator: those are
 * handled here once, so `abort` behaves the same whatever the backend.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm_internal.h"
#include "herd/clock.h"
#include "herd/log.h"

/* ---- waiting on peers (herd_comm_waiting_ms) ---------------------------- */

static atomic_llong s_waiting_since_ms; /* CLOCK_MONOTONIC; 0: nobody waits */
static _Thread_local int s_wait_depth;

void herd_comm_wait_begin(void)
{
  if (s_wait_depth++ == 0)
    atomic_store(&s_waiting_since_ms, (long long)herd_mono_ms());
}

void herd_comm_wait_end(void)
{
  if (s_wait_depth > 0 && --s_wait_depth == 0)
    atomic_store(&s_waiting_since_ms, 0);
}

int64_t herd_comm_waiting_ms(void)
{
  int64_t since = atomic_load(&s_waiting_since_ms);
  if (since == 0)
    return 0;
  int64_t ms = herd_mono_ms() - since;
  return ms > 0 ? ms : 1; /* waiting, if only just */
}

#define HERD_DEFAULT_BUCKET_BYTES (25u << 20)
#define HERD_DEFAULT_FIRST_BUCKET_BYTES (1u << 20)

static const char *const s_backend_names[] = {"mpi", "gloo", "nccl"};

const char *herd_backend_name(herd_backend_t backend)
{
  if ((unsigned)backend < sizeof s_backend_names / sizeof *s_backend_names)
    return s_backend_names[backend];
  return "unknown";
}

herd_result_t herd_backend_parse(const char *name, herd_backend_t *backend)
{
  for (size_t i = 0; i < sizeof s_backend_names / sizeof *s_backend_names; i++)
    if (name && strcmp(name, s_backend_names[i]) == 0) {
      *backend = (herd_backend_t)i;
      return HERD_OK;
    }
  return herd_error_set(HERD_EINVAL, "unknown backend '%s' (mpi|gloo|nccl)",
                        name ? name : "");
}

herd_result_t herd_comm_store_new(const herd_comm_store_ops_t *ops, void *ctx,
                                  const char *host,
                                  herd_comm_store_t **store_out)
{
  herd_comm_store_t *store = NULL;
  if (!ops || !ops->set || !ops->get || !store_out ||
      (host && strlen(host) >= sizeof store->host)) {
    if (ops && ops->destroy)
      ops->destroy(ctx);
    return herd_error_set(HERD_EINVAL, "herd_comm_store_new: bad arguments");
  }
  store = calloc(1, sizeof *store);
  if (!store) {
    if (ops->destroy)
      ops->destroy(ctx);
    return HERD_ENOMEM;
  }
  *store = (herd_comm_store_t){.set = ops->set, .get = ops->get,
                               .destroy = ops->destroy,
                               .superseded = ops->superseded, .ctx = ctx};
  snprintf(store->host, sizeof store->host, "%s", host ? host : "");
  *store_out = store;
  return HERD_OK;
}

void herd_comm_store_destroy(herd_comm_store_t **store_p)
{
  if (!store_p || !*store_p)
    return;
  if ((*store_p)->destroy)
    (*store_p)->destroy((*store_p)->ctx);
  free(*store_p);
  *store_p = NULL;
}

/* Copies a version 1, 2 or 3 config; fields an older caller lacks keep
 * defaults. */
static herd_result_t s_copy_config(const herd_comm_config_t *config,
                                   herd_comm_config_t *out)
{
  if (!config)
    return herd_error_set(HERD_EINVAL, "herd_comm_new: NULL config");
  herd_comm_config_t defaults = HERD_COMM_CONFIG_INIT;
  *out = defaults;
  if (config->version == 1)
    memcpy(out, config, offsetof(herd_comm_config_t, store));
  else if (config->version == 2)
    memcpy(out, config, offsetof(herd_comm_config_t, buffer_bytes));
  else if (config->version == HERD_COMM_CONFIG_VERSION)
    *out = *config;
  else
    return herd_error_set(HERD_EINVAL, "herd_comm_new: config version %d",
                          config->version);
  out->version = HERD_COMM_CONFIG_VERSION;
  return HERD_OK;
}

herd_result_t herd_comm_new(const herd_comm_config_t *config,
                            herd_comm_t **comm_out)
{
  herd_comm_config_t copy;
  if (!comm_out)
    return herd_error_set(HERD_EINVAL, "herd_comm_new: NULL comm_out");
  HERD_CHECK(s_copy_config(config, &copy));
  herd_comm_t *comm = calloc(1, sizeof *comm);
  if (!comm)
    return HERD_ENOMEM;
  comm->config = copy;
  if (!comm->config.bucket_bytes)
    comm->config.bucket_bytes = HERD_DEFAULT_BUCKET_BYTES;
  if (!comm->config.first_bucket_bytes)
    comm->config.first_bucket_bytes = HERD_DEFAULT_FIRST_BUCKET_BYTES;
  herd_result_t rc;
  switch (config->backend) {
  case HERD_BACKEND_MPI:
    rc = herd_comm_mpi_init(comm);
    break;
#ifdef HERD_HAVE_NCCL
  case HERD_BACKEND_NCCL:
    rc = herd_comm_nccl_init(comm);
    break;
#endif
#ifdef HERD_HAVE_GLOO
  case HERD_BACKEND_GLOO:
    rc = herd_comm_gloo_init(comm);
    break;
#endif
  default:
    rc = herd_error_set(HERD_EUNSUPPORTED, "backend '%s' is not built in",
                        herd_backend_name(config->backend));
  }
  if (rc != HERD_OK) {
    free(comm);
    return rc;
  }
  HERD_LOG(HERD_LOG_INFO, "comm", "backend %s: rank %d of %d, generation %lld",
           comm->ops->name, comm->rank, comm->world_size,
           (long long)config->generation);
  *comm_out = comm;
  return HERD_OK;
}

void herd_comm_destroy(herd_comm_t **comm_p)
{
  if (!comm_p || !*comm_p)
    return;
  herd_comm_t *comm = *comm_p;
  herd_comm_async_stop(comm);
  comm->ops->destroy(comm);
  free(comm->stage[0]);
  free(comm->stage[1]);
  free(comm);
  *comm_p = NULL;
}

int herd_comm_have_gloo(void)
{
#ifdef HERD_HAVE_GLOO
  return 1;
#else
  return 0;
#endif
}

int herd_comm_have_nccl(void)
{
#ifdef HERD_HAVE_NCCL
  return 1;
#else
  return 0;
#endif
}

void herd_comm_global_shutdown(void) { herd_comm_mpi_shutdown(); }

void *herd_comm_buffer(herd_comm_t *comm)
{
  return comm && comm->ops->buffer ? comm->ops->buffer(comm) : NULL;
}

int herd_comm_rank(const herd_comm_t *comm) { return comm->rank; }
int herd_comm_world_size(const herd_comm_t *comm) { return comm->world_size; }
herd_backend_t herd_comm_backend(const herd_comm_t *comm)
{
  return comm->config.backend;
}

/* mpi and gloo reduce with the CPU: a GPU buffer is refused, not read. */
static herd_result_t s_check_memory(const herd_comm_t *comm, const void *buf)
{
  if (comm->config.backend == HERD_BACKEND_NCCL ||
      !herd_comm_is_device_memory(buf))
    return HERD_OK;
  return herd_error_set(HERD_EINVAL,
                        "collective: the buffer is GPU memory, but the %s "
                        "backend reads host memory only (use the nccl "
                        "backend, or copy it to the host first)",
                        herd_backend_name(comm->config.backend));
}

static herd_result_t s_check_call(herd_comm_t *comm, const void *buf,
                                  size_t count, herd_dtype_t dtype)
{
  if (!comm || (count && !buf) || herd_dtype_size(dtype) == 0)
    return herd_error_set(HERD_EINVAL, "collective: bad arguments");
  HERD_CHECK(s_check_memory(comm, buf));
  if (atomic_load(&comm->aborted))
    return herd_error_set(HERD_EABORTED, "communicator was aborted");
  herd_comm_async_drain(comm); /* queued iallreduce calls go first */
  return HERD_OK;
}

herd_result_t herd_comm_allreduce_now(herd_comm_t *comm, const void *send,
                                      void *recv, size_t count,
                                      herd_dtype_t dtype, herd_op_t op)
{
  if (atomic_load(&comm->aborted))
    return herd_error_set(HERD_EABORTED, "communicator was aborted");
  herd_result_t rc = comm->ops->allreduce(comm, send, recv, count, dtype, op);
  if (rc == HERD_OK && atomic_load(&comm->aborted))
    rc = herd_error_set(HERD_EABORTED, "communicator was aborted");
  return rc;
}

herd_result_t herd_comm_allreduce_args(herd_comm_t *comm, const void *send,
                                       void *recv, size_t count,
                                       herd_dtype_t dtype, herd_op_t op)
{
  if (!comm || (count && (!send || !recv)) || herd_dtype_size(dtype) == 0)
    return herd_error_set(HERD_EINVAL, "allreduce: bad arguments");
  if ((unsigned)op > HERD_OP_MIN)
    return herd_error_set(HERD_EINVAL, "allreduce: unknown op %d", (int)op);
  HERD_CHECK(s_check_memory(comm, send));
  return s_check_memory(comm, recv);
}

static herd_result_t s_allreduce(herd_comm_t *comm, const void *send,
                                 void *recv, size_t count, herd_dtype_t dtype,
                                 herd_op_t op)
{
  HERD_CHECK(s_check_call(comm, recv, count, dtype));
  if (count && !send)
    return herd_error_set(HERD_EINVAL, "allreduce: NULL send buffer");
  if (send != recv)
    HERD_CHECK(s_check_memory(comm, send));
  if ((unsigned)op > HERD_OP_MIN)
    return herd_error_set(HERD_EINVAL, "allreduce: unknown op %d", (int)op);
  return herd_comm_allreduce_now(comm, send, recv, count, dtype, op);
}

/* The progress thread of comm_async.c calls herd_comm_allreduce_now, not
 * this: a queued collective running behind the caller's back is not the
 * caller waiting. */
herd_result_t herd_comm_allreduce(herd_comm_t *comm, const void *send,
                                  void *recv, size_t count, herd_dtype_t dtype,
                                  herd_op_t op)
{
  herd_comm_wait_begin();
  herd_result_t rc = s_allreduce(comm, send, recv, count, dtype, op);
  herd_comm_wait_end();
  return rc;
}

static herd_result_t s_allreduce_buckets(herd_comm_t *comm, void *buf,
                                         size_t count, herd_dtype_t dtype,
                                         herd_op_t op)
{
  HERD_CHECK(s_check_call(comm, buf, count, dtype));
  size_t elem = herd_dtype_size(dtype);
  size_t bucket = comm->config.first_bucket_bytes / elem;
  size_t done = 0;
  do {
    if (bucket == 0)
      bucket = 1;
    size_t n = count - done < bucket ? count - done : bucket;
    char *base = (char *)buf + done * elem;
    HERD_CHECK(herd_comm_allreduce(comm, base, base, n, dtype, op));
    done += n;
    bucket = comm->config.bucket_bytes / elem;
  } while (done < count);
  return HERD_OK;
}

herd_result_t herd_comm_allreduce_buckets(herd_comm_t *comm, void *buf,
                                          size_t count, herd_dtype_t dtype,
                                          herd_op_t op)
{
  herd_comm_wait_begin(); /* one wait, not one per bucket */
  herd_result_t rc = s_allreduce_buckets(comm, buf, count, dtype, op);
  herd_comm_wait_end();
  return rc;
}

static herd_result_t s_broadcast(herd_comm_t *comm, void *buf, size_t count,
                                 herd_dtype_t dtype, int root)
{
  HERD_CHECK(s_check_call(comm, buf, count, dtype));
  if (root < 0 || root >= comm->world_size)
    return herd_error_set(HERD_EINVAL, "broadcast: root %d out of range", root);
  return comm->ops->broadcast(comm, buf, count, dtype, root);
}

herd_result_t herd_comm_broadcast(herd_comm_t *comm, void *buf, size_t count,
                                  herd_dtype_t dtype, int root)
{
  herd_comm_wait_begin();
  herd_result_t rc = s_broadcast(comm, buf, count, dtype, root);
  herd_comm_wait_end();
  return rc;
}

herd_result_t herd_comm_barrier(herd_comm_t *comm)
{
  herd_comm_wait_begin();
  herd_result_t rc = s_check_call(comm, NULL, 0, HERD_DTYPE_U8);
  if (rc == HERD_OK)
    rc = comm->ops->barrier(comm);
  herd_comm_wait_end();
  return rc;
}

herd_result_t herd_comm_abort(herd_comm_t *comm)
{
  if (!comm)
    return HERD_EINVAL;
  if (atomic_exchange(&comm->aborted, 1) == 0 && comm->ops->abort)
    comm->ops->abort(comm);
  return HERD_OK;
}
