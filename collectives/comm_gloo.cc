/* The `gloo` backend: CPU buffers over Gloo's TCP transport, behind a C API.
 *
 * Elastic by construction: every generation gets a fresh gloo context whose
 * peers find each other through a herd_comm_store_t (the coordinator KV, or a
 * file store in tests), keys namespaced "herd/gloo/g<generation>/". Nothing
 * survives from one generation to the next, so a new communicator of the
 * survivors is all recovery takes.
 *
 * A dead peer is an error, never a hang. Three mechanisms, fastest wins:
 *  - the kernel closes a killed peer's sockets; gloo's device thread sees EOF
 *    and fails the pending ops on that pair;
 *  - on any failure this rank "poisons" its whole context (s_poison: every
 *    pair's socket shut down), so each neighbour sees EOF in turn and the
 *    error travels around the ring in milliseconds;
 *  - herd_comm_abort() from another thread poisons the context too, which
 *    wakes a blocked allreduce at once; and gloo's per-op timeout
 *    (config.timeout_ms) bounds everything else.
 * After a failure the communicator stays broken (HERD_EPEER); the caller
 * destroys it and builds the next generation's.
 *
 * No C++ exception crosses the C boundary: every entry point catches.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <utility>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/address.h>
#include <gloo/transport/tcp/device.h>

#include "comm_internal.h"
#include "herd/log.h"

namespace {

const int kDefaultTimeoutMs = 30000;
const size_t kFirstGetBytes = 4096;

/* gloo::rendezvous::Store over a herd_comm_store_t, with a key prefix. */
class HerdStore : public gloo::rendezvous::Store {
public:
  HerdStore(herd_comm_store_t *store, std::string prefix, int timeout_ms,
            int rank)
      : store_(store), prefix_(std::move(prefix)), timeout_ms_(timeout_ms),
        own_key_(std::to_string(rank)) {}

  void set(const std::string &key, const std::vector<char> &data) override
  {
    std::string full = prefix_ + key;
    if (store_->set(store_->ctx, full.c_str(), data.data(), data.size()))
      GLOO_THROW_IO_EXCEPTION("store set ", full, ": ", herd_error_detail());
    if (key == own_key_) {
      std::lock_guard<std::mutex> lock(own_lock_);
      own_ = data;
    }
  }

  /* The local addresses of this rank's pairs, once connectFullMesh has
   * published them (one tcp::Address per peer, all of one size). */
  std::vector<sockaddr_storage> own_addresses(int peers)
  {
    std::vector<sockaddr_storage> out;
    std::lock_guard<std::mutex> lock(own_lock_);
    size_t each = peers > 0 ? own_.size() / (size_t)peers : 0;
    for (size_t at = 0; each > 0 && at + each <= own_.size(); at += each) {
      std::vector<char> one(own_.begin() + (long)at, own_.begin() + (long)(at + each));
      out.push_back(gloo::transport::tcp::Address(one).getSockaddr());
    }
    return out;
  }

  std::vector<char> get(const std::string &key) override
  {
    return fetch(key, timeout_ms_);
  }

  void wait(const std::vector<std::string> &keys) override
  {
    wait(keys, std::chrono::milliseconds(timeout_ms_));
  }

  void wait(const std::vector<std::string> &keys,
            const std::chrono::milliseconds &timeout) override
  {
    for (const auto &key : keys)
      fetch(key, (int)timeout.count());
  }

private:
  std::vector<char> fetch(const std::string &key, int timeout_ms)
  {
    auto hit = cache_.find(key);
    if (hit != cache_.end())
      return hit->second;
    std::string full = prefix_ + key;
    std::vector<char> value(kFirstGetBytes);
    for (int attempt = 0; attempt < 2; attempt++) {
      size_t len = 0;
      herd_result_t rc = store_->get(store_->ctx, full.c_str(), value.data(),
                                     value.size(), &len, timeout_ms);
      if (rc != HERD_OK)
        GLOO_THROW_IO_EXCEPTION("store get ", full, ": ", herd_error_detail());
      bool fits = len <= value.size();
      value.resize(len);
      if (fits) {
        cache_[key] = value;
        return value;
      }
    }
    GLOO_THROW_IO_EXCEPTION("store get ", full, ": value keeps growing");
  }

