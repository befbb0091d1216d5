# Runs one packaging step at test time (registered by CMakeLists.txt next to this file):
#   cmake -DSTEP=install|find_package|add_subdirectory -D... -P run_consumer.cmake
# Every command that fails stops the test with a FATAL_ERROR naming the step.
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS STEP MCA_OAUTH_SOURCE_DIR CONSUMER_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if("${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

# Flags of the parent build (sanitizers, coverage) may also sit in the environment: the
# consumers must build with the toolchain only.
unset(ENV{CXXFLAGS})
unset(ENV{LDFLAGS})

set(prefix ${WORK_DIR}/prefix)
# Where the parent build found CURL, OpenSSL and nlohmann_json; it comes '|'-separated because
# a ';' would split the test command.
string(REPLACE "|" ";" prefix_path "${PARENT_PREFIX_PATH}")

set(config_args)
if(BUILD_TYPE)
  set(config_args --config ${BUILD_TYPE})
endif()

# run(<what> <list variable>): runs the command held in the variable (passing it by name keeps
# a "\;"-escaped list one argument) and fails the test if it fails.
function(run what command_var)
  execute_process(COMMAND ${${command_var}} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake consumer test: ${what} failed (${rc})")
  endif()
endfunction()

# configure_and_build(<what> <source dir> <build dir> [-D args...]): from a clean build dir,
# with the toolchain, the build type and the caller's `prefix_path` as CMAKE_PREFIX_PATH.
function(configure_and_build what src build)
  file(REMOVE_RECURSE ${build})
  string(REPLACE ";" "\\;" escaped_prefix_path "${prefix_path}")
  set(configure ${CMAKE_COMMAND} -S ${src} -B ${build} -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} "-DCMAKE_PREFIX_PATH=${escaped_prefix_path}" ${ARGN})
  if(MAKE_PROGRAM)
    list(APPEND configure -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
  endif()
  if(BUILD_TYPE)
    list(APPEND configure -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
  endif()
  run("configuring ${what}" configure)
  set(build_command ${CMAKE_COMMAND} --build ${build} ${config_args} -j 2)
  run("building ${what}" build_command)
endfunction()

# Single-config generators put the app in the build dir, multi-config ones in <build>/<config>.
function(run_app what build)
  set(app ${build}/app)
  if(NOT EXISTS ${app} AND BUILD_TYPE)
    set(app ${build}/${BUILD_TYPE}/app)
  endif()
  run("running the ${what} consumer (${app})" app)
endfunction()

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE ${prefix})
  configure_and_build("mca-oauth for install" ${MCA_OAUTH_SOURCE_DIR} ${WORK_DIR}/install-build
    -DMCA_OAUTH_BUILD_TESTS=OFF -DMCA_OAUTH_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${prefix})
  set(install ${CMAKE_COMMAND} --install ${WORK_DIR}/install-build ${config_args})
  run("installing mca-oauth into ${prefix}" install)

elseif(STEP STREQUAL "find_package")
  if(NOT EXISTS ${prefix})
    message(FATAL_ERROR "cmake consumer test: ${prefix} is missing; cmake_consumer_install must run first")
  endif()
  set(build ${WORK_DIR}/find_package-build)
  list(PREPEND prefix_path ${prefix})
  configure_and_build("the find_package consumer" ${CONSUMER_DIR}/find_package ${build})
  # A system-wide mca-oauth must not stand in for the one just installed.
  file(STRINGS ${build}/CMakeCache.txt found_dir REGEX "^mca-oauth_DIR:")
  string(FIND "${found_dir}" "=${prefix}/" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "cmake consumer test: find_package found mca-oauth outside ${prefix}: ${found_dir}")
  endif()
  run_app("find_package" ${build})

elseif(STEP STREQUAL "add_subdirectory")
  configure_and_build("the add_subdirectory consumer" ${CONSUMER_DIR}/add_subdirectory
    ${WORK_DIR}/add_subdirectory-build -DMCA_OAUTH_SOURCE_DIR=${MCA_OAUTH_SOURCE_DIR})
  run_app("add_subdirectory" ${WORK_DIR}/add_subdirectory-build)

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown STEP '${STEP}'")
endif()
