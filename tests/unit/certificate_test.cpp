#include "test_certificates.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace mca::detail {
namespace {

Errc certificateError(const std::string& certificate, const std::string& key) {
    try {
        ClientCertificate parsed(certificate, key);
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()).find("PRIVATE KEY"), std::string::npos) << "a message quotes the key";
        return error.errc();
    }
    ADD_FAILURE() << "expected an error";
    return Errc::Shutdown;
}

const test::PemPair& clientPems() {
    static const test::PemPair pair = test::makeClientCertificate("backend-service");
    return pair;
}

TEST(Certificate, ReadsTheClientIdFromTheSubjectCommonName) {
    const ClientCertificate certificate(clientPems().certificatePem, clientPems().privateKeyPem);
    EXPECT_EQ(certificate.commonName(), "backend-service");
    const auto unicode = test::makeClientCertificate("dépôt-client");
    EXPECT_EQ(ClientCertificate(unicode.certificatePem, unicode.privateKeyPem).commonName(), "dépôt-client");
}

TEST(Certificate, SignsAnRs256AssertionWithTheCertificateInX5c) {
    const ClientCertificate certificate(clientPems().certificatePem, clientPems().privateKeyPem);
    const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
    const std::string jws = certificate.signedAssertion(now);
    const auto firstDot = jws.find('.'), secondDot = jws.rfind('.');
    const auto header = nlohmann::json::parse(*base64UrlDecode(jws.substr(0, firstDot)));
    const auto payload = nlohmann::json::parse(*base64UrlDecode(jws.substr(firstDot + 1, secondDot - firstDot - 1)));
    EXPECT_EQ(header["alg"], "RS256");
    ASSERT_TRUE(header["x5c"].is_string());  // one string, as the Node SDK sends it
    std::string pemBody = clientPems().certificatePem;
    pemBody.erase(0, pemBody.find('\n') + 1);
    pemBody.erase(pemBody.find("-----END"));
    pemBody.erase(std::remove(pemBody.begin(), pemBody.end(), '\n'), pemBody.end());
    EXPECT_EQ(header["x5c"], pemBody);  // the certificate's base64 body, as in the PEM
    EXPECT_EQ(payload, nlohmann::json({{"timestamp", 1'700'000'000'000LL}}));
    EXPECT_EQ(jws.substr(0, firstDot), test::base64Url(R"({"alg":"RS256","x5c":")" + pemBody + R"("})"));

    // The signature verifies with the certificate's public key.
    const BioPtr bio(
        BIO_new_mem_buf(clientPems().certificatePem.data(), static_cast<int>(clientPems().certificatePem.size())));
    const X509Ptr x509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    const EvpPkeyPtr publicKey(X509_get_pubkey(x509.get()));
    const std::string signingInput = jws.substr(0, secondDot);
    const std::string signature = *base64UrlDecode(jws.substr(secondDot + 1));
    const EvpMdCtxPtr context(EVP_MD_CTX_new());
    ASSERT_EQ(EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, publicKey.get()), 1);
    EXPECT_EQ(
        EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                         reinterpret_cast<const unsigned char*>(signingInput.data()), signingInput.size()),
        1);
}

TEST(Certificate, RefusesUnusablePemsWithClearErrors) {
    const auto other = test::makeClientCertificate("other");
    const auto noCommonName = test::makeClientCertificate("");
    const auto elliptic = test::makeClientCertificate("ec-client", "EC");
    EXPECT_EQ(certificateError("", clientPems().privateKeyPem), Errc::MissingPem);
    EXPECT_EQ(certificateError(clientPems().certificatePem, "  \n"), Errc::MissingPem);
    EXPECT_EQ(certificateError("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
                               clientPems().privateKeyPem),
              Errc::InvalidCertificate);
    EXPECT_EQ(certificateError(clientPems().certificatePem, "not a key"), Errc::InvalidCertificate);
    EXPECT_EQ(certificateError(clientPems().certificatePem, other.privateKeyPem),
              Errc::InvalidCertificate);  // mismatch
    EXPECT_EQ(certificateError(noCommonName.certificatePem, noCommonName.privateKeyPem), Errc::InvalidCertificate);
    EXPECT_EQ(certificateError(elliptic.certificatePem, elliptic.privateKeyPem),
              Errc::InvalidCertificate);  // not RS256
    EXPECT_EQ(certificateError(clientPems().privateKeyPem, clientPems().certificatePem),
              Errc::InvalidCertificate);  // swapped
}

