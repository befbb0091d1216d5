// Discovery without the network: the metadata URLs of an issuer, and the metadata document's
// parsing and validation (exact issuer, token endpoint, authentication methods, hostile input).

#include <mca/detail/discovery.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mca::detail {
namespace discovery_test {

/// The message of the mca::Error that `call` throws, checked to carry `expected`; fails the test
/// when it throws nothing or something else.
template <class Call>
std::string thrownMessage(Call&& call, Errc expected, const std::string& context) {
    try {
        call();
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), expected) << context << ": " << error.what();
        return error.what();
    } catch (const std::exception& error) {
        ADD_FAILURE() << context << ": threw something other than mca::Error: " << error.what();
        return {};
    }
    ADD_FAILURE() << context << ": did not throw";
    return {};
}

std::string metadataRejection(std::string_view body, std::string_view issuer) {
    return thrownMessage([&] { parseServerMetadata(body, issuer); }, Errc::InvalidResponse,
                         std::string(body.substr(0, 200)));
}

constexpr std::string_view kIssuer = "https://as.example.com/tenant";

/// A minimal valid document for kIssuer with `extra` members appended (each starting with ',').
std::string document(std::string_view extra = "") {
    return R"({"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/tenant/token")" +
           std::string(extra) + "}";
}

std::string nested(std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

bool isPrintableAscii(std::string_view text) {
    for (const char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) return false;
    }
    return true;
}

}  // namespace discovery_test

using discovery_test::document;
using discovery_test::kIssuer;
using discovery_test::metadataRejection;
using discovery_test::nested;
using discovery_test::thrownMessage;

// --- discoveryUrls ---------------------------------------------------------------------------

TEST(DiscoveryUrls, InsertsTheWellKnownSegmentBeforeThePathThenAppendsTheOpenIdOne) {
    struct Case {
        const char* issuer;
        const char* rfc8414;
        const char* openId;
    };
    const Case cases[] = {
        {"https://as.example.com/tenant/x", "https://as.example.com/.well-known/oauth-authorization-server/tenant/x",
         "https://as.example.com/tenant/x/.well-known/openid-configuration"},
        {"https://as.example.com", "https://as.example.com/.well-known/oauth-authorization-server",
         "https://as.example.com/.well-known/openid-configuration"},
        // The trailing '/' is removed before either suffix (RFC 8414 §3.1, OIDC Discovery §4).
        {"https://as.example.com/", "https://as.example.com/.well-known/oauth-authorization-server",
         "https://as.example.com/.well-known/openid-configuration"},
        {"https://as.example.com/tenant/x/", "https://as.example.com/.well-known/oauth-authorization-server/tenant/x",
         "https://as.example.com/tenant/x/.well-known/openid-configuration"},
        {"https://as.example.com:8443/t", "https://as.example.com:8443/.well-known/oauth-authorization-server/t",
         "https://as.example.com:8443/t/.well-known/openid-configuration"},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080/.well-known/oauth-authorization-server",
         "http://127.0.0.1:8080/.well-known/openid-configuration"},
        {"https://[::1]:8443/realms/a", "https://[::1]:8443/.well-known/oauth-authorization-server/realms/a",
         "https://[::1]:8443/realms/a/.well-known/openid-configuration"},
        // As written: no case folding, no decoding (the document must name this exact string).
        {"HTTPS://AS.Example.com/T%2Fx", "HTTPS://AS.Example.com/.well-known/oauth-authorization-server/T%2Fx",
         "HTTPS://AS.Example.com/T%2Fx/.well-known/openid-configuration"},
    };
    for (const auto& c : cases) {
        const auto urls = discoveryUrls(c.issuer);
        EXPECT_EQ(urls[0], c.rfc8414) << c.issuer;
        EXPECT_EQ(urls[1], c.openId) << c.issuer;
    }
}

