#include "test_certificates.hpp"

#include <mca/detail/jws.hpp>

#include <gtest/gtest.h>

#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

// Every signature is checked with plain OpenSSL EVP here, independently of SigningKey::sign.

namespace mca::detail {
namespace {

/// Made once for the file: generating an RSA 2048 key takes about 0.3 s.
struct JwsKeys {
    EvpPkeyPtr rsa = test::makeKey("RSA");
    EvpPkeyPtr ec = test::makeKey("EC");
    std::string rsaPem = test::privateKeyPem(rsa.get());
    std::string ecPem = test::privateKeyPem(ec.get());
    std::string rsaCertificate = test::certificatePem(rsa.get(), "rsa-client");
    std::string ecCertificate = test::certificatePem(ec.get(), "ec-client");
};

const JwsKeys& jwsKeys() {
    static const JwsKeys keys;
    return keys;
}

/// A PEM of `key`: PKCS#8, or with `traditional` the "RSA/EC PRIVATE KEY" form; encrypted with
/// AES-256-CBC when a passphrase is given.
std::string jwsKeyPem(EVP_PKEY* key, bool traditional, const char* passphrase = nullptr) {
    const BioPtr bio(BIO_new(BIO_s_mem()));
    const EVP_CIPHER* cipher = passphrase ? EVP_aes_256_cbc() : nullptr;
    const auto* secret = reinterpret_cast<const unsigned char*>(passphrase);
    const int secretLength = passphrase ? static_cast<int>(std::strlen(passphrase)) : 0;
    const int written =
        traditional
            ? PEM_write_bio_PrivateKey_traditional(bio.get(), key, cipher, secret, secretLength, nullptr, nullptr)
            : PEM_write_bio_PrivateKey(bio.get(), key, cipher, secret, secretLength, nullptr, nullptr);
    if (written != 1) throw std::runtime_error("PEM encoding failed");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

EvpPkeyPtr generatedKey(EVP_PKEY* key) {
    if (!key) throw std::runtime_error("key generation failed");
    return EvpPkeyPtr(key);
}

/// base64url SHA-256 of the first certificate's DER, computed here rather than by the library.
std::string jwsThumbprint(const std::string& certificatePem) {
    const BioPtr bio(BIO_new_mem_buf(certificatePem.data(), static_cast<int>(certificatePem.size())));
    const X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    unsigned char* der = nullptr;
    const int length = i2d_X509(certificate.get(), &der);
    unsigned char digest[32];
    SHA256(der, static_cast<std::size_t>(length), digest);
    OPENSSL_free(der);
    return base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

struct DecodedJws {
    nlohmann::json header, claims;
    std::string signingInput, signature;
};

DecodedJws decodeJws(const std::string& jws) {
    EXPECT_EQ(std::count(jws.begin(), jws.end(), '.'), 2) << "not a compact JWS";
    const auto first = jws.find('.'), last = jws.rfind('.');
    return {nlohmann::json::parse(base64UrlDecode(jws.substr(0, first)).value()),
            nlohmann::json::parse(base64UrlDecode(jws.substr(first + 1, last - first - 1)).value()),
            jws.substr(0, last), base64UrlDecode(jws.substr(last + 1)).value()};
}

/// Verifies a JWS signature with EVP: ES256's r||s is turned back into DER first, PS256 is
/// checked with the salt length the verifier demands.
bool jwsVerifies(EVP_PKEY* key, JwsAlgorithm algorithm, const std::string& input, std::string signature,
                 int pssSaltLength = 32) {
    if (algorithm == JwsAlgorithm::ES256) {
        if (signature.size() != 64) return false;
        const EcdsaSigPtr parsed(ECDSA_SIG_new());
        const auto* bytes = reinterpret_cast<const unsigned char*>(signature.data());
        ECDSA_SIG_set0(parsed.get(), BN_bin2bn(bytes, 32, nullptr), BN_bin2bn(bytes + 32, 32, nullptr));
        unsigned char* der = nullptr;
        const int length = i2d_ECDSA_SIG(parsed.get(), &der);
        signature.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
        OPENSSL_free(der);
    }
    const EvpMdCtxPtr context(EVP_MD_CTX_new());
    EVP_PKEY_CTX* keyContext = nullptr;
    bool ok = EVP_DigestVerifyInit(context.get(), &keyContext, EVP_sha256(), nullptr, key) == 1;
    if (ok && algorithm == JwsAlgorithm::RS256) ok = EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PADDING) == 1;
    if (ok && algorithm == JwsAlgorithm::PS256) {
        ok = EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(keyContext, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, pssSaltLength) == 1;
    }
    ok = ok &&
         EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    ERR_clear_error();
    return ok;
}

/// The Errc of a failed call; also checks that the message quotes no line of any PEM given.
template <class Call>
Errc jwsError(Call call, std::initializer_list<std::string_view> pems, std::string* message = nullptr) {
    try {
        call();
    } catch (const Error& error) {
        const std::string what = error.what();
        EXPECT_EQ(what.find("-----"), std::string::npos) << what;
        for (const std::string_view pem : pems) {
            for (std::size_t at = 0; at < pem.size();) {
                const std::size_t end = std::min(pem.find('\n', at), pem.size());
                const std::string_view line = pem.substr(at, end - at);
                if (line.size() >= 16) {
                    EXPECT_EQ(what.find(line), std::string::npos) << "key material: " << what;
                }
                at = end + 1;
            }
        }
        if (message) *message = what;
        return error.errc();
    }
    ADD_FAILURE() << "expected an mca::Error";
    return Errc::Shutdown;
}

const auto kJwsNow = std::chrono::system_clock::from_time_t(1'700'000'000) + std::chrono::milliseconds(999);

TEST(Jws, SignsVerifiableAssertionsWithEachAlgorithmAndKeyFormat) {
    const auto& keys = jwsKeys();
    const struct {
        EVP_PKEY* key;
        std::string pem;
        const char* signingAlg;
        JwsAlgorithm expected;
        std::size_t signatureSize;
    } cases[] = {
        {keys.rsa.get(), keys.rsaPem, "", JwsAlgorithm::RS256, 256},  // the RSA default
        {keys.rsa.get(), keys.rsaPem, "RS256", JwsAlgorithm::RS256, 256},
        {keys.rsa.get(), keys.rsaPem, "PS256", JwsAlgorithm::PS256, 256},
        {keys.rsa.get(), jwsKeyPem(keys.rsa.get(), true), "PS256", JwsAlgorithm::PS256, 256},  // BEGIN RSA PRIVATE KEY
        {keys.ec.get(), keys.ecPem, "", JwsAlgorithm::ES256, 64},                              // the EC default
        {keys.ec.get(), keys.ecPem, "ES256", JwsAlgorithm::ES256, 64},
        {keys.ec.get(), jwsKeyPem(keys.ec.get(), true), "", JwsAlgorithm::ES256, 64},  // BEGIN EC PRIVATE KEY
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(jwsAlgorithmName(c.expected)) + " from \"" + c.signingAlg + "\", " +
                     c.pem.substr(0, c.pem.find('\n')));
        const SigningKey key(c.pem, "", c.signingAlg);
        EXPECT_EQ(key.algorithm(), c.expected);
        EXPECT_STREQ(key.algorithmName(), jwsAlgorithmName(c.expected));
        const DecodedJws jws = decodeJws(key.clientAssertion("client", "https://idp.example/token", "", kJwsNow));
        EXPECT_EQ(jws.header["alg"], key.algorithmName());
        EXPECT_EQ(jws.signature.size(), c.signatureSize);
        EXPECT_TRUE(jwsVerifies(c.key, c.expected, jws.signingInput, jws.signature));
        EXPECT_FALSE(jwsVerifies(c.key, c.expected, jws.signingInput + " ", jws.signature));  // the input counts
    }
}

TEST(Jws, Ps256SignsWithASaltOfExactlyTheDigestLength) {
    const SigningKey key(jwsKeys().rsaPem, "", "PS256");
    EVP_PKEY* publicKey = jwsKeys().rsa.get();
    const std::string input = "eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJ4In0";
    const std::string signature = key.sign(input);
    EXPECT_TRUE(jwsVerifies(publicKey, JwsAlgorithm::PS256, input, signature, 32));
    // A verifier that pins another length refuses it: the salt really is 32 bytes, not OpenSSL's
    // default (the maximum, 256 - 32 - 2 = 222 bytes for a 2048-bit key).
    for (const int otherLength : {0, 20, 31, 33, 64, 222}) {
        EXPECT_FALSE(jwsVerifies(publicKey, JwsAlgorithm::PS256, input, signature, otherLength)) << otherLength;
    }
    EXPECT_FALSE(jwsVerifies(publicKey, JwsAlgorithm::RS256, input, signature));
    EXPECT_NE(key.sign(input), signature);  // a fresh random salt each time

    const SigningKey pkcs1(jwsKeys().rsaPem, "", "RS256");
    EXPECT_EQ(pkcs1.sign(input), pkcs1.sign(input));  // RSASSA-PKCS1-v1_5 is deterministic
    EXPECT_FALSE(jwsVerifies(publicKey, JwsAlgorithm::PS256, input, pkcs1.sign(input)));
}

TEST(Jws, Es256SignaturesAreRAndSOf32BytesEachNotDer) {
    const SigningKey key(jwsKeys().ecPem, "", "ES256");
    // About one signature in 128 has an r or s below 2^248, which DER would shorten: enough
    // signatures that the left padding is almost surely exercised.
    for (int i = 0; i < 512; ++i) {
        const std::string input = "input-" + std::to_string(i);
        const std::string signature = key.sign(input);
        ASSERT_EQ(signature.size(), 64u);
        ASSERT_TRUE(jwsVerifies(jwsKeys().ec.get(), JwsAlgorithm::ES256, input, signature)) << i;
    }
}

TEST(Jws, AssertionCarriesTheHeaderAndClaimsOfRfc7523) {
    const auto& keys = jwsKeys();
    const SigningKey plain(keys.rsaPem, "", "");
    const DecodedJws bare = decodeJws(plain.clientAssertion("my-client", "https://idp.example/token", "", kJwsNow));
    EXPECT_EQ(bare.header, nlohmann::json({{"alg", "RS256"}, {"typ", "JWT"}}));  // no kid, no x5t#S256
    EXPECT_EQ(bare.claims.size(), 7u);
    EXPECT_EQ(bare.claims["nbf"], bare.claims["iat"]);
    EXPECT_EQ(bare.claims["iss"], "my-client");
    EXPECT_EQ(bare.claims["sub"], "my-client");
    EXPECT_EQ(bare.claims["aud"], "https://idp.example/token");
    EXPECT_EQ(bare.claims["iat"], 1'700'000'000);  // whole seconds, rounded down
    EXPECT_EQ(bare.claims["exp"].get<long long>() - bare.claims["iat"].get<long long>(), 60);

    for (const auto& [pem, certificate] :
         {std::pair{keys.rsaPem, keys.rsaCertificate}, std::pair{keys.ecPem, keys.ecCertificate}}) {
        const SigningKey key(pem, certificate, "");
        const DecodedJws full = decodeJws(key.clientAssertion("my-client", "https://idp.example", "key-2024", kJwsNow));
        EXPECT_EQ(full.header, nlohmann::json({{"alg", key.algorithmName()},
                                               {"typ", "JWT"},
                                               {"kid", "key-2024"},
                                               {"x5t#S256", jwsThumbprint(certificate)}}));
    }

    // jti: 128 random bits, new for every assertion.
    std::set<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        const DecodedJws jws = decodeJws(plain.clientAssertion("my-client", "aud", "", kJwsNow));
        const std::string id = jws.claims["jti"];
        EXPECT_EQ(base64UrlDecode(id).value().size(), 16u);
        ids.insert(id);
    }
    EXPECT_EQ(ids.size(), 3u);
}

TEST(Jws, SigningKeyRefusesUnusableKeysAndAlgorithms) {
    const auto& keys = jwsKeys();
    const auto rsa1024 = generatedKey(EVP_RSA_gen(1024));
    const auto p384 = generatedKey(EVP_EC_gen("P-384"));
    const auto ed25519 = generatedKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    const auto otherEc = test::makeKey("EC");
    const std::string garbageCertificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const struct {
        const char* what;
        std::string keyPem, certificatePem, signingAlg;
        Errc expected;
        const char* mentions;
    } cases[] = {
        {"empty key", "", "", "", Errc::MissingPem, "privateKeyPem"},
        {"blank key", " \n\t ", keys.rsaCertificate, "", Errc::MissingPem, "privateKeyPem"},
        {"not PEM", "not a key", "", "", Errc::InvalidCertificate, "no readable"},
        {"a certificate, not a key", keys.rsaCertificate, "", "", Errc::InvalidCertificate, "no readable"},
        {"encrypted PKCS#8", jwsKeyPem(keys.rsa.get(), false, "correct horse"), "", "", Errc::InvalidCertificate,
         "encrypted"},
        {"encrypted traditional", jwsKeyPem(keys.ec.get(), true, "correct horse"), "", "", Errc::InvalidCertificate,
         "encrypted"},
        {"RSA 1024", test::privateKeyPem(rsa1024.get()), "", "RS256", Errc::InvalidCertificate, "1024 bits"},
        {"EC P-384", test::privateKeyPem(p384.get()), "", "", Errc::InvalidCertificate, "secp384r1"},
        {"Ed25519", test::privateKeyPem(ed25519.get()), "", "", Errc::InvalidCertificate, "ED25519"},
        {"unreadable certificate", keys.rsaPem, garbageCertificate, "", Errc::InvalidCertificate, "certificatePem"},
        {"certificate of an EC key", keys.rsaPem, keys.ecCertificate, "", Errc::InvalidCertificate, "does not belong"},
        {"certificate of another EC key", keys.ecPem, test::certificatePem(otherEc.get(), "other"), "",
         Errc::InvalidCertificate, "does not belong"},
        {"unknown algorithm", keys.rsaPem, "", "HS256", Errc::InvalidConfiguration, "HS256"},
        {"algorithm names are case-sensitive", keys.rsaPem, "", "rs256", Errc::InvalidConfiguration, "rs256"},
        {"ES256 with RSA", keys.rsaPem, "", "ES256", Errc::InvalidConfiguration, "RSA key"},
        {"RS256 with EC", keys.ecPem, "", "RS256", Errc::InvalidConfiguration, "EC key"},
        {"PS256 with EC", keys.ecPem, "", "PS256", Errc::InvalidConfiguration, "EC key"},
    };
    for (const auto& c : cases) {
        std::string message;
        EXPECT_EQ(jwsError([&] { SigningKey(c.keyPem, c.certificatePem, c.signingAlg); }, {c.keyPem, c.certificatePem},
                           &message),
                  c.expected)
            << c.what;
        EXPECT_NE(message.find(c.mentions), std::string::npos) << c.what << ": " << message;
    }
    EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL's error queue is left clean";

    // Claims that cannot be JSON (invalid UTF-8) are a configuration error, not a JSON exception.
    const SigningKey key(keys.ecPem, "", "");
    EXPECT_EQ(jwsError([&] { key.clientAssertion("client\xff", "aud", "", kJwsNow); }, {}), Errc::InvalidConfiguration);
}

TEST(Jws, ChecksTheTlsClientIdentityUpFront) {
    const auto& keys = jwsKeys();
    EXPECT_EQ(checkTlsClientIdentity(keys.rsaCertificate, keys.rsaPem), jwsThumbprint(keys.rsaCertificate));
    EXPECT_EQ(checkTlsClientIdentity(keys.ecCertificate, jwsKeyPem(keys.ec.get(), true)),
              jwsThumbprint(keys.ecCertificate));
    // A chain names its leaf; one combined file (certificate, then key) serves as both PEMs.
    EXPECT_EQ(checkTlsClientIdentity(keys.rsaCertificate + keys.ecCertificate, keys.rsaPem),
              jwsThumbprint(keys.rsaCertificate));
    EXPECT_EQ(checkTlsClientIdentity(keys.ecCertificate + keys.ecPem, keys.ecCertificate + keys.ecPem),
              jwsThumbprint(keys.ecCertificate));

    const std::string garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const struct {
        const char* what;
        std::string certificatePem, keyPem;
        Errc expected;
        const char* mentions;
    } cases[] = {
        {"no certificate", "", keys.rsaPem, Errc::MissingPem, "certificatePem"},
        {"no key", keys.rsaCertificate, "\n", Errc::MissingPem, "privateKeyPem"},
        {"unreadable certificate", garbage, keys.rsaPem, Errc::InvalidCertificate, "certificatePem"},
        {"broken chain", keys.rsaCertificate + garbage, keys.rsaPem, Errc::InvalidCertificate, "certificate 2"},
        {"unreadable key", keys.rsaCertificate, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         Errc::InvalidCertificate, "no readable"},
        {"encrypted key", keys.rsaCertificate, jwsKeyPem(keys.rsa.get(), false, "secret"), Errc::InvalidCertificate,
         "encrypted"},
        {"key of another certificate", keys.rsaCertificate, keys.ecPem, Errc::InvalidCertificate, "does not belong"},
    };
    for (const auto& c : cases) {
        std::string message;
        EXPECT_EQ(jwsError([&] { checkTlsClientIdentity(c.certificatePem, c.keyPem); }, {c.keyPem}, &message),
                  c.expected)
            << c.what;
        EXPECT_NE(message.find(c.mentions), std::string::npos) << c.what << ": " << message;
    }
    EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL's error queue is left clean";
}

TEST(Jws, OneKeySignsFromManyThreadsAtOnce) {
    const SigningKey rsa(jwsKeys().rsaPem, "", "PS256"), ec(jwsKeys().ecPem, "", "");
    std::vector<std::vector<std::string>> assertions(4);
    std::vector<std::thread> threads;
    for (auto& mine : assertions) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10; ++i) {
                mine.push_back(rsa.clientAssertion("c", "a", "", kJwsNow));
                mine.push_back(ec.clientAssertion("c", "a", "", kJwsNow));
            }
        });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& mine : assertions) {
        ASSERT_EQ(mine.size(), 20u);
        for (std::size_t i = 0; i < mine.size(); ++i) {
            const DecodedJws jws = decodeJws(mine[i]);
            EXPECT_TRUE(jwsVerifies(i % 2 ? jwsKeys().ec.get() : jwsKeys().rsa.get(),
                                    i % 2 ? JwsAlgorithm::ES256 : JwsAlgorithm::PS256, jws.signingInput,
                                    jws.signature));
        }
    }
}

}  // namespace
}  // namespace mca::detail
