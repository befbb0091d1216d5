# The Debian package libmca-oauth-dev, built with `cpack -G DEB` in a build directory: the `dev`
# install component (the headers, the CMake package, the pkg-config files) under /usr, and the
# license as its copyright file (the `deb` component). It is Architecture: all since nothing in
# it is compiled; mca-token (the `tools` component) is a compiled program and is not in it. Included by CMakeLists.txt for a top-level build only, so a
# project that vendors mca-oauth keeps its own CPack settings.

set(MCA_OAUTH_PACKAGE_CONTACT "mca-oauth maintainers <maintainers@users.noreply.b-seed-9a6df0c1.example>"
  CACHE STRING "Maintainer of the Debian package (name <email>)")
set(MCA_OAUTH_PACKAGE_HOMEPAGE "" CACHE STRING "Homepage of the Debian package (left out when empty)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libmca-oauth-dev)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "mca-oauth")
set(CPACK_PACKAGE_CONTACT "${MCA_OAUTH_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# Lines of at most 80 characters, as Debian's long descriptions want them.
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "mca-oauth gives a back end the Authorization header it needs to call services"
  "protected by IBM Mobile Client Access and App ID, or by any OAuth 2.0"
  "authorization server (client credentials with a secret, a signed assertion, a"
  "client certificate or a Kubernetes service-account token). Tokens are cached,"
  "refreshed ahead of expiry and fetched by one libcurl engine thread per client."
  "This package holds the C++17 headers, the CMake package (find_package) and the"
  "pkg-config files (mca-oauth, mca-oauth-redis).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The `dev` component of this build, and the license where Debian looks for it.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libmca-oauth-dev
  RENAME copyright COMPONENT deb EXCLUDE_FROM_ALL)
set(CPACK_INSTALL_CMAKE_PROJECTS
  "${PROJECT_BINARY_DIR};${PROJECT_NAME};dev;/" "${PROJECT_BINARY_DIR};${PROJECT_NAME};deb;/")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # libmca-oauth-dev_<version>_all.deb
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The -dev packages of what the headers include, at the versions CMakeLists.txt asks for.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libcurl4-openssl-dev (>= 7.85.0), libssl-dev (>= 3.0), nlohmann-json3-dev (>= 3.9)")
# <mca/redis_token_store.hpp> (mca::oauth_redis, mca-oauth-redis.pc) needs hiredis.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libhiredis-dev")
if(MCA_OAUTH_PACKAGE_HOMEPAGE)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${MCA_OAUTH_PACKAGE_HOMEPAGE}")
endif()

if(NOT TARGET mca_oauth_redis)
  message(STATUS "mca-oauth: without hiredis, the Debian package has neither mca::oauth_redis nor mca-oauth-redis.pc")
endif()

include(CPack)
