// Clients of any OAuth 2.0 server (mca::OAuthCredentials) against the test server's realms,
// which check every client authentication method as a real server does: a secret in Basic or in
// the form, a signed assertion (RS256, PS256, ES256; audience, expiry, replayed jti), a TLS
// client certificate, discovery documents (good, missing and broken), and the form parameters.

#include "memory_store.hpp"
#include "test_certificates.hpp"
#include "test_support.hpp"
#include "test_tls_files.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace mca::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kRealm = "payments";
constexpr const char* kOAuthSecret = "realm-Secret/with:odd&chars+";

std::string formValue(const std::vector<std::pair<std::string, std::string>>& form, const std::string& name) {
    for (const auto& [key, value] : form) {
        if (key == name) return value;
    }
    return "<absent>";
}

std::vector<std::string> formValues(const std::vector<std::pair<std::string, std::string>>& form,
                                    const std::string& name) {
    std::vector<std::string> values;
    for (const auto& [key, value] : form) {
        if (key == name) values.push_back(value);
    }
    return values;
}

/// Keys made once for the suite (RSA generation is slow), and a CA-signed TLS server certificate.
class OAuth : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        auto rsa = makeKey("RSA");
        auto ec = makeKey("EC");
        auto other = makeKey("RSA");
        rsaKeyPem = privateKeyPem(rsa.get());
        rsaCertificatePem = certificatePem(rsa.get(), "payments-client");
        ecKeyPem = privateKeyPem(ec.get());
        ecCertificatePem = certificatePem(ec.get(), "payments-ec-client");
        otherKeyPem = privateKeyPem(other.get());
        otherCertificatePem = certificatePem(other.get(), "other-client");

        directory = fs::temp_directory_path() / ("mca-oauth-" + std::to_string(::getpid()));
        makeServerCertificates(directory, "oauth-test-ca");
    }
    static void TearDownTestSuite() { fs::remove_all(directory); }

    static ServerOptions https() {
        ServerOptions options;
        options.tlsCertFile = (directory / "server.pem").string();
        options.tlsKeyFile = (directory / "server.key").string();
        return options;
    }

    static Options optionsOver(bool tls) {
        Options options;
        if (tls) options.caInfo = (directory / "ca.pem").string();
        options.timeout = 5s;
        return options;
    }

    /// Registers a client of the realm for `method`, and returns credentials that match it.
    static OAuthCredentials registered(McaTestServer& server, ClientAuthMethod method,
                                       const std::string& clientId = "payments-client") {
        OAuth2Client client;
        client.clientId = clientId;
        OAuthCredentials credentials;
        credentials.clientId = clientId;
        credentials.tokenUrl = server.tokenEndpoint(kRealm);
        credentials.authMethod = method;
        switch (method) {
            case ClientAuthMethod::SecretBasic:
            case ClientAuthMethod::SecretPost:
                client.method =
                    method == ClientAuthMethod::SecretBasic ? ClientAuth::SecretBasic : ClientAuth::SecretPost;
                client.secret = kOAuthSecret;
                credentials.secret = kOAuthSecret;
                break;
            case ClientAuthMethod::PrivateKeyJwt:
            case ClientAuthMethod::ClientAssertion:
                client.method = ClientAuth::PrivateKeyJwt;
                client.publicKeyPem = rsaCertificatePem;
                credentials.privateKeyPem = rsaKeyPem;
                break;
            case ClientAuthMethod::TlsClientAuth:
                client.method = ClientAuth::TlsClientAuth;
                client.certificatePem = rsaCertificatePem;
                credentials.certificatePem = rsaCertificatePem;
                credentials.privateKeyPem = rsaKeyPem;
                break;
        }
        server.addOAuth2Client(kRealm, client);
        return credentials;
    }

    /// An assertion such as a workload identity provider writes to a file, for the realm.
    static std::string workloadAssertion(const McaTestServer& server, const std::string& jti) {
        const auto now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        return signJws(rsaKeyPem, "RS256",
                       {{"iss", "payments-client"},
                        {"sub", "payments-client"},
                        {"aud", server.tokenEndpoint(kRealm)},
                        {"jti", jti},
                        {"iat", now},
                        {"exp", now + 300}});
    }

    /// The access token of a header, checked to be the server's, and its claims.
    static nlohmann::json claimsOf(const McaTestServer& server, const std::string& header) {
        EXPECT_EQ(header.rfind("Bearer ", 0), 0u) << header;
        const std::string token = header.substr(7);
        EXPECT_TRUE(verifyRs256Jwt(token, server.publicKeyPem()));
        return decodeJwtPayload(token);
    }

    static inline std::string rsaKeyPem, rsaCertificatePem, ecKeyPem, ecCertificatePem, otherKeyPem,
        otherCertificatePem;
    static inline fs::path directory;
};

