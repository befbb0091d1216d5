// The test server's OAuth 2.0 realms, spoken to with plain libcurl and OpenSSL rather than the
// library's OAuth code, so that the library's tests can trust them: every client authentication
// method, the private_key_jwt checks, tls_client_auth over TLS, discovery, and verifyJws against
// signatures made here.

#include <gtest/gtest.h>

#include "test_certificates.hpp"
#include "test_support.hpp"

#include <curl/curl.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>

namespace mca::test::oauth_server {
namespace {

namespace fs = std::filesystem;
using Form = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kRealm = "acme";
constexpr const char* kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct HttpReply {
    long status = 0;
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string field(const char* name) const {
        const nlohmann::json object = json();
        return object.is_object() && object.contains(name) && object[name].is_string() ? object[name].get<std::string>()
                                                                                       : "";
    }
    std::string error() const { return field("error_description"); }
    std::string accessToken() const { return field("access_token"); }
};

std::string formEncode(const std::string& text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string encoded;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (std::isalnum(byte) || c == '-' || c == '.' || c == '_' || c == '~') {
            encoded.push_back(c);
        } else {
            encoded += {'%', kHex[byte >> 4], kHex[byte & 0x0F]};
        }
    }
    return encoded;
}

std::string base64(const std::string& bytes) {
    std::string encoded(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int length =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                        reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    encoded.resize(static_cast<std::size_t>(length));
    return encoded;
}

// RFC 6749 section 2.3.1: each part form-encoded, then Basic.
std::string basic(const std::string& clientId, const std::string& secret) {
    return "Basic " + base64(formEncode(clientId) + ":" + formEncode(secret));
}

std::string publicKeyPem(EVP_PKEY* key) {
    return pemOf([](BIO* bio, void* object) { return PEM_write_bio_PUBKEY(bio, static_cast<EVP_PKEY*>(object)); }, key);
}

std::string sha256Base64Url(const std::string& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr), 1);
    return base64Url(std::string(reinterpret_cast<const char*>(digest), length));
}

std::string certificateDer(const std::string& pem) {
    const detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    const detail::X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    unsigned char* der = nullptr;
    const int length = certificate ? i2d_X509(certificate.get(), &der) : -1;
    std::string bytes(reinterpret_cast<const char*>(der), static_cast<std::size_t>(std::max(length, 0)));
    OPENSSL_free(der);
    return bytes;
}

// OpenSSL's own signature of `input` (DER for EC keys); `pssSalt` switches RSA to PSS with that salt.
std::string evpSign(EVP_PKEY* key, const std::string& input, std::optional<int> pssSalt = std::nullopt) {
    const detail::EvpMdCtxPtr context(EVP_MD_CTX_new());
    EVP_PKEY_CTX* keyContext = nullptr;  // owned by `context`
    std::size_t length = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (EVP_DigestSignInit(context.get(), &keyContext, EVP_sha256(), nullptr, key) != 1 ||
        (pssSalt && (EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) != 1 ||
                     EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, *pssSalt) != 1)) ||
        EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) != 1) {
        throw std::runtime_error("EVP_DigestSign failed");
    }
    std::string signature(length, '\0');
    if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                       input.size()) != 1) {
        throw std::runtime_error("EVP_DigestSign failed");
    }
    signature.resize(length);
    return signature;
}

// A DER ECDSA signature as JWS wants it: r||s, 32 bytes each.
std::string rawEcdsa(const std::string& der) {
    const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
    const std::unique_ptr<ECDSA_SIG, detail::Deleter<ECDSA_SIG_free>> signature(
        d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
    std::string raw(64, '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(signature.get()), out, 32), 32);
    EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(signature.get()), out + 32, 32), 32);
    return raw;
}

std::string signingInput(const nlohmann::json& header, const nlohmann::json& claims) {
    return base64Url(header.dump()) + "." + base64Url(claims.dump());
}

