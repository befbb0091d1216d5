#include <mca/auth_client.hpp>
#include <mca/detail/redis_url.hpp>

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace mca::detail {
namespace {

using namespace std::chrono_literals;

const SharedToken kToken{"Bearer abc.def.ghi", std::chrono::system_clock::from_time_t(1'900'000'000)};

TEST(Sealing, OpensWhatItSealed) {
    const TokenSeal seal("tenant-secret", "mca-oauth:v1:token:abc");
    const std::string sealed = seal.seal(kToken);
    EXPECT_EQ(sealed.find("abc.def.ghi"), std::string::npos);  // encrypted at rest
    const auto opened = seal.open(sealed);
    ASSERT_TRUE(opened);
    EXPECT_EQ(opened->header, kToken.header);
    EXPECT_EQ(opened->expiresAt, kToken.expiresAt);
    EXPECT_NE(seal.seal(kToken), sealed);  // a fresh nonce each time
}

TEST(Sealing, NothingElseOpens) {
    const TokenSeal seal("tenant-secret", "mca-oauth:v1:token:abc");
    const std::string sealed = seal.seal(kToken);
    EXPECT_FALSE(TokenSeal("another-secret", "mca-oauth:v1:token:abc").open(sealed));  // wrong secret
    EXPECT_FALSE(TokenSeal("tenant-secret", "mca-oauth:v1:token:xyz").open(sealed));   // copied under another name
    std::string tampered = sealed;
    tampered[tampered.size() / 2] ^= 1;
    EXPECT_FALSE(seal.open(tampered));
    EXPECT_FALSE(seal.open(sealed.substr(0, sealed.size() - 1)));  // truncated
    EXPECT_FALSE(seal.open(""));
    EXPECT_FALSE(seal.open("garbage"));
    EXPECT_FALSE(seal.open(std::string(200, '\x01')));
}

TEST(Sealing, StoreNamesAreStableDigests) {
    EXPECT_EQ(stableDigestHex({"a", "bc"}), stableDigestHex({"a", "bc"}));
    EXPECT_NE(stableDigestHex({"a", "bc"}), stableDigestHex({"ab", "c"}));
    EXPECT_EQ(stableDigestHex({"x"}).size(), 64u);
}

/// What storeNameDigest must compute: the digest (SHA-256, or HMAC-SHA256 under `key`) of
/// each field's 8-byte little-endian length followed by its bytes, in hex.
std::string expectedDigest(std::string_view key, const std::vector<std::string>& fields) {
    std::string input;
    for (const auto& field : fields) {
        for (int i = 0; i < 8; ++i) input += static_cast<char>(static_cast<std::uint64_t>(field.size()) >> (8 * i));
        input += field;
    }
    unsigned char digest[32];
    unsigned int length = 0;
    if (key.empty()) {
        EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr);
    } else {
        HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest, &length);
    }
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
        hex += "0123456789abcdef"[digest[i] >> 4];
        hex += "0123456789abcdef"[digest[i] & 15];
    }
    return hex;
}

TEST(Sealing, StoreNamesAreKeyedByTheFleetKeyWhenThereIsOne) {
    EXPECT_EQ(storeNameDigest("", {"secret-flow", "https://x", "app", "s3cret"}),
              expectedDigest("", {"secret-flow", "https://x", "app", "s3cret"}));
    EXPECT_EQ(storeNameDigest("", {"a", "bc"}), stableDigestHex({"a", "bc"}));  // as before fleet keys
    EXPECT_EQ(storeNameDigest("fleet-key", {"secret-flow", "https://x", "app", "s3cret"}),
              expectedDigest("fleet-key", {"secret-flow", "https://x", "app", "s3cret"}));
    EXPECT_NE(storeNameDigest("fleet-key", {"a", "bc"}), storeNameDigest("", {"a", "bc"}));
    EXPECT_NE(storeNameDigest("fleet-key", {"a", "bc"}), storeNameDigest("other-key", {"a", "bc"}));
    EXPECT_NE(storeNameDigest("fleet-key", {"a", "bc"}), storeNameDigest("fleet-key", {"ab", "c"}));
    EXPECT_EQ(storeNameDigest("fleet-key", {}).size(), 64u);
}

TEST(Sealing, TheFleetKeyIsMixedIntoTheSealingKey) {
    const TokenSeal withKey("tenant-secret", "mca-oauth:v1:token:abc", "fleet-key");
    const std::string sealed = withKey.seal(kToken);
    EXPECT_TRUE(withKey.open(sealed));
    EXPECT_TRUE(TokenSeal("tenant-secret", "mca-oauth:v1:token:abc", "fleet-key").open(sealed));
    EXPECT_FALSE(TokenSeal("tenant-secret", "mca-oauth:v1:token:abc").open(sealed));  // the secret alone: nothing
    EXPECT_FALSE(TokenSeal("tenant-secret", "mca-oauth:v1:token:abc", "other-key").open(sealed));
    EXPECT_FALSE(withKey.open(TokenSeal("tenant-secret", "mca-oauth:v1:token:abc").seal(kToken)));
}

TEST(Sealing, CarriesWhenTheTokenWasIssuedAndOpensValuesWithoutIt) {
    const TokenSeal seal("tenant-secret", "mca-oauth:v1:token:abc");
    SharedToken token = kToken;
    token.issuedAt = kToken.expiresAt - std::chrono::hours(1);
    const auto opened = seal.open(seal.seal(token));
    ASSERT_TRUE(opened);
    EXPECT_EQ(opened->issuedAt, token.issuedAt);
    EXPECT_EQ(opened->expiresAt, token.expiresAt);
    // A value sealed without it (as every value was before): issuedAt is unknown.
    const auto older = seal.open(seal.seal(kToken));
    ASSERT_TRUE(older);
    EXPECT_FALSE(older->issuedAt);
    EXPECT_EQ(older->header, kToken.header);
}

TEST(RedisUrl, ParsesEveryPart) {
    const auto full = parseRedisUrl("redis://fleet:p%40ss%3Aword@cache.internal:6380/3?timeout=50");
    EXPECT_EQ(full.host, "cache.internal");
    EXPECT_EQ(full.port, 6380);
    EXPECT_EQ(full.user, "fleet");
    EXPECT_EQ(full.password.view(), "p@ss:word");
    EXPECT_EQ(full.database, 3);
    EXPECT_EQ(full.timeout, 50ms);
    const auto plain = parseRedisUrl("redis://127.0.0.1");
    EXPECT_EQ(plain.port, 6379);
    EXPECT_TRUE(plain.password.empty());
    EXPECT_EQ(plain.timeout, 20ms);
    const auto passwordOnly = parseRedisUrl("redis://:secret@localhost:7000/");
    EXPECT_EQ(passwordOnly.user, "");
    EXPECT_EQ(passwordOnly.password.view(), "secret");
    EXPECT_EQ(parseRedisUrl("redis://[::1]:6390").host, "::1");
    const auto userWithoutPassword = parseRedisUrl("redis://fleet:@localhost");  // AUTH fleet ""
    EXPECT_EQ(userWithoutPassword.user, "fleet");
    EXPECT_TRUE(userWithoutPassword.password.empty());
}

TEST(RedisUrl, RefusesMalformedUrlsWithoutQuotingThePassword) {
    for (const char* url : {"", "http://host", "redis://", "redis://host:notaport", "redis://host:70000",
                            "redis://host/db", "redis://user-without-colon@host", "redis://:pw%zz@host",
                            "redis://host?timeout=0", "redis://host?other=1", "redis://[::1"}) {
        try {
            parseRedisUrl(url);
            ADD_FAILURE() << url;
        } catch (const std::invalid_argument& error) {
            EXPECT_EQ(std::string(error.what()).find("pw"), std::string::npos) << error.what();
        }
    }
}

}  // namespace
}  // namespace mca::detail
