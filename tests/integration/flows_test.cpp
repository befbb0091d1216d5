// The flows beyond the MCA secret flow, end to end against the loopback server: the certificate
// flow (the server verifies the JWS against its x5c certificate), App ID / RFC 6749 endpoints,
// and token requests through a proxy.

#include "test_certificates.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include "support/loopback_proxy.hpp"

#include <cstdlib>
#include <optional>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

struct CertificateFixture : ServerFixture {
    CertificateFixture() {
        pems = makeClientCertificate("cert-client");
        server.addCertificateClient(kAppId, pems.certificatePem);
    }
    CertificateCredentials credentials() const {
        return {kAppId, pems.certificatePem, pems.privateKeyPem, server.baseUrl()};
    }
    PemPair pems;
};

TEST(CertificateFlow, TheServerAcceptsTheSignedAssertion) {
    CertificateFixture fixture;
    AuthClient client;
    const std::string token = accessTokenOf(client.getAuthorizationHeader(fixture.credentials()).get());
    EXPECT_EQ(fixture.server.lastCertificateCheck(), "ok");
    EXPECT_EQ(decodeJwtPayload(token)["prn"], "cert-client");
    const RecordedRequest request = fixture.server.requests().back();
    EXPECT_EQ(request.target, std::string("/imf-authserver/authorization/v1/apps/") + kAppId + "/token");
    EXPECT_EQ(request.header("Authorization").rfind("IMFCert ey", 0), 0u);
    EXPECT_EQ(request.body, "grant_type=client_credentials&client_id=cert-client");
}

TEST(CertificateFlow, IsCachedAndSharedLikeTheSecretFlow) {
    CertificateFixture fixture;
    fixture.server.setDelay(100ms);
    AuthClient client;
    std::vector<std::future<std::string>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(client.getAuthorizationHeader(fixture.credentials()));
    const std::string first = futures.front().get();
    for (std::size_t i = 1; i < futures.size(); ++i) EXPECT_EQ(futures[i].get(), first);
    EXPECT_EQ(client.getAuthorizationHeader(fixture.credentials()).get(), first);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    client.invalidate(fixture.credentials());
    EXPECT_NE(client.getAuthorizationHeader(fixture.credentials()).get(), first);
}

TEST(CertificateFlow, AnotherKeyOrAnUnregisteredCertificateNeverGetsTheToken) {
    CertificateFixture fixture;
    AuthClient client;
    client.getAuthorizationHeader(fixture.credentials()).get();
    CertificateCredentials otherKey = fixture.credentials();
    otherKey.privateKeyPem = makeClientCertificate("cert-client").privateKeyPem;
    EXPECT_EQ(errorOf(client.getAuthorizationHeader(otherKey)).code(), Errc::InvalidCertificate);
    const PemPair stranger = makeClientCertificate("cert-client");
    const Error refused = errorOf(client.getAuthorizationHeader(
        CertificateCredentials{kAppId, stranger.certificatePem, stranger.privateKeyPem, fixture.server.baseUrl()}));
    EXPECT_EQ(refused.code(), Errc::TokenGenerate);
    EXPECT_EQ(refused.httpStatus(), 401);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);  // the mismatched key never reached the server
}

TEST(CertificateFlow, MissingPiecesAreTypedErrors) {
    CertificateFixture fixture;
    AuthClient client;
    CertificateCredentials credentials = fixture.credentials();
    credentials.appId.clear();
    EXPECT_EQ(errorOf(client.getAuthorizationHeader(credentials)).code(), Errc::MissingAppId);
    credentials = fixture.credentials();
    credentials.privateKeyPem.clear();
    EXPECT_EQ(errorOf(client.getAuthorizationHeader(credentials)).code(), Errc::MissingPem);
    credentials = fixture.credentials();
    credentials.serverUrl.clear();
    EXPECT_EQ(errorOf(client.getAuthorizationHeader(credentials)).code(), Errc::MissingServerUrl);
    credentials = fixture.credentials();
    credentials.certificatePem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    EXPECT_EQ(errorOf(client.getAuthorizationHeader(credentials)).code(), Errc::InvalidCertificate);
    EXPECT_EQ(fixture.server.tokenRequests(), 0u);
}

struct OAuthFixture : ServerFixture {
    OAuthFixture() { server.addOAuthClient("tenant-x", "app:client", "p@ss word"); }
    Credentials credentials(std::string scope = "") const {
        Credentials credentials;
        credentials.clientId = "app:client";
        credentials.secret = "p@ss word";
        credentials.tokenUrl = server.oauthServerUrl("tenant-x") + "/token";
        credentials.scope = std::move(scope);
        return credentials;
    }
};

TEST(OAuthFlow, SpeaksRfc6749ToAnAppIdStyleEndpoint) {
    OAuthFixture fixture;
    AuthClient client;
    const std::string token = accessTokenOf(client.getAuthorizationHeader(fixture.credentials("read write")).get());
    const auto claims = decodeJwtPayload(token);
    EXPECT_EQ(claims["sub"], "app:client");
    EXPECT_EQ(claims["scope"], "read write");
    const RecordedRequest request = fixture.server.requests().back();
    EXPECT_EQ(request.target, "/oauth/v4/tenant-x/token");
    EXPECT_EQ(request.header("Authorization"), "Basic " + detail::base64Encode("app%3Aclient:p%40ss+word"));
    EXPECT_EQ(request.body, "grant_type=client_credentials&scope=read+write");
}

