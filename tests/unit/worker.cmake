# Reference trainer: sampler, model, optimizer (herd_train_core) and the
# Fashion-MNIST datasets (libherd's data.c).
set(HERD_WORKER_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

herd_unit_test(test_sampler SOURCES ${HERD_WORKER_TEST_DIR}/test_sampler.c
  LIBS herd_train_core)
herd_unit_test(test_mlp SOURCES ${HERD_WORKER_TEST_DIR}/test_mlp.c
  LIBS herd_train_core)
herd_unit_test(test_det_gemm SOURCES ${HERD_WORKER_TEST_DIR}/test_det_gemm.c
  LIBS herd_train_core)
herd_unit_test(test_optim SOURCES ${HERD_WORKER_TEST_DIR}/test_optim.c
  LIBS herd_train_core)
herd_unit_test(test_step_tail SOURCES ${HERD_WORKER_TEST_DIR}/test_step_tail.c
  LIBS herd_train_core)
herd_unit_test(test_data SOURCES ${HERD_WORKER_TEST_DIR}/test_data.c
  LIBS herd)
# herd-train's resume checks (train_resume.c alone; the config JSON comes
# from a stand-in in the test).
herd_unit_test(test_train_resume
  SOURCES ${HERD_WORKER_TEST_DIR}/test_train_resume.c
          ${PROJECT_SOURCE_DIR}/trainer/train_resume.c
  LIBS herd_train_core herd PkgConfig::JANSSON)
