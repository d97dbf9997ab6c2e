# Coordinator + worker runtime on loopback: real ROUTER, real DEALERs, forked
# worker processes for the failure tests.
herd_unit_test(test_coord SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_coord.c
  LIBS herd_coord herd PkgConfig::JANSSON LABEL integration)
