/* The `mpi` backend's all-reduce through host shared memory.
 *
 * Why: Open MPI's all-reduce between processes of one host goes through
 * the shared-memory transport in fragments, each copied into a FIFO and out
 * again, with the sum done on the copies: 180-200 us for herd-train's
 * 0.94 MB gradient at 2 ranks on this project's 2-core machines, 8-10 % of a
 * step. Here the ranks of a host share one MPI-3 window (MPI allocates and
 * frees it; nothing is left in /dev/shm after a crash): each rank copies its
 * buffer into its slot, each reduces its own slice of every slot in rank
 * order, and each copies the whole result out. Two barriers, no fragments.
 *
 * A buffer the caller asked for at set-up (herd_comm_buffer: herd-train
 * computes its gradient in it) is the rank's region of the same window:
 * its all-reduce copies nothing in or out. Each rank sums its slice of
 * every region into rank 0's region and copies the sum into the others';
 * after the second barrier every region holds the whole result.
 *
 * Across hosts (every host with the same number of ranks), the slice a rank
 * reduced on its host is all-reduced with the ranks that own the same slice
 * on the other hosts (the classic hierarchical all-reduce: only 1/L of the
 * data leaves each of the L ranks of a host), then copied out as above.
 *
 * Every rank calls the same collectives in the same order with the same
 * counts (the collectives' rule), so the chunking and the slices agree. The
 * sum is taken in rank order, the same on every rank and every run: the
 * results are identical on all ranks, as MPI_Allreduce's are.
 */
#include "comm_mpi_shm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "comm_internal.h"

/* Bytes of one rank's slot. Buffers larger than this go in chunks; each
 * chunk costs two barriers (a few us), small beside copying 2 MiB. */
#define SHM_SLOT_BYTES ((size_t)2 << 20)
/* Slice boundaries on cache lines, so two ranks never write one line. */
#define SHM_ALIGN 64
/* Where Open MPI 4.1 backs a shared window (osc_sm_backing_directory). */
#define SHM_DIR "/dev/shm"

struct herd_mpi_shm {
  MPI_Comm host;  /* the ranks of this host */
  MPI_Comm cross; /* the ranks with this host rank on every host; or NULL */
  int host_rank, host_size;
  MPI_Win win;
  char *base; /* [2 parities][host_size slots][SHM_SLOT_BYTES], then
               * [host_size regions][region_bytes] */
  unsigned parity;
  size_t region_bytes; /* herd_comm_buffer's, rounded up to SHM_ALIGN */
};

static size_t s_slots_bytes(const herd_mpi_shm_t *shm)
{
  return 2 * (size_t)shm->host_size * SHM_SLOT_BYTES;
}

static char *s_region(herd_mpi_shm_t *shm, int rank)
{
  return shm->base + s_slots_bytes(shm) + (size_t)rank * shm->region_bytes;
}

static char *s_slot(herd_mpi_shm_t *shm, int rank)
{
  return shm->base +
         ((size_t)shm->parity * shm->host_size + rank) * SHM_SLOT_BYTES;
}

/* Memory written before it is visible to every rank of the host after. */
static int s_host_sync(herd_mpi_shm_t *shm)
{
  MPI_Win_sync(shm->win);
  int code = MPI_Barrier(shm->host);
  MPI_Win_sync(shm->win);
  return code;
}

/* This rank's slice of `count` elements: [*lo, *hi). */
static void s_slice(const herd_mpi_shm_t *shm, size_t count, size_t elem,
                    size_t *lo, size_t *hi)
{
  size_t align = SHM_ALIGN / elem;
  size_t per = (count + shm->host_size - 1) / shm->host_size;
  per = (per + align - 1) / align * align;
  *lo = per * shm->host_rank < count ? per * shm->host_rank : count;
  *hi = *lo + per < count ? *lo + per : count;
}

