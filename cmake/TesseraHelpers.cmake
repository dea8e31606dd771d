# Helpers shared by every CMakeLists in the tree.

set(TESSERA_WARNINGS -Wall -Wextra -Wundef -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # GCC 12 reports std::string concatenation at -O3 as overlapping memcpy (GCC bug 105329).
  list(APPEND TESSERA_WARNINGS -Wno-restrict)
endif()
if(TESSERA_WERROR)
  list(APPEND TESSERA_WARNINGS -Werror)
endif()

set(_tessera_san_flags "")
if(TESSERA_SANITIZE)
  foreach(_s IN LISTS TESSERA_SANITIZE)
    list(APPEND _tessera_san_flags -fsanitize=${_s})
  endforeach()
  list(APPEND _tessera_san_flags -fno-omit-frame-pointer -fno-sanitize-recover=all)
endif()

# Applies the project's warning and sanitizer flags to one of our targets.
function(tessera_target_defaults target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${TESSERA_WARNINGS} ${_tessera_san_flags}>)
  if(_tessera_san_flags)
    target_link_options(${target} PRIVATE ${_tessera_san_flags})
  endif()
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
endfunction()

# tessera_add_library(name SRCS a.cc b.cc DEPS x y [PRIVATE_DEPS z])
function(tessera_add_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  tessera_target_defaults(${name})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# tessera_add_executable(name SRCS main.cc DEPS x y)
function(tessera_add_executable name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  tessera_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# tessera_add_test(name SRCS a_test.cc DEPS x LABELS unit|gpu|mpi)
# Registers every GoogleTest case with CTest; the working directory is the source root so tests
# find tests/fixtures by relative path.
function(tessera_add_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SRCS})
  tessera_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTIES LABELS "${ARG_LABELS}"
                       DISCOVERY_TIMEOUT 60)
endfunction()

function(tessera_summary what var)
  if(${var})
    message(STATUS "  [x] ${what}")
  else()
    message(STATUS "  [ ] ${what}")
  endif()
endfunction()
