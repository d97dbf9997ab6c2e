/* herd-train opens cuBLAS with dlopen under --device cuda only (linking it
 * would cost every CPU worker ~200 MiB). This checks, without a GPU, that
 * the library this build was configured with loads and has every function
 * mlp_cuda.cu uses, so a GPU run cannot be the first to find out. */
#include <stdio.h>

#include "herd/result.h"
#include "mlp_cuda.h"

int main(void)
{
  if (herd_mlp_cuda_load_blas() != HERD_OK) {
    fprintf(stderr, "FAIL: %s\n", herd_error_detail());
    return 1;
  }
  if (herd_mlp_cuda_load_blas() != HERD_OK) { /* once, then cached */
    fprintf(stderr, "FAIL: second load: %s\n", herd_error_detail());
    return 1;
  }
  printf("ok: cuBLAS loaded on demand\n");
  return 0;
}