static int s_chunk(herd_mpi_shm_t *shm, const char *in, char *out, size_t n,
                   herd_dtype_t dtype, herd_op_t op, MPI_Datatype type,
                   MPI_Op mpi_op)
{
  size_t elem = herd_dtype_size(dtype), lo, hi;
  memcpy(s_slot(shm, shm->host_rank), in, n * elem);
  int code = s_host_sync(shm);
  if (code != MPI_SUCCESS)
    return code;
  s_slice(shm, n, elem, &lo, &hi);
  char *sum = s_slot(shm, 0) + lo * elem;
  for (int r = 1; r < shm->host_size && hi > lo; r++)
    herd_reduce_into(sum, s_slot(shm, r) + lo * elem, hi - lo, dtype, op);
  if (shm->cross != MPI_COMM_NULL) {
    /* Every rank calls, also with an empty slice, so the calls match. */
    code = MPI_Allreduce(MPI_IN_PLACE, sum, (int)(hi - lo), type, mpi_op,
                         shm->cross);
    if (code != MPI_SUCCESS)
      return code;
  }
  code = s_host_sync(shm);
  if (code != MPI_SUCCESS)
    return code;
  memcpy(out, s_slot(shm, 0), n * elem);
  /* The next chunk writes the other parity's slots: a rank still copying
   * this result out is never overwritten, and the first barrier of the
   * next chunk keeps anyone from coming back to this parity before every
   * rank finished here. */
  shm->parity ^= 1u;
  return MPI_SUCCESS;
}

/* In place in this rank's region, at the same offset in every rank's. */
static int s_in_region(herd_mpi_shm_t *shm, char *buf, size_t count,
                       herd_dtype_t dtype, herd_op_t op, MPI_Datatype type,
                       MPI_Op mpi_op)
{
  size_t elem = herd_dtype_size(dtype), lo, hi;
  size_t at = (size_t)(buf - s_region(shm, shm->host_rank));
  int code = s_host_sync(shm);
  if (code != MPI_SUCCESS)
    return code;
  s_slice(shm, count, elem, &lo, &hi);
  at += lo * elem;
  char *sum = s_region(shm, 0) + at;
  for (int r = 1; r < shm->host_size && hi > lo; r++)
    herd_reduce_into(sum, s_region(shm, r) + at, hi - lo, dtype, op);
  if (shm->cross != MPI_COMM_NULL) {
    code = MPI_Allreduce(MPI_IN_PLACE, sum, (int)(hi - lo), type, mpi_op,
                         shm->cross);
    if (code != MPI_SUCCESS)
      return code;
  }
  for (int r = 1; r < shm->host_size && hi > lo; r++)
    memcpy(s_region(shm, r) + at, sum, (hi - lo) * elem);
  return s_host_sync(shm);
}

void *herd_mpi_shm_buffer(herd_mpi_shm_t *shm)
{
  return shm && shm->region_bytes ? s_region(shm, shm->host_rank) : NULL;
}

int herd_mpi_shm_allreduce(herd_mpi_shm_t *shm, const void *send, void *recv,
                           size_t count, herd_dtype_t dtype, herd_op_t op,
                           MPI_Datatype type, MPI_Op mpi_op)
{
  size_t elem = herd_dtype_size(dtype);
  if (count == 0)
    return MPI_SUCCESS; /* a rank may pass any pointer, in the region or not */
  if (shm->region_bytes && send == recv) {
    uintptr_t mine = (uintptr_t)s_region(shm, shm->host_rank);
    uintptr_t at = (uintptr_t)recv;
    if (at >= mine && at - mine <= shm->region_bytes &&
        count * elem <= shm->region_bytes - (at - mine))
      return s_in_region(shm, recv, count, dtype, op, type, mpi_op);
  }
  size_t per_chunk = SHM_SLOT_BYTES / elem;
  for (size_t done = 0; done < count; done += per_chunk) {
    size_t n = count - done < per_chunk ? count - done : per_chunk;
    int code = s_chunk(shm, (const char *)send + done * elem,
                       (char *)recv + done * elem, n, dtype, op, type, mpi_op);
    if (code != MPI_SUCCESS)
      return code;
  }
  return MPI_SUCCESS;
}

/* Whether the window fits in /dev/shm, where Open MPI backs it: a window
 * larger than the free space there (a container's default /dev/shm is
 * 64 MB) is not refused, its pages fault later and the job hangs. Twice the
 * size, for the transport's own segments beside it. */
