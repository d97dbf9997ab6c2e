# checkpoint/: HDF5 checkpoint format, commit protocol, verify, retention.
herd_unit_test(test_ckpt SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ckpt.c LIBS herd_checkpoint)
if(HERD_SANITIZE)
  # libhdf5-internal leaks on damaged files, see the file's comment.
  set_tests_properties(test_ckpt PROPERTIES ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp")
endif()
