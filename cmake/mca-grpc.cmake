# Finds gRPC C++ (Debian: libgrpc++-dev) for mca::oauth_grpc and names it mca_grpc::grpcpp.
# Used by the project and, installed, by the package config. pkg-config, not find_package(gRPC):
# Debian 12's gRPCConfig.cmake stops the configure with an error unless protobuf-compiler-grpc
# (grpc_cpp_plugin) is installed too, which mca::oauth_grpc does not need.
#
# Two pkg-config calls, not pkg_check_modules: grpc++ pulls in some hundred Abseil modules, which
# pkg-config resolves again on every call, and pkg_check_modules makes ten of them (10 s of every
# configure, and of every find_package(mca-oauth)). The flags are kept in the cache.
if(NOT TARGET mca_grpc::grpcpp)
  if(NOT DEFINED MCA_GRPCPP_FLAGS)
    find_package(PkgConfig QUIET)
    set(mca_grpcpp_found "")
    if(PkgConfig_FOUND)
      execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --atleast-version=1.51 grpc++ RESULT_VARIABLE mca_grpcpp_rc
        OUTPUT_QUIET ERROR_QUIET)
      if(mca_grpcpp_rc EQUAL 0)
        execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --cflags --libs grpc++ RESULT_VARIABLE mca_grpcpp_rc
          OUTPUT_VARIABLE mca_grpcpp_found OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        if(NOT mca_grpcpp_rc EQUAL 0)
          set(mca_grpcpp_found "")
        endif()
      endif()
    endif()
    set(MCA_GRPCPP_FLAGS "${mca_grpcpp_found}" CACHE INTERNAL "pkg-config --cflags --libs grpc++ (empty: not found)")
  endif()
  if(MCA_GRPCPP_FLAGS)
    separate_arguments(mca_grpcpp_flags UNIX_COMMAND "${MCA_GRPCPP_FLAGS}")
    set(mca_grpcpp_include_dirs "")
    set(mca_grpcpp_compile_options "")
    set(mca_grpcpp_link "")
    foreach(mca_grpcpp_flag IN LISTS mca_grpcpp_flags)
      if(mca_grpcpp_flag MATCHES "^-I(.+)")
        list(APPEND mca_grpcpp_include_dirs "${CMAKE_MATCH_1}")
      elseif(mca_grpcpp_flag MATCHES "^-[lL]|^-pthread$|^-Wl,")
        list(APPEND mca_grpcpp_link "${mca_grpcpp_flag}")
      else()
        list(APPEND mca_grpcpp_compile_options "${mca_grpcpp_flag}")
      endif()
    endforeach()
    add_library(mca_grpc::grpcpp INTERFACE IMPORTED)
    set_target_properties(mca_grpc::grpcpp PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${mca_grpcpp_include_dirs}"
      INTERFACE_COMPILE_OPTIONS "${mca_grpcpp_compile_options}"
      INTERFACE_LINK_LIBRARIES "${mca_grpcpp_link}")
  endif()
endif()