class OAuthServer : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        directory = fs::temp_directory_path() / ("mca-oauth-server-" + std::to_string(::getpid()));
        fs::create_directories(directory);
        const std::string dir = directory.string();
        const std::string command = std::string(MCA_TEST_OPENSSL) +
                                    " req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
                                    " -addext subjectAltName=IP:127.0.0.1 -keyout " +
                                    dir + "/server.key -out " + dir + "/server.pem >/dev/null 2>&1";
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
        rsa = makeKey("RSA");
        otherRsa = makeKey("RSA");
        ec = makeKey("EC");
        mtls = makeClientCertificate("mtls-client", "EC");
        otherMtls = makeClientCertificate("mtls-client", "EC");
    }
    static void TearDownTestSuite() {
        fs::remove_all(directory);
        rsa.reset();
        otherRsa.reset();
        ec.reset();
    }

    static ServerOptions https() {
        ServerOptions options;
        options.tlsCertFile = (directory / "server.pem").string();
        options.tlsKeyFile = (directory / "server.key").string();
        return options;
    }

    // One request on a fresh easy handle: a POST of `form`, or a GET when there is none.
    static HttpReply perform(const std::string& url, const std::optional<Form>& form,
                             const std::string& authorization = "", const PemPair* certificate = nullptr) {
        const detail::CurlEasyPtr easy(curl_easy_init());
        HttpReply reply;
        std::string body;
        if (form) {
            for (const auto& [name, value] : *form) {
                body += (body.empty() ? "" : "&") + formEncode(name) + "=" + formEncode(value);
            }
            curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, body.c_str());
        }
        detail::CurlSlistPtr headers;
        if (!authorization.empty()) {
            headers.reset(curl_slist_append(nullptr, ("Authorization: " + authorization).c_str()));
            curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
        }
        curl_blob certificateBlob{}, keyBlob{};
        if (certificate) {
            certificateBlob = {const_cast<char*>(certificate->certificatePem.data()),
                               certificate->certificatePem.size(), CURL_BLOB_COPY};
            keyBlob = {const_cast<char*>(certificate->privateKeyPem.data()), certificate->privateKeyPem.size(),
                       CURL_BLOB_COPY};
            curl_easy_setopt(easy.get(), CURLOPT_SSLCERT_BLOB, &certificateBlob);
            curl_easy_setopt(easy.get(), CURLOPT_SSLKEY_BLOB, &keyBlob);
        }
        const std::string caFile = (directory / "server.pem").string();
        curl_easy_setopt(easy.get(), CURLOPT_CAINFO, caFile.c_str());
        curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
        collectBody(easy.get(), reply.body);
        curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT, 30L);
        const CURLcode result = curl_easy_perform(easy.get());
        EXPECT_EQ(result, CURLE_OK) << curl_easy_strerror(result) << " " << url;
        curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &reply.status);
        return reply;
    }

    HttpReply token(Form form, const std::string& authorization = "", const PemPair* certificate = nullptr) {
        form.insert(form.begin(), Form::value_type{"grant_type", "client_credentials"});
        return perform(server.tokenEndpoint(kRealm), form, authorization, certificate);
    }

    // Claims a correct assertion for `clientId` has; each test spoils one.
    nlohmann::json assertionClaims(const std::string& clientId) {
        const long long now = std::time(nullptr);
        return {{"iss", clientId},  {"sub", clientId}, {"aud", server.tokenEndpoint(kRealm)},
                {"exp", now + 300}, {"iat", now},      {"jti", "jti-" + std::to_string(++jtis)}};
    }
    static Form assertionForm(const std::string& assertion) {
        return {{"client_assertion_type", kJwtBearer}, {"client_assertion", assertion}};
    }

    void registerClients() {
        server.addOAuth2Client(kRealm, {"basic-client", ClientAuth::SecretBasic, "p@ss:w rd", {}, {}});
        server.addOAuth2Client(kRealm, {"post-client", ClientAuth::SecretPost, "post-secret", {}, {}});
        // A certificate PEM for the RSA client, a public key PEM for the EC one: both forms are accepted.
        server.addOAuth2Client(kRealm,
                               {"rsa-client", ClientAuth::PrivateKeyJwt, {}, certificatePem(rsa.get(), "x"), {}});
        server.addOAuth2Client(kRealm, {"ec-client", ClientAuth::PrivateKeyJwt, {}, publicKeyPem(ec.get()), {}});
        server.addOAuth2Client(kRealm, {"mtls-client", ClientAuth::TlsClientAuth, {}, {}, mtls.certificatePem});
    }

    static inline fs::path directory;
    static inline detail::EvpPkeyPtr rsa, otherRsa, ec;
    static inline PemPair mtls, otherMtls;
    McaTestServer server{https()};
    int jtis = 0;
};

