# Finds gRPC C++ (Debian: libgrpc++-dev) for mca::oauth_grpc and names it mca_grpc::grpcpp.
# Used by the project and, installed, by the package config. pkg-config, not find_package(gRPC):
# Debian 12's gRPCConfig.cmake stops the configure with an error unless protobuf-compiler-grpc
# (grpc_cpp_plugin) is installed too, which mca::oauth_grpc does not need.
if(NOT TARGET mca_grpc::grpcpp)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(MCA_GRPCPP QUIET IMPORTED_TARGET GLOBAL grpc++>=1.51)
  endif()
  if(MCA_GRPCPP_FOUND)
    add_library(mca_grpc::grpcpp INTERFACE IMPORTED)
    set_target_properties(mca_grpc::grpcpp PROPERTIES INTERFACE_LINK_LIBRARIES PkgConfig::MCA_GRPCPP)
  endif()
endif()