  herd_comm_store_t *store_;
  std::string prefix_;
  int timeout_ms_;
  std::map<std::string, std::vector<char>> cache_;
  std::string own_key_;
  std::mutex own_lock_;
  std::vector<char> own_;
};

/* The local socket address of every connected pair of `context`. */
std::vector<sockaddr_storage> s_pair_addresses(gloo::Context &context)
{
  std::vector<sockaddr_storage> out;
  for (int i = 0; i < context.size; i++) {
    if (i == context.rank)
      continue;
    auto &pair = context.getPair(i);
    auto *tcp = pair ? dynamic_cast<const gloo::transport::tcp::Address *>(
                           &pair->address())
                     : nullptr;
    if (tcp)
      out.push_back(tcp->getSockaddr());
  }
  return out;
}

bool s_same_endpoint(const sockaddr_storage &a, const sockaddr_storage &b)
{
  if (a.ss_family != b.ss_family)
    return false;
  if (a.ss_family == AF_INET) {
    auto &x = reinterpret_cast<const sockaddr_in &>(a);
    auto &y = reinterpret_cast<const sockaddr_in &>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    auto &x = reinterpret_cast<const sockaddr_in6 &>(a);
    auto &y = reinterpret_cast<const sockaddr_in6 &>(b);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

/* Calls fn(fd, inode, local address) for each socket of this process. */
template <typename Fn> void s_each_socket(Fn &&fn)
{
  DIR *dir = opendir("/proc/self/fd");
  if (!dir)
    return;
  while (struct dirent *entry = readdir(dir)) {
    int fd = atoi(entry->d_name);
    struct stat st;
    if (fd < 0 || fd == dirfd(dir) || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
      continue;
    sockaddr_storage local;
    socklen_t len = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&local), &len) == 0)
      fn(fd, st.st_ino, local);
  }
  closedir(dir);
}

bool s_is_one_of(const sockaddr_storage &local,
                 const std::vector<sockaddr_storage> &addrs)
{
  for (const auto &addr : addrs)
    if (s_same_endpoint(local, addr))
      return true;
  return false;
}

/* shutdown(2)s this process's sockets bound to one of `mine` (listening
 * addresses: a port bound for listening is never shared with another
 * socket). Gloo's public API cannot wake a thread blocked in a collective
 * (Pair::close does not, and the tcp headers that could are missing from
 * libgloo-dev), but a shut-down socket reads as EOF: gloo's own device
 * thread then fails the pending ops on that pair, and the peer sees EOF as
 * well. The descriptor stays open and owned by gloo, so nothing is reused
 * under its feet. */
int s_shutdown_sockets(const std::vector<sockaddr_storage> &mine)
{
  int hits = 0;
  s_each_socket([&](int fd, ino_t, const sockaddr_storage &local) {
    if (s_is_one_of(local, mine) && shutdown(fd, SHUT_RDWR) == 0)
      hits++;
  });
  return hits;
}

/* The sockets a new context's pairs use, by inode: the sockets that
 * connectFullMesh created (not in `before`) with a pair's local address.
 * The address alone is not enough: a connected pair's local port is an
 * ephemeral one, which Linux also gives other outgoing connections to
 * other destinations (the worker's connection to the coordinator has been
 * seen on the same port, and shutting it down failed a live worker). */
std::vector<ino_t> s_pair_inodes(gloo::Context &context,
                                 const std::vector<ino_t> &before)
{
  std::vector<sockaddr_storage> addrs = s_pair_addresses(context);
  std::vector<ino_t> out;
  s_each_socket([&](int, ino_t inode, const sockaddr_storage &local) {
    if (s_is_one_of(local, addrs) &&
        std::find(before.begin(), before.end(), inode) == before.end())
      out.push_back(inode);
  });
  return out;
}