TEST_F(OAuthServer, AcceptsEveryClientAuthenticationMethod) {
    registerClients();
    const std::string rsaPem = privateKeyPem(rsa.get());
    const std::string ecPem = privateKeyPem(ec.get());
    struct Case {
        const char* clientId;
        std::function<HttpReply()> request;
    };
    const Case cases[] = {
        {"basic-client",
         [&] {
             return token({{"scope", "read"}}, basic("basic-client", "p@ss:w rd"));
         }},
        {"post-client",
         [&] {
             return token({{"client_id", "post-client"}, {"client_secret", "post-secret"}});
         }},
        {"rsa-client",
         [&] { return token(assertionForm(signJws(rsaPem, "RS256", assertionClaims("rsa-client"), "k1"))); }},
        {"rsa-client", [&] { return token(assertionForm(signJws(rsaPem, "PS256", assertionClaims("rsa-client")))); }},
        {"ec-client",
         [&] {
             Form form = assertionForm(signJws(ecPem, "ES256", assertionClaims("ec-client")));
             form.emplace_back("client_id", "ec-client");  // optional, and must match when sent
             return token(form);
         }},
        {"mtls-client",
         [&] {
             return token({{"client_id", "mtls-client"}}, "", &mtls);
         }},
    };
    for (const Case& c : cases) {
        const HttpReply reply = c.request();
        ASSERT_EQ(reply.status, 200) << c.clientId << ": " << reply.body;
        EXPECT_EQ(server.lastClientAuthCheck(), "ok");
        const std::string accessToken = reply.accessToken();
        EXPECT_TRUE(verifyRs256Jwt(accessToken, server.publicKeyPem()));
        const nlohmann::json claims = decodeJwtPayload(accessToken);
        EXPECT_EQ(claims.at("iss"), server.issuer(kRealm));
        EXPECT_EQ(claims.at("sub"), c.clientId);
        EXPECT_EQ(claims.at("client_id"), c.clientId);
        EXPECT_EQ(claims.at("aud"), c.clientId);
    }
    EXPECT_EQ(server.tokenRequests(), std::size(cases));
    EXPECT_EQ(server.lastClientAssertionHeader(), (nlohmann::json{{"alg", "ES256"}, {"typ", "JWT"}}));
    EXPECT_EQ(server.lastClientAssertionClaims().at("sub"), "ec-client");
}

TEST_F(OAuthServer, RefusesWrongMethodsSecretsAndClients) {
    registerClients();
    struct Case {
        Form form;
        std::string authorization;
        long status;
        const char* check;
    };
    const std::string rsaPem = privateKeyPem(rsa.get());
    const Case cases[] = {
        {{{"client_id", "basic-client"}, {"client_secret", "p@ss:w rd"}},
         "",
         401,
         "client authentication method not allowed"},
        {{}, basic("post-client", "post-secret"), 401, "client authentication method not allowed"},
        {assertionForm(signJws(rsaPem, "RS256", assertionClaims("basic-client"))), "", 401,
         "client authentication method not allowed"},
        {{{"client_id", "rsa-client"}}, "", 401, "client authentication method not allowed"},
        {{}, basic("basic-client", "wrong"), 401, "wrong secret"},
        {{}, basic("nobody", "p@ss:w rd"), 401, "unknown client"},
        {{}, "", 401, "no client authentication"},
        {{{"client_id", "post-client"}, {"client_secret", "post-secret"}},
         basic("basic-client", "p@ss:w rd"),
         400,
         "more than one client authentication method"},
        {{{"client_id", "post-client"}, {"client_secret", "post-secret"}, {"scope", "a"}, {"scope", "b"}},
         "",
         400,
         "repeated parameter scope"},
    };
    for (const Case& c : cases) {
        const HttpReply reply = token(c.form, c.authorization);
        EXPECT_EQ(reply.status, c.status) << c.check;
        EXPECT_EQ(reply.field("error"), c.status == 401 ? "invalid_client" : "invalid_request");
        EXPECT_EQ(reply.error(), c.check);
        EXPECT_EQ(server.lastClientAuthCheck(), c.check);
    }
    // The grant is checked once the client is known.
    const auto grant = [&](Form form) {
        form.insert(form.begin(), {{"client_id", "post-client"}, {"client_secret", "post-secret"}});
        return perform(server.tokenEndpoint(kRealm), form).field("error");
    };
    EXPECT_EQ(grant({}), "invalid_request");
    EXPECT_EQ(grant({{"grant_type", "password"}}), "unsupported_grant_type");
}

