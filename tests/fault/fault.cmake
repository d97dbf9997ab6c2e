# Checkpoint fault-injection acceptance tests (label fault): kill -9 during
# saves, byte flips, a full disk, h5py interop, resume equivalence and
# resharding. Needs the herd_data fixture from tests/integration/launch.cmake.
add_executable(ckpt_fault ${CMAKE_CURRENT_LIST_DIR}/ckpt_fault.c)
target_link_libraries(ckpt_fault PRIVATE herd_checkpoint)
foreach(case kill9 corrupt enospc h5py resume_equiv reshard)
  add_test(NAME fault_ckpt_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/ckpt_tests.sh ${CMAKE_BINARY_DIR}/bin
            ${HERD_TEST_DATA} ${case})
  set_tests_properties(fault_ckpt_${case} PROPERTIES LABELS fault TIMEOUT 300
    SKIP_RETURN_CODE 77 FIXTURES_REQUIRED herd_data)
endforeach()

# Elastic training under kill -9 (issue 5): gloo workers, local launcher.
add_test(NAME fault_elastic_baseline
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/elastic.sh ${CMAKE_BINARY_DIR}/bin
          ${HERD_TEST_DATA} baseline)
set_tests_properties(fault_elastic_baseline PROPERTIES LABELS fault TIMEOUT 300
  FIXTURES_REQUIRED herd_data FIXTURES_SETUP elastic_baseline)
foreach(case kill_random kill_rank0 kill_two kill_in_reconfig kill_in_save
             newcomer kill_coord below_min mpirun_gloo mpi_restart hung
             hung_compute no_false_alarm)
  add_test(NAME fault_elastic_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/elastic.sh ${CMAKE_BINARY_DIR}/bin
            ${HERD_TEST_DATA} ${case})
  set_tests_properties(fault_elastic_${case} PROPERTIES LABELS fault
    TIMEOUT 300 FIXTURES_REQUIRED "herd_data;elastic_baseline")
endforeach()

# Bitwise reproducibility with --deterministic (issue 9).
foreach(case world_sizes backends faults resume kernels)
  add_test(NAME fault_determinism_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/determinism.sh ${CMAKE_BINARY_DIR}/bin
            ${HERD_TEST_DATA} ${case})
  set_tests_properties(fault_determinism_${case} PROPERTIES LABELS fault
    TIMEOUT 600 FIXTURES_REQUIRED herd_data)
endforeach()
include(${PROJECT_SOURCE_DIR}/bench/chaos/chaos.cmake)