std::vector<ino_t> s_socket_inodes()
{
  std::vector<ino_t> out;
  s_each_socket([&](int, ino_t inode, const sockaddr_storage &) {
    out.push_back(inode);
  });
  return out;
}

struct s_gloo {
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::vector<ino_t> pair_sockets; /* s_pair_inodes, what s_poison shuts */
  std::mutex poison_lock; /* abort vs destroy */
  std::chrono::milliseconds timeout;
  uint32_t tag = 0;
  std::atomic<int> broken{0};
};

s_gloo *s_of(herd_comm_t *comm) { return static_cast<s_gloo *>(comm->backend); }

/* Fails every pending and later op on this context by shutting its sockets,
 * so the local waiter wakes and every peer sees EOF. Safe from any thread,
 * once per communicator (later calls return at once). */
void s_poison(s_gloo *g)
{
  std::lock_guard<std::mutex> lock(g->poison_lock);
  if (g->broken.exchange(1) || !g->context)
    return;
  s_each_socket([&](int fd, ino_t inode, const sockaddr_storage &) {
    if (std::find(g->pair_sockets.begin(), g->pair_sockets.end(), inode) !=
        g->pair_sockets.end())
      shutdown(fd, SHUT_RDWR);
  });
}

/* Runs one gloo call; a failure poisons the context and becomes HERD_EPEER
 * (or HERD_EABORTED when herd_comm_abort caused it). */
template <typename Fn>
herd_result_t s_run(herd_comm_t *comm, const char *what, Fn &&fn)
{
  s_gloo *g = s_of(comm);
  if (g->broken.load())
    return herd_error_set(comm->aborted.load() ? HERD_EABORTED
                                                      : HERD_EPEER,
                          "gloo %s: communicator is broken", what);
  try {
    fn(g);
    return HERD_OK;
  } catch (const std::exception &e) {
    s_poison(g);
    HERD_LOG(HERD_LOG_WARN, "comm", "gloo %s failed: %s", what, e.what());
    return herd_error_set(comm->aborted.load() ? HERD_EABORTED
                                                      : HERD_EPEER,
                          "gloo %s: %s", what, e.what());
  }
}

using ReduceFn = void (*)(void *, const void *, const void *, size_t);

template <herd_dtype_t D, herd_op_t O>
void s_reduce16(void *c, const void *a, const void *b, size_t n)
{
  /* c = a op b, where c may alias a or b (the ops commute). */
  const uint16_t *x = static_cast<const uint16_t *>(a);
  const uint16_t *y = static_cast<const uint16_t *>(b);
  uint16_t *out = static_cast<uint16_t *>(c);
  if (out == y)
    std::swap(x, y);
  else if (out != x)
    std::memmove(out, x, n * sizeof(uint16_t));
  herd_reduce_into(out, y, n, D, O);
}

template <typename T> ReduceFn s_typed(herd_op_t op)
{
  if (op == HERD_OP_MAX)
    return &gloo::max<T>;
  if (op == HERD_OP_MIN)
    return &gloo::min<T>;
  return &gloo::sum<T>;
}

template <herd_dtype_t D> ReduceFn s_half(herd_op_t op)
{
  if (op == HERD_OP_MAX)
    return &s_reduce16<D, HERD_OP_MAX>;
  if (op == HERD_OP_MIN)
    return &s_reduce16<D, HERD_OP_MIN>;
  return &s_reduce16<D, HERD_OP_SUM>;
}

template <typename T>
void s_allreduce_as(s_gloo *g, const void *send, void *recv, size_t count,
                    ReduceFn fn)
{
  gloo::AllreduceOptions opts(g->context);
  if (send != recv)
    opts.setInput(static_cast<T *>(const_cast<void *>(send)), count);
  opts.setOutput(static_cast<T *>(recv), count);
  opts.setReduceFunction(fn);
  opts.setTag(g->tag++);
  opts.setTimeout(g->timeout);
  gloo::allreduce(opts);
}

