/* herd-train --device cuda: the step and the evaluation on one GPU per rank.
 *
 * The CPU trainer (train_main.c) stays in charge of everything but the
 * arithmetic: options, the coordinator, checkpoints, the sampler and the
 * schedule. This file mirrors its step with device buffers. At setup the
 * whole dataset goes to the GPU once (uint8 pixels: 55 MB for
 * Fashion-MNIST), as do the params and optimizer state (after resume, so a
 * resumed run continues from the checkpoint's bits); the sampler's
 * permutation follows once per epoch. A step is then
 *
 *   gather + normalise -> zero grad -> forward/backward (grad sum, loss and
 *   correct count into the extra elements) -> sample count, stop and
 *   reconfigure flags into the extra elements -> all-reduce -> non-finite
 *   flag over the gradient -> copy back the extra floats and the flag ->
 *   the host checks them (train_state.c, as the CPU step) -> optimizer
 *   (divides by the all-reduced count on the device)
 *
 * with no host copy but that one (24 bytes: loss, count, flags for the
 * report, the checks, the graceful stop and the switch to a newer
 * generation). The all-reduce reads device memory
 * directly over this file's NCCL communicator (--backend nccl); train->comm
 * is then an mpi communicator for the few host-side collectives of
 * train_main.c and train_state.c (NCCL needs MPI for its bootstrap anyway).
 * With --backend mpi or gloo the gradient is staged through train->grad.
 *
 * The NCCL communicator has its own stream: the model's stream is
 * synchronised before the all-reduce, and herd_comm_allreduce returns only
 * once NCCL's stream is done, so the optimizer sees the reduced gradient.
 */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herd/clock.h"
#include "cuda_check.h"
#include "herd/env.h"
#include "mlp_cuda.h"
#include "optim_cuda.h"
#include "train.h"

struct herd_train_cuda {
  int device;
  herd_mlp_cuda_t *mlp;
  herd_optim_cuda_t *optim;
  herd_comm_t *nccl;    /* gradients from device memory; NULL: staged */
  int64_t nccl_generation; /* the roster nccl was opened for */
  cudaStream_t stream;  /* the model's; all of this file's work */
  float *params, *grad; /* grad: param_count + HERD_STEP_TAIL_LEN */
  uint8_t *train_images, *train_labels;
  uint32_t *perm;     /* the sampler's permutation of epoch perm_epoch */
  int64_t perm_epoch; /* -1: none uploaded yet */
  float *test_x;      /* the whole test set, normalised once */
  uint8_t *test_labels;
  float *x; /* one step's local batch */
  uint8_t *labels;
  float *tail_in; /* pinned: this rank's encoded step tail, uploaded */
  float *extras;  /* pinned host copy of the reduced step tail, then the
                     non-finite flag (S_NONFINITE) */
  float *nonfinite; /* device: 1 when the reduced gradient is not finite */
  cudaEvent_t data_start, data_end;
};

/* Where the non-finite flag lands in the pinned extras. */
#define S_NONFINITE HERD_STEP_TAIL_LEN

/* Evaluation chunk: bigger than a training batch, small next to a GPU. */
#define S_EVAL_ROWS 4096

herd_result_t herd_train_cuda_probe(void)
{
  int devices = 0;
  cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices < 1)
    return herd_error_set(
        HERD_EUNSUPPORTED, "--device cuda: no CUDA device found (%s)",
        err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
  return HERD_OK;
}

/* cudaMalloc + an async copy on the model's stream (len 0: allocate only). */
static herd_result_t s_upload(herd_train_cuda_t *self, void **dst,
                              const void *src, size_t len)
{
  HERD_CUDA_CHECK(cudaMalloc(dst, len ? len : 1));
  if (src && len)
    HERD_CUDA_CHECK(
        cudaMemcpyAsync(*dst, src, len, cudaMemcpyHostToDevice, self->stream));
  return HERD_OK;
}

static herd_result_t s_check_labels(const herd_data_split_t *split)
{
  for (size_t i = 0; i < split->count; i++)
    if (split->labels[i] >= HERD_MLP_CLASSES)
      return herd_error_set(HERD_EFORMAT, "label %d of sample %zu >= %d",
                            split->labels[i], i, HERD_MLP_CLASSES);
  return HERD_OK;
}

