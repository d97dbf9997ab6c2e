/* herd-train --device cuda in a build without CUDA: every entry point of
 * train_cuda.c fails with one clear line, so train_main.c needs no #ifdef.
 */
#include "train.h"

static herd_result_t s_no_cuda(void)
{
  return herd_error_set(HERD_EUNSUPPORTED,
                        "--device cuda: this herd-train was built without "
                        "CUDA (configure with -DHERD_CUDA=ON and the CUDA "
                        "toolkit with NCCL at HERD_CUDA_ROOT)");
}

herd_result_t herd_train_cuda_probe(void) { return s_no_cuda(); }

herd_result_t herd_train_cuda_peak_flops(herd_train_t *train, int m, int n,
                                         int k, double *flops_out)
{
  return s_no_cuda();
}

herd_result_t herd_train_cuda_setup(herd_train_t *train) { return s_no_cuda(); }

herd_result_t herd_train_cuda_step(herd_train_t *train, int stop,
                                   int reconfigure,
                                   herd_step_report_t *report)
{
  return s_no_cuda();
}

herd_result_t herd_train_cuda_evaluate(herd_train_t *train, size_t begin,
                                       size_t end, double *loss_sum,
                                       int64_t *correct)
{
  return s_no_cuda();
}

herd_result_t herd_train_cuda_download(herd_train_t *train) { return HERD_OK; }

herd_result_t herd_train_cuda_upload(herd_train_t *train) { return s_no_cuda(); }

void herd_train_cuda_destroy(herd_train_cuda_t **cuda_p) {}