// --- Each method, end to end ---------------------------------------------------------------

TEST_F(OAuth, SecretBasicEncodesTheIdAndSecretBeforeBasic) {
    McaTestServer server;
    const auto credentials = registered(server, ClientAuthMethod::SecretBasic);
    AuthClient client(optionsOver(false));
    const auto claims = claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(claims["sub"], "payments-client");
    EXPECT_EQ(server.lastClientAuthCheck(), "ok");
    const auto form = server.lastTokenForm();
    EXPECT_EQ(formValue(form, "client_secret"), "<absent>");
    EXPECT_EQ(formValue(form, "grant_type"), "client_credentials");
    EXPECT_NE(server.requests().back().header("Authorization").rfind("Basic ", 0), std::string::npos);
}

TEST_F(OAuth, SecretPostSendsTheSecretInTheFormAndNoAuthorizationHeader) {
    McaTestServer server;
    const auto credentials = registered(server, ClientAuthMethod::SecretPost);
    AuthClient client(optionsOver(false));
    claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(server.lastClientAuthCheck(), "ok");
    const auto form = server.lastTokenForm();
    EXPECT_EQ(formValue(form, "client_id"), "payments-client");
    EXPECT_EQ(formValue(form, "client_secret"), kOAuthSecret);
    EXPECT_EQ(server.requests().back().header("Authorization"), "");
}

