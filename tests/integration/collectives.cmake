# herd_comm over real MPI processes, 1..4 ranks on loopback.
find_program(HERD_MPIRUN mpirun REQUIRED)
# Options every test's mpirun uses: oversubscribe the 2-core CI box, keep
# traffic on loopback/shared memory, and yield instead of busy-polling.
set(HERD_TEST_MPIRUN ${HERD_MPIRUN} --oversubscribe --bind-to none
    --mca btl self,vader --mca btl_vader_single_copy_mechanism none
    --mca mpi_yield_when_idle 1 --mca oob_tcp_if_include lo)
set(HERD_TEST_MPI_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_rmaps_base_oversubscribe=1)

add_executable(test_comm ${CMAKE_CURRENT_LIST_DIR}/test_comm.c)
target_include_directories(test_comm PRIVATE ${PROJECT_SOURCE_DIR}/collectives)
target_link_libraries(test_comm PRIVATE herd_collectives)
foreach(np 1 2 3 4)
  add_test(NAME comm_mpi_np${np} COMMAND ${HERD_TEST_MPIRUN} -np ${np} $<TARGET_FILE:test_comm>)
  set_tests_properties(comm_mpi_np${np} PROPERTIES LABELS integration TIMEOUT 300
    ENVIRONMENT "${HERD_TEST_MPI_ENV}")
endforeach()