TEST(OAuthFlow, ScopesAreCachedApartAndOAuthErrorsAreReported) {
    OAuthFixture fixture;
    AuthClient client;
    const std::string read = client.getAuthorizationHeader(fixture.credentials("read")).get();
    EXPECT_NE(client.getAuthorizationHeader(fixture.credentials("write")).get(), read);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
    Credentials wrong = fixture.credentials();
    wrong.secret = "nope";
    const Error error = errorOf(client.getAuthorizationHeader(wrong));
    EXPECT_EQ(error.httpStatus(), 401);
    EXPECT_NE(std::string(error.what()).find("invalid_client"), std::string::npos) << error.what();
}

TEST(OAuthFlow, AnAppIdBindingInVcapFillsTheTokenUrl) {
    OAuthFixture fixture;
    const std::string services = R"({"AppID": [{"credentials": {"tenantId": "tenant-x", "clientId": "app:client",
        "secret": "p@ss word", "oauthServerUrl": ")" +
                                 fixture.server.oauthServerUrl("tenant-x") + R"("}}]})";
    ::setenv("VCAP_SERVICES", services.c_str(), 1);
    AuthClient client;
    ::unsetenv("VCAP_SERVICES");
    EXPECT_EQ(decodeJwtPayload(accessTokenOf(client.getAuthorizationHeader().get()))["aud"], "tenant-x");
}

/// Sets an environment variable for a scope and restores what was there before.
class ScopedEnvironment {
  public:
    ScopedEnvironment(const char* name, const std::string& value) : name_(name) {
        if (const char* previous = std::getenv(name)) previous_ = previous;
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnvironment() {
        if (previous_) {
            ::setenv(name_, previous_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }
    ScopedEnvironment(const ScopedEnvironment&) = delete;
    ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

  private:
    const char* name_;
    std::optional<std::string> previous_;
};

// Explicit options win as a whole: an AppID binding's oauthServerUrl must not become the token
// URL of explicitly given MCA credentials, which would post their secret to that other server.
TEST(DefaultCredentials, ExplicitOptionsAreNeverSentToAServerNamedInVcap) {
    ServerFixture explicitServer;
    OAuthFixture otherServer;
    const ScopedEnvironment services("VCAP_SERVICES",
                                     R"({"AppID": [{"credentials": {"tenantId": "tenant-x", "clientId": "app:client",
            "secret": "p@ss word", "oauthServerUrl": ")" +
                                         otherServer.server.oauthServerUrl("tenant-x") + R"("}}]})");
    const ScopedEnvironment application("VCAP_APPLICATION", R"({"application_id": "guid-from-application"})");
    AuthClient client(optionsFor(explicitServer.credentials()));
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_EQ(explicitServer.server.tokenRequests(), 1u);
    EXPECT_EQ(otherServer.server.tokenRequests(), 0u);
    EXPECT_TRUE(otherServer.server.requests().empty());
}

// A partly given set of credentials is not completed from the environment either: the missing
// part is reported, and the environment's server gets nothing.
TEST(DefaultCredentials, PartialExplicitOptionsAreNotCompletedFromVcap) {
    OAuthFixture otherServer;
    const ScopedEnvironment services("VCAP_SERVICES",
                                     R"({"AppID": [{"credentials": {"tenantId": "tenant-x", "clientId": "app:client",
            "secret": "p@ss word", "oauthServerUrl": ")" +
                                         otherServer.server.oauthServerUrl("tenant-x") + R"("}}]})");
    Options options;
    options.clientId = "explicit-client";
    options.secret = "explicit-secret";
    AuthClient client(options);
    EXPECT_EQ(errorOf(client.getAuthorizationHeader()).code(), Errc::MissingAppId);
    EXPECT_TRUE(otherServer.server.requests().empty());
}

TEST(Proxy, TheProxyOptionRoutesTokenRequests) {
    ServerFixture fixture;
    LoopbackProxy proxy;
    Options options = optionsFor(fixture.credentials());
    options.proxy = proxy.url();
    AuthClient client(options);
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_EQ(proxy.requestsForwarded(), 1u);
    ASSERT_EQ(proxy.requestLines().size(), 1u);
    EXPECT_EQ(proxy.requestLines().front().rfind("POST " + fixture.server.baseUrl() + "/authorization/v1/apps/", 0),
              0u);
}

TEST(Proxy, ProxyCredentialsInTheUrlAreUsedAndNeverLogged) {
    ServerFixture fixture;
    LoopbackProxy proxy;
    proxy.requireBasicAuth("squid", "proxy-pass-91");
    std::vector<std::string> lines;
    std::mutex mutex;
    Options options = optionsFor(fixture.credentials());
    options.proxy = "http://squid:proxy-pass-91@127.0.0.1:" + std::to_string(proxy.port());
    options.log = [&](LogLevel, std::string_view line) {
        std::lock_guard lock(mutex);
        lines.emplace_back(line);
    };
    AuthClient client(options);
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_EQ(proxy.requestsForwarded(), 1u);
    std::lock_guard lock(mutex);
    for (const auto& line : lines) EXPECT_EQ(line.find("proxy-pass-91"), std::string::npos) << line;
}

TEST(Proxy, TheStandardEnvironmentVariablesWork) {
    ServerFixture fixture;
    LoopbackProxy proxy;
    ::unsetenv("no_proxy");
    ::unsetenv("NO_PROXY");
    ::setenv("http_proxy", proxy.url().c_str(), 1);
    AuthClient client(optionsFor(fixture.credentials()));
    const auto header = client.getAuthorizationHeader();
    EXPECT_NO_THROW(header.wait());
    ::unsetenv("http_proxy");
    EXPECT_EQ(proxy.requestsForwarded(), 1u);
}

}  // namespace
}  // namespace mca::test