/* The datasets, once: train pixels as bytes, test pixels normalised. */
static herd_result_t s_upload_data(herd_train_t *train, herd_train_cuda_t *self)
{
  const herd_data_split_t *tr = &train->dataset->train;
  const herd_data_split_t *te = &train->dataset->test;
  size_t pixels = (size_t)tr->rows * (size_t)tr->cols;
  HERD_CHECK(s_check_labels(tr));
  HERD_CHECK(s_check_labels(te));
  HERD_CHECK(s_upload(self, (void **)&self->train_images, tr->images,
                      tr->count * pixels));
  HERD_CHECK(
      s_upload(self, (void **)&self->train_labels, tr->labels, tr->count));
  HERD_CHECK(
      s_upload(self, (void **)&self->perm, NULL, tr->count * sizeof(uint32_t)));
  HERD_CHECK(
      s_upload(self, (void **)&self->test_labels, te->labels, te->count));
  HERD_CHECK(s_upload(self, (void **)&self->test_x, NULL,
                      te->count * pixels * sizeof(float)));
  uint8_t *test_images = NULL;
  herd_result_t rc =
      s_upload(self, (void **)&test_images, te->images, te->count * pixels);
  if (rc == HERD_OK)
    rc = herd_mlp_cuda_normalize_u8(self->mlp, test_images, te->count * pixels,
                                    self->test_x);
  cudaStreamSynchronize(self->stream);
  cudaFree(test_images);
  return rc;
}

/* Model, optimizer and step buffers; params and optimizer state from the
 * host (initial or resumed). */
static herd_result_t s_make_model(herd_train_t *train, herd_train_cuda_t *self)
{
  int dims[HERD_MLP_MAX_DIMS], n_dims = herd_mlp_n_layers(train->mlp) + 1;
  for (int i = 0; i < n_dims; i++)
    dims[i] = herd_mlp_dim(train->mlp, i);
  size_t local_max =
      (size_t)train->config.batch / (size_t)train->world_size + 1;
  size_t pixels = (size_t)herd_mlp_inputs(train->mlp);
  size_t p = train->param_count;
  HERD_CHECK(herd_mlp_cuda_new(
      dims, n_dims, local_max > S_EVAL_ROWS ? (int)local_max : S_EVAL_ROWS,
      &self->mlp));
  self->stream = herd_mlp_cuda_stream(self->mlp);
  HERD_CHECK(herd_optim_cuda_new(&train->optim_config, p, &self->optim));
  HERD_CHECK(herd_optim_cuda_upload(self->optim, train->optim, self->stream));
  HERD_CHECK(
      s_upload(self, (void **)&self->params, train->params, p * sizeof(float)));
  HERD_CHECK(s_upload(self, (void **)&self->grad, NULL,
                      (p + HERD_STEP_TAIL_LEN) * sizeof(float)));
  HERD_CHECK(s_upload(self, (void **)&self->x, NULL,
                      local_max * pixels * sizeof(float)));
  HERD_CHECK(s_upload(self, (void **)&self->labels, NULL, local_max));
  HERD_CHECK(s_upload(self, (void **)&self->nonfinite, NULL, sizeof(float)));
  HERD_CUDA_CHECK(cudaMallocHost((void **)&self->extras,
                                 (HERD_STEP_TAIL_LEN + 1) * sizeof(float)));
  HERD_CUDA_CHECK(cudaMallocHost((void **)&self->tail_in,
                                 HERD_STEP_TAIL_LEN * sizeof(float)));
  HERD_CUDA_CHECK(cudaEventCreate(&self->data_start));
  HERD_CUDA_CHECK(cudaEventCreate(&self->data_end));
  return HERD_OK;
}

static herd_result_t s_open_device(herd_train_t *train, herd_train_cuda_t *self)
{
  int devices = 0;
  HERD_CUDA_CHECK(cudaGetDeviceCount(&devices));
  herd_launch_env_t env; /* one GPU per rank on a node, by local rank */
  HERD_CHECK(herd_env_discover(&env));
  self->device = (env.local_rank > 0 ? env.local_rank : 0) % devices;
  HERD_CUDA_CHECK(cudaSetDevice(self->device));
  HERD_CHECK(s_make_model(train, self));
  HERD_CHECK(s_upload_data(train, self));
  HERD_CUDA_CHECK(cudaStreamSynchronize(self->stream));
  HERD_LOG(HERD_LOG_INFO, "train", "cuda: device %d of %d, %zu parameters",
           self->device, devices, train->param_count);
  return HERD_OK;
}

