# checkpoint/: HDF5 checkpoint format, commit protocol, verify, retention.
herd_unit_test(test_ckpt SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ckpt.c LIBS herd_checkpoint)
