# Pycroscope amalgamation script: builds single_include/pycroscope.hpp from include/.
#
# Usage (plain script mode, no configure step needed):
#   cmake -P cmake/amalgamate.cmake                      # MODE=generate (default)
#   cmake -DMODE=check -P cmake/amalgamate.cmake         # fail if single_include/ is stale
#   cmake -DPYCROSCOPE_SOURCE_DIR=/path/to/repo -DMODE=... -P cmake/amalgamate.cmake
#
# Optional: -DOUTPUT=<file> overrides the output file in MODE=generate
# (default: ${PYCROSCOPE_SOURCE_DIR}/single_include/pycroscope.hpp).
#
# Rules:
#  * Input is include/pycroscope.hpp.
#  * Every line of the form   #include "pycroscope/..."   (quoted, path relative to
#    include/) is replaced by the recursively amalgamated content of that file.
#    Each file is inlined at most once (#pragma once semantics); later include lines
#    of an already inlined file are dropped.
#  * `#pragma once` lines are dropped from all inlined files (and from the umbrella);
#    the output gets a single `#pragma once` after the banner.
#  * Everything else (system includes, #if blocks around includes, comments, empty
#    lines, trailing backslashes, ...) is copied byte for byte.
#  * Deterministic: no timestamps, no absolute paths in the output.
#
# Implementation note: CMake lists split on ';' and treat '[' ']' and '\' specially,
# so the file content is encoded with control-character placeholders before it is
# split into lines, and decoded again only when the final output is written.

cmake_minimum_required(VERSION 3.16)

if(NOT DEFINED PYCROSCOPE_SOURCE_DIR OR PYCROSCOPE_SOURCE_DIR STREQUAL "")
  get_filename_component(PYCROSCOPE_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()
if(NOT DEFINED MODE OR MODE STREQUAL "")
  set(MODE generate)
endif()
if(NOT MODE STREQUAL "generate" AND NOT MODE STREQUAL "check")
  message(FATAL_ERROR "amalgamate.cmake: MODE must be 'generate' or 'check', got '${MODE}'")
endif()

set(_pyc_include_dir "${PYCROSCOPE_SOURCE_DIR}/include")
set(_pyc_root_header "${_pyc_include_dir}/pycroscope.hpp")
set(_pyc_target "${PYCROSCOPE_SOURCE_DIR}/single_include/pycroscope.hpp")

if(NOT EXISTS "${_pyc_root_header}")
  message(FATAL_ERROR "amalgamate.cmake: ${_pyc_root_header} does not exist")
endif()

# Placeholders (control characters that never appear in the headers).
string(ASCII 1 _PYC_SEMI)   # ;
string(ASCII 2 _PYC_LBR)    # [
string(ASCII 3 _PYC_RBR)    # ]
string(ASCII 4 _PYC_BSL)    # backslash

set_property(GLOBAL PROPERTY PYCROSCOPE_AMALGAMATED_FILES "")

# _pyc_amalgamate(<out-var> <absolute-path> <include-chain>)
# Returns the encoded, amalgamated content of one file (always ends with "\n"
# unless the file is empty).
function(_pyc_amalgamate out_var path chain)
  # file(READ) silently turns CRLF into LF, which would make the output differ from
  # the input bytes: refuse CRLF files instead of changing them behind the user's back.
  file(READ "${path}" hex HEX)
  set(pos 0)
  while(TRUE)
    string(FIND "${hex}" "0d0a" at)
    if(at EQUAL -1)
      break()
    endif()
    math(EXPR odd "(${pos} + ${at}) % 2")
    if(odd EQUAL 0)
      message(FATAL_ERROR "amalgamate.cmake: ${path} has CRLF line endings; convert it to LF")
    endif()
    math(EXPR skip "${at} + 1")
    string(SUBSTRING "${hex}" ${skip} -1 hex)
    math(EXPR pos "${pos} + ${skip}")
  endwhile()

  file(READ "${path}" content)
  if(content MATCHES "[${_PYC_SEMI}-${_PYC_BSL}]")
    message(FATAL_ERROR "amalgamate.cmake: ${path} contains control characters 0x01-0x04")
  endif()
  string(REPLACE "\\" "${_PYC_BSL}" content "${content}")
  string(REPLACE ";" "${_PYC_SEMI}" content "${content}")
  string(REPLACE "[" "${_PYC_LBR}" content "${content}")
  string(REPLACE "]" "${_PYC_RBR}" content "${content}")

  # A trailing newline would produce one extra empty element; strip it first and
  # re-add one newline per line below.
  set(had_content FALSE)
  if(NOT content STREQUAL "")
    set(had_content TRUE)
    string(REGEX REPLACE "\n$" "" content "${content}")
  endif()
  string(REPLACE "\n" ";" lines "${content}")

  set(result "")
  if(had_content)
    foreach(line IN LISTS lines)
      # `#pragma once` (optionally followed by a // comment or trailing blanks/CR)
      if(line MATCHES "^[ \t]*#[ \t]*pragma[ \t]+once[ \t\r]*(//.*)?$")
        continue()
      endif()
      if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"(pycroscope/[^\"]+)\"")
        set(rel "${CMAKE_MATCH_1}")
        set(inc "${_pyc_include_dir}/${rel}")
        if(NOT EXISTS "${inc}")
          message(FATAL_ERROR "amalgamate.cmake: ${path}: included file \"${rel}\" not found under ${_pyc_include_dir}")
        endif()
        get_filename_component(inc "${inc}" ABSOLUTE)
        get_property(done GLOBAL PROPERTY PYCROSCOPE_AMALGAMATED_FILES)
        if("${inc}" IN_LIST done)
          continue()
        endif()
        set_property(GLOBAL APPEND PROPERTY PYCROSCOPE_AMALGAMATED_FILES "${inc}")
        _pyc_amalgamate(sub "${inc}" "${chain} -> ${rel}")
        file(RELATIVE_PATH relpath "${_pyc_include_dir}" "${inc}")
        string(APPEND result "// ---- begin ${relpath} ----\n")
        string(APPEND result "${sub}")
        string(APPEND result "// ---- end ${relpath} ----\n")
        continue()
      endif()
      string(APPEND result "${line}\n")
    endforeach()
  endif()
  set(${out_var} "${result}" PARENT_SCOPE)