/* Collective: the NCCL communicator on this rank's device. In an MPI world
 * it bootstraps over MPI; in an elastic one (the host side is gloo) over the
 * coordinator's KV store, for this generation's roster. */
static herd_result_t s_open_nccl(herd_train_t *train, herd_train_cuda_t *self)
{
  herd_comm_config_t cc = HERD_COMM_CONFIG_INIT;
  cc.backend = HERD_BACKEND_NCCL;
  cc.cuda_device = self->device;
  cc.generation = train->generation;
  if (herd_train_is_elastic(train)) {
    cc.rank = train->rank;
    cc.world_size = train->world_size;
    HERD_CHECK(herd_comm_store_from_worker(train->worker, &cc.store));
  }
  herd_result_t rc = herd_comm_new(&cc, &self->nccl);
  herd_comm_store_destroy(&cc.store);
  HERD_CHECK(rc);
  self->nccl_generation = train->generation;
  if (herd_comm_rank(self->nccl) != train->rank ||
      herd_comm_world_size(self->nccl) != train->world_size)
    return herd_error_set(HERD_ESTATE, "nccl: rank %d of %d, expected %d of %d",
                          herd_comm_rank(self->nccl),
                          herd_comm_world_size(self->nccl), train->rank,
                          train->world_size);
  return HERD_OK;
}

herd_result_t herd_train_cuda_setup(herd_train_t *train)
{
  herd_train_cuda_t *self = calloc(1, sizeof *self);
  herd_result_t rc = self ? HERD_OK : HERD_ENOMEM;
  if (self) {
    self->perm_epoch = -1;
    train->cuda = self;
    rc = s_open_device(train, self);
  }
  HERD_CHECK(herd_train_agree(train, rc));
  if (strcmp(train->config.backend, "nccl") != 0)
    return HERD_OK;
  return herd_train_agree(train, s_open_nccl(train, self));
}

/* The sampler's permutation, uploaded when its epoch changes. */
static herd_result_t s_sync_perm(herd_train_t *train, herd_train_cuda_t *self)
{
  int64_t epoch = (int64_t)herd_sampler_epoch(train->sampler);
  if (epoch == self->perm_epoch)
    return HERD_OK;
  HERD_CUDA_CHECK(cudaMemcpyAsync(self->perm, herd_sampler_perm(train->sampler),
                         herd_sampler_count(train->sampler) * sizeof(uint32_t),
                         cudaMemcpyHostToDevice, self->stream));
  self->perm_epoch = epoch;
  return HERD_OK;
}

/* Local batch [begin, end) of the permutation -> gradient sum and extras. */
static herd_result_t s_local_grad(herd_train_t *train, herd_train_cuda_t *self,
                                  size_t begin, size_t end, int stop,
                                  int reconfigure)
{
  size_t pixels = (size_t)herd_mlp_inputs(train->mlp);
  size_t p = train->param_count, n = end - begin;
  HERD_CHECK(s_sync_perm(train, self));
  HERD_CUDA_CHECK(cudaEventRecord(self->data_start, self->stream));
  HERD_CHECK(herd_mlp_cuda_gather(
      self->mlp, self->train_images, self->train_labels, pixels,
      self->perm + begin, n, self->x, self->labels));
  HERD_CUDA_CHECK(cudaEventRecord(self->data_end, self->stream));
  /* The gradient from zero; the tail as this rank encodes it (loss and
   * correct count 0: the forward pass adds them in place). The pinned
   * tail_in is not reused before the step's final synchronisation. */
  HERD_CUDA_CHECK(cudaMemsetAsync(self->grad, 0, p * sizeof(float),
                                  self->stream));
  herd_step_tail_t tail = {.samples = (int64_t)n, .stop = stop,
                           .reconfigure = reconfigure};
  herd_step_tail_encode_f32(&tail, self->tail_in);
  HERD_CUDA_CHECK(cudaMemcpyAsync(self->grad + p, self->tail_in,
                                  HERD_STEP_TAIL_LEN * sizeof(float),
                                  cudaMemcpyHostToDevice, self->stream));
  HERD_CHECK(herd_mlp_cuda_forward_backward(
      self->mlp, self->params, self->x, self->labels, (int)n, self->grad,
      self->grad + p + HERD_STEP_TAIL_LOSS,
      self->grad + p + HERD_STEP_TAIL_CORRECT));
  /* NCCL's stream (or the host) reads the gradient next. */
  HERD_CUDA_CHECK(cudaStreamSynchronize(self->stream));
  return HERD_OK;
}

