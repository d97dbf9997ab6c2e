# Coordinator + worker runtime on loopback: real ROUTER, real DEALERs, forked
# worker processes for the failure tests.
herd_unit_test(test_coord SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_coord.c
  LIBS herd_coord herd PkgConfig::JANSSON LABEL integration)

# Elastic coordinator with real processes: `herd coord` (killed and
# restarted) and test_coord_worker processes (kill -9'd).
add_executable(test_coord_worker ${CMAKE_CURRENT_LIST_DIR}/test_coord_worker.c)
target_link_libraries(test_coord_worker PRIVATE herd)
herd_unit_test(test_coord_elastic
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_coord_elastic.c
          ${CMAKE_CURRENT_LIST_DIR}/test_proc.c
  LIBS herd_coord herd PkgConfig::JANSSON LABEL fault)
target_compile_definitions(test_coord_elastic PRIVATE
  HERD_BIN="$<TARGET_FILE:herd_cli>"
  WORKER_BIN="$<TARGET_FILE:test_coord_worker>")
add_dependencies(test_coord_elastic herd_cli test_coord_worker)