void s_allreduce_any(s_gloo *g, const void *send, void *recv, size_t count,
                     herd_dtype_t dtype, herd_op_t op)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
    return s_allreduce_as<float>(g, send, recv, count, s_typed<float>(op));
  case HERD_DTYPE_F64:
    return s_allreduce_as<double>(g, send, recv, count, s_typed<double>(op));
  case HERD_DTYPE_I32:
    return s_allreduce_as<int32_t>(g, send, recv, count, s_typed<int32_t>(op));
  case HERD_DTYPE_I64:
    return s_allreduce_as<int64_t>(g, send, recv, count, s_typed<int64_t>(op));
  case HERD_DTYPE_U8:
    return s_allreduce_as<uint8_t>(g, send, recv, count, s_typed<uint8_t>(op));
  case HERD_DTYPE_F16:
    return s_allreduce_as<uint16_t>(g, send, recv, count,
                                    s_half<HERD_DTYPE_F16>(op));
  case HERD_DTYPE_BF16:
    return s_allreduce_as<uint16_t>(g, send, recv, count,
                                    s_half<HERD_DTYPE_BF16>(op));
  }
}

herd_result_t s_allreduce(herd_comm_t *comm, const void *send, void *recv,
                          size_t count, herd_dtype_t dtype, herd_op_t op)
{
  if (count == 0)
    return HERD_OK;
  if (comm->world_size == 1) {
    if (send != recv)
      std::memcpy(recv, send, count * herd_dtype_size(dtype));
    return HERD_OK;
  }
  herd_result_t rc = s_run(comm, "allreduce", [&](s_gloo *g) {
    s_allreduce_any(g, send, recv, count, dtype, op);
  });
  if (rc == HERD_OK && op == HERD_OP_AVG)
    herd_scale_down(recv, count, dtype, comm->world_size);
  return rc;
}

herd_result_t s_broadcast(herd_comm_t *comm, void *buf, size_t count,
                          herd_dtype_t dtype, int root)
{
  if (count == 0 || comm->world_size == 1)
    return HERD_OK;
  return s_run(comm, "broadcast", [&](s_gloo *g) {
    gloo::BroadcastOptions opts(g->context);
    opts.setOutput(static_cast<uint8_t *>(buf), count * herd_dtype_size(dtype));
    opts.setRoot(root);
    opts.setTag(g->tag++);
    opts.setTimeout(g->timeout);
    gloo::broadcast(opts);
  });
}

herd_result_t s_barrier(herd_comm_t *comm)
{
  if (comm->world_size == 1)
    return HERD_OK;
  return s_run(comm, "barrier", [&](s_gloo *g) {
    gloo::BarrierOptions opts(g->context);
    opts.setTag(g->tag++);
    opts.setTimeout(g->timeout);
    gloo::barrier(opts);
  });
}

void s_abort(herd_comm_t *comm)
{
  s_gloo *g = s_of(comm);
  if (g)
    s_poison(g);
}

void s_destroy(herd_comm_t *comm)
{
  s_gloo *g = s_of(comm);
  if (g) {
    std::lock_guard<std::mutex> lock(g->poison_lock);
    g->broken.store(1);
  }
  delete g;
  comm->backend = nullptr;
}

const herd_comm_ops_t s_gloo_ops = {
    "gloo", s_allreduce, s_broadcast, s_barrier, s_abort, s_destroy, nullptr,
};

/* Device on the address peers should dial: the one the store advertises
 * (the worker's route to the coordinator, or --iface), loopback for a store
 * whose ranks share one host. Gloo binds that address, never 0.0.0.0. */
std::shared_ptr<gloo::transport::Device> s_device(const herd_comm_store_t *store)
{
  gloo::transport::tcp::attr attr;
  attr.hostname = store && store->host[0] ? store->host : "127.0.0.1";
  return gloo::transport::tcp::CreateDevice(attr);
}

