// Secrets in memory: SecretString moves without copying and leaves nothing behind, and the
// encodings of a secret are built in place in wiped storage.

#include <mca/auth_client.hpp>
#include <mca/detail/redis_url.hpp>

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace mca::detail {
namespace {

/// The bytes a string's storage holds, up to its capacity (not just its size): what a wipe has
/// to cover.
std::string storageOf(const std::string& value) { return std::string(value.data(), value.capacity()); }

TEST(SecretString, MovesWithoutCopyingTheBytes) {
    static_assert(std::is_nothrow_move_constructible_v<SecretString>);
    SecretString source(std::string(100, 'k'));  // on the heap
    const char* const storage = source.view().data();
    const SecretString moved(std::move(source));
    EXPECT_EQ(moved.view().data(), storage);  // the same block: nothing was copied or allocated
    EXPECT_EQ(moved.view(), std::string(100, 'k'));
}

TEST(SecretString, AMovedFromSmallStringKeepsNoCopy) {
    SecretString source(std::string_view("short-pw"));  // within the string's own small buffer
    const SecretString moved(std::move(source));
    EXPECT_EQ(moved.view(), "short-pw");
    EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): what is left is the point
    EXPECT_EQ(storageOf(source.view()).find("short"), std::string::npos);
}

TEST(SecretString, MoveAssignmentLeavesNoCopyInTheSource) {
    SecretString target(std::string_view("old-value"));
    SecretString source(std::string_view("new-pw"));
    target = std::move(source);
    EXPECT_EQ(target.view(), "new-pw");
    EXPECT_EQ(storageOf(source.view()).find("new-pw"), std::string::npos);  // NOLINT(bugprone-use-after-move)
}

TEST(SecretEncoding, TheFormEncodedSecretIsBuiltWithoutReallocating) {
    // Every byte of this secret needs %XX: a string grown byte by byte would reallocate.
    const std::string secret(40, '@');
    const SecretString encoded = formEncodeSecret(secret);
    EXPECT_EQ(encoded.view(), percentEncode(secret, Escaping::Form));
    EXPECT_GE(encoded.view().capacity(), 3 * secret.size());
}

TEST(SecretEncoding, TheRedisPasswordIsDecodedInPlace) {
    const auto endpoint = parseRedisUrl("redis://fleet:" + std::string(30, 'p') + "%40%3A@cache:6380");
    EXPECT_EQ(endpoint.password.view(), std::string(30, 'p') + "@:");
    // Decoded into storage reserved up front (the encoded length), never regrown.
    EXPECT_GE(endpoint.password.view().capacity(), 36u);
}

}  // namespace
}  // namespace mca::detail
