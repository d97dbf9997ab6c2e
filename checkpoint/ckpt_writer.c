/* Asynchronous checkpoint writer: snapshot on the caller's thread, write and
 * commit on a background thread.
 *
 * The caller (the training loop) is blocked only while submit copies the
 * tensors into one host buffer that is kept and reused, so the extra memory
 * is one snapshot. One save at a time: a submit that finds the previous
 * save still running waits for it (policy "wait", see herd/ckpt.h) and the
 * wait is counted. The thread runs herd_ckpt_save (commit protocol) and, on
 * success, herd_ckpt_prune, so retention only ever deletes after a newer
 * commit is durable. Results go into a small queue that the owner drains
 * with poll on its own thread; nothing here calls back into user code from
 * the writer thread, because the worker runtime's report calls are not
 * thread-safe. All HDF5 work happens inside herd_ckpt_save/prune, which
 * take the checkpoint module's HDF5 lock.
 */
#include "herd/clock.h"
#include "ckpt_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herd/log.h"

#define S_QUEUE 8 /* completions kept for poll */

struct herd_ckpt_writer {
  char dir[4096];
  int keep;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  bool busy, stop; /* busy: a snapshot is queued or being written */
  herd_result_t last_result;
  /* the snapshot */
  herd_ckpt_meta_t meta;
  herd_tensor_t tensors[HERD_CKPT_MAX_TENSORS];
  char names[HERD_CKPT_MAX_TENSORS][CKPT_NAME_MAX + 1];
  size_t tensor_count;
  unsigned char *arena;
  size_t arena_cap;
  /* completions ring */
  herd_ckpt_completion_t queue[S_QUEUE];
  size_t queue_head, queue_len;
  herd_ckpt_writer_stats_t stats;
};

/* Caller holds the lock. */
static void s_push_completion(herd_ckpt_writer_t *w,
                              const herd_ckpt_completion_t *c)
{
  if (w->queue_len == S_QUEUE) {
    w->queue_head = (w->queue_head + 1) % S_QUEUE;
    w->queue_len--;
    w->stats.completions_lost++;
  }
  w->queue[(w->queue_head + w->queue_len) % S_QUEUE] = *c;
  w->queue_len++;
}

/* Writer thread, lock not held: one save plus retention. */
static void s_write_one(herd_ckpt_writer_t *w, herd_ckpt_completion_t *c)
{
  double t0 = herd_mono_s();
  memset(c, 0, sizeof *c);
  c->step = w->meta.step;
  c->result = herd_ckpt_save(w->dir, &w->meta, w->tensors, w->tensor_count,
                             c->path, sizeof c->path);
  if (c->result != HERD_OK) {
    snprintf(c->detail, sizeof c->detail, "%s", herd_error_detail());
    c->path[0] = '\0';
    HERD_LOG(HERD_LOG_ERROR, "ckpt", "save of step %lld failed: %s (%s)",
             (long long)c->step, c->detail, herd_err_name(c->result));
  } else if (w->keep > 0 && herd_ckpt_prune(w->dir, w->keep) != HERD_OK) {
    HERD_LOG(HERD_LOG_WARN, "ckpt", "pruning '%s': %s", w->dir,
             herd_error_detail());
  }
  c->write_seconds = herd_mono_s() - t0;
}

static void *s_thread(void *arg)
{
  herd_ckpt_writer_t *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->busy && !w->stop)
      pthread_cond_wait(&w->changed, &w->lock);
    if (!w->busy)
      break; /* stop requested and nothing queued */
    pthread_mutex_unlock(&w->lock);
    herd_ckpt_completion_t c;
    s_write_one(w, &c);
    pthread_mutex_lock(&w->lock);
    s_push_completion(w, &c);
    w->last_result = c.result;
    w->stats.last_write_seconds = c.write_seconds;
    if (c.result == HERD_OK)
      w->stats.committed++;
    else
      w->stats.failed++;
    w->busy = false;
    pthread_cond_broadcast(&w->changed);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

herd_result_t herd_ckpt_writer_new(const char *dir, int keep,
                                   herd_ckpt_writer_t **out)
{
  if (!dir || !dir[0] || keep < 0 || !out)
    return herd_error_set(HERD_EINVAL, "herd_ckpt_writer_new: bad argument");
  herd_ckpt_writer_t *w = calloc(1, sizeof *w);
  if (!w)
    return HERD_ENOMEM;
  if ((size_t)snprintf(w->dir, sizeof w->dir, "%s", dir) >= sizeof w->dir) {
    free(w);
    return herd_error_set(HERD_EINVAL, "checkpoint dir too long");
  }
  w->keep = keep;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->changed, NULL);
  int err = pthread_create(&w->thread, NULL, s_thread, w);
  if (err) {
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return herd_error_set(HERD_ESYS, "cannot start checkpoint writer: %s",
                          strerror(err));
  }
  *out = w;
  return HERD_OK;
}