TEST(DiscoveryUrls, RefusesWhatIsNotAnHttpIssuer) {
    const std::string withNul("https://as.example.com/\0x", 25);
    for (const std::string& issuer : std::vector<std::string>{
             "",
             "as.example.com",
             "/realms/x",
             "ftp://as.example.com/x",
             "file:///etc/passwd",
             "https://",
             "https:///x",               // libcurl would take "x" as the host
             "https:/as.example.com/x",  // libcurl would read it as https://as.example.com/x
             "https://:443/",
             "https://as.example.com:99999/",
             "https://as.example.com/x?tenant=a",  // RFC 8414 §2: no query
             "https://as.example.com/x?",          // not even an empty one
             "https://as.example.com/x#top",       // no fragment
             "https://as.example.com#",
             " https://as.example.com",
             "https://as.example.com/ x",
             "https://as.example.com\n",
             "https://b\xc3\xbc"
             "cher.example/",  // raw non-ASCII: the punycode name is the identifier
             "https://user:pass@as.example.com/",
             withNul,
         }) {
        thrownMessage([&] { discoveryUrls(issuer); }, Errc::MissingServerUrl, issuer);
    }
}

TEST(DiscoveryUrls, MessagesShowTheIssuerButNotItsUserInformation) {
    const std::string message =
        thrownMessage([] { discoveryUrls("https://client:hunter2@as.example.com/t"); }, Errc::MissingServerUrl, "");
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
    EXPECT_NE(message.find("as.example.com/t"), std::string::npos) << message;
    const std::string query =
        thrownMessage([] { discoveryUrls("https://as.example.com/t?x=1"); }, Errc::MissingServerUrl, "");
    EXPECT_NE(query.find("https://as.example.com/t?x=1"), std::string::npos) << query;
}

// --- parseServerMetadata: the members read ---------------------------------------------------

TEST(ServerMetadata, ReadsIssuerTokenEndpointAndAuthMethods) {
    const auto metadata = parseServerMetadata(
        document(R"(,"token_endpoint_auth_methods_supported":["client_secret_basic","private_key_jwt"],)"
                 R"("jwks_uri":"https://as.example.com/tenant/keys","scopes_supported":["a"],"x":{"y":[1,null,true]})"),
        kIssuer);
    EXPECT_EQ(metadata.issuer, kIssuer);
    EXPECT_EQ(metadata.tokenEndpoint, "https://as.example.com/tenant/token");
    EXPECT_TRUE(metadata.authMethodsListed);
    EXPECT_EQ(metadata.authMethods, (std::vector<std::string>{"client_secret_basic", "private_key_jwt"}));
}

TEST(ServerMetadata, DecodesJsonEscapes) {
    // Some servers escape every '/'; the escapes are JSON's, not part of the URL.
    const auto metadata = parseServerMetadata(
        R"({"token_endpoint":"https:\/\/as.example.com\/tenant\/token","issuer":"https:\/\/as.example.com\/tenant",)"
        R"("token_endpoint_auth_methods_supported":["client\u005fsecret_post"]})",
        kIssuer);
    EXPECT_EQ(metadata.issuer, kIssuer);
    EXPECT_EQ(metadata.tokenEndpoint, "https://as.example.com/tenant/token");
    EXPECT_EQ(metadata.authMethods, std::vector<std::string>{"client_secret_post"});
}

TEST(ServerMetadata, ComparesTheIssuerExactly) {
    // RFC 8414 §3.3 and OIDC Discovery §4.3: identical, not equivalent.
    for (const char* documentIssuer : {
             "https://as.example.com/tenant/",  // a trailing '/' differs
             "https://AS.example.com/tenant",   // so does the host's case
             "HTTPS://as.example.com/tenant",   // and the scheme's
             "https://as.example.com/Tenant",
             "https://as.example.com:443/tenant",  // the default port written out
             "https://as.example.com/%74enant",    // an escaped 't'
             "https://as.example.com/tenant ",
             "https://as.example.com",
             "",
         }) {
        const std::string body = R"({"issuer":")" + std::string(documentIssuer) +
                                 R"(","token_endpoint":"https://as.example.com/tenant/token"})";
        const std::string message = metadataRejection(body, kIssuer);
        // Both are shown: they are public URLs, and seeing them side by side is the fix.
        EXPECT_NE(message.find(std::string("\"") + documentIssuer + "\""), std::string::npos) << message;
        EXPECT_NE(message.find(std::string("\"") + std::string(kIssuer) + "\""), std::string::npos) << message;
    }
}