TEST_F(OAuthServer, ChecksEveryPartOfAClientAssertion) {
    registerClients();
    const std::string rsaPem = privateKeyPem(rsa.get());
    const long long now = std::time(nullptr);
    const auto spoilt = [&](const char* claim, nlohmann::json value) {
        nlohmann::json claims = assertionClaims("rsa-client");
        if (value.is_null()) {
            claims.erase(claim);
        } else {
            claims[claim] = std::move(value);
        }
        return signJws(rsaPem, "RS256", claims);
    };
    // Signed here with OpenSSL's maximum PSS salt (the 3.0 default; 3.1+ defaults to the digest length).
    const nlohmann::json ps256Header = {{"alg", "PS256"}, {"typ", "JWT"}};
    const std::string maxSaltInput = signingInput(ps256Header, assertionClaims("rsa-client"));
    const std::string maxSalt = maxSaltInput + "." + base64Url(evpSign(rsa.get(), maxSaltInput, RSA_PSS_SALTLEN_MAX));
    const nlohmann::json atJwtHeader = {{"alg", "RS256"}, {"typ", "at+jwt"}};
    const std::string atJwtInput = signingInput(atJwtHeader, assertionClaims("rsa-client"));
    const std::string replayed = signJws(rsaPem, "RS256", assertionClaims("rsa-client"));
    ASSERT_EQ(token(assertionForm(replayed)).status, 200);

    struct Case {
        std::string assertion;
        const char* check;
        Form extra = {};
    };
    const Case cases[] = {
        {replayed, "jti replayed", {}},
        {spoilt("aud", "https://elsewhere.example/token"), "aud is not the token endpoint"},
        {spoilt("aud", server.issuer(kRealm)), "aud is not the token endpoint"},
        {spoilt("exp", now - 5), "assertion expired"},
        {spoilt("exp", now + 3600), "exp more than 10 minutes ahead"},
        {spoilt("exp", nullptr), "missing exp"},
        {spoilt("iat", now + 3600), "iat in the future"},
        {spoilt("jti", nullptr), "missing jti"},
        {spoilt("iss", "someone-else"), "iss and sub must both be the client id"},
        {signJws(rsaPem, "RS256", assertionClaims("rsa-client")),
         "client_id does not match the assertion",
         {{"client_id", "ec-client"}}},
        {signJws(privateKeyPem(otherRsa.get()), "RS256", assertionClaims("rsa-client")), "signature does not verify"},
        {maxSalt, "signature does not verify"},
        {signJws(privateKeyPem(ec.get()), "ES256", assertionClaims("rsa-client")), "alg does not fit the key"},
        {base64Url(R"({"alg":"HS256"})") + "." + base64Url(assertionClaims("rsa-client").dump()) + ".c2ln",
         "alg is not RS256, PS256 or ES256"},
        {atJwtInput + "." + base64Url(evpSign(rsa.get(), atJwtInput)), "typ is not JWT"},
        {"not-a-jws", "malformed client assertion"},
    };
    for (const Case& c : cases) {
        Form form = assertionForm(c.assertion);
        form.insert(form.end(), c.extra.begin(), c.extra.end());
        const HttpReply reply = token(form);
        EXPECT_EQ(reply.status, 401) << c.check;
        EXPECT_EQ(reply.field("error"), "invalid_client");
        EXPECT_EQ(reply.error(), c.check);
        EXPECT_EQ(server.lastClientAuthCheck(), c.check);
    }
    // An aud array holding the token endpoint is fine; a wrong client_assertion_type is not.
    EXPECT_EQ(token(assertionForm(spoilt("aud", {"x", server.tokenEndpoint(kRealm)}))).status, 200);
    Form wrongType = {{"client_assertion_type", "jwt"}, {"client_assertion", spoilt("iat", nullptr)}};
    EXPECT_EQ(token(wrongType).error(), "client_assertion_type is not jwt-bearer");
}

