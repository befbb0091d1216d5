#pragma once

/// @file src.hpp
/// @brief The implementation of mca-oauth, for separate compilation: include this header in
/// exactly one .cpp of a program whose every translation unit is compiled with
/// MCA_OAUTH_SEPARATE_COMPILATION defined (see version.hpp). Its public functions are then
/// defined there, once, rather than inline in every translation unit.

#ifndef MCA_OAUTH_SEPARATE_COMPILATION
#error "<mca/src.hpp> is for separate compilation: define MCA_OAUTH_SEPARATE_COMPILATION for the whole program"
#endif

#include "auth_client.hpp"
#include "detail/client.hpp"
