# bench/checkpoint: sync save vs dd conv=fsync, async stall, load, hash.
# ctest runs the quick mode (label bench); the full table (100M params):
#   build/bin/bench_checkpoint --full --dir bench-ckpt-tmp --out-dir bench/results
add_executable(bench_checkpoint ${CMAKE_CURRENT_LIST_DIR}/checkpoint.c)
target_include_directories(bench_checkpoint PRIVATE ${PROJECT_SOURCE_DIR}/checkpoint)
target_link_libraries(bench_checkpoint PRIVATE herd_checkpoint)
add_test(NAME bench_checkpoint_quick COMMAND bench_checkpoint --quick
  --dir ${CMAKE_BINARY_DIR}/bench-ckpt-tmp --out-dir ${CMAKE_BINARY_DIR}/bench-results)
set_tests_properties(bench_checkpoint_quick PROPERTIES LABELS bench TIMEOUT 300)
