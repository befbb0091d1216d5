# Runs one packaging step at test time (registered by CMakeLists.txt next to this file):
#   cmake -DSTEP=install|find_package|add_subdirectory|pkg_config|deb -D... -P run_consumer.cmake
# Every command that fails stops the test with a FATAL_ERROR naming the step.
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS STEP MCA_OAUTH_SOURCE_DIR CONSUMER_DIR WORK_DIR PARENT_BUILD_DIR GENERATOR CXX_COMPILER)
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
  set(build_command ${CMAKE_COMMAND} --build ${build} ${config_args} -j 1)  # one core: ctest runs others
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

# use_pkg_config_dir(<dir>): pkg-config finds mca-oauth in <dir> (and the system's modules where
# they are), and must find it there, not in a system-wide install.
function(use_pkg_config_dir dir)
  set(ENV{PKG_CONFIG_PATH} ${dir})
  execute_process(COMMAND ${PKG_CONFIG} --variable=pcfiledir mca-oauth OUTPUT_VARIABLE found
    OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT found STREQUAL dir)
    message(FATAL_ERROR "pkg-config test: mca-oauth.pc found in '${found}', expected ${dir}")
  endif()
endfunction()

# pkg_config_build(<what> <modules> <source> <program> [-D...]): compiles and links <source> as a
# user without CMake does, `c++ -std=c++17 <source> $(pkg-config --cflags --libs <modules>)`, with
# the first module's version as MCA_EXPECTED_VERSION and the given definitions.
function(pkg_config_build what modules source program)
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs ${modules} OUTPUT_VARIABLE flags
    OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  list(GET modules 0 first)
  execute_process(COMMAND ${PKG_CONFIG} --modversion ${first} OUTPUT_VARIABLE version
    OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc_version)
  if(NOT rc EQUAL 0 OR NOT rc_version EQUAL 0)
    message(FATAL_ERROR "pkg-config test: pkg-config --cflags --libs ${modules} failed")
  endif()
  message(STATUS "pkg-config --cflags --libs ${modules}: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(compile ${CXX_COMPILER} -std=c++17 "-DMCA_EXPECTED_VERSION=\"${version}\"" ${ARGN} ${source} ${flags} -o ${program})
  run("building ${what}" compile)
endfunction()

if(STEP STREQUAL "install")
  # `cmake --install` of the tests' own build tree: the headers, the CMake package, the
  # pkg-config files and, MCA_OAUTH_INSTALL_TOOLS being on by default at the top level, mca-token.
  file(REMOVE_RECURSE ${prefix})
  set(install ${CMAKE_COMMAND} --install ${PARENT_BUILD_DIR} --prefix ${prefix} ${config_args})
  run("installing mca-oauth into ${prefix}" install)
  set(mca_token ${prefix}/bin/mca-token --help)
  run("running the installed mca-token" mca_token)

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
  if(EXISTS ${build}/app_optional)
    set(app_optional ${build}/app_optional)
    run("running the find_package consumer of the optional targets" app_optional)
  endif()

elseif(STEP STREQUAL "add_subdirectory")
  configure_and_build("the add_subdirectory consumer" ${CONSUMER_DIR}/add_subdirectory
    ${WORK_DIR}/add_subdirectory-build -DMCA_OAUTH_SOURCE_DIR=${MCA_OAUTH_SOURCE_DIR})
  run_app("add_subdirectory" ${WORK_DIR}/add_subdirectory-build)

elseif(STEP STREQUAL "pkg_config")
  # A build without CMake: c++ main.cpp $(pkg-config --cflags --libs mca-oauth), against the
  # install that cmake_consumer_install made.
  if(NOT EXISTS ${prefix})
    message(FATAL_ERROR "cmake consumer test: ${prefix} is missing; cmake_consumer_install must run first")
  endif()
  set(build ${WORK_DIR}/pkg_config-build)
  file(REMOVE_RECURSE ${build})
  file(MAKE_DIRECTORY ${build})
  use_pkg_config_dir(${prefix}/share/pkgconfig)
  pkg_config_build("the pkg-config consumer" mca-oauth ${CONSUMER_DIR}/find_package/main.cpp ${build}/app)
  run_app("pkg-config" ${build})
  # The optional modules installed (the fleet store's when hiredis was found, the adapters' when
  # Boost and gRPC were), all in one program.
  set(modules "")
  set(definitions "")
  foreach(part IN ITEMS redis asio grpc)
    if(EXISTS ${prefix}/share/pkgconfig/mca-oauth-${part}.pc)
      list(APPEND modules mca-oauth-${part})
      string(TOUPPER ${part} upper)
      list(APPEND definitions -DMCA_CONSUMER_${upper})
    endif()
  endforeach()
  if(modules)
    pkg_config_build("the pkg-config consumer of ${modules}" "${modules}" ${CONSUMER_DIR}/find_package/optional_main.cpp
      ${build}/app_optional ${definitions})
    set(app_optional ${build}/app_optional)
    run("running the pkg-config consumer of ${modules}" app_optional)
  endif()