TEST_F(OAuth, PrivateKeyJwtSignsAFreshAssertionForTheTokenEndpoint) {
    McaTestServer server;
    auto credentials = registered(server, ClientAuthMethod::PrivateKeyJwt);
    credentials.keyId = "key-2026";
    AuthClient client(optionsOver(false));
    claimsOf(server, client.getAuthorizationHeader(credentials).get());
    ASSERT_EQ(server.lastClientAuthCheck(), "ok");
    const auto header = server.lastClientAssertionHeader();
    const auto claims = server.lastClientAssertionClaims();
    EXPECT_EQ(header["alg"], "RS256");
    EXPECT_EQ(header["typ"], "JWT");
    EXPECT_EQ(header["kid"], "key-2026");
    EXPECT_FALSE(header.contains("x5t#S256"));
    EXPECT_EQ(claims["iss"], "payments-client");
    EXPECT_EQ(claims["sub"], "payments-client");
    EXPECT_EQ(claims["aud"], server.tokenEndpoint(kRealm));
    EXPECT_EQ(claims["exp"].get<long long>() - claims["iat"].get<long long>(), 60);
    const auto form = server.lastTokenForm();
    EXPECT_EQ(formValue(form, "client_assertion_type"), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    EXPECT_EQ(formValue(form, "client_id"), "payments-client");
    EXPECT_TRUE(verifyJws(formValue(form, "client_assertion"), rsaCertificatePem));

    // The next token request (here after an invalidation) carries a new jti: the server refuses replays.
    const std::string firstJti = claims["jti"];
    client.invalidate(credentials);
    claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(server.lastClientAuthCheck(), "ok");
    EXPECT_NE(server.lastClientAssertionClaims()["jti"], firstJti);
}

TEST_F(OAuth, PrivateKeyJwtSignsEveryAlgorithmTheServerChecks) {
    struct Case {
        const char* alg;
        bool ec;
        bool withCertificate;
    };
    for (const Case& c : {Case{"", false, false}, Case{"RS256", false, true}, Case{"PS256", false, false},
                          Case{"", true, false}, Case{"ES256", true, true}}) {
        SCOPED_TRACE(std::string(c.alg) + (c.ec ? " EC" : " RSA"));
        McaTestServer server;
        OAuth2Client registration{"signer", ClientAuth::PrivateKeyJwt, "", c.ec ? ecCertificatePem : rsaCertificatePem,
                                  ""};
        server.addOAuth2Client(kRealm, registration);
        OAuthCredentials credentials;
        credentials.clientId = "signer";
        credentials.tokenUrl = server.tokenEndpoint(kRealm);
        credentials.authMethod = ClientAuthMethod::PrivateKeyJwt;
        credentials.privateKeyPem = c.ec ? ecKeyPem : rsaKeyPem;
        if (c.withCertificate) credentials.certificatePem = c.ec ? ecCertificatePem : rsaCertificatePem;
        credentials.signingAlg = c.alg;
        AuthClient client(optionsOver(false));
        claimsOf(server, client.getAuthorizationHeader(credentials).get());
        EXPECT_EQ(server.lastClientAuthCheck(), "ok");
        const auto header = server.lastClientAssertionHeader();
        EXPECT_EQ(header["alg"], *c.alg != '\0' ? c.alg : (c.ec ? "ES256" : "RS256"));
        EXPECT_EQ(header.contains("x5t#S256"), c.withCertificate);
        EXPECT_FALSE(header.contains("kid"));
    }
}

TEST_F(OAuth, TheAssertionAudienceCanBeTheIssuerForServersThatAskForIt) {
    McaTestServer server;
    auto credentials = registered(server, ClientAuthMethod::PrivateKeyJwt);
    credentials.assertionAudience = server.issuer(kRealm) + "/";  // as Auth0 asks; this realm refuses it
    AuthClient client(optionsOver(false));
    const Error error = errorOf(client.getAuthorizationHeader(credentials));
    EXPECT_EQ(error.code(), Errc::TokenGenerate) << error.what();
    EXPECT_EQ(server.lastClientAssertionClaims()["aud"], server.issuer(kRealm) + "/");
    EXPECT_NE(std::string(error.what()).find("aud"), std::string::npos) << error.what();
}

TEST_F(OAuth, EveryRetryCarriesANewAssertion) {
    McaTestServer server;
    const auto credentials = registered(server, ClientAuthMethod::PrivateKeyJwt);
    Reply unavailable;
    unavailable.action = Action::Status;
    unavailable.status = 503;
    server.pushReply(unavailable);
    AuthClient client(optionsOver(false));
    claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(server.tokenRequests(), 2u);
    std::set<std::string> assertions;
    for (const auto& request : server.requests()) assertions.insert(request.body);
    EXPECT_EQ(assertions.size(), 2u);  // not one body sent twice
    EXPECT_EQ(server.lastClientAuthCheck(), "ok");
}

TEST_F(OAuth, TlsClientAuthPresentsTheCertificateAndGetsABoundToken) {
    McaTestServer server(https());
    const auto credentials = registered(server, ClientAuthMethod::TlsClientAuth);
    AuthClient client(optionsOver(true));
    const auto claims = claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(server.lastClientAuthCheck(), "ok");
    EXPECT_TRUE(claims.contains("cnf"));  // RFC 8705 §3: bound to the certificate
    EXPECT_EQ(formValue(server.lastTokenForm(), "client_id"), "payments-client");
    EXPECT_EQ(server.requests().back().header("Authorization"), "");
}

TEST_F(OAuth, TlsClientAuthTenantsWithTwoCertificatesShareNoConnection) {
    McaTestServer server(https());
    const auto first = registered(server, ClientAuthMethod::TlsClientAuth, "first");
    OAuth2Client second{"second", ClientAuth::TlsClientAuth, "", "", otherCertificatePem};
    server.addOAuth2Client(kRealm, second);
    OAuthCredentials secondCredentials = first;
    secondCredentials.clientId = "second";
    secondCredentials.certificatePem = otherCertificatePem;
    secondCredentials.privateKeyPem = otherKeyPem;
    OAuthCredentials plain = registered(server, ClientAuthMethod::SecretBasic, "plain");
    AuthClient client(optionsOver(true));
    for (int round = 0; round < 2; ++round) {  // alternating: each reused connection must be the right one
        for (const OAuthCredentials* credentials :
             std::vector<const OAuthCredentials*>{&first, &secondCredentials, &plain}) {
            client.invalidate(*credentials);
            claimsOf(server, client.getAuthorizationHeader(*credentials).get());
            EXPECT_EQ(server.lastClientAuthCheck(), "ok") << credentials->clientId;
        }
    }
}

TEST_F(OAuth, TlsClientAuthIsRefusedOverPlainHttp) {
    McaTestServer server;
    const auto credentials = registered(server, ClientAuthMethod::TlsClientAuth);
    AuthClient client(optionsOver(false));
    const Error error = errorOf(client.getAuthorizationHeader(credentials));
    EXPECT_EQ(error.code(), Errc::InvalidConfiguration) << error.what();
    EXPECT_EQ(server.tokenRequests(), 0u);
}

TEST_F(OAuth, ClientAssertionIsReadFromItsFileAndReadAgainWhenRotated) {
    McaTestServer server;
    auto credentials = registered(server, ClientAuthMethod::ClientAssertion);
    credentials.privateKeyPem.clear();
    credentials.assertionFile = (directory / "token").string();
    std::ofstream(credentials.assertionFile) << "\n" << workloadAssertion(server, "first") << "\n";
    AuthClient client(optionsOver(false));
    claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(server.lastClientAuthCheck(), "ok");
    EXPECT_EQ(server.lastClientAssertionClaims()["jti"], "first");

    // Rotated the Kubernetes way: a new file renamed over the old one.
    std::ofstream(directory / "token.new") << workloadAssertion(server, "second");
    fs::rename(directory / "token.new", credentials.assertionFile);
    client.invalidate(credentials);
    claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(server.lastClientAssertionClaims()["jti"], "second");
}

// --- Parameters and the cache key --------------------------------------------------------------

TEST_F(OAuth, ParametersAreFormEncodedAndTheTokenIsForTheResources) {
    McaTestServer server;
    auto credentials = registered(server, ClientAuthMethod::SecretBasic);
    credentials.scope = "read write";
    credentials.resources = {"https://api.example.com/payments", "https://api.example.com/ledger?x=1&y=2"};
    credentials.audience = "https://audience.example.com";
    credentials.extraParameters = {{"tenant", "eu & us"}, {"requested_token_use", "on_behalf_of"}};
    AuthClient client(optionsOver(false));
    const auto claims = claimsOf(server, client.getAuthorizationHeader(credentials).get());
    const auto form = server.lastTokenForm();
    EXPECT_EQ(formValue(form, "scope"), "read write");
    EXPECT_EQ(formValues(form, "resource"), credentials.resources);
    EXPECT_EQ(formValue(form, "audience"), "https://audience.example.com");
    EXPECT_EQ(formValue(form, "tenant"), "eu & us");
    EXPECT_EQ(formValue(form, "requested_token_use"), "on_behalf_of");
    EXPECT_EQ(claims["aud"], nlohmann::json(credentials.resources));
}

TEST_F(OAuth, EveryFieldThatChangesTheTokenIsInTheCacheKey) {
    McaTestServer server;
    const auto base = registered(server, ClientAuthMethod::SecretBasic);
    std::vector<OAuthCredentials> variants(7, base);
    variants[1].scope = "read";
    variants[2].resources = {"https://a.example.com"};
    variants[3].resources = {"https://a.example.com", "https://b.example.com"};
    variants[4].audience = "https://a.example.com";
    variants[5].extraParameters = {{"tenant", "a"}};
    variants[6].extraParameters = {{"tenant", "b"}};
    AuthClient client(optionsOver(false));
    for (const auto& variant : variants) client.getAuthorizationHeader(variant).get();
    EXPECT_EQ(server.tokenRequests(), variants.size());
    for (const auto& variant : variants) client.getAuthorizationHeader(variant).get();  // all hits now
    EXPECT_EQ(server.tokenRequests(), variants.size());
    EXPECT_EQ(client.stats().hits, variants.size());
}

TEST_F(OAuth, ATenantHandleServesTheSameToken) {
    McaTestServer server;
    const auto credentials = registered(server, ClientAuthMethod::PrivateKeyJwt);
    AuthClient client(optionsOver(false));
    const Tenant handle = client.tenant(credentials);
    const std::string header = client.getAuthorizationHeader(handle).get();
    EXPECT_EQ(client.getAuthorizationHeader(credentials).get(), header);
    std::promise<std::string> viaHandler;
    client.getAuthorizationHeader(handle, [&](std::string value, std::exception_ptr) { viaHandler.set_value(value); });
    EXPECT_EQ(viaHandler.get_future().get(), header);
    EXPECT_EQ(server.tokenRequests(), 1u);
    client.invalidate(handle, header);
    EXPECT_NE(client.getAuthorizationHeader(handle).get(), header);
}

TEST_F(OAuth, TheSigningKeyIsParsedOncePerTenant) {
    McaTestServer server;
    const auto credentials = registered(server, ClientAuthMethod::PrivateKeyJwt);
    const auto key = detail::cacheKeyOf(credentials);
    detail::OAuthTenantStates states(1);
    const auto first = states.of(key, credentials);
    ASSERT_TRUE(first->signingKey);
    EXPECT_EQ(states.of(key, credentials), first);  // the same parsed key, not a new parse
    for (int other = 0; other < 40; ++other) {      // bounded: old tenants make way
        auto tenant = credentials;
        tenant.scope = std::to_string(other);
        states.of(detail::cacheKeyOf(tenant), tenant);
    }
    EXPECT_NE(states.of(key, credentials), first);
}

TEST_F(OAuth, DefaultCredentialsMayBeAnOAuthClient) {
    McaTestServer server;
    Options options = optionsOver(false);
    options.oauth = registered(server, ClientAuthMethod::SecretPost);
    AuthClient client(options);
    claimsOf(server, client.getAuthorizationHeader().get());
    EXPECT_EQ(server.lastClientAuthCheck(), "ok");

    options.clientId = "also-a-node-sdk-client";
    AuthClient contradictory(options);
    const Error error = errorOf(contradictory.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::InvalidConfiguration) << error.what();
}

TEST_F(OAuth, TokensOfEveryMethodAreSharedThroughTheStoreButThoseOfReadyAssertions) {
    for (const auto method :
         {ClientAuthMethod::SecretBasic, ClientAuthMethod::SecretPost, ClientAuthMethod::PrivateKeyJwt,
          ClientAuthMethod::TlsClientAuth, ClientAuthMethod::ClientAssertion}) {
        const bool ready = method == ClientAuthMethod::ClientAssertion;
        SCOPED_TRACE(static_cast<int>(method));
        McaTestServer server(https());
        auto credentials = registered(server, method);
        if (ready) {
            credentials.privateKeyPem.clear();
            credentials.assertionFile = (directory / "fleet-token").string();
            std::ofstream(credentials.assertionFile) << workloadAssertion(server, "fleet-1");
        }
        Options options = optionsOver(true);
        options.sharedStore = std::make_shared<MemoryStore>();
        AuthClient first(options), second(options);
        const std::string header = first.getAuthorizationHeader(credentials).get();
        if (ready) std::ofstream(credentials.assertionFile) << workloadAssertion(server, "fleet-2");
        const std::string secondHeader = second.getAuthorizationHeader(credentials).get();
        EXPECT_EQ(server.lastClientAuthCheck(), "ok");
        // A ready assertion has no stable secret to seal the stored token with: process-local.
        EXPECT_EQ(secondHeader == header, !ready);
        EXPECT_EQ(server.tokenRequests(), ready ? 2u : 1u);
        EXPECT_EQ(second.stats().storeHits, ready ? 0u : 1u);
    }
}

// --- Discovery ---------------------------------------------------------------------------------

OAuthCredentials discovered(OAuthCredentials credentials, const McaTestServer& server) {
    credentials.tokenUrl.clear();
    credentials.issuer = server.issuer(kRealm);
    return credentials;
}

TEST_F(OAuth, DiscoveryFindsTheTokenEndpointOnceForConcurrentTenants) {
    McaTestServer server;
    const auto credentials = discovered(registered(server, ClientAuthMethod::PrivateKeyJwt), server);
    AuthClient client(optionsOver(false));
    std::vector<std::future<std::string>> calls;
    for (int scope = 0; scope < 20; ++scope) {
        auto tenant = credentials;
        tenant.scope = "scope-" + std::to_string(scope);
        calls.push_back(client.getAuthorizationHeader(tenant));
    }
    for (auto& call : calls) claimsOf(server, call.get());
    EXPECT_EQ(server.discoveryRequests(), 1u);  // single flight, then cached
    EXPECT_EQ(server.tokenRequests(), 20u);
    EXPECT_EQ(server.lastClientAssertionClaims()["aud"], server.tokenEndpoint(kRealm));
}

TEST_F(OAuth, DiscoveryFallsBackToOpenIdConfiguration) {
    McaTestServer server;
    const auto credentials = discovered(registered(server, ClientAuthMethod::SecretBasic), server);
    Reply notFound;
    notFound.action = Action::Status;
    notFound.status = 404;
    server.setDiscoveryReply(kRealm, DiscoveryDocument::OAuthAuthorizationServer, notFound);
    AuthClient client(optionsOver(false));
    claimsOf(server, client.getAuthorizationHeader(credentials).get());
    EXPECT_EQ(server.discoveryRequests(), 2u);
}

TEST_F(OAuth, BrokenDiscoveryDocumentsAreClearErrors) {
    McaTestServer server;
    const auto credentials = discovered(registered(server, ClientAuthMethod::SecretBasic), server);
    const std::string issuer = server.issuer(kRealm);
    const std::string endpoint = server.tokenEndpoint(kRealm);
    struct Case {
        std::string document;
        Errc code;
        const char* says;
    };
    const Case cases[] = {
        {"{\"issuer\":\"" + issuer + "/\",\"token_endpoint\":\"" + endpoint + "\"}", Errc::InvalidResponse, "issuer"},
        {"{\"issuer\":\"" + issuer + "\"}", Errc::InvalidResponse, "token_endpoint"},
        {"{\"issuer\":\"" + issuer + "\",\"token_endpoint\":\"/relative/token\"}", Errc::InvalidResponse,
         "token_endpoint"},
        {"[1,2,3]", Errc::InvalidResponse, "issuer"},
        {"{\"issuer\":\"" + issuer + "\",\"token_endpoint\":\"" + endpoint +
             "\",\"token_endpoint_auth_methods_supported\":[\"private_key_jwt\"]}",
         Errc::InvalidConfiguration, "client_secret_basic"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.document);
        Reply broken;
        broken.action = Action::RawBody;
        broken.body = c.document;
        server.setDiscoveryReply(kRealm, DiscoveryDocument::OAuthAuthorizationServer, broken);
        server.setDiscoveryReply(kRealm, DiscoveryDocument::OpenIdConfiguration, broken);
        AuthClient client(optionsOver(false));
        const Error error = errorOf(client.getAuthorizationHeader(credentials));
        EXPECT_EQ(error.code(), c.code) << error.what();
        EXPECT_NE(std::string(error.what()).find(c.says), std::string::npos) << error.what();
    }
    EXPECT_EQ(server.tokenRequests(), 0u);
}

TEST_F(OAuth, AMethodTheServerDoesNotListIsRefusedBeforeAnyTokenRequest) {
    McaTestServer server;
    const auto credentials = discovered(registered(server, ClientAuthMethod::SecretPost), server);
    server.setSupportedAuthMethods(kRealm, {"client_secret_basic", "private_key_jwt"});
    AuthClient client(optionsOver(false));
    const Error error = errorOf(client.getAuthorizationHeader(credentials));
    EXPECT_EQ(error.code(), Errc::InvalidConfiguration) << error.what();
    EXPECT_NE(std::string(error.what()).find("client_secret_post"), std::string::npos) << error.what();
    EXPECT_EQ(server.tokenRequests(), 0u);
}

// --- Configuration errors: found before anything is sent --------------------------------------

TEST_F(OAuth, ConfigurationErrorsAreTypedAndFoundBeforeAnyRequest) {
    McaTestServer server;
    const auto base = registered(server, ClientAuthMethod::PrivateKeyJwt);
    auto smallRsa = detail::EvpPkeyPtr(EVP_RSA_gen(1024));
    ASSERT_TRUE(smallRsa);
    const detail::BioPtr encryptedBio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_PrivateKey(encryptedBio.get(), makeKey("EC").get(), EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                       const_cast<char*>("passphrase")),
              1);
    char* data = nullptr;
    const auto size = static_cast<std::size_t>(BIO_get_mem_data(encryptedBio.get(), &data));
    const std::string encryptedPem(data, size);

    struct Case {
        const char* what;
        std::function<void(OAuthCredentials&)> change;
        Errc code;
    };
    const Case cases[] = {
        {"no clientId", [](OAuthCredentials& c) { c.clientId.clear(); }, Errc::MissingClientId},
        {"no endpoint", [](OAuthCredentials& c) { c.tokenUrl.clear(); }, Errc::MissingServerUrl},
        {"bad endpoint", [](OAuthCredentials& c) { c.tokenUrl = "ftp://127.0.0.1/token"; }, Errc::MissingServerUrl},
        {"no secret",
         [](OAuthCredentials& c) {
             c.authMethod = ClientAuthMethod::SecretPost;
             c.privateKeyPem.clear();
         },
         Errc::MissingSecret},
        {"no key", [](OAuthCredentials& c) { c.privateKeyPem = "  \n"; }, Errc::MissingPem},
        {"no certificate", [](OAuthCredentials& c) { c.authMethod = ClientAuthMethod::TlsClientAuth; },
         Errc::MissingPem},
        {"garbage key", [](OAuthCredentials& c) { c.privateKeyPem = "-----BEGIN PRIVATE KEY-----\nAAAA\n"; },
         Errc::InvalidCertificate},
        {"encrypted key", [&](OAuthCredentials& c) { c.privateKeyPem = encryptedPem; }, Errc::InvalidCertificate},
        {"RSA under 2048 bits", [&](OAuthCredentials& c) { c.privateKeyPem = privateKeyPem(smallRsa.get()); },
         Errc::InvalidCertificate},
        {"certificate of another key", [](OAuthCredentials& c) { c.certificatePem = otherCertificatePem; },
         Errc::InvalidCertificate},
        {"ES256 with an RSA key", [](OAuthCredentials& c) { c.signingAlg = "ES256"; }, Errc::InvalidConfiguration},
        {"unknown algorithm", [](OAuthCredentials& c) { c.signingAlg = "HS256"; }, Errc::InvalidConfiguration},
        {"reserved parameter",
         [](OAuthCredentials& c) {
             c.extraParameters = {{"client_id", "someone-else"}};
         },
         Errc::InvalidConfiguration},
        {"no assertion file",
         [](OAuthCredentials& c) {
             c.authMethod = ClientAuthMethod::ClientAssertion;
             c.assertionFile = "/nonexistent/token";
         },
         Errc::InvalidConfiguration},
        {"empty assertion file",
         [](OAuthCredentials& c) {
             c.authMethod = ClientAuthMethod::ClientAssertion;
             c.assertionFile = (directory / "empty-token").string();
             std::ofstream(c.assertionFile) << " \n";
         },
         Errc::InvalidConfiguration},
        {"mismatched TLS identity",
         [](OAuthCredentials& c) {
             c.authMethod = ClientAuthMethod::TlsClientAuth;
             c.certificatePem = otherCertificatePem;
         },
         Errc::InvalidCertificate},
    };
    AuthClient client(optionsOver(false));
    for (const Case& c : cases) {
        SCOPED_TRACE(c.what);
        OAuthCredentials credentials = base;
        c.change(credentials);
        const Error error = errorOf(client.getAuthorizationHeader(credentials));
        EXPECT_EQ(error.code(), c.code) << error.what();
        EXPECT_EQ(std::string(error.what()).find("PRIVATE KEY"), std::string::npos) << error.what();
    }
    EXPECT_EQ(server.tokenRequests(), 0u);
}

