#pragma once
// TEMPORARY STUB (replaced by the real parser)
#include "../error.hpp"
#include <array>
#include <string>
#include <string_view>
#include <vector>
namespace mca::detail {
inline std::array<std::string, 2> discoveryUrls(std::string_view issuer) { return {std::string(issuer) + "/.well-known/oauth-authorization-server", std::string(issuer) + "/.well-known/openid-configuration"}; }
struct ServerMetadata { std::string issuer; std::string tokenEndpoint; std::vector<std::string> authMethods; bool authMethodsListed = false; };
inline ServerMetadata parseServerMetadata(std::string_view, std::string_view) { throw Error(Errc::InvalidResponse, "stub"); }
inline void requireAuthMethod(const ServerMetadata&, std::string_view) {}
}
