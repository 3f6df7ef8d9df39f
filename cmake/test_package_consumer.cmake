# CTest driver for `install_and_find_package` (cmake -P script).
# Installs the Pycroscope build tree into a temporary prefix, then configures,
# builds and runs tests/package_consumer against it with find_package().
#
# Inputs (-D...): PYCROSCOPE_SOURCE_DIR, PYCROSCOPE_BINARY_DIR, WORK_DIR,
#                 CONSUMER_GENERATOR, CONSUMER_CXX_COMPILER, CONSUMER_CXX_STANDARD, CONFIG
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