TEST(ServerMetadata, RefusesAMissingOrNonStringIssuer) {
    for (const char* body : {
             R"({"token_endpoint":"https://as.example.com/tenant/token"})",
             R"({"issuer":null,"token_endpoint":"https://as.example.com/tenant/token"})",
             R"({"issuer":42,"token_endpoint":"https://as.example.com/tenant/token"})",
             R"({"issuer":["https://as.example.com/tenant"],"token_endpoint":"https://as.example.com/tenant/token"})",
             R"({"issuer":{},"token_endpoint":"https://as.example.com/tenant/token"})",
             // An issuer below the top level is not the document's.
             R"({"x":{"issuer":"https://as.example.com/tenant"},"token_endpoint":"https://as.example.com/t/token"})",
         }) {
        const std::string message = metadataRejection(body, kIssuer);
        EXPECT_NE(message.find("issuer"), std::string::npos) << message;
    }
}

TEST(ServerMetadata, RefusesAnUnusableTokenEndpoint) {
    for (const char* endpoint : {
             R"(null)",
             R"(42)",
             R"(["https://as.example.com/tenant/token"])",
             R"("")",
             R"("/tenant/token")",  // relative
             R"("token")",
             R"("//as.example.com/tenant/token")",  // scheme-relative
             R"("as.example.com/tenant/token")",
             R"("https://")",
             R"("https:///token")",
             R"("https:/as.example.com/token")",
             R"("https://as.example.com/token#f")",      // RFC 6749 §3.2: no fragment
             R"("http://as.example.com/tenant/token")",  // the issuer's scheme is https
             R"("ftp://as.example.com/tenant/token")",
             R"("https://as.example.com/to ken")",
             R"("https://as.example.com/token\u0000.evil.example")",  // NUL would cut the C string
             R"("https://as.example.com/token\r\nX-Injected: 1")",
             R"("https://as.example.com/t\u00f6ken")",
         }) {
        const std::string body =
            R"({"issuer":"https://as.example.com/tenant","token_endpoint":)" + std::string(endpoint) + "}";
        const std::string message = metadataRejection(body, kIssuer);
        EXPECT_NE(message.find("token_endpoint"), std::string::npos) << message;
        EXPECT_TRUE(discovery_test::isPrintableAscii(message)) << message;
    }
    EXPECT_NE(metadataRejection(R"({"issuer":"https://as.example.com/tenant"})", kIssuer).find("no token_endpoint"),
              std::string::npos);
    EXPECT_NE(metadataRejection(
                  R"({"issuer":"https://as.example.com/tenant","token_endpoint":"http://as.example.com/t"})", kIssuer)
                  .find("does not use the issuer's scheme"),
              std::string::npos);
}

TEST(ServerMetadata, AcceptsAnyAbsoluteTokenEndpointOfTheIssuersScheme) {
    for (const char* endpoint : {
             "https://as.example.com/tenant/token",
             "https://login.other.example/oauth2/token",  // another host (Cognito's domains)
             "https://as.example.com:8443/token",
             "https://as.example.com/token?api-version=2",  // a query is allowed (RFC 6749 §3.2)
             "HTTPS://as.example.com/token",                // schemes are case-insensitive
         }) {
        const std::string body =
            R"({"issuer":"https://as.example.com/tenant","token_endpoint":")" + std::string(endpoint) + R"("})";
        EXPECT_EQ(parseServerMetadata(body, kIssuer).tokenEndpoint, endpoint);
    }
    // A loopback test server: http issuer, http endpoint (the engine decides whether cleartext may go).
    EXPECT_EQ(parseServerMetadata(R"({"issuer":"http://127.0.0.1:8080","token_endpoint":"http://127.0.0.1:8080/t"})",
                                  "http://127.0.0.1:8080")
                  .tokenEndpoint,
              "http://127.0.0.1:8080/t");
    EXPECT_NE(metadataRejection(R"({"issuer":"http://127.0.0.1:8080","token_endpoint":"https://127.0.0.1/t"})",
                                "http://127.0.0.1:8080")
                  .find("scheme"),
              std::string::npos);
}

// --- token_endpoint_auth_methods_supported -------------------------------------------------------

TEST(ServerMetadata, TellsAnAbsentAuthMethodListFromAnEmptyOne) {
    const auto absent = parseServerMetadata(document(), kIssuer);
    EXPECT_FALSE(absent.authMethodsListed);
    EXPECT_TRUE(absent.authMethods.empty());

    const auto empty = parseServerMetadata(document(R"(,"token_endpoint_auth_methods_supported":[])"), kIssuer);
    EXPECT_TRUE(empty.authMethodsListed);
    EXPECT_TRUE(empty.authMethods.empty());
}

TEST(ServerMetadata, RefusesAnAuthMethodListThatIsNotAnArrayOfStrings) {
    for (const char* value :
         {R"("client_secret_basic")", "null", "5", "true", "{}", R"({"client_secret_basic":true})", "[1]", "[null]",
          R"(["client_secret_basic",2])", R"([["private_key_jwt"]])", R"([{}])", R"(["a",false])"}) {
        const std::string message =
            metadataRejection(document(std::string(R"(,"token_endpoint_auth_methods_supported":)") + value), kIssuer);
        EXPECT_NE(message.find("token_endpoint_auth_methods_supported"), std::string::npos) << message;
    }
}

TEST(RequireAuthMethod, PassesAListedMethodOrAnAbsentList) {
    ServerMetadata metadata;
    EXPECT_NO_THROW(requireAuthMethod(metadata, "private_key_jwt"));  // not listed: the server decides
    metadata.authMethodsListed = true;
    metadata.authMethods = {"client_secret_basic", "private_key_jwt", "tls_client_auth"};
    for (const char* method : {"client_secret_basic", "private_key_jwt", "tls_client_auth"}) {
        EXPECT_NO_THROW(requireAuthMethod(metadata, method)) << method;
    }
}

TEST(RequireAuthMethod, RefusesAMethodTheListLeavesOut) {
    ServerMetadata metadata;
    metadata.authMethodsListed = true;
    metadata.authMethods = {"client_secret_basic", "client_secret_post"};
    const std::string message =
        thrownMessage([&] { requireAuthMethod(metadata, "private_key_jwt"); }, Errc::InvalidConfiguration, "");
    EXPECT_NE(message.find("private_key_jwt"), std::string::npos) << message;
    EXPECT_NE(message.find("[client_secret_basic, client_secret_post]"), std::string::npos) << message;
    // Names are compared exactly (they are registered identifiers).
    thrownMessage([&] { requireAuthMethod(metadata, "Client_Secret_Basic"); }, Errc::InvalidConfiguration, "case");
    thrownMessage([&] { requireAuthMethod(metadata, "client_secret_basic "); }, Errc::InvalidConfiguration, "space");

    metadata.authMethods.clear();  // listed, and empty: nothing is accepted
    const std::string none =
        thrownMessage([&] { requireAuthMethod(metadata, "client_secret_basic"); }, Errc::InvalidConfiguration, "");
    EXPECT_NE(none.find("[]"), std::string::npos) << none;
}

TEST(RequireAuthMethod, KeepsAHostileListOutOfTheMessage) {
    ServerMetadata metadata;
    metadata.authMethodsListed = true;
    metadata.authMethods.assign(kMaxListedAuthMethods, std::string(kMaxMetadataString, 'm'));
    metadata.authMethods.push_back("bell\a\r\nX: y");
    const std::string message =
        thrownMessage([&] { requireAuthMethod(metadata, "private_key_jwt"); }, Errc::InvalidConfiguration, "");
    EXPECT_LT(message.size(), 2048u);
    EXPECT_TRUE(discovery_test::isPrintableAscii(message)) << message;
}

// --- Hostile documents -------------------------------------------------------------------------

TEST(ServerMetadata, RefusesWhatIsNotAJsonObject) {
    for (const std::string& body : std::vector<std::string>{
             "", "{", "not json", "[]", R"("https://as.example.com/tenant")", "null", "42", document() + "x",
             document() + document(), document(R"(,"n":1e400)"), document(",\"bad\":\"\xff\"")}) {
        metadataRejection(body, kIssuer);
    }
    EXPECT_NE(metadataRejection("[]", kIssuer).find("not a JSON object"), std::string::npos);
    EXPECT_NE(metadataRejection("{", kIssuer).find("not JSON"), std::string::npos);
}

TEST(ServerMetadata, BoundsTheNesting) {
    // The top-level object is level 1: 31 more levels are accepted, 32 are one too many.
    EXPECT_NO_THROW(parseServerMetadata(document(",\"x\":" + nested(kMaxMetadataDepth - 1)), kIssuer));
    const std::string message = metadataRejection(document(",\"x\":" + nested(kMaxMetadataDepth)), kIssuer);
    EXPECT_NE(message.find("deeper than 32"), std::string::npos) << message;
    // As much nesting as fits the size bound: refused at level 33, never built.
    const std::string deep = "{\"x\":" + std::string(kMaxMetadataBytes - 10, '[');
    EXPECT_NE(metadataRejection(deep, kIssuer).find("deeper"), std::string::npos);
    std::string objects;
    while (objects.size() < kMaxMetadataBytes - 5) objects += R"({"a":)";
    EXPECT_NE(metadataRejection(objects, kIssuer).find("deeper"), std::string::npos);
}

TEST(ServerMetadata, BoundsTheDocumentSize) {
    const std::string padding = ",\"padding\":\"";
    const std::size_t room = kMaxMetadataBytes - document().size() - padding.size() - 1;
    const std::string atTheLimit = document(padding + std::string(room, 'p') + "\"");
    ASSERT_EQ(atTheLimit.size(), kMaxMetadataBytes);
    // A long string in a member not read costs nothing kept: accepted.
    EXPECT_EQ(parseServerMetadata(atTheLimit, kIssuer).tokenEndpoint, "https://as.example.com/tenant/token");
    const std::string overTheLimit = document(padding + std::string(room + 1, 'p') + "\"");
    EXPECT_NE(metadataRejection(overTheLimit, kIssuer).find("larger than 262144 bytes"), std::string::npos);
    // Refused on its size alone, before any parsing: even garbage says so.
    EXPECT_NE(metadataRejection(std::string(kMaxMetadataBytes + 1, '\xff'), kIssuer).find("larger"), std::string::npos);
}

TEST(ServerMetadata, BoundsTheStringsRead) {
    const std::string longPath(kMaxMetadataString + 1, 'a');
    const std::string longIssuer = "https://as.example.com/" + longPath;
    const std::string issuerMessage = metadataRejection(
        R"({"issuer":")" + longIssuer + R"(","token_endpoint":"https://as.example.com/token"})", longIssuer);
    EXPECT_NE(issuerMessage.find("issuer holds a string longer than 8192 bytes"), std::string::npos) << issuerMessage;

    const std::string longEndpoint =
        R"({"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/)" + longPath + "\"}";
    const std::string endpointMessage = metadataRejection(longEndpoint, kIssuer);
    EXPECT_NE(endpointMessage.find("token_endpoint holds a string longer"), std::string::npos) << endpointMessage;

    const std::string methodMessage = metadataRejection(
        document(R"(,"token_endpoint_auth_methods_supported":["client_secret_basic",")" + longPath + "\"]"), kIssuer);
    EXPECT_NE(methodMessage.find("token_endpoint_auth_methods_supported holds a string longer"), std::string::npos)
        << methodMessage;

    // Exactly at the bound is fine.
    const std::string method(kMaxMetadataString, 'm');
    EXPECT_EQ(parseServerMetadata(document(R"(,"token_endpoint_auth_methods_supported":[")" + method + "\"]"), kIssuer)
                  .authMethods.at(0)
                  .size(),
              kMaxMetadataString);
}

