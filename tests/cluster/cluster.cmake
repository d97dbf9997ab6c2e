# Cluster in a box: network namespaces on a bridge stand in for hosts
# (tests/cluster/cluster.sh).  Needs root; the self-test fails, never skips.
add_test(NAME cluster_selftest COMMAND ${CMAKE_CURRENT_LIST_DIR}/selftest.sh)
set_tests_properties(cluster_selftest PROPERTIES LABELS cluster TIMEOUT 300)
# Whole jobs across hosts (tests/cluster/jobs.sh): every launch path, then
# host-level faults. `standalone` measures the fault-free accuracy the fault
# cases compare with (fixture cluster_baseline).
add_test(NAME cluster_standalone
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/jobs.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA} standalone)
set_tests_properties(cluster_standalone PROPERTIES LABELS cluster TIMEOUT 600
  FIXTURES_REQUIRED herd_data FIXTURES_SETUP cluster_baseline)
foreach(case mpirun_hosts mpirun_collectives k8s k8s_wrong_world)
  add_test(NAME cluster_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/jobs.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA} ${case})
  set_tests_properties(cluster_${case} PROPERTIES LABELS cluster TIMEOUT 600
    FIXTURES_REQUIRED herd_data)
endforeach()
foreach(case host_death k8s_host_death mpirun_host_death link_cut coord_cut_short
             coord_cut_long straggler)
  add_test(NAME cluster_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/jobs.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA} ${case})
  set_tests_properties(cluster_${case} PROPERTIES LABELS "fault;cluster" TIMEOUT 600
    FIXTURES_REQUIRED "herd_data;cluster_baseline")
endforeach()
