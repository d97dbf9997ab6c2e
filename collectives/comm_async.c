/* Non-blocking all-reduce: one progress thread per communicator.
 *
 * herd_comm_iallreduce appends a request to a FIFO and returns; the thread
 * runs requests in call order through the backend's blocking allreduce. Every
 * rank enqueues in the same order, so the collectives match across ranks
 * whatever the backend. Blocking calls drain the queue first (comm.c), which
 * keeps one collective at a time on the backend (MPI_THREAD_SERIALIZED is
 * enough) and the global order intact.
 *
 * This is what lets a trainer start a bucket's all-reduce as soon as its
 * gradients are final and keep computing the rest of the backward pass.
 * Abort: herd_comm_abort wakes the running request through the backend; the
 * ones still queued fail with HERD_EABORTED without touching the network.
 * Every request must be waited for before herd_comm_destroy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "herd/clock.h"
#include "comm_internal.h"

struct herd_comm_request {
  herd_comm_t *comm;
  const void *send;
  void *recv;
  size_t count;
  herd_dtype_t dtype;
  herd_op_t op;
  herd_result_t result;
  double started_s, finished_s; /* CLOCK_MONOTONIC, on the progress thread */
  char detail[256];
  int done;
  struct herd_comm_request *next;
};

struct herd_comm_async {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;     /* new work or stop */
  pthread_cond_t progress; /* a request finished */
  herd_comm_request_t *head, *tail;
  size_t pending; /* queued or running */
  int stop;
};

static void s_run_one(herd_comm_request_t *req)
{
  req->started_s = herd_mono_s();
  herd_result_t rc = herd_comm_allreduce_now(req->comm, req->send, req->recv,
                                             req->count, req->dtype, req->op);
  req->finished_s = herd_mono_s();
  req->result = rc;
  if (rc != HERD_OK)
    snprintf(req->detail, sizeof req->detail, "%s", herd_error_detail());
}

static void *s_main(void *arg)
{
  herd_comm_async_t *a = arg;
  pthread_mutex_lock(&a->lock);
  for (;;) {
    while (!a->head && !a->stop)
      pthread_cond_wait(&a->wake, &a->lock);
    if (!a->head)
      break;
    herd_comm_request_t *req = a->head;
    a->head = req->next;
    if (!a->head)
      a->tail = NULL;
    pthread_mutex_unlock(&a->lock);
    s_run_one(req);
    pthread_mutex_lock(&a->lock);
    req->done = 1;
    a->pending--;
    pthread_cond_broadcast(&a->progress);
  }
  pthread_mutex_unlock(&a->lock);
  return NULL;
}

static herd_result_t s_start(herd_comm_t *comm)
{
  herd_comm_async_t *a = calloc(1, sizeof *a);
  if (!a)
    return HERD_ENOMEM;
  pthread_mutex_init(&a->lock, NULL);
  pthread_cond_init(&a->wake, NULL);
  pthread_cond_init(&a->progress, NULL);
  if (pthread_create(&a->thread, NULL, s_main, a) != 0) {
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->progress);
    free(a);
    return herd_error_set(HERD_ESYS, "iallreduce: cannot start thread");
  }
  comm->async = a;
  return HERD_OK;
}

herd_result_t herd_comm_iallreduce(herd_comm_t *comm, const void *send,
                                   void *recv, size_t count, herd_dtype_t dtype,
                                   herd_op_t op, herd_comm_request_t **req_out)
{
  if (!req_out)
    return herd_error_set(HERD_EINVAL, "iallreduce: NULL req_out");
  *req_out = NULL;
  HERD_CHECK(herd_comm_allreduce_args(comm, send, recv, count, dtype, op));
  if (!comm->async)
    HERD_CHECK(s_start(comm));
  herd_comm_request_t *req = calloc(1, sizeof *req);
  if (!req)
    return HERD_ENOMEM;
  *req = (herd_comm_request_t){.comm = comm, .send = send, .recv = recv,
                               .count = count, .dtype = dtype, .op = op};
  herd_comm_async_t *a = comm->async;
  pthread_mutex_lock(&a->lock);
  if (a->tail)
    a->tail->next = req;
  else
    a->head = req;
  a->tail = req;
  a->pending++;
  pthread_cond_signal(&a->wake);
  pthread_mutex_unlock(&a->lock);
  *req_out = req;
  return HERD_OK;
}

herd_result_t herd_comm_wait(herd_comm_request_t **req_p)
{
  return herd_comm_wait_timed(req_p, NULL, NULL);
}

herd_result_t herd_comm_wait_timed(herd_comm_request_t **req_p,
                                   double *started_s, double *finished_s)
{
  if (!req_p || !*req_p)
    return herd_error_set(HERD_EINVAL, "herd_comm_wait: no request");
  herd_comm_request_t *req = *req_p;
  herd_comm_async_t *a = req->comm->async;
  herd_comm_wait_begin();
  pthread_mutex_lock(&a->lock);
  while (!req->done)
    pthread_cond_wait(&a->progress, &a->lock);
  pthread_mutex_unlock(&a->lock);
  herd_comm_wait_end();
  herd_result_t rc = req->result;
  if (rc != HERD_OK)
    herd_error_set(rc, "%s", req->detail);
  if (started_s)
    *started_s = req->started_s;
  if (finished_s)
    *finished_s = req->finished_s;
  free(req);
  *req_p = NULL;
  return rc;
}

void herd_comm_async_drain(herd_comm_t *comm)
{
  herd_comm_async_t *a = comm->async;
  if (!a)
    return;
  pthread_mutex_lock(&a->lock);
  while (a->pending)
    pthread_cond_wait(&a->progress, &a->lock);
  pthread_mutex_unlock(&a->lock);
}

void herd_comm_async_stop(herd_comm_t *comm)
{
  herd_comm_async_t *a = comm->async;
  if (!a)
    return;
  herd_comm_async_drain(comm);
  pthread_mutex_lock(&a->lock);
  a->stop = 1;
  pthread_cond_signal(&a->wake);
  pthread_mutex_unlock(&a->lock);
  pthread_join(a->thread, NULL);
  pthread_mutex_destroy(&a->lock);
  pthread_cond_destroy(&a->wake);
  pthread_cond_destroy(&a->progress);
  free(a);
  comm->async = NULL;
}