TEST(ServerMetadata, BoundsTheAuthMethodList) {
    const auto list = [](std::size_t count) {
        std::string items;
        for (std::size_t i = 0; i < count; ++i) items += (i == 0 ? "\"" : ",\"") + std::to_string(i) + "\"";
        return document(R"(,"token_endpoint_auth_methods_supported":[)" + items + "]");
    };
    EXPECT_EQ(parseServerMetadata(list(kMaxListedAuthMethods), kIssuer).authMethods.size(), kMaxListedAuthMethods);
    EXPECT_NE(metadataRejection(list(kMaxListedAuthMethods + 1), kIssuer).find("lists more than 64"),
              std::string::npos);
    // A document that is only empty strings in a list that is not read: nothing is kept.
    std::string manyEmpty = R"(,"scopes_supported":["")";
    while (manyEmpty.size() < kMaxMetadataBytes - 200) manyEmpty += R"(,"")";
    EXPECT_NO_THROW(parseServerMetadata(document(manyEmpty + "]"), kIssuer));
}

TEST(ServerMetadata, RefusesDuplicatesOfTheMembersRead) {
    // Decided: refused, whichever value would win. JSON leaves duplicates undefined (RFC 8259
    // §4) and parsers differ (first wins, last wins, error); a proxy or validator that keeps the
    // other one would check a different endpoint from the one used.
    for (const std::string& body : std::vector<std::string>{
             document(R"(,"issuer":"https://as.example.com/tenant")"),  // even the same value
             document(R"(,"issuer":"https://evil.example")"),
             document(R"(,"token_endpoint":"https://evil.example/token")"),
             document(R"(,"token_endpoint_auth_methods_supported":[],"token_endpoint_auth_methods_supported":[])"),
         }) {
        EXPECT_NE(metadataRejection(body, kIssuer).find("appears twice"), std::string::npos) << body;
    }
    // Duplicates elsewhere are not looked at, and a member read may recur below the top level.
    const auto metadata = parseServerMetadata(
        document(R"(,"jwks_uri":"a","jwks_uri":"b","mtls_endpoint_aliases":{"token_endpoint":"https://mtls.example/t",)"
                 R"("issuer":"x","token_endpoint_auth_methods_supported":5})"),
        kIssuer);
    EXPECT_EQ(metadata.tokenEndpoint, "https://as.example.com/tenant/token");
    EXPECT_FALSE(metadata.authMethodsListed);
}

TEST(ServerMetadata, MessagesAreShortAndPrintable) {
    const std::string hostileIssuer = "https://as.example.com/\\u0007\\u001b[31m" + std::string(2000, 'x');
    const std::string message = metadataRejection(
        R"({"issuer":")" + hostileIssuer + R"(","token_endpoint":"https://as.example.com/token"})", kIssuer);
    EXPECT_TRUE(discovery_test::isPrintableAscii(message)) << message;
    EXPECT_LT(message.size(), 800u) << message;
    EXPECT_NE(message.find("..."), std::string::npos) << message;
}

// --- Real-world shapes (written by hand after each product's documented layout) ---------------

namespace discovery_test {

struct ProviderCase {
    const char* name;
    std::string issuer;
    std::string body;
    std::string tokenEndpoint;
    std::vector<std::string> authMethods;  // empty with listed == false: not in the document
    bool listed;
    std::string rfc8414Url;
    std::string openIdUrl;
};

std::vector<ProviderCase> providerCases() {
    return {
        {"Keycloak",
         "https://sso.example.com/realms/acme",
         R"({"issuer":"https://sso.example.com/realms/acme",
  "authorization_endpoint":"https://sso.example.com/realms/acme/protocol/openid-connect/auth",
  "token_endpoint":"https://sso.example.com/realms/acme/protocol/openid-connect/token",
  "introspection_endpoint":"https://sso.example.com/realms/acme/protocol/openid-connect/token/introspect",
  "jwks_uri":"https://sso.example.com/realms/acme/protocol/openid-connect/certs",
  "grant_types_supported":["authorization_code","implicit","refresh_token","password","client_credentials"],
  "id_token_signing_alg_values_supported":["PS384","ES384","RS384","HS256","EdDSA","RS256","ES256","PS256"],
  "token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_basic","client_secret_post","tls_client_auth","client_secret_jwt"],
  "token_endpoint_auth_signing_alg_values_supported":["PS384","ES384","RS384","RS256","ES256","PS256"],
  "claims_parameter_supported":true,"request_parameter_supported":true,
  "tls_client_certificate_bound_access_tokens":true,
  "mtls_endpoint_aliases":{"token_endpoint":"https://sso.example.com/realms/acme/protocol/openid-connect/token",
    "introspection_endpoint":"https://sso.example.com/realms/acme/protocol/openid-connect/token/introspect"}})",
         "https://sso.example.com/realms/acme/protocol/openid-connect/token",
         {"private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"},
         true,
         "https://sso.example.com/.well-known/oauth-authorization-server/realms/acme",
         "https://sso.example.com/realms/acme/.well-known/openid-configuration"},
        {"Entra ID v2",
         "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
         R"({"token_endpoint":"https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/oauth2/v2.0/token",
  "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt","client_secret_basic"],
  "jwks_uri":"https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/discovery/v2.0/keys",
  "response_modes_supported":["query","fragment","form_post"],
  "subject_types_supported":["pairwise"],"id_token_signing_alg_values_supported":["RS256"],
  "issuer":"https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
  "request_uri_parameter_supported":false,
  "userinfo_endpoint":"https://graph.microsoft.com/oidc/userinfo",
  "tenant_region_scope":"EU","cloud_instance_name":"microsoftonline.com",
  "cloud_graph_host_name":"graph.windows.net","msgraph_host":"graph.microsoft.com",
  "rbac_url":"https://pas.windows.net"})",
         "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/oauth2/v2.0/token",
         {"client_secret_post", "private_key_jwt", "client_secret_basic"},
         true,
         "https://login.microsoftonline.com/.well-known/oauth-authorization-server/"
         "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
         "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0/.well-known/"
         "openid-configuration"},
        {"Auth0",
         "https://acme.eu.auth0.com/",
         R"({"issuer":"https://acme.eu.auth0.com/",
  "authorization_endpoint":"https://acme.eu.auth0.com/authorize",
  "token_endpoint":"https://acme.eu.auth0.com/oauth/token",
  "device_authorization_endpoint":"https://acme.eu.auth0.com/oauth/device/code",
  "userinfo_endpoint":"https://acme.eu.auth0.com/userinfo",
  "jwks_uri":"https://acme.eu.auth0.com/.well-known/jwks.json",
  "scopes_supported":["openid","profile","offline_access","name","email"],
  "response_types_supported":["code","token","id_token","code token"],
  "token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post","private_key_jwt"],
  "claims_supported":["aud","auth_time","created_at","email","exp","iat","iss","sub"],
  "request_uri_parameter_supported":false,"request_parameter_supported":false})",
         "https://acme.eu.auth0.com/oauth/token",
         {"client_secret_basic", "client_secret_post", "private_key_jwt"},
         true,
         "https://acme.eu.auth0.com/.well-known/oauth-authorization-server",
         "https://acme.eu.auth0.com/.well-known/openid-configuration"},
        {"Okta custom authorization server",
         "https://acme.okta.com/oauth2/default",
         R"({"issuer":"https://acme.okta.com/oauth2/default",
  "authorization_endpoint":"https://acme.okta.com/oauth2/default/v1/authorize",
  "token_endpoint":"https://acme.okta.com/oauth2/default/v1/token",
  "registration_endpoint":"https://acme.okta.com/oauth2/v1/clients",
  "jwks_uri":"https://acme.okta.com/oauth2/default/v1/keys",
  "grant_types_supported":["authorization_code","implicit","refresh_token","password","client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code","urn:ietf:params:oauth:grant-type:token-exchange"],
  "token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post","client_secret_jwt","private_key_jwt","none"],
  "code_challenge_methods_supported":["S256"],
  "dpop_signing_alg_values_supported":["RS256","RS384","RS512","ES256","ES384","ES512"]})",
         "https://acme.okta.com/oauth2/default/v1/token",
         {"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"},
         true,
         "https://acme.okta.com/.well-known/oauth-authorization-server/oauth2/default",
         "https://acme.okta.com/oauth2/default/.well-known/openid-configuration"},
        {"Cognito user pool",
         "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
         R"({"authorization_endpoint":"https://acme.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
  "end_session_endpoint":"https://acme.auth.eu-west-1.amazoncognito.com/logout",
  "id_token_signing_alg_values_supported":["RS256"],
  "issuer":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
  "jwks_uri":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json",
  "response_types_supported":["code","token"],"scopes_supported":["openid","email","phone","profile"],
  "subject_types_supported":["public"],
  "token_endpoint":"https://acme.auth.eu-west-1.amazoncognito.com/oauth2/token",
  "token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
  "userinfo_endpoint":"https://acme.auth.eu-west-1.amazoncognito.com/oauth2/userInfo"})",
         "https://acme.auth.eu-west-1.amazoncognito.com/oauth2/token",
         {"client_secret_basic", "client_secret_post"},
         true,
         "https://cognito-idp.eu-west-1.amazonaws.com/.well-known/oauth-authorization-server/eu-west-1_AbCdEf123",
         "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/openid-configuration"},
        {"RFC 8414 minimal (no auth method list)",
         "https://as.example.net",
         R"({"issuer":"https://as.example.net","token_endpoint":"https://as.example.net/token",
  "response_types_supported":["code"]})",
         "https://as.example.net/token",
         {},
         false,
         "https://as.example.net/.well-known/oauth-authorization-server",
         "https://as.example.net/.well-known/openid-configuration"},
    };
}

}  // namespace discovery_test

