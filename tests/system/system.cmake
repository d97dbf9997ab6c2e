# System tests: whole jobs with default settings (minutes, not seconds).
add_test(NAME system_world_sizes
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/world_sizes.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA})
set_tests_properties(system_world_sizes PROPERTIES LABELS system TIMEOUT 1800
  FIXTURES_REQUIRED herd_data)
# A single-node Slurm (installed and started by the test; fails when it
# cannot start): srun --mpi=pmix, sbatch pre-emption + requeue, --no-kill.
add_test(NAME system_slurm
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/slurm.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA})
set_tests_properties(system_slurm PROPERTIES LABELS system TIMEOUT 600
  FIXTURES_REQUIRED herd_data RESOURCE_LOCK slurm_cluster)
# Three Slurm nodes on this one machine (one slurmd each, slurmd -N): srun -N 3
# --mpi=pmix herd-train (gloo) forms one world of 3 across the three nodes.
# The lock keeps it apart from system_slurm (that test pgreps herd-train).
add_test(NAME system_slurm_multinode
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/slurm_multinode.sh ${CMAKE_BINARY_DIR}/bin ${HERD_TEST_DATA})
set_tests_properties(system_slurm_multinode PROPERTIES LABELS "system;cluster" TIMEOUT 600
  FIXTURES_REQUIRED herd_data RESOURCE_LOCK slurm_cluster)
# Kubernetes manifests: kustomize render + offline schema validation.
add_test(NAME system_k8s_manifests
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/k8s.sh ${PROJECT_SOURCE_DIR}/k8s ${CMAKE_BINARY_DIR}/k8s-validate)
set_tests_properties(system_k8s_manifests PROPERTIES LABELS system TIMEOUT 600)