TEST_F(OAuthServer, VerifyJwsWantsPs256SaltOf32AndEs256RawSignatures) {
    const nlohmann::json claims = {{"sub", "x"}};
    const std::string ps256Input = signingInput({{"alg", "PS256"}}, claims);
    const std::string publicRsa = publicKeyPem(rsa.get());
    std::string why;
    EXPECT_FALSE(
        verifyJws(ps256Input + "." + base64Url(evpSign(rsa.get(), ps256Input, RSA_PSS_SALTLEN_MAX)), publicRsa, &why));
    EXPECT_EQ(why, "signature does not verify");
    EXPECT_TRUE(verifyJws(ps256Input + "." + base64Url(evpSign(rsa.get(), ps256Input, 32)), publicRsa, &why)) << why;

    const std::string es256Input = signingInput({{"alg", "ES256"}}, claims);
    const std::string der = evpSign(ec.get(), es256Input);
    EXPECT_FALSE(verifyJws(es256Input + "." + base64Url(der), publicKeyPem(ec.get()), &why));
    EXPECT_EQ(why, "signature does not verify");
    EXPECT_TRUE(verifyJws(es256Input + "." + base64Url(rawEcdsa(der)), publicKeyPem(ec.get()), &why)) << why;

    // signJws output verifies with the public key, private key and certificate PEMs, and only with its key.
    for (const char* alg : {"RS256", "PS256"}) {
        const std::string jws = signJws(privateKeyPem(rsa.get()), alg, claims, "kid-1");
        EXPECT_TRUE(verifyJws(jws, publicRsa)) << alg;
        EXPECT_TRUE(verifyJws(jws, privateKeyPem(rsa.get()))) << alg;
        EXPECT_TRUE(verifyJws(jws, certificatePem(rsa.get(), "cn"))) << alg;
        EXPECT_FALSE(verifyJws(jws, publicKeyPem(otherRsa.get()))) << alg;
        EXPECT_EQ(nlohmann::json::parse(*detail::base64UrlDecode(jws.substr(0, jws.find('.')))),
                  (nlohmann::json{{"alg", alg}, {"kid", "kid-1"}, {"typ", "JWT"}}));
    }
    const std::string es256 = signJws(privateKeyPem(ec.get()), "ES256", claims);
    EXPECT_EQ(detail::base64UrlDecode(es256.substr(es256.rfind('.') + 1))->size(), 64u);  // r||s
    EXPECT_TRUE(verifyJws(es256, publicKeyPem(ec.get())));
    EXPECT_FALSE(verifyJws(es256, publicRsa, &why));
    EXPECT_EQ(why, "alg does not fit the key");
    EXPECT_THROW(signJws(privateKeyPem(ec.get()), "RS256", claims), std::invalid_argument);
}

TEST_F(OAuthServer, TlsClientAuthComparesTheHandshakeCertificate) {
    registerClients();
    const HttpReply accepted = token({{"client_id", "mtls-client"}, {"scope", "a b"}}, "", &mtls);
    ASSERT_EQ(accepted.status, 200) << accepted.body;
    EXPECT_EQ(accepted.json().at("scope"), "a b");
    const nlohmann::json claims = decodeJwtPayload(accepted.accessToken());
    EXPECT_EQ(claims.at("cnf"), (nlohmann::json{{"x5t#S256", sha256Base64Url(certificateDer(mtls.certificatePem))}}));
    EXPECT_EQ(claims.at("scope"), "a b");

    EXPECT_EQ(token({{"client_id", "mtls-client"}}).error(), "no client certificate");
    EXPECT_EQ(token({{"client_id", "mtls-client"}}, "", &otherMtls).error(), "client certificate does not match");
    // A certificate on the connection does not stand in for another method's credentials.
    const HttpReply secret = token({}, basic("basic-client", "p@ss:w rd"), &mtls);
    EXPECT_EQ(secret.status, 200);
    EXPECT_FALSE(decodeJwtPayload(secret.accessToken()).contains("cnf"));
    // The other endpoints work with or without a client certificate.
    server.addClient("app", "mca-client", "mca-secret");
    const Form grant = {{"grant_type", "client_credentials"}};
    EXPECT_EQ(
        perform(server.baseUrl() + "/authorization/v1/apps/app/token", grant, basic("mca-client", "mca-secret")).status,
        200);

    McaTestServer plain;
    plain.addOAuth2Client(kRealm, {"mtls-client", ClientAuth::TlsClientAuth, {}, {}, mtls.certificatePem});
    const HttpReply overHttp =
        perform(plain.tokenEndpoint(kRealm), Form{{"grant_type", "client_credentials"}, {"client_id", "mtls-client"}});
    EXPECT_EQ(overHttp.status, 401);
    EXPECT_EQ(overHttp.error(), "no client certificate");
}

