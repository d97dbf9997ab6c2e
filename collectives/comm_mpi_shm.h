/* Private to collectives/comm_mpi.c: the all-reduce through host shared
 * memory (comm_mpi_shm.c says why and how). */
#ifndef HERD_COMM_MPI_SHM_H
#define HERD_COMM_MPI_SHM_H

#include <mpi.h>
#include <stddef.h>

#include "herd/comm.h"

typedef struct herd_mpi_shm herd_mpi_shm_t;

/* Collective over `world` (errors set to return), with the same
 * buffer_bytes everywhere (herd_comm_buffer's size, 0: none). NULL on every
 * rank when it does not pay (no host with more than one rank, or hosts with
 * different numbers of ranks) or cannot be set up: the caller then uses
 * MPI_Allreduce. */
herd_mpi_shm_t *herd_mpi_shm_new(MPI_Comm world, size_t buffer_bytes);
/* This rank's buffer_bytes in the window; NULL when none was asked for. */
void *herd_mpi_shm_buffer(herd_mpi_shm_t *shm);
/* recv = reduce(send) over every rank of `world`; send may equal recv.
 * In place inside the buffer (at the same offset on every rank) nothing is
 * copied in or out.
 * type and mpi_op are dtype and op in MPI's terms (for the hop between
 * hosts). Returns an MPI error code. */
int herd_mpi_shm_allreduce(herd_mpi_shm_t *shm, const void *send, void *recv,
                           size_t count, herd_dtype_t dtype, herd_op_t op,
                           MPI_Datatype type, MPI_Op mpi_op);
/* Collective over the host's ranks; accepts NULL. */
void herd_mpi_shm_destroy(herd_mpi_shm_t *shm);

#endif
