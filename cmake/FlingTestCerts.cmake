# The test CA and certificates (scripts/test-certs.sh), made at build time
# into ${FLING_TEST_CERTS_DIR}, again when the script changes. A program
# that reads them calls fling_test_certs(<target>): it is built after them
# and gets the folder as FL_TEST_CERTS. One rule for tests/ and fuzz/.
include_guard(GLOBAL)

find_program(FLING_BASH bash)
set(FLING_TEST_CERTS_DIR ${CMAKE_BINARY_DIR}/tests/certs)
set(FLING_TEST_CERT_FILES)
foreach(n ca server client node other-ca other-client self-signed expired)
  list(APPEND FLING_TEST_CERT_FILES ${FLING_TEST_CERTS_DIR}/${n}.crt
                                    ${FLING_TEST_CERTS_DIR}/${n}.key)
endforeach()
add_custom_command(OUTPUT ${FLING_TEST_CERT_FILES}
  COMMAND ${FLING_BASH} ${PROJECT_SOURCE_DIR}/scripts/test-certs.sh
          ${FLING_TEST_CERTS_DIR} > /dev/null
  DEPENDS ${PROJECT_SOURCE_DIR}/scripts/test-certs.sh
  COMMENT "Making the test certificates in ${FLING_TEST_CERTS_DIR}"
  VERBATIM)
add_custom_target(fling_test_certs DEPENDS ${FLING_TEST_CERT_FILES})

function(fling_test_certs target)
  add_dependencies(${target} fling_test_certs)
  target_compile_definitions(${target} PRIVATE
                             FL_TEST_CERTS="${FLING_TEST_CERTS_DIR}")
endfunction()
