# The version matrix: for every shared CPython 3.9-3.13 build found under
# $(pyenv root)/versions (or PYENV_ROOT, or ~/.pyenv), build the Python-layer
# tests against it and run them. Prints "version matrix skipped" (the CTest
# SKIP_REGULAR_EXPRESSION) when none is found.
#
#   cmake -DPYCROSCOPE_SOURCE_DIR=... -DWORK_DIR=... [-DSKIP_VERSIONS=3.11] -P run_matrix.cmake
#
# Then builds the pycroscope command against it (PYCROSCOPE_PYTHON_PREFIX) and
# profiles a script with it.
#
# SKIP_VERSIONS: minor versions (3.X) tested elsewhere, such as the one the
# main build links. Built at -O1: the matrix checks the C API and behaviour
# per version, not speed, and -O1 compiles in about two thirds of the time.
#
# Known limits are excluded per version, each with its reason, so that
# everything else must pass exactly.
cmake_minimum_required(VERSION 3.16) # IN_LIST (policy CMP0057) in script mode

if(NOT PYCROSCOPE_SOURCE_DIR OR NOT WORK_DIR)
  message(FATAL_ERROR "set PYCROSCOPE_SOURCE_DIR and WORK_DIR")
endif()

set(_root "$ENV{PYENV_ROOT}")
if(NOT _root)
  execute_process(COMMAND pyenv root OUTPUT_VARIABLE _root OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    set(_root "$ENV{HOME}/.pyenv")
  endif()
endif()

set(_found "")
foreach(minor 9 10 11 12 13)
  if("3.${minor}" IN_LIST SKIP_VERSIONS)
    message("Python 3.${minor}: skipped (SKIP_VERSIONS)")
    continue()
  endif()
  file(GLOB _prefixes LIST_DIRECTORIES true "${_root}/versions/3.${minor}.*")
  foreach(prefix IN LISTS _prefixes)
    if(EXISTS "${prefix}/lib/libpython3.${minor}.so" AND EXISTS "${prefix}/include/python3.${minor}/Python.h")
      list(APPEND _found "3.${minor}|${prefix}")
      break()
    endif()
  endforeach()
endforeach()
if(NOT _found)
  message("no shared CPython 3.9-3.13 under ${_root}/versions (besides SKIP_VERSIONS '${SKIP_VERSIONS}'): version matrix skipped")
  return()
endif()

include(ProcessorCount)
ProcessorCount(_jobs)
if(_jobs EQUAL 0)
  set(_jobs 2)
endif()

set(_failed "")
foreach(entry IN LISTS _found)
  string(REPLACE "|" ";" entry "${entry}")
  list(GET entry 0 version)
  list(GET entry 1 prefix)
  set(_filter "*")
  set(_excluded "")
  # Known gaps, excluded so that everything else must keep passing. Each is
  # listed as open work in the README's version table.
  if(_excluded)
    list(JOIN _excluded ":" _excluded)
    set(_filter "*-${_excluded}")
  endif()
  message("==== Python ${version} (${prefix}) filter ${_filter}")
  set(_dir "${WORK_DIR}/py${version}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${PYCROSCOPE_SOURCE_DIR}/tests/version_matrix" -B "${_dir}"
                          -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" -DPYTHON_PREFIX=${prefix} -DPYTHON_VERSION=${version}
                          -DPYCROSCOPE_SOURCE_DIR=${PYCROSCOPE_SOURCE_DIR}
                  RESULT_VARIABLE _rc)
  if(_rc EQUAL 0)
    execute_process(COMMAND "${CMAKE_COMMAND}" --build "${_dir}" -j ${_jobs} RESULT_VARIABLE _rc)
  endif()
  if(_rc EQUAL 0)
    execute_process(COMMAND "${_dir}/matrix_tests" --gtest_color=no "--gtest_filter=${_filter}"
                    WORKING_DIRECTORY "${_dir}" RESULT_VARIABLE _rc)
  endif()
  if(NOT _rc EQUAL 0)
    list(APPEND _failed "${version}")
    continue()
  endif()
  # The command for this version (PYCROSCOPE_PYTHON_PREFIX), run on a script.
  # -O0: this checks that it builds and runs, not its speed.
  set(_cli_dir "${WORK_DIR}/cli${version}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${PYCROSCOPE_SOURCE_DIR}" -B "${_cli_dir}"
                          -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O0 -DNDEBUG"
                          -DPYCROSCOPE_PYTHON_PREFIX=${prefix} -DPYCROSCOPE_BUILD_TESTS=OFF
                          -DPYCROSCOPE_BUILD_EXAMPLES=OFF -DPYCROSCOPE_INSTALL=OFF -DPYCROSCOPE_WERROR=ON
                  RESULT_VARIABLE _rc)
  if(_rc EQUAL 0)
    execute_process(COMMAND "${CMAKE_COMMAND}" --build "${_cli_dir}" --target pycroscope -j ${_jobs}
                    RESULT_VARIABLE _rc)
  endif()
  if(_rc EQUAL 0)
    file(WRITE "${_cli_dir}/smoke.py"
         "import sys, threading\n"
         "def work(n):\n    return sum(i * i for i in range(n))\n"
         "t = threading.Thread(target=work, args=(20000,), name='worker')\nt.start(); t.join()\n"
         "print('smoke', sys.version_info[:2], work(1000))\n")
    execute_process(COMMAND "${_cli_dir}/pycroscope" profile --output-dir "${_cli_dir}/out" "${_cli_dir}/smoke.py"
                    OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
    string(REPLACE "." ", " _pair "${version}")
    if(version VERSION_GREATER_EQUAL 3.12)
      set(_backend "backend monitoring")
    else()
      set(_backend "backend eval_frame")
    endif()
    string(FIND "${_out}" "smoke (${_pair}) 332833500" _printed)
    string(FIND "${_err}" "${_backend}" _has_backend) # the summary is on stderr
    if(NOT _rc EQUAL 0 OR _printed EQUAL -1 OR _has_backend EQUAL -1 OR NOT EXISTS "${_cli_dir}/out/session.json")
      message("pycroscope profile on Python ${version} failed (exit ${_rc}; expected the script's line and "
              "'${_backend}'):\n${_out}\n${_err}")
      set(_rc 1)
    else()
      message("pycroscope profile on Python ${version}: ok (${_backend})")
    endif()
  endif()
  if(NOT _rc EQUAL 0)
    list(APPEND _failed "${version}")
  endif()
endforeach()
if(_failed)
  message(FATAL_ERROR "version matrix failed for Python ${_failed}")
endif()
message("version matrix passed: ${_found}")