TEST_F(OAuth, ARefusalNamesTheOAuthErrorAndNeverTheSecretKeyOrAssertion) {
    McaTestServer server;
    for (const auto method : {ClientAuthMethod::SecretBasic, ClientAuthMethod::SecretPost,
                              ClientAuthMethod::PrivateKeyJwt, ClientAuthMethod::TlsClientAuth}) {
        SCOPED_TRACE(static_cast<int>(method));
        const bool tls = method == ClientAuthMethod::TlsClientAuth;
        McaTestServer tlsServer(https());
        auto credentials = registered(tls ? tlsServer : server, method, "refused-" + std::to_string(int(method)));
        credentials.secret = credentials.secret.empty() ? "" : "Wrong-Secret-42";
        if (!credentials.privateKeyPem.empty()) {  // a key (and certificate) the server does not know
            credentials.privateKeyPem = otherKeyPem;
            if (tls) credentials.certificatePem = otherCertificatePem;
        }
        std::mutex linesMutex;
        std::string lines;
        Options options = optionsOver(tls);
        options.log = [&](LogLevel, std::string_view line) {
            const std::lock_guard lock(linesMutex);
            lines.append(line).append("\n");
        };
        AuthClient client(options);
        const Error error = errorOf(client.getAuthorizationHeader(credentials));
        EXPECT_EQ(error.code(), Errc::TokenGenerate);
        EXPECT_EQ(error.httpStatus(), 401);
        EXPECT_NE(std::string(error.what()).find("invalid_client"), std::string::npos) << error.what();
        const std::string assertion = formValue((tls ? tlsServer : server).lastTokenForm(), "client_assertion");
        const std::lock_guard lock(linesMutex);
        for (const std::string& text : {std::string(error.what()), lines}) {
            EXPECT_EQ(text.find("Wrong-Secret-42"), std::string::npos) << text;
            EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos) << text;
            if (method != ClientAuthMethod::PrivateKeyJwt) continue;
            ASSERT_GT(assertion.size(), 80u);
            EXPECT_EQ(text.find(assertion.substr(0, 40)), std::string::npos) << text;
            EXPECT_EQ(text.find(assertion.substr(assertion.size() - 40)), std::string::npos) << text;
        }
    }
}

}  // namespace
}  // namespace mca::test
