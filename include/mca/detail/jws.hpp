#pragma once
// TEMPORARY STUB (replaced by the real signer)
#include "../error.hpp"
#include <chrono>
#include <string>
#include <string_view>
namespace mca::detail {
enum class JwsAlgorithm { RS256, PS256, ES256 };
class SigningKey {
  public:
    SigningKey(std::string_view, std::string_view, std::string_view) {}
    std::string clientAssertion(std::string_view, std::string_view, std::string_view, std::chrono::system_clock::time_point) const { return "a.b.c"; }
};
inline std::string checkTlsClientIdentity(std::string_view, std::string_view) { return {}; }
}
