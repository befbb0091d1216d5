// The MCA secret flow on the wire, against the loopback test server.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

TEST(Protocol, SendsTheSecretFlowRequestByteForByte) {
    ServerFixture fixture;
    AuthClient client(optionsFor(fixture.credentials()));
    const std::string header = client.getAuthorizationHeader().get();

    const auto requests = fixture.server.requests();
    ASSERT_EQ(requests.size(), 1u);
    const RecordedRequest& request = requests.front();
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, std::string("/imf-authserver/authorization/v1/apps/") + kAppId + "/token");
    EXPECT_EQ(request.header("Authorization"), "Basic " + detail::base64Encode(std::string(kClientId) + ":" + kSecret));
    EXPECT_EQ(request.header("Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(request.header("Accept"), "application/json");
    EXPECT_EQ(request.body, "grant_type=client_credentials");
    EXPECT_EQ(request.header("Expect"), "");
    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
}

TEST(Protocol, HandsOutAVerifiableMcaToken) {
    ServerFixture fixture;
    AuthClient client(optionsFor(fixture.credentials()));
    const std::string token = accessTokenOf(client.getAuthorizationHeader().get());
    EXPECT_TRUE(verifyRs256Jwt(token, fixture.server.publicKeyPem()));
    const auto claims = decodeJwtPayload(token);
    EXPECT_EQ(claims["aud"], kAppId);
    EXPECT_EQ(claims["prn"], kClientId);
}

TEST(Protocol, TrimsTheServerUrlAndAddsOneSlash) {
    ServerFixture fixture;
    for (const std::string& url : {"  " + fixture.server.baseUrl() + "  ", fixture.server.baseUrl() + "/"}) {
        Credentials credentials = fixture.credentials();
        credentials.serverUrl = url;
        AuthClient client;
        EXPECT_NO_THROW(client.getAuthorizationHeader(credentials).get());
    }
    for (const auto& request : fixture.server.requests()) {
        EXPECT_EQ(request.target, std::string("/imf-authserver/authorization/v1/apps/") + kAppId + "/token");
    }
}

TEST(Protocol, PercentEncodesTheAppIdIntoOnePathSegment) {
    ServerFixture fixture;
    const std::string oddAppId = "team a/b?c#d%";
    fixture.server.addClient(oddAppId, kClientId, kSecret);
    AuthClient client;
    const std::string token = accessTokenOf(
        client.getAuthorizationHeader(Credentials{oddAppId, kClientId, kSecret, fixture.server.baseUrl()}).get());
    EXPECT_EQ(fixture.server.requests().back().target,
              "/imf-authserver/authorization/v1/apps/team%20a%2Fb%3Fc%23d%25/token");
    EXPECT_EQ(decodeJwtPayload(token)["aud"], oddAppId);
}

TEST(Protocol, ReusesOneConnectionForSequentialFetches) {
    ServerFixture fixture;
    AuthClient client;
    for (int i = 0; i < 5; ++i) {
        EXPECT_NO_THROW(client.getAuthorizationHeader(fixture.tenant(i)).get());
    }
    EXPECT_EQ(fixture.server.tokenRequests(), 5u);
    EXPECT_EQ(fixture.server.connectionsAccepted(), 1u);
}

TEST(Protocol, TakesDefaultCredentialsFromVcap) {
    ServerFixture fixture;
    const std::string services = R"({"AdvancedMobileAccess": [{"name": "mca", "credentials": {"clientId": ")" +
                                 std::string(kClientId) + R"(", "secret": ")" + kSecret + R"(", "serverUrl": ")" +
                                 fixture.server.baseUrl() + R"("}}]})";
    const std::string application = std::string(R"({"application_id": ")") + kAppId + R"("})";
    ::setenv("VCAP_SERVICES", services.c_str(), 1);
    ::setenv("VCAP_APPLICATION", application.c_str(), 1);
    AuthClient client;
    ::unsetenv("VCAP_SERVICES");
    ::unsetenv("VCAP_APPLICATION");
    const std::string token = accessTokenOf(client.getAuthorizationHeader().get());
    EXPECT_EQ(decodeJwtPayload(token)["aud"], kAppId);
}

TEST(Protocol, ExplicitOptionsWinOverVcap) {
    ServerFixture fixture;
    ::setenv("VCAP_SERVICES",
             R"({"AdvancedMobileAccess": [{"credentials": {"tenantId": "wrong-app", "clientId": "wrong",
        "secret": "wrong", "serverUrl": "http://127.0.0.1:1/nowhere"}}]})",
             1);
    AuthClient client(optionsFor(fixture.credentials()));
    ::unsetenv("VCAP_SERVICES");
    EXPECT_EQ(decodeJwtPayload(accessTokenOf(client.getAuthorizationHeader().get()))["aud"], kAppId);
}

TEST(Protocol, ReadsTheLifetimeFromTheJwtWhenExpiresInIsMissing) {
    ServerFixture fixture;
    Reply reply;
    reply.omitExpiresIn = true;
    fixture.server.setDefaultReply(reply);
    auto clock = std::make_shared<ManualClock>();
    Options options = optionsFor(fixture.credentials());
    options.clock = clock;
    AuthClient client(options);
    const std::string first = client.getAuthorizationHeader().get();
    clock->advance(30min);  // well inside the JWT's one hour
    EXPECT_EQ(client.getAuthorizationHeader().get(), first);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    clock->advance(31min);  // past exp - skew
    EXPECT_NE(client.getAuthorizationHeader().get(), first);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
}

}  // namespace
}  // namespace mca::test
