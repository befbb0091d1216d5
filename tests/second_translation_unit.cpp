// A second translation unit including the public header: with the unity test sources this makes
// every function defined in the headers appear twice at link time, so a missing `inline` fails
// the build instead of a user's.
#include <mca/auth_client.hpp>

namespace mca::test {
std::size_t secondTranslationUnitCachedTokens(const AuthClient& client) { return client.cachedTokens(); }
}  // namespace mca::test
