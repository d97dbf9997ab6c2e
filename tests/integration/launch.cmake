# `herd run` end to end: real coordinator, mpirun workers, HDF5 files.
set(HERD_TEST_DATA ${CMAKE_BINARY_DIR}/test-data/fashion-mnist.h5)
add_test(NAME import_fashion_mnist
  COMMAND ${CMAKE_COMMAND} -E env $<TARGET_FILE:herd_cli> data import fashion-mnist --out ${HERD_TEST_DATA})
set_tests_properties(import_fashion_mnist PROPERTIES LABELS integration TIMEOUT 120
  FIXTURES_SETUP herd_data)
foreach(case run_short run_resume run_sigint bad_input resume_checks nonfinite
    data_shape sigpipe options_reach_workers parent_death parent_death_mpirun)
  add_test(NAME herd_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_tests.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA} ${case})
  set_tests_properties(herd_${case} PROPERTIES LABELS integration TIMEOUT 300
    FIXTURES_REQUIRED herd_data)
endforeach()