static herd_result_t s_allreduce(herd_train_t *train, herd_train_cuda_t *self)
{
  size_t count = train->param_count + HERD_STEP_TAIL_LEN;
  if (self->nccl && self->nccl_generation != train->generation) {
    /* A new generation (elastic): a new NCCL communicator for its roster. */
    herd_comm_destroy(&self->nccl);
    HERD_CHECK(s_open_nccl(train, self));
  }
  if (self->nccl)
    return herd_comm_allreduce_buckets(self->nccl, self->grad, count,
                                       HERD_DTYPE_F32, HERD_OP_SUM);
  /* mpi / gloo: host buffers only. */
  HERD_CUDA_CHECK(cudaMemcpyAsync(train->grad, self->grad, count * sizeof(float),
                         cudaMemcpyDeviceToHost, self->stream));
  HERD_CUDA_CHECK(cudaStreamSynchronize(self->stream));
  HERD_CHECK(herd_comm_allreduce_buckets(train->comm, train->grad, count,
                                         HERD_DTYPE_F32, HERD_OP_SUM));
  HERD_CUDA_CHECK(cudaMemcpyAsync(self->grad, train->grad, count * sizeof(float),
                         cudaMemcpyHostToDevice, self->stream));
  return HERD_OK;
}

/* The reduced extras and the non-finite flag to the host, checked there
 * before the optimizer may touch the parameters. */
static herd_result_t s_check_sums(herd_train_t *train, herd_train_cuda_t *self,
                                  herd_step_tail_t *tail)
{
  size_t p = train->param_count;
  HERD_CHECK(herd_mlp_cuda_flag_nonfinite(self->mlp, self->grad, p,
                                          self->nonfinite));
  HERD_CUDA_CHECK(cudaMemcpyAsync(self->extras, self->grad + p,
                                  HERD_STEP_TAIL_LEN * sizeof(float),
                                  cudaMemcpyDeviceToHost, self->stream));
  HERD_CUDA_CHECK(cudaMemcpyAsync(self->extras + S_NONFINITE, self->nonfinite,
                                  sizeof(float), cudaMemcpyDeviceToHost,
                                  self->stream));
  HERD_CUDA_CHECK(cudaStreamSynchronize(self->stream));
  herd_step_tail_decode_f32(self->extras, tail);
  HERD_CHECK(herd_train_check_sums(train, tail, NULL));
  if (self->extras[S_NONFINITE] > 0)
    return herd_error_set(HERD_ENONFINITE,
                          "step %lld: the summed gradient is not finite (on "
                          "the GPU); stopping before it reaches the "
                          "parameters or a checkpoint (lower --lr, or check "
                          "the data)",
                          (long long)train->step + 1);
  return HERD_OK;
}