/* Ends a rendezvous that a newer roster has made pointless. Gloo's
 * listening side of a pair waits up to 5 x the timeout for its peer to dial
 * in, and a peer whose own connect to a dead rank failed never will; the
 * store's key waits notice a newer roster, this wait does not. So while
 * connectFullMesh runs, a thread asks the store every 100 ms and, once the
 * generation is superseded, shuts this rank's pair sockets (s_shutdown_sockets,
 * as a poison does): accept fails, connectFullMesh throws, and the caller
 * moves on to the newer roster in milliseconds (tests/fault kill_in_reconfig:
 * a second rank killed while the first generation change ran). */
class SupersededWatch {
public:
  SupersededWatch(herd_comm_store_t *store, HerdStore &keys, int peers)
  {
    if (store->superseded)
      thread_ = std::thread([this, store, &keys, peers] { run(store, keys, peers); });
  }
  ~SupersededWatch()
  {
    {
      std::lock_guard<std::mutex> lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }
  bool fired() const { return fired_.load(); }

private:
  void run(herd_comm_store_t *store, HerdStore &keys, int peers)
  {
    std::unique_lock<std::mutex> lock(m_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return done_; }))
      if (store->superseded(store->ctx)) {
        fired_.store(true);
        s_shutdown_sockets(keys.own_addresses(peers));
        return;
      }
  }
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> fired_{false};
};

herd_result_t s_connect(herd_comm_t *comm, s_gloo *g)
{
  const herd_comm_config_t *cfg = &comm->config;
  int timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : kDefaultTimeoutMs;
  g->timeout = std::chrono::milliseconds(timeout_ms);
  std::string prefix =
      "herd/gloo/g" + std::to_string((long long)cfg->generation) + "/";
  try {
    g->device = s_device(cfg->store);
    g->context = std::make_shared<gloo::rendezvous::Context>(comm->rank, comm->world_size);
    g->context->setTimeout(g->timeout);
    HerdStore store(cfg->store, prefix, timeout_ms, comm->rank);
    SupersededWatch watch(cfg->store, store, comm->world_size - 1);
    std::vector<ino_t> before = s_socket_inodes();
    try {
      g->context->connectFullMesh(store, g->device);
      g->pair_sockets = s_pair_inodes(*g->context, before);
    } catch (const std::exception &) {
      if (!watch.fired())
        throw;
    }
    if (watch.fired())
      return herd_error_set(HERD_ERECONFIG, "gloo rendezvous (rank %d of %d, "
                            "%s): superseded by a newer roster", comm->rank,
                            comm->world_size, prefix.c_str());
  } catch (const std::exception &e) {
    return herd_error_set(HERD_EBACKEND, "gloo rendezvous (rank %d of %d, %s): %s",
                          comm->rank, comm->world_size, prefix.c_str(), e.what());
  }
  return HERD_OK;
}

} // namespace

extern "C" herd_result_t herd_comm_gloo_init(herd_comm_t *comm)
{
  const herd_comm_config_t *cfg = &comm->config;
  if (cfg->rank < 0 || cfg->world_size < 1 || cfg->rank >= cfg->world_size)
    return herd_error_set(HERD_EINVAL, "gloo: needs rank and world_size "
                          "(got %d of %d)", cfg->rank, cfg->world_size);
  if (cfg->world_size > 1 && !cfg->store)
    return herd_error_set(HERD_EINVAL, "gloo: needs a rendezvous store");
  comm->rank = cfg->rank;
  comm->world_size = cfg->world_size;
  s_gloo *g = new (std::nothrow) s_gloo;
  if (!g)
    return HERD_ENOMEM;
  if (cfg->world_size > 1) {
    herd_result_t rc = s_connect(comm, g);
    if (rc != HERD_OK) {
      delete g;
      return rc;
    }
  }
  comm->backend = g;
  comm->ops = &s_gloo_ops;
  return HERD_OK;
}
