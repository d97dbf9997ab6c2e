# System tests: whole jobs with default settings (minutes, not seconds).
add_test(NAME system_world_sizes
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/world_sizes.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA})
set_tests_properties(system_world_sizes PROPERTIES LABELS system TIMEOUT 1800
  FIXTURES_REQUIRED herd_data)
