# Monitoring (issue 7): HTTP endpoints, herd top, timeline, alerts (label
# integration + monitor), and the checks against real operator tools,
# promtool, Prometheus, the Pushgateway and headless Chromium (label
# monitor; each installs its Debian package when missing and running as
# root, else is skipped). One process per case, each bounded in time.
set(HERD_MONITOR_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/monitor_tests.sh)
set(HERD_MONITOR_DATA ${CMAKE_BINARY_DIR}/test-data/fashion-mnist.h5)
foreach(case endpoints alert_webhook promtool_check prometheus_rate pushgateway page)
  add_test(NAME monitor_${case}
    COMMAND ${HERD_MONITOR_SCRIPT} ${CMAKE_BINARY_DIR}/bin ${HERD_MONITOR_DATA} ${case})
  if(case STREQUAL "endpoints" OR case STREQUAL "alert_webhook")
    set(labels "integration;monitor")
  else()
    set(labels "monitor")
  endif()
  set_tests_properties(monitor_${case} PROPERTIES LABELS "${labels}" TIMEOUT 300
    FIXTURES_REQUIRED herd_data SKIP_RETURN_CODE 77)
endforeach()

# Unit: timeline JSON, metrics text, /status JSON, address parsing.
herd_unit_test(test_monitor SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_monitor.c
  ${PROJECT_SOURCE_DIR}/trainer/timeline.c
  LIBS herd_coord herd_common PkgConfig::JANSSON)
target_include_directories(test_monitor PRIVATE ${PROJECT_SOURCE_DIR}/coordinator
  ${PROJECT_SOURCE_DIR}/trainer)