TEST(Certificate, ReadsCredentialsFromADirectoryTheNodeSdkWay) {
    namespace fs = std::filesystem;
    const fs::path directory = fs::temp_directory_path() / ("mca-cert-" + std::to_string(::getpid()));
    fs::create_directories(directory / "imf_certificate");
    std::ofstream(directory / "imf_certificate" / "public-certificate.pem") << clientPems().certificatePem;
    std::ofstream(directory / "imf_certificate" / "private-key.pem") << clientPems().privateKeyPem;
    ::setenv("imfServiceUrl", "https://imf-authserver.example.com/imf-authserver", 1);
    const CertificateCredentials credentials = certificateCredentialsFromDirectory(directory.string(), "app-1");
    ::unsetenv("imfServiceUrl");
    EXPECT_EQ(credentials.appId, "app-1");
    EXPECT_EQ(credentials.certificatePem, clientPems().certificatePem);
    EXPECT_EQ(credentials.privateKeyPem, clientPems().privateKeyPem);
    EXPECT_EQ(credentials.serverUrl, "https://imf-authserver.example.com/imf-authserver");
    fs::remove(directory / "imf_certificate" / "private-key.pem");
    try {
        certificateCredentialsFromDirectory(directory.string(), "app-1");
        ADD_FAILURE() << "expected MissingPem";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), Errc::MissingPem);
        EXPECT_NE(std::string(error.what()).find("private-key.pem"), std::string::npos);
    }
    fs::remove_all(directory);
}

TEST(Propagation, ForwardsOnlyWellFormedBearerHeaders) {
    EXPECT_EQ(forwardableAuthorization("Bearer abc.def.ghi"), "Bearer abc.def.ghi");
    EXPECT_EQ(forwardableAuthorization("Bearer   abc.def.ghi    id.to.ken"), "Bearer abc.def.ghi id.to.ken");
    EXPECT_EQ(forwardableAuthorization("bearer abc"), "Bearer abc");
    EXPECT_EQ(forwardableAuthorization(" Bearer abc "), "Bearer abc");
    EXPECT_FALSE(forwardableAuthorization(""));
    EXPECT_FALSE(forwardableAuthorization("Bearer"));
    EXPECT_FALSE(forwardableAuthorization("Bearer "));
    EXPECT_FALSE(forwardableAuthorization("Basic dXNlcjpwYXNz"));
    EXPECT_FALSE(forwardableAuthorization("Bearer a b c"));
    EXPECT_FALSE(forwardableAuthorization("Bearer abc\r\nX-Injected: 1"));
    EXPECT_FALSE(forwardableAuthorization("Bearer\tabc"));
    EXPECT_FALSE(forwardableAuthorization("Bearerx abc"));
}

TEST(TokenRequest, FormEncodesLikeHtmlForms) {
    EXPECT_EQ(formEncode("read write"), "read+write");
    EXPECT_EQ(formEncode("a:b/c?d=e&f"), "a%3Ab%2Fc%3Fd%3De%26f");
    EXPECT_EQ(formEncode("é*-._~"), "%C3%A9*-._%7E");
}

TEST(TokenRequest, OAuthBasicFormEncodesIdAndSecretFirst) {
    // RFC 6749 §2.3.1: "client:id" with secret "p@ss word" -> base64("client%3Aid:p%40ss+word").
    EXPECT_EQ(oauthBasicAuthorization("client:id", "p@ss word").view(),
              "Basic " + base64Encode("client%3Aid:p%40ss+word"));
    EXPECT_EQ(oauthBasicAuthorization("plain", "secret").view(), basicAuthorization("plain", "secret").view());
}

}  // namespace
}  // namespace mca::detail
