// The test server's protected resource (GET /resource), spoken to with plain libcurl: it accepts
// the tokens the server issued, and refuses revoked, expired, foreign and missing ones, so that
// the examples' "on 401, invalidate and retry once" can be tested against it.

#include <gtest/gtest.h>

#include "test_support.hpp"

#include <curl/curl.h>

#include <string>

namespace mca::test::protected_resource {
namespace {

struct ResourceReply {
    long status = 0;
    std::string body, wwwAuthenticate;
};

// One request on a fresh easy handle: a GET, or a POST of `form` when it is not empty.
ResourceReply perform(const std::string& url, const std::string& authorization, const std::string& form = "") {
    const detail::CurlEasyPtr easy(curl_easy_init());
    ResourceReply reply;
    detail::CurlSlistPtr headers;
    if (!authorization.empty()) {
        headers.reset(curl_slist_append(nullptr, ("Authorization: " + authorization).c_str()));
        curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
    }
    if (!form.empty()) curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, form.c_str());
    curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
    collectBody(easy.get(), reply.body);
    curl_easy_setopt(
        easy.get(), CURLOPT_HEADERFUNCTION, +[](char* data, std::size_t, std::size_t count, void* out) {
            const std::string line(data, count);
            const std::string name = "www-authenticate:";
            std::string lower = line.substr(0, name.size());
            for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (lower == name) {
                std::string value = line.substr(name.size());
                value.erase(0, value.find_first_not_of(' '));
                value.erase(value.find_last_not_of("\r\n") + 1);
                *static_cast<std::string*>(out) = value;
            }
            return count;
        });
    curl_easy_setopt(easy.get(), CURLOPT_HEADERDATA, &reply.wwwAuthenticate);
    curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT, 30L);
    const CURLcode result = curl_easy_perform(easy.get());
    EXPECT_EQ(result, CURLE_OK) << curl_easy_strerror(result);
    curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &reply.status);
    return reply;
}

std::string descriptionOf(const ResourceReply& reply) {
    return nlohmann::json::parse(reply.body).value("error_description", "");
}

TEST(ProtectedResource, AcceptsATokenTheServerIssued) {
    ServerFixture fixture;
    AuthClient client;
    const std::string header = client.getAuthorizationHeader(fixture.credentials()).get();
    const ResourceReply reply = perform(fixture.server.resourceUrl(), header);
    EXPECT_EQ(reply.status, 200);
    const nlohmann::json body = nlohmann::json::parse(reply.body);
    EXPECT_EQ(body.value("resource", ""), "ok");
    EXPECT_EQ(body.value("sub", ""), kClientId);  // an MCA token's prn
    EXPECT_EQ(fixture.server.resourceRequests(), 1u);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);  // the resource is not a token endpoint
}

TEST(ProtectedResource, RefusesARevokedTokenAndAcceptsTheNextOne) {
    ServerFixture fixture;
    AuthClient client;
    const std::string refused = client.getAuthorizationHeader(fixture.credentials()).get();
    fixture.server.revokeToken(refused);
    const ResourceReply reply = perform(fixture.server.resourceUrl(), refused);
    EXPECT_EQ(reply.status, 401);
    EXPECT_EQ(descriptionOf(reply), "token revoked");
    EXPECT_EQ(reply.wwwAuthenticate, R"(Bearer error="invalid_token")");

    client.invalidate(fixture.credentials(), refused);
    const std::string replacement = client.getAuthorizationHeader(fixture.credentials()).get();
    EXPECT_NE(replacement, refused);
    EXPECT_EQ(perform(fixture.server.resourceUrl(), replacement).status, 200);
    EXPECT_EQ(fixture.server.resourceRequests(), 2u);
}

TEST(ProtectedResource, RevokeNextTokensRevokesThemAsTheyAreIssued) {
    ServerFixture fixture;
    fixture.server.revokeNextTokens(1);
    AuthClient client;
    const std::string first = client.getAuthorizationHeader(fixture.credentials()).get();
    EXPECT_EQ(descriptionOf(perform(fixture.server.resourceUrl(), first)), "token revoked");
    client.invalidate(fixture.credentials(), first);
    const std::string second = client.getAuthorizationHeader(fixture.credentials()).get();
    EXPECT_EQ(perform(fixture.server.resourceUrl(), second).status, 200);
}

TEST(ProtectedResource, RevokeTokenTakesTheBareTokenToo) {
    ServerFixture fixture;
    AuthClient client;
    const std::string header = client.getAuthorizationHeader(fixture.credentials()).get();
    fixture.server.revokeToken(header.substr(std::string("Bearer ").size()));
    EXPECT_EQ(descriptionOf(perform(fixture.server.resourceUrl(), header)), "token revoked");
}

TEST(ProtectedResource, RefusesAnExpiredToken) {
    ServerFixture fixture;
    fixture.server.setExpiresIn(-60);  // the client would refuse the reply: ask with plain libcurl
    const ResourceReply issued = perform(fixture.server.baseUrl() + "/authorization/v1/apps/" + kAppId + "/token",
                                         "Basic " + detail::base64Encode(std::string(kClientId) + ":" + kSecret),
                                         "grant_type=client_credentials");
    ASSERT_EQ(issued.status, 200);
    const std::string token = nlohmann::json::parse(issued.body).at("access_token");
    const ResourceReply reply = perform(fixture.server.resourceUrl(), "Bearer " + token);
    EXPECT_EQ(reply.status, 401);
    EXPECT_EQ(descriptionOf(reply), "token expired");
}

TEST(ProtectedResource, RefusesATokenSignedByAnyoneElse) {
    ServerFixture fixture;
    const long long farFuture = 4102444800;  // 2100-01-01
    const ResourceReply reply = perform(fixture.server.resourceUrl(),
                                        "Bearer " + fakeJwt(R"({"sub":"x","exp":)" + std::to_string(farFuture) + "}"));
    EXPECT_EQ(reply.status, 401);
    EXPECT_EQ(descriptionOf(reply), "token not signed by this server");
}

TEST(ProtectedResource, RefusesARequestWithoutABearerToken) {
    ServerFixture fixture;
    for (const std::string authorization : {"", "Basic YTpi", "Bearer"}) {
        const ResourceReply reply = perform(fixture.server.resourceUrl(), authorization);
        EXPECT_EQ(reply.status, 401) << authorization;
        EXPECT_EQ(descriptionOf(reply), "no Bearer token") << authorization;
    }
    EXPECT_EQ(fixture.server.resourceRequests(), 3u);
}

}  // namespace
}  // namespace mca::test::protected_resource
