/* Raw Gloo for bench/allreduce: the library with nothing of herd on top.
 * Gloo's own FileStore, a TCP device on loopback, connectFullMesh, and
 * gloo::allreduce with gloo::sum<float> -- exactly what an application
 * using Gloo directly would write. A C API so allreduce.c can drive it. */
#include <chrono>
#include <memory>
#include <string>

#include <gloo/allreduce.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include "allreduce_gloo_raw.h"

struct bench_gloo_raw {
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  uint32_t tag = 0;
};

extern "C" bench_gloo_raw_t *bench_gloo_raw_new(const char *dir, int rank,
                                                int world)
{
  try {
    auto *raw = new bench_gloo_raw_t;
    gloo::transport::tcp::attr attr;
    attr.hostname = "127.0.0.1";
    raw->device = gloo::transport::tcp::CreateDevice(attr);
    gloo::rendezvous::FileStore file(dir);
    gloo::rendezvous::PrefixStore store("raw", file);
    raw->context = std::make_shared<gloo::rendezvous::Context>(rank, world);
    raw->context->setTimeout(std::chrono::seconds(60));
    raw->context->connectFullMesh(store, raw->device);
    return raw;
  } catch (const std::exception &e) {
    fprintf(stderr, "raw gloo: %s\n", e.what());
    return nullptr;
  }
}

extern "C" int bench_gloo_raw_allreduce(bench_gloo_raw_t *raw, const float *send,
                                        float *recv, size_t count)
{
  try {
    gloo::AllreduceOptions opts(raw->context);
    if (send != recv)
      opts.setInput(const_cast<float *>(send), count);
    opts.setOutput(recv, count);
    opts.setReduceFunction(
        static_cast<void (*)(void *, const void *, const void *, size_t)>(
            &gloo::sum<float>));
    opts.setTag(raw->tag++);
    gloo::allreduce(opts);
    return 0;
  } catch (const std::exception &e) {
    fprintf(stderr, "raw gloo allreduce: %s\n", e.what());
    return -1;
  }
}

extern "C" void bench_gloo_raw_destroy(bench_gloo_raw_t *raw) { delete raw; }