using discovery_test::providerCases;

TEST(ServerMetadata, ReadsTheDocumentsOfCommonServers) {
    for (const auto& provider : providerCases()) {
        SCOPED_TRACE(provider.name);
        const auto urls = discoveryUrls(provider.issuer);
        EXPECT_EQ(urls[0], provider.rfc8414Url);
        EXPECT_EQ(urls[1], provider.openIdUrl);
        const auto metadata = parseServerMetadata(provider.body, provider.issuer);
        EXPECT_EQ(metadata.issuer, provider.issuer);
        EXPECT_EQ(metadata.tokenEndpoint, provider.tokenEndpoint);
        EXPECT_EQ(metadata.authMethodsListed, provider.listed);
        EXPECT_EQ(metadata.authMethods, provider.authMethods);
        EXPECT_NO_THROW(requireAuthMethod(metadata, "client_secret_basic"));
    }
}

TEST(ServerMetadata, CommonServerPitfalls) {
    const auto cases = providerCases();
    const auto provider = [&](std::string_view name) {
        for (const auto& c : cases) {
            if (c.name == name) return c;
        }
        throw std::logic_error("no such provider case");
    };
    // Auth0's issuer ends in '/': configured without it, the document does not match.
    const auto auth0 = provider("Auth0");
    const std::string message = metadataRejection(auth0.body, "https://acme.eu.auth0.com");
    EXPECT_NE(message.find("\"https://acme.eu.auth0.com/\" is not the configured issuer \"https://acme.eu.auth0.com\""),
              std::string::npos)
        << message;

    // Entra ID's multi-tenant documents name a template, not an issuer: discovery through
    // "common" cannot be validated and is refused.
    const std::string common = R"({"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0",)"
                               R"("token_endpoint":"https://login.microsoftonline.com/common/oauth2/v2.0/token"})";
    metadataRejection(common, "https://login.microsoftonline.com/common/v2.0");

    // Cognito lists only the client secret methods: private_key_jwt is refused up front.
    const auto cognito = parseServerMetadata(provider("Cognito user pool").body, provider("Cognito user pool").issuer);
    const std::string refusal =
        thrownMessage([&] { requireAuthMethod(cognito, "private_key_jwt"); }, Errc::InvalidConfiguration, "Cognito");
    EXPECT_NE(refusal.find("[client_secret_basic, client_secret_post]"), std::string::npos) << refusal;
    EXPECT_NO_THROW(requireAuthMethod(parseServerMetadata(provider("Keycloak").body, provider("Keycloak").issuer),
                                      "tls_client_auth"));
}

}  // namespace mca::detail
