# libFuzzer targets (-DHERD_FUZZ=ON with clang; tests/fuzz/run.sh builds them
# in build-fuzz with the whole tree instrumented and runs each for a bounded
# time from the seed corpus that fuzz_seeds writes).
if(HERD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "HERD_FUZZ needs clang (CC=clang)")
  endif()
  # The coordinator's decoder and handlers; the file loaders: checkpoints
  # (the reader's internals for resealing) and datasets.
  foreach(target fuzz_codec fuzz_coord fuzz_ckpt fuzz_data)
    add_executable(${target} ${CMAKE_CURRENT_LIST_DIR}/${target}.c)
    target_include_directories(${target} PRIVATE
      ${PROJECT_SOURCE_DIR}/coordinator ${PROJECT_SOURCE_DIR}/checkpoint)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${target} PRIVATE herd_coord herd)
  endforeach()
  add_executable(fuzz_seeds ${CMAKE_CURRENT_LIST_DIR}/fuzz_seeds.c)
  # libherd pulls in C++ (gloo), so the link is clang++'s, which does not
  # see the C flags' sanitizers.
  target_link_options(fuzz_seeds PRIVATE -fsanitize=address,undefined)
  target_link_libraries(fuzz_seeds PRIVATE herd herd_proto herd_common)
endif()
