# Rank discovery and Slurm node lists (worker/env.c, part of libherd).
herd_unit_test(test_env SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_env.c LIBS herd)
