# GPU tests (label gpu): skip with a message (exit 77) where no GPU exists.
if(HERD_HAVE_CUDA)
  add_executable(test_nccl ${CMAKE_CURRENT_LIST_DIR}/test_nccl.c)
  target_include_directories(test_nccl SYSTEM PRIVATE ${HERD_CUDA_ROOT}/include)
  target_link_libraries(test_nccl PRIVATE herd_collectives)
  add_test(NAME gpu_nccl_np1 COMMAND ${HERD_TEST_MPIRUN} -np 1 $<TARGET_FILE:test_nccl>)
  set_tests_properties(gpu_nccl_np1 PROPERTIES LABELS gpu TIMEOUT 300
    SKIP_RETURN_CODE 77 ENVIRONMENT "${HERD_TEST_MPI_ENV}")
endif()
