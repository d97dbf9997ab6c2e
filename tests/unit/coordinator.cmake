# Coordinator / wire protocol unit tests. test_proto reaches into the
# coordinator's private codec (coordinator/coord_internal.h) on purpose: the
# decoder is the attack surface and is tested directly.
herd_unit_test(test_proto SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_proto.c
  LIBS herd_coord herd)
target_include_directories(test_proto PRIVATE ${PROJECT_SOURCE_DIR}/coordinator)
# Network stragglers from link rates (coord_links.c, common/net_links.c).
herd_unit_test(test_links SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_links.c
  LIBS herd_coord herd)
target_include_directories(test_links PRIVATE ${PROJECT_SOURCE_DIR}/coordinator)