herd_result_t herd_train_cuda_step(herd_train_t *train, int stop,
                                   int reconfigure,
                                   herd_step_report_t *report)
{
  herd_train_cuda_t *self = train->cuda;
  size_t begin, end, global_begin, global_end;
  size_t p = train->param_count;
  /* The same shards as the CPU step, so a GPU run's data order is the
   * CPU run's at any world size. */
  herd_train_step_ranges(train, &begin, &end, &global_begin, &global_end);
  double t0 = herd_mono_s();
  HERD_CHECK(s_local_grad(train, self, begin, end, stop, reconfigure));
  double t1 = herd_mono_s();
  HERD_CHECK(s_allreduce(train, self));
  double t2 = herd_mono_s();
  herd_step_tail_t tail;
  HERD_CHECK(s_check_sums(train, self, &tail));
  float lr = (float)herd_lr_at(&train->schedule, train->step);
  HERD_CHECK(herd_optim_cuda_step(self->optim, self->params, self->grad,
                                  self->grad + p + HERD_STEP_TAIL_SAMPLES, lr,
                                  self->stream));
  HERD_CUDA_CHECK(cudaStreamSynchronize(self->stream));
  double t3 = herd_mono_s();
  float data_ms = 0.0f;
  cudaEventElapsedTime(&data_ms, self->data_start, self->data_end);
  if (tail.stop)
    train->stop_requested = 1;
  train->reconfigure_requested = tail.reconfigure;
  *report = (herd_step_report_t){.step = train->step + 1,
                                 .epoch = train->epoch,
                                 .generation = train->generation,
                                 .world_size = train->world_size,
                                 .loss = (float)tail.loss_sum /
                                         (float)tail.samples,
                                 .samples = tail.samples,
                                 .data_seconds = data_ms * 1e-3,
                                 .compute_seconds =
                                     (t1 - t0) - data_ms * 1e-3 + (t3 - t2),
                                 .comm_seconds = t2 - t1,
                                 .step_seconds = t3 - t0,
                                 .sample_begin = (int64_t)global_begin,
                                 .sample_end = (int64_t)global_end};
  return HERD_OK;
}

herd_result_t herd_train_cuda_evaluate(herd_train_t *train, size_t begin,
                                       size_t end, double *loss_sum,
                                       int64_t *correct)
{
  herd_train_cuda_t *self = train->cuda;
  size_t pixels = (size_t)herd_mlp_inputs(train->mlp);
  return herd_mlp_cuda_evaluate(
      self->mlp, self->params, self->test_x + begin * pixels,
      self->test_labels + begin, end - begin, loss_sum, correct);
}

herd_result_t herd_train_cuda_upload(herd_train_t *train)
{
  herd_train_cuda_t *self = train->cuda;
  if (!self || !self->optim || !self->params)
    return HERD_OK;
  HERD_CUDA_CHECK(cudaMemcpyAsync(self->params, train->params,
                                  train->param_count * sizeof(float),
                                  cudaMemcpyHostToDevice, self->stream));
  HERD_CHECK(herd_optim_cuda_upload(self->optim, train->optim, self->stream));
  HERD_CUDA_CHECK(cudaStreamSynchronize(self->stream));
  return HERD_OK;
}

herd_result_t herd_train_cuda_download(herd_train_t *train)
{
  herd_train_cuda_t *self = train->cuda;
  if (!self || !self->optim || !self->params)
    return HERD_OK;
  HERD_CUDA_CHECK(cudaMemcpyAsync(train->params, self->params,
                         train->param_count * sizeof(float),
                         cudaMemcpyDeviceToHost, self->stream));
  /* waits for the stream, so the params copy too */
  return herd_optim_cuda_download(self->optim, train->optim, self->stream);
}

void herd_train_cuda_destroy(herd_train_cuda_t **cuda_p)
{
  if (!cuda_p || !*cuda_p)
    return;
  herd_train_cuda_t *self = *cuda_p;
  herd_comm_destroy(&self->nccl);
  herd_mlp_cuda_destroy(&self->mlp); /* waits for its stream */
  herd_optim_cuda_destroy(&self->optim);
  void *buffers[] = {self->params,       self->grad, self->train_images,
                     self->train_labels, self->perm, self->test_x,
                     self->test_labels,  self->x,    self->labels,
                     self->nonfinite};
  for (size_t i = 0; i < sizeof buffers / sizeof *buffers; i++)
    cudaFree(buffers[i]);
  cudaFreeHost(self->extras);
  cudaFreeHost(self->tail_in);
  if (self->data_start)
    cudaEventDestroy(self->data_start);
  if (self->data_end)
    cudaEventDestroy(self->data_end);
  free(self);
  *cuda_p = NULL;
}

herd_result_t herd_train_cuda_peak_flops(herd_train_t *train, int m, int n,
                                         int k, double *flops_out)
{
  return herd_mlp_cuda_sgemm_rate(train->cuda->mlp, m, n, k, flops_out);
}