elseif(STEP STREQUAL "deb")
  # The Debian package: built by cpack from the tests' build tree (its `dev` and `deb` install
  # components, never mca-token), checked with dpkg-deb -f, extracted with dpkg-deb -x (not
  # installed: the test leaves the system alone), and used through pkg-config from the extracted
  # tree.
  set(build ${WORK_DIR}/deb-build)
  set(root ${WORK_DIR}/deb-root)
  file(REMOVE_RECURSE ${build} ${root})
  file(STRINGS ${PARENT_BUILD_DIR}/CMakeCache.txt version_line REGEX "^CMAKE_PROJECT_VERSION:")
  string(REGEX REPLACE ".*=" "" version "${version_line}")
  set(cpack ${CMAKE_CPACK_COMMAND} -G DEB -B ${build}/package --config ${PARENT_BUILD_DIR}/CPackConfig.cmake)
  run("building the Debian package" cpack)
  set(deb ${build}/package/libmca-oauth-dev_${version}_all.deb)
  if(NOT EXISTS ${deb})
    file(GLOB made ${build}/package/*.deb)
    message(FATAL_ERROR "deb test: expected ${deb}, cpack made: ${made}")
  endif()

  # The control fields.
  function(expect_field field expected)
    execute_process(COMMAND ${DPKG_DEB} -f ${deb} ${field} OUTPUT_VARIABLE value RESULT_VARIABLE rc
      OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0 OR NOT value MATCHES "${expected}")
      message(FATAL_ERROR "deb test: ${field} is '${value}', expected to match '${expected}'")
    endif()
    message(STATUS "${field}: ${value}")
  endfunction()
  expect_field(Package [[^libmca-oauth-dev$]])
  expect_field(Version "^${version}$")
  expect_field(Architecture [[^all$]])
  expect_field(Section [[^libdevel$]])
  expect_field(Maintainer [[.+ <.+@.+>]])
  expect_field(Depends [[libcurl4-openssl-dev \(>= 7\.85\.0\)]])
  expect_field(Depends [[libssl-dev \(>= 3\.0\)]])
  expect_field(Depends [[nlohmann-json3-dev \(>= 3\.9\)]])
  expect_field(Suggests [[^libhiredis-dev$]])
  expect_field(Description [[^Header-only C\+\+ client.*
 .*Mobile Client Access]])

  # The files: every header of include/, the CMake package, the pkg-config file, the license;
  # nothing architecture-specific (no bin/, no lib/).
  set(extract ${DPKG_DEB} -x ${deb} ${root})
  run("extracting the Debian package" extract)
  file(GLOB_RECURSE source_headers RELATIVE ${MCA_OAUTH_SOURCE_DIR}/include ${MCA_OAUTH_SOURCE_DIR}/include/*)
  file(GLOB_RECURSE packaged_headers RELATIVE ${root}/usr/include ${root}/usr/include/*)
  if(NOT source_headers STREQUAL packaged_headers)
    message(FATAL_ERROR "deb test: the package's headers differ from include/:\n${packaged_headers}\n${source_headers}")
  endif()
  foreach(file IN ITEMS share/cmake/mca-oauth/mca-oauth-config.cmake share/cmake/mca-oauth/mca-oauth-targets.cmake
                        share/pkgconfig/mca-oauth.pc share/doc/libmca-oauth-dev/copyright)
    if(NOT EXISTS ${root}/usr/${file})
      message(FATAL_ERROR "deb test: /usr/${file} is not in the package")
    endif()
  endforeach()
  file(GLOB top RELATIVE ${root}/usr ${root}/usr/*)
  list(SORT top)
  if(NOT top STREQUAL "include;share")
    message(FATAL_ERROR "deb test: the package installs /usr/{${top}}; expected only include and share")
  endif()

  # A consumer built with pkg-config against the extracted tree.
  use_pkg_config_dir(${root}/usr/share/pkgconfig)
  pkg_config_build("the Debian package's consumer" mca-oauth ${CONSUMER_DIR}/pkg_config/deb_main.cpp
    ${build}/deb_app)
  set(deb_app ${build}/deb_app)
  run("running the Debian package's consumer" deb_app)

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown STEP '${STEP}'")
endif()
