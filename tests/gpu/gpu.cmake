# GPU tests (label gpu): skip with a message (exit 77) where no GPU exists.
if(HERD_HAVE_CUDA)
  add_executable(test_nccl ${CMAKE_CURRENT_LIST_DIR}/test_nccl.c)
  target_include_directories(test_nccl SYSTEM PRIVATE ${HERD_CUDA_ROOT}/include)
  target_link_libraries(test_nccl PRIVATE herd_collectives)
  # One rank per GPU, and never fewer than 2 where 2 GPUs exist (NCCL
  # refuses two ranks on one GPU): the script says plainly when only 1 ran.
  add_test(NAME gpu_nccl COMMAND ${CMAKE_CURRENT_LIST_DIR}/nccl.sh
    $<TARGET_FILE:test_nccl>)
  set_tests_properties(gpu_nccl PROPERTIES LABELS gpu TIMEOUT 300
    SKIP_RETURN_CODE 77 ENVIRONMENT "${HERD_TEST_MPI_ENV}")
endif()
# herd-train --device cuda: the CUDA model and optimizer against the CPU ones
# (same params and batch), and a 200-step training run under herd run
# checked for accuracy against the same run on the CPU. Where no GPU exists
# the run checks that --device cuda fails with one clear line, then skips.
if(HERD_HAVE_CUDA_TRAIN)
  add_executable(test_mlp_cuda ${CMAKE_CURRENT_LIST_DIR}/test_mlp_cuda.c)
  target_link_libraries(test_mlp_cuda PRIVATE herd_train_cuda)
  add_test(NAME gpu_mlp_cuda COMMAND test_mlp_cuda)
  set_tests_properties(gpu_mlp_cuda PROPERTIES LABELS gpu TIMEOUT 300
    SKIP_RETURN_CODE 77)
  # No GPU needed: cuBLAS is opened on demand (dlopen) and must load.
  add_executable(test_cublas_load ${CMAKE_CURRENT_LIST_DIR}/test_cublas_load.c)
  target_link_libraries(test_cublas_load PRIVATE herd_train_cuda)
  add_test(NAME cuda_blas_loads COMMAND test_cublas_load)
  set_tests_properties(cuda_blas_loads PROPERTIES LABELS integration TIMEOUT 60)
endif()
add_test(NAME gpu_train_cuda
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/train_cuda.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA})
set_tests_properties(gpu_train_cuda PROPERTIES LABELS gpu TIMEOUT 900
  SKIP_RETURN_CODE 77 FIXTURES_REQUIRED herd_data)