TEST_F(OAuthServer, AccessTokenAudienceComesFromResourceThenAudience) {
    registerClients();
    struct Case {
        Form form;
        nlohmann::json aud;
    };
    const Case cases[] = {
        {{{"resource", "https://api.example/a"}}, "https://api.example/a"},
        {{{"resource", "https://api.example/a"}, {"resource", "https://api.example/b"}, {"audience", "ignored"}},
         {"https://api.example/a", "https://api.example/b"}},
        {{{"audience", "https://api.example"}}, "https://api.example"},
        {{{"tenant", "t1"}}, "post-client"},
    };
    for (const Case& c : cases) {
        Form form = {{"client_id", "post-client"}, {"client_secret", "post-secret"}};
        form.insert(form.end(), c.form.begin(), c.form.end());
        const HttpReply reply = token(form);
        ASSERT_EQ(reply.status, 200) << reply.body;
        EXPECT_EQ(decodeJwtPayload(reply.accessToken()).at("aud"), c.aud);
        form.insert(form.begin(), Form::value_type{"grant_type", "client_credentials"});
        EXPECT_EQ(server.lastTokenForm(), form);  // extra fields recorded, in order
    }
}

TEST_F(OAuthServer, ScriptedRepliesApplyToRealmTokenRequests) {
    registerClients();
    Reply unavailable;
    unavailable.action = Action::Status;
    unavailable.status = 503;
    unavailable.body = R"({"error":"temporarily_unavailable"})";
    server.pushReply(unavailable);
    const Form form = {{"client_id", "post-client"}, {"client_secret", "post-secret"}};
    EXPECT_EQ(token(form).status, 503);
    EXPECT_EQ(server.lastClientAuthCheck(), "");  // the protocol did not run
    EXPECT_EQ(server.lastTokenForm().size(), 3u);
    EXPECT_EQ(token(form).status, 200);
    EXPECT_EQ(server.tokenRequests(), 2u);
}

TEST_F(OAuthServer, ServesBothDiscoveryDocumentsAndScriptedBrokenOnes) {
    registerClients();
    const std::string origin = "https://127.0.0.1:" + std::to_string(server.port());
    const std::string rfc8414 = origin + "/.well-known/oauth-authorization-server/realms/" + kRealm;
    const std::string openId = server.issuer(kRealm) + "/.well-known/openid-configuration";
    for (const std::string& url : {rfc8414, openId}) {
        const HttpReply reply = perform(url, std::nullopt);
        ASSERT_EQ(reply.status, 200) << url;
        const nlohmann::json document = reply.json();
        EXPECT_EQ(document.at("issuer"), origin + "/realms/" + kRealm);
        EXPECT_EQ(document.at("token_endpoint"), server.tokenEndpoint(kRealm));
        EXPECT_EQ(document.at("token_endpoint_auth_methods_supported"),
                  (nlohmann::json{"client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"}));
        EXPECT_EQ(document.at("grant_types_supported"), nlohmann::json::array({"client_credentials"}));
        EXPECT_EQ(perform(document.at("jwks_uri").get<std::string>(), std::nullopt).json().at("keys").size(), 1u);
    }
    EXPECT_EQ(server.discoveryRequests(), 2u);

    server.setSupportedAuthMethods(kRealm, {"private_key_jwt"});
    EXPECT_EQ(perform(openId, std::nullopt).json().at("token_endpoint_auth_methods_supported"),
              nlohmann::json::array({"private_key_jwt"}));
    server.setSupportedAuthMethods(kRealm, {});
    EXPECT_FALSE(perform(rfc8414, std::nullopt).json().contains("token_endpoint_auth_methods_supported"));

    Reply notFound;
    notFound.action = Action::Status;
    notFound.status = 404;
    server.setDiscoveryReply(kRealm, DiscoveryDocument::OAuthAuthorizationServer, notFound);
    Reply hostile;
    hostile.action = Action::RawBody;
    hostile.body = R"({"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"})";
    server.setDiscoveryReply(kRealm, DiscoveryDocument::OpenIdConfiguration, hostile);
    for (int i = 0; i < 2; ++i) {  // persistent, not consumed
        EXPECT_EQ(perform(rfc8414, std::nullopt).status, 404);
        EXPECT_EQ(perform(openId, std::nullopt).body, hostile.body);
    }
    server.setDiscoveryReply(kRealm, DiscoveryDocument::OpenIdConfiguration, std::nullopt);
    EXPECT_EQ(perform(openId, std::nullopt).json().at("issuer"), server.issuer(kRealm));
    EXPECT_EQ(server.discoveryRequests(), 9u);
    EXPECT_EQ(server.tokenRequests(), 0u);

    EXPECT_EQ(perform(origin + "/.well-known/oauth-authorization-server/realms/unknown", std::nullopt).status, 404);
    EXPECT_THROW(server.issuer("a/b"), std::invalid_argument);
}

}  // namespace
}  // namespace mca::test::oauth_server
