# Launching like clusters do (tests/integration/test_launch.sh): plain mpirun
# against `herd coord` (-np, hostfile, -H), herd run --hostfile/-H, launcher
# exit codes, a Kubernetes Indexed Job pod's environment, DNS retry.
foreach(case mpirun_external mpirun_hostfile herd_run_hosts bad_launch k8s_env dns_retry)
  add_test(NAME launch_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_launch.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA} ${case})
  set_tests_properties(launch_${case} PROPERTIES LABELS integration TIMEOUT 300
    FIXTURES_REQUIRED herd_data)
endforeach()