/* Bytes the snapshot needs (each tensor 64-byte aligned); 0 on a bad list. */
static size_t s_snapshot_bytes(const herd_tensor_t *tensors, size_t count)
{
  size_t total = 0;
  for (size_t i = 0; i < count; i++) {
    size_t size = ckpt_dtype_size(tensors[i].dtype);
    if (size == 0 || !tensors[i].name ||
        strlen(tensors[i].name) > CKPT_NAME_MAX ||
        (tensors[i].count > 0 && !tensors[i].data) ||
        tensors[i].count > CKPT_TENSOR_BYTES_MAX / size)
      return SIZE_MAX;
    total += (tensors[i].count * size + 63) & ~(size_t)63;
  }
  return total;
}

/* Caller holds the lock and no save is in flight. */
static herd_result_t s_copy(herd_ckpt_writer_t *w, const herd_ckpt_meta_t *meta,
                            const herd_tensor_t *tensors, size_t count)
{
  size_t need = s_snapshot_bytes(tensors, count);
  if (need == SIZE_MAX)
    return herd_error_set(HERD_EINVAL, "checkpoint writer: bad tensor list");
  if (need > w->arena_cap) {
    free(w->arena);
    w->arena_cap = 0;
    if (!(w->arena = malloc(need)))
      return HERD_ENOMEM;
    w->arena_cap = need;
    w->stats.snapshot_bytes = need;
  }
  size_t off = 0;
  for (size_t i = 0; i < count; i++) {
    size_t bytes = tensors[i].count * ckpt_dtype_size(tensors[i].dtype);
    snprintf(w->names[i], sizeof w->names[i], "%s", tensors[i].name);
    w->tensors[i] = tensors[i];
    w->tensors[i].name = w->names[i];
    w->tensors[i].data = w->arena + off;
    if (bytes)
      memcpy(w->arena + off, tensors[i].data, bytes);
    off += (bytes + 63) & ~(size_t)63;
  }
  w->meta = *meta;
  w->tensor_count = count;
  return HERD_OK;
}

herd_result_t herd_ckpt_writer_submit(herd_ckpt_writer_t *writer,
                                      const herd_ckpt_meta_t *meta,
                                      const herd_tensor_t *tensors,
                                      size_t tensor_count)
{
  if (!writer || !meta || tensor_count > HERD_CKPT_MAX_TENSORS ||
      (tensor_count && !tensors))
    return herd_error_set(HERD_EINVAL, "herd_ckpt_writer_submit: bad "
                                       "argument");
  double t0 = herd_mono_s();
  pthread_mutex_lock(&writer->lock);
  if (writer->busy)
    writer->stats.waited++;
  while (writer->busy)
    pthread_cond_wait(&writer->changed, &writer->lock);
  herd_result_t rc = s_copy(writer, meta, tensors, tensor_count);
  if (rc == HERD_OK) {
    writer->busy = true;
    writer->stats.submitted++;
    pthread_cond_broadcast(&writer->changed);
  }
  double stall = herd_mono_s() - t0;
  writer->stats.last_stall_seconds = stall;
  if (stall > writer->stats.max_stall_seconds)
    writer->stats.max_stall_seconds = stall;
  pthread_mutex_unlock(&writer->lock);
  return rc;
}

bool herd_ckpt_writer_poll(herd_ckpt_writer_t *writer,
                           herd_ckpt_completion_t *out)
{
  bool got = false;
  if (!writer || !out)
    return false;
  pthread_mutex_lock(&writer->lock);
  if (writer->queue_len > 0) {
    *out = writer->queue[writer->queue_head];
    writer->queue_head = (writer->queue_head + 1) % S_QUEUE;
    writer->queue_len--;
    got = true;
  }
  pthread_mutex_unlock(&writer->lock);
  return got;
}

herd_result_t herd_ckpt_writer_wait(herd_ckpt_writer_t *writer)
{
  if (!writer)
    return herd_error_set(HERD_EINVAL, "herd_ckpt_writer_wait: NULL writer");
  pthread_mutex_lock(&writer->lock);
  while (writer->busy)
    pthread_cond_wait(&writer->changed, &writer->lock);
  herd_result_t rc = writer->last_result;
  pthread_mutex_unlock(&writer->lock);
  return rc;
}

void herd_ckpt_writer_stats(herd_ckpt_writer_t *writer,
                            herd_ckpt_writer_stats_t *out)
{
  if (!writer || !out)
    return;
  pthread_mutex_lock(&writer->lock);
  *out = writer->stats;
  pthread_mutex_unlock(&writer->lock);
}

void herd_ckpt_writer_destroy(herd_ckpt_writer_t **writer_p)
{
  if (!writer_p || !*writer_p)
    return;
  herd_ckpt_writer_t *w = *writer_p;
  pthread_mutex_lock(&w->lock);
  w->stop = true;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->changed);
  pthread_mutex_destroy(&w->lock);
  free(w->arena);
  free(w);
  *writer_p = NULL;
}
