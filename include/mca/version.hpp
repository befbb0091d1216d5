#pragma once

/// @file version.hpp
/// @brief mca-oauth version; CMake reads the project version from these macros.

#define MCA_OAUTH_VERSION_MAJOR 0
#define MCA_OAUTH_VERSION_MINOR 1
#define MCA_OAUTH_VERSION_PATCH 0
#define MCA_OAUTH_VERSION_STRING "0.1.0"
