# checkpoint/: HDF5 checkpoint format, commit protocol, verify, retention.
herd_unit_test(test_ckpt SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ckpt.c LIBS herd_checkpoint)
herd_unit_test(test_ckpt_writer SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ckpt_writer.c LIBS herd_checkpoint)
if(HERD_SANITIZE)
  # libhdf5-internal leaks on damaged files, see that file's comment. Full
  # unwinding: libhdf5 has no frame pointers, so the fast unwinder never
  # reaches the frame the suppression names.
  set_tests_properties(test_ckpt test_ckpt_writer PROPERTIES ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp:fast_unwind_on_malloc=0")
endif()
