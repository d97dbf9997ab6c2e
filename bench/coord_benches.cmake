# Coordinator benches (issue 3): coord_fault (kill -9 -> member_failed
# latency) and coord_scale (CPU, latency, memory at 1k-10k simulated
# workers, formation of 4,096). ctest runs their --quick modes (label
# bench); the full runs and how to read them: bench/README.md.
add_executable(coord_fault ${CMAKE_CURRENT_LIST_DIR}/coord_fault.c
  ${PROJECT_SOURCE_DIR}/tests/integration/test_proc.c)
target_include_directories(coord_fault PRIVATE ${PROJECT_SOURCE_DIR}/tests/integration)
target_link_libraries(coord_fault PRIVATE herd_common PkgConfig::JANSSON)
target_compile_definitions(coord_fault PRIVATE
  HERD_BIN="$<TARGET_FILE:herd_cli>"
  WORKER_BIN="$<TARGET_FILE:test_coord_worker>")
add_dependencies(coord_fault herd_cli test_coord_worker)
add_executable(coord_scale ${CMAKE_CURRENT_LIST_DIR}/coord_scale.c)
target_link_libraries(coord_scale PRIVATE herd_coord herd_proto herd_common Threads::Threads)
add_test(NAME bench_coord_fault COMMAND coord_fault --quick
  --out ${CMAKE_BINARY_DIR}/coord_fault.json)
add_test(NAME bench_coord_scale COMMAND coord_scale --quick
  --out ${CMAKE_BINARY_DIR}/coord_scale.json)
set_tests_properties(bench_coord_fault bench_coord_scale PROPERTIES
  LABELS bench TIMEOUT 300)
