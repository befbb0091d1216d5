# pkg-config files for builds without CMake: one .pc file per installed target, next to the
# CMake package in the data directory (share/pkgconfig, not lib/pkgconfig: the library is headers
# only, the same on every architecture, like nlohmann/json's own nlohmann_json.pc).
#
#   mca_oauth_pkgconfig(<name> <description> [REQUIRES <module>...] [LIBS <flag>...])
#
# writes <name>.pc (Requires: the pkg-config modules, comma-separated; Libs: the flags) and
# installs it in the `dev` component. Called once per installed target, from CMakeLists.txt.

set(mca_pkgconfig_dir ${CMAKE_INSTALL_DATADIR}/pkgconfig)

function(mca_oauth_pkgconfig mca_pc_name mca_pc_description)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "REQUIRES;LIBS")
  list(JOIN arg_REQUIRES ", " mca_pc_requires)
  list(JOIN arg_LIBS " " mca_pc_libs)
  # A relocatable prefix (as Meson's pkgconfig.relocatable): ${pcfiledir} and as many ".." as the
  # pkgconfig directory is deep, unless the install directories were given as absolute paths.
  if(IS_ABSOLUTE "${mca_pkgconfig_dir}")
    set(mca_pc_prefix "${CMAKE_INSTALL_PREFIX}")
  else()
    file(RELATIVE_PATH mca_pc_relative "/prefix/${mca_pkgconfig_dir}" "/prefix")
    string(REGEX REPLACE "/$" "" mca_pc_relative "${mca_pc_relative}")
    set(mca_pc_prefix "\${pcfiledir}/${mca_pc_relative}")
  endif()
  if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(mca_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
  else()
    set(mca_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()
  set(mca_pc_file ${PROJECT_BINARY_DIR}/pkgconfig/${mca_pc_name}.pc)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/mca-oauth.pc.in ${mca_pc_file} @ONLY)
  install(FILES ${mca_pc_file} DESTINATION ${mca_pkgconfig_dir} COMPONENT dev)
endfunction()
