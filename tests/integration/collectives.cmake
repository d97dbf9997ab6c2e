# herd_comm over real MPI processes, 1..4 ranks on loopback.
find_program(HERD_MPIRUN mpirun REQUIRED)
# Options every test's mpirun uses: oversubscribe the 2-core CI box, keep
# traffic on loopback/shared memory, and yield instead of busy-polling.
set(HERD_TEST_MPIRUN ${HERD_MPIRUN} --oversubscribe --bind-to none
    --mca btl self,vader --mca btl_vader_single_copy_mechanism none
    --mca mpi_yield_when_idle 1 --mca oob_tcp_if_include lo)
set(HERD_TEST_MPI_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_rmaps_base_oversubscribe=1)

add_executable(test_comm ${CMAKE_CURRENT_LIST_DIR}/test_comm.c
  ${CMAKE_CURRENT_LIST_DIR}/test_comm_store.c)
target_include_directories(test_comm PRIVATE ${PROJECT_SOURCE_DIR}/collectives)
target_link_libraries(test_comm PRIVATE herd_collectives)
foreach(np 1 2 3 4)
  add_test(NAME comm_mpi_np${np} COMMAND ${HERD_TEST_MPIRUN} -np ${np} $<TARGET_FILE:test_comm> mpi)
  set_tests_properties(comm_mpi_np${np} PROPERTIES LABELS integration TIMEOUT 300
    ENVIRONMENT "${HERD_TEST_MPI_ENV}")
endforeach()

# A /dev/shm too small for the host window (a container's): the mpi
# backend must see it and keep to MPI_Allreduce, not hang on a window whose
# pages cannot be backed. A private mount namespace (root, as CI runs).
add_test(NAME comm_mpi_small_shm COMMAND unshare -m sh -c
  "mount -t tmpfs -o size=6m tmpfs /dev/shm && exec \"$@\"" sh
  ${HERD_TEST_MPIRUN} -np 2 -x HERD_TEST_NO_BUFFER=1 $<TARGET_FILE:test_comm> mpi 100000)
set_tests_properties(comm_mpi_small_shm PROPERTIES LABELS integration TIMEOUT 120
  ENVIRONMENT "${HERD_TEST_MPI_ENV}")

# gloo: test_comm forks its ranks and they rendezvous through a file store.
if(HERD_HAVE_GLOO)
  foreach(np 1 2 3 4)
    add_test(NAME comm_gloo_np${np} COMMAND test_comm gloo -n ${np})
    set_tests_properties(comm_gloo_np${np} PROPERTIES LABELS integration
      TIMEOUT 300 SKIP_RETURN_CODE 77)
  endforeach()
endif()

# Fault injection (label fault): kill -9 a rank mid all-reduce; abort from a
# watchdog thread. Real forked processes, loopback only.
if(HERD_HAVE_GLOO)
  add_executable(test_comm_fault ${CMAKE_CURRENT_LIST_DIR}/test_comm_fault.c
    ${CMAKE_CURRENT_LIST_DIR}/test_comm_store.c)
  target_include_directories(test_comm_fault PRIVATE ${PROJECT_SOURCE_DIR}/collectives)
  target_link_libraries(test_comm_fault PRIVATE herd_collectives Threads::Threads)
  foreach(case kill abort bystander)
    add_test(NAME comm_gloo_fault_${case} COMMAND test_comm_fault ${case})
    set_tests_properties(comm_gloo_fault_${case} PROPERTIES LABELS fault
      TIMEOUT 120 SKIP_RETURN_CODE 77)
  endforeach()
endif()

# herd-train --backend mpi|gloo: same final accuracy (needs the imported
# Fashion-MNIST file that launch.cmake's fixture makes).
if(HERD_HAVE_GLOO)
  add_test(NAME comm_train_backends COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_comm_train.sh
    ${CMAKE_BINARY_DIR}/bin ${CMAKE_BINARY_DIR}/test-data/fashion-mnist.h5)
  set_tests_properties(comm_train_backends PROPERTIES LABELS integration
    TIMEOUT 600 FIXTURES_REQUIRED herd_data)
endif()
