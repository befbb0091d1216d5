#include <mca/auth_client.hpp>
#include <mca/detail/redis_url.hpp>

#include <gtest/gtest.h>

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
