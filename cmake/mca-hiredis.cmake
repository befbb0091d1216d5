# Finds hiredis (Debian: libhiredis-dev) for mca::oauth_redis and names it mca_hiredis::hiredis.
# Used by the project and, installed, by the package config. Debian's own HiredisConfig.cmake
# defines no target, hence this.
if(NOT TARGET mca_hiredis::hiredis)
  find_path(MCA_HIREDIS_INCLUDE_DIR hiredis/hiredis.h)
  find_library(MCA_HIREDIS_LIBRARY hiredis)
  if(MCA_HIREDIS_INCLUDE_DIR AND MCA_HIREDIS_LIBRARY)
    add_library(mca_hiredis::hiredis UNKNOWN IMPORTED)
    set_target_properties(mca_hiredis::hiredis PROPERTIES
      IMPORTED_LOCATION "${MCA_HIREDIS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${MCA_HIREDIS_INCLUDE_DIR}")
  endif()
endif()