static int s_fits(size_t bytes)
{
  struct statvfs fs;
  if (statvfs(SHM_DIR, &fs) != 0)
    return 0;
  return (double)fs.f_bavail * (double)fs.f_frsize >= 2.0 * (double)bytes;
}

/* Whether every host has the same number of ranks (the slices must line up
 * across hosts), some host more than one (else nothing to share), and every
 * host room for its window: the same answer on every rank. */
static int s_worth_it(MPI_Comm world, int host_size, int fits)
{
  int mine[3] = {host_size, -host_size, fits ? 0 : 1}, agreed[3];
  if (MPI_Allreduce(mine, agreed, 3, MPI_INT, MPI_MAX, world) != MPI_SUCCESS)
    return 0;
  return agreed[0] == -agreed[1] && agreed[0] > 1 && agreed[2] == 0;
}

static void s_free_comms(herd_mpi_shm_t *shm)
{
  if (shm->host != MPI_COMM_NULL)
    MPI_Comm_free(&shm->host);
  if (shm->cross != MPI_COMM_NULL)
    MPI_Comm_free(&shm->cross);
}

herd_mpi_shm_t *herd_mpi_shm_new(MPI_Comm world, size_t buffer_bytes)
{
  herd_mpi_shm_t *shm = calloc(1, sizeof *shm);
  if (!shm)
    return NULL;
  shm->host = shm->cross = MPI_COMM_NULL;
  shm->win = MPI_WIN_NULL;
  int rank = 0, world_size = 1;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &world_size);
  if (MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                          &shm->host) != MPI_SUCCESS)
    goto fail;
  MPI_Comm_set_errhandler(shm->host, MPI_ERRORS_RETURN);
  MPI_Comm_rank(shm->host, &shm->host_rank);
  MPI_Comm_size(shm->host, &shm->host_size);
  shm->region_bytes = (buffer_bytes + SHM_ALIGN - 1) / SHM_ALIGN * SHM_ALIGN;
  size_t total = s_slots_bytes(shm) + (size_t)shm->host_size * shm->region_bytes;
  if (!s_worth_it(world, shm->host_size, s_fits(total)))
    goto fail;
  if (shm->host_size < world_size) {
    if (MPI_Comm_split(world, shm->host_rank, rank, &shm->cross) !=
        MPI_SUCCESS)
      goto fail;
    MPI_Comm_set_errhandler(shm->cross, MPI_ERRORS_RETURN);
  }
  /* Host rank 0 allocates the whole segment, so the slots are contiguous. */
  MPI_Aint bytes = shm->host_rank == 0 ? (MPI_Aint)total : 0;
  char *mine = NULL;
  MPI_Aint size = 0;
  int disp = 0;
  int ok = MPI_Win_allocate_shared(bytes, 1, MPI_INFO_NULL, shm->host, &mine,
                                   &shm->win) == MPI_SUCCESS;
  if (ok) {
    MPI_Win_set_errhandler(shm->win, MPI_ERRORS_RETURN);
    ok = MPI_Win_shared_query(shm->win, 0, &size, &disp, &shm->base) ==
             MPI_SUCCESS &&
         (size_t)size >= total;
  }
  /* All or none: a rank that could not map the window must not be the only
   * one calling MPI_Allreduce. */
  int all_ok = 0;
  if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, world) != MPI_SUCCESS ||
      !all_ok)
    goto fail;
  /* One passive epoch for the window's life: MPI_Win_sync is then legal. */
  MPI_Win_lock_all(MPI_MODE_NOCHECK, shm->win);
  return shm;
fail:
  if (shm->win != MPI_WIN_NULL)
    MPI_Win_free(&shm->win);
  s_free_comms(shm);
  free(shm);
  return NULL;
}

void herd_mpi_shm_destroy(herd_mpi_shm_t *shm)
{
  if (!shm)
    return;
  MPI_Win_unlock_all(shm->win);
  MPI_Win_free(&shm->win);
  s_free_comms(shm);
  free(shm);
}
