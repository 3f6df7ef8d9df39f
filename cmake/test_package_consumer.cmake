# CTest driver for `install_and_find_package` (cmake -P script).
# Installs the Pycroscope build tree into a temporary prefix, then configures,
# builds and runs tests/package_consumer against it with find_package(). When
# the build has the `pycroscope` command (EXPECT_CLI=1), the installed command
# must report EXPECT_VERSION and profile a script into a session.json.
#
# Inputs (-D...): PYCROSCOPE_SOURCE_DIR, PYCROSCOPE_BINARY_DIR, WORK_DIR,
#                 CONSUMER_GENERATOR, CONSUMER_CXX_COMPILER, CONSUMER_CXX_STANDARD, CONFIG,
#                 EXPECT_CLI, EXPECT_VERSION
cmake_minimum_required(VERSION 3.16)

foreach(var PYCROSCOPE_SOURCE_DIR PYCROSCOPE_BINARY_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "test_package_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_and_find_package: ${what} failed (${rc})\n"
                        "command: ${ARGN}\n--- stdout ---\n${out}\n--- stderr ---\n${err}")
  endif()
  message(STATUS "install_and_find_package: ${what}: ok")
endfunction()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(install_args --install "${PYCROSCOPE_BINARY_DIR}" --prefix "${prefix}")
if(DEFINED CONFIG AND NOT CONFIG STREQUAL "")
  list(APPEND install_args --config "${CONFIG}")
endif()
run_step("install" "${CMAKE_COMMAND}" ${install_args})

foreach(f include/pycroscope.hpp share/cmake/pycroscope/pycroscopeConfig.cmake
          share/cmake/pycroscope/pycroscopeConfigVersion.cmake
          share/cmake/pycroscope/pycroscopeTargets.cmake)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install_and_find_package: ${prefix}/${f} was not installed")
  endif()
endforeach()

set(configure_args -S "${PYCROSCOPE_SOURCE_DIR}/tests/package_consumer" -B "${consumer_build}"
    "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DPYCROSCOPE_EXPECTED_PREFIX=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(DEFINED CONSUMER_GENERATOR AND NOT CONSUMER_GENERATOR STREQUAL "")
  list(APPEND configure_args -G "${CONSUMER_GENERATOR}")
endif()
if(DEFINED CONSUMER_CXX_COMPILER AND NOT CONSUMER_CXX_COMPILER STREQUAL "")
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}")
endif()
if(DEFINED CONSUMER_CXX_STANDARD AND NOT CONSUMER_CXX_STANDARD STREQUAL "")
  list(APPEND configure_args "-DCMAKE_CXX_STANDARD=${CONSUMER_CXX_STANDARD}")
endif()
if(DEFINED CONFIG AND NOT CONFIG STREQUAL "")
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${CONFIG}")
endif()
run_step("configure consumer" "${CMAKE_COMMAND}" ${configure_args})

set(build_args --build "${consumer_build}")
if(DEFINED CONFIG AND NOT CONFIG STREQUAL "")
  list(APPEND build_args --config "${CONFIG}")
endif()
run_step("build consumer" "${CMAKE_COMMAND}" ${build_args})

file(GLOB_RECURSE consumer_exe "${consumer_build}/consumer" "${consumer_build}/consumer.exe")
if(NOT consumer_exe)
  message(FATAL_ERROR "install_and_find_package: consumer executable not found in ${consumer_build}")
endif()
list(GET consumer_exe 0 consumer_exe)
run_step("run consumer" "${consumer_exe}")

if(EXPECT_CLI)
  set(cli "${prefix}/bin/pycroscope")
  if(NOT EXISTS "${cli}")
    message(FATAL_ERROR "install_and_find_package: the pycroscope command was not installed at ${cli}")
  endif()
  execute_process(COMMAND "${cli}" --version RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "^pycroscope ${EXPECT_VERSION} ")
    message(FATAL_ERROR "install_and_find_package: `${cli} --version` returned ${rc} and printed\n${out}${err}"
                        "expected: pycroscope ${EXPECT_VERSION} (Python ...)")
  endif()
  string(STRIP "${out}" out)
  message(STATUS "install_and_find_package: installed command --version: ${out}")
  run_step("installed command --help" "${cli}" --help)

  # The installed command finds its libpython and standard library and profiles a script.
  set(script "${WORK_DIR}/installed_cli_script.py")
  file(WRITE "${script}" "import json\nprint(json.dumps({'sum': sum(range(1000))}))\n")
  set(outputs "${WORK_DIR}/installed_cli_outputs")
  execute_process(COMMAND "${cli}" profile --no-system --sinks json --output-dir "${outputs}" "${script}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out STREQUAL "{\"sum\": 499500}\n" OR NOT EXISTS "${outputs}/session.json")
    message(FATAL_ERROR "install_and_find_package: the installed command failed to profile ${script} (${rc})\n"
                        "--- stdout ---\n${out}\n--- stderr ---\n${err}")
  endif()
  message(STATUS "install_and_find_package: installed command profiled a script: ok")
endif()
