# Security tests (label security): signed checkpoints against a writer
# without the key, tokens from files, no secret in any argv.
add_executable(ckpt_tamper ${CMAKE_CURRENT_LIST_DIR}/ckpt_tamper.c)
target_include_directories(ckpt_tamper PRIVATE ${PROJECT_SOURCE_DIR}/checkpoint)
target_link_libraries(ckpt_tamper PRIVATE herd_checkpoint)
add_executable(curve_attack ${CMAKE_CURRENT_LIST_DIR}/curve_attack.c)
target_link_libraries(curve_attack PRIVATE herd_proto herd_common)
foreach(case ckpt_hmac token_file no_secret_in_argv http_exposed curve_handshake
    curve_hijack curve_capture)
  add_test(NAME security_${case}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/security.sh ${CMAKE_BINARY_DIR}/bin
            ${HERD_TEST_DATA} ${case})
  set_tests_properties(security_${case} PROPERTIES LABELS security TIMEOUT 300
    FIXTURES_REQUIRED herd_data)
endforeach()
