#include <mca/auth_client.hpp>

#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

namespace mca::detail {

TEST(Encoding, Base64MatchesRfc4648Vectors) {
    EXPECT_EQ(base64Encode(""), "");
    EXPECT_EQ(base64Encode("f"), "Zg==");
    EXPECT_EQ(base64Encode("fo"), "Zm8=");
    EXPECT_EQ(base64Encode("foo"), "Zm9v");
    EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Encoding, Base64UrlDecodesWithAndWithoutPadding) {
    EXPECT_EQ(base64UrlDecode("Zm9vYg"), "foob");
    EXPECT_EQ(base64UrlDecode("Zm9vYg=="), "foob");
    EXPECT_EQ(base64UrlDecode("__4A"), std::string("\xff\xfe\x00", 3));
    EXPECT_FALSE(base64UrlDecode("Zm9v+g"));  // '+' belongs to base64, not base64url
    EXPECT_FALSE(base64UrlDecode("Z"));       // no whole byte
}

TEST(Encoding, PercentEncodingKeepsOnlyUnreservedCharacters) {
    EXPECT_EQ(percentEncode("abc-XYZ_0.9~"), "abc-XYZ_0.9~");
    EXPECT_EQ(percentEncode("a b/c?d#e%f"), "a%20b%2Fc%3Fd%23e%25f");
    EXPECT_EQ(percentEncode("\xc3\xa9\n"), "%C3%A9%0A");
}

TEST(Encoding, TrimsAsciiWhitespace) {
    EXPECT_EQ(trimWhitespace(" \t https://x/ \r\n"), "https://x/");
    EXPECT_EQ(trimWhitespace("   "), "");
}

TEST(TokenRequest, NormalizesServerUrlLikeTheNodeSdk) {
    EXPECT_EQ(normalizeServerUrl(" https://imf-authserver.ng.bluemix.net/imf-authserver "),
              "https://imf-authserver.ng.bluemix.net/imf-authserver/");
    EXPECT_EQ(normalizeServerUrl("http://127.0.0.1:8080/imf-authserver/"), "http://127.0.0.1:8080/imf-authserver/");
    EXPECT_EQ(normalizeServerUrl("HTTPS://host"), "HTTPS://host/");
}

TEST(TokenRequest, RefusesServerUrlsThatAreNotHttp) {
    EXPECT_FALSE(normalizeServerUrl(""));
    EXPECT_FALSE(normalizeServerUrl("imf-authserver.ng.bluemix.net"));
    EXPECT_FALSE(normalizeServerUrl("ftp://host/path"));
    EXPECT_FALSE(normalizeServerUrl("file:///etc/passwd"));
    EXPECT_FALSE(normalizeServerUrl("http://"));
    EXPECT_FALSE(normalizeServerUrl("https://host name/"));
}

TEST(TokenRequest, BuildsTheMcaTokenUrlWithAnEncodedAppId) {
    EXPECT_EQ(mcaTokenUrl("https://h/imf-authserver/", "6d5b1c2e-0000-4c2f-9d4b-1e2f3a4b5c6d"),
              "https://h/imf-authserver/authorization/v1/apps/6d5b1c2e-0000-4c2f-9d4b-1e2f3a4b5c6d/token");
    EXPECT_EQ(mcaTokenUrl("https://h/", "../admin?x=1"), "https://h/authorization/v1/apps/..%2Fadmin%3Fx%3D1/token");
}

TEST(TokenRequest, BasicAuthorizationIsBase64OfIdColonSecret) {
    EXPECT_EQ(basicAuthorization("client", "s3cret").view(), "Basic " + base64Encode("client:s3cret"));
    EXPECT_EQ(basicAuthorization("Aladdin", "open sesame").view(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

TEST(Secret, WipesOnRelease) {
    SecretString secret("a-secret-long-enough-to-live-on-the-heap");
    secret.wipe();
    EXPECT_TRUE(secret.empty());
    std::string plain = "another-secret-long-enough-for-the-heap";
    wipeString(plain);
    EXPECT_TRUE(plain.empty());
}

TEST(Secret, DigestSeparatesFieldBoundaries) {
    auto& digest = KeyedDigest::forThisThread();
    const auto abc = digest.field("ab").field("c").finish();
    EXPECT_NE(abc, digest.field("a").field("bc").finish());
    EXPECT_EQ(abc, digest.field("ab").field("c").finish());
    EXPECT_NE(abc, digest.field("abc").finish());
}

TEST(Secret, SipHashMatchesOpenSsl) {
    std::unique_ptr<EVP_MAC, Deleter<EVP_MAC_free>> mac(EVP_MAC_fetch(nullptr, "SIPHASH", nullptr));
    ASSERT_TRUE(mac);
    std::array<std::uint8_t, 16> key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7 + 3);
    std::string message;
    for (int length = 0; length < 80; ++length) {
        std::unique_ptr<EVP_MAC_CTX, Deleter<EVP_MAC_CTX_free>> context(EVP_MAC_CTX_new(mac.get()));
        unsigned int size = 16;
        const OSSL_PARAM params[] = {OSSL_PARAM_construct_uint("size", &size), OSSL_PARAM_construct_end()};
        ASSERT_EQ(EVP_MAC_init(context.get(), key.data(), key.size(), params), 1);
        ASSERT_EQ(EVP_MAC_update(context.get(), reinterpret_cast<const unsigned char*>(message.data()), message.size()),
                  1);
        KeyedDigest::Value expected{};
        std::size_t written = 0;
        ASSERT_EQ(EVP_MAC_final(context.get(), expected.data(), &written, expected.size()), 1);
        ASSERT_EQ(written, 16u);
        EXPECT_EQ(KeyedDigest::sipHash128(key, message), expected) << "length " << length;
        message += static_cast<char>(length * 31 + 1);
    }
}

}  // namespace mca::detail