endfunction()

get_filename_component(_pyc_root_abs "${_pyc_root_header}" ABSOLUTE)
set_property(GLOBAL APPEND PROPERTY PYCROSCOPE_AMALGAMATED_FILES "${_pyc_root_abs}")
_pyc_amalgamate(_pyc_body "${_pyc_root_abs}" "pycroscope.hpp")

string(REPLACE "${_PYC_SEMI}" ";" _pyc_body "${_pyc_body}")
string(REPLACE "${_PYC_LBR}" "[" _pyc_body "${_pyc_body}")
string(REPLACE "${_PYC_RBR}" "]" _pyc_body "${_pyc_body}")
string(REPLACE "${_PYC_BSL}" "\\" _pyc_body "${_pyc_body}")

set(_pyc_output
"// Generated by cmake/amalgamate.cmake from include/ — do not edit.
// Regenerate with: cmake --build <build> --target amalgamate
//              or: cmake -P cmake/amalgamate.cmake
#pragma once
")
string(APPEND _pyc_output "${_pyc_body}")

if(MODE STREQUAL "generate")
  if(DEFINED OUTPUT AND NOT OUTPUT STREQUAL "")
    set(_pyc_target "${OUTPUT}")
  endif()
  # Only touch the file when the content changes (keeps timestamps stable).
  set(_pyc_old "")
  if(EXISTS "${_pyc_target}")
    file(READ "${_pyc_target}" _pyc_old)
  endif()
  if(_pyc_old STREQUAL _pyc_output)
    message(STATUS "amalgamate: ${_pyc_target} is up to date")
  else()
    file(WRITE "${_pyc_target}" "${_pyc_output}")
    message(STATUS "amalgamate: wrote ${_pyc_target}")
  endif()
else()
  # MODE=check: write the fresh output to a temp file and compare it byte for byte.
  if(DEFINED ENV{TMPDIR} AND NOT "$ENV{TMPDIR}" STREQUAL "")
    set(_pyc_tmpdir "$ENV{TMPDIR}")
  else()
    set(_pyc_tmpdir "/tmp")
  endif()
  string(SHA256 _pyc_dir_hash "${PYCROSCOPE_SOURCE_DIR}")
  string(SUBSTRING "${_pyc_dir_hash}" 0 12 _pyc_dir_hash)
  set(_pyc_fresh "${_pyc_tmpdir}/pycroscope-amalgamate-${_pyc_dir_hash}.hpp.tmp")
  file(WRITE "${_pyc_fresh}" "${_pyc_output}")
  set(_pyc_same FALSE)
  if(EXISTS "${_pyc_target}")
    execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${_pyc_fresh}" "${_pyc_target}"
                    RESULT_VARIABLE _pyc_cmp OUTPUT_QUIET ERROR_QUIET)
    if(_pyc_cmp EQUAL 0)
      set(_pyc_same TRUE)
    endif()
  endif()
  if(_pyc_same)
    file(REMOVE "${_pyc_fresh}")
    message(STATUS "amalgamate: single_include/pycroscope.hpp is fresh")
  else()
    message(FATAL_ERROR
      "single_include/pycroscope.hpp is stale: run cmake --build <build> --target amalgamate "
      "(or cmake -P cmake/amalgamate.cmake)\n"
      "Freshly generated version left at: ${_pyc_fresh}")
  endif()
endif()
