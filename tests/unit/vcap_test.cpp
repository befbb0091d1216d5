#include <mca/auth_client.hpp>

#include <gtest/gtest.h>

namespace mca::detail {

TEST(Vcap, ReadsTheAdvancedMobileAccessBinding) {
    const auto vcap = parseVcap(R"({
        "cloudantNoSQLDB": [{"credentials": {"url": "https://db"}}],
        "AdvancedMobileAccess": [{"name": "mca", "credentials": {
            "tenantId": "tenant-1", "clientId": "client-1", "secret": "s1",
            "serverUrl": "https://imf-authserver.ng.bluemix.net/imf-authserver"}}]})",
                                nullptr);
    EXPECT_EQ(vcap.appId, "tenant-1");
    EXPECT_EQ(vcap.clientId, "client-1");
    EXPECT_EQ(vcap.secret, "s1");
    EXPECT_EQ(vcap.serverUrl, "https://imf-authserver.ng.bluemix.net/imf-authserver");
    EXPECT_EQ(vcap.problem, "");
}

TEST(Vcap, ReadsAppIdBindingsAndTheirOAuthServerUrl) {
    const auto vcap = parseVcap(R"({"AppID-dev": [{"credentials": {"tenantId": "t", "clientId": "c", "secret": "s",
        "oauthServerUrl": "https://us-south.appid.cloud.ibm.com/oauth/v4/t"}}]})",
                                nullptr);
    EXPECT_EQ(vcap.appId, "t");
    EXPECT_EQ(vcap.oauthServerUrl, "https://us-south.appid.cloud.ibm.com/oauth/v4/t");
}

TEST(Vcap, TakesTheFirstMatchingServiceInDocumentOrderAndItsFirstBinding) {
    const auto vcap = parseVcap(R"({
        "zzz": [],
        "AdvancedMobileAccess-b": [{"credentials": {"clientId": "first"}}, {"credentials": {"clientId": "second"}}],
        "AdvancedMobileAccess-a": [{"credentials": {"clientId": "third"}}]})",
                                nullptr);
    EXPECT_EQ(vcap.clientId, "first");
}

TEST(Vcap, SkipsEmptyBindingListsAndOtherNames) {
    const auto vcap =
        parseVcap(R"({"AdvancedMobileAccess": [], "MyAdvancedMobileAccess": [{"credentials": {"clientId": "no"}}],
        "AppID": [{"credentials": {"clientId": "yes"}}]})",
                  nullptr);
    EXPECT_EQ(vcap.clientId, "yes");
}

TEST(Vcap, FallsBackToVcapApplicationForTheAppId) {
    const auto vcap = parseVcap(R"({"AdvancedMobileAccess": [{"credentials": {"clientId": "c"}}]})",
                                R"({"application_id": "guid-from-application", "name": "app"})");
    EXPECT_EQ(vcap.appId, "guid-from-application");
    const auto tenantWins = parseVcap(R"({"AdvancedMobileAccess": [{"credentials": {"tenantId": "t"}}]})",
                                      R"({"application_id": "ignored"})");
    EXPECT_EQ(tenantWins.appId, "t");
}

TEST(Vcap, IgnoresMalformedEnvironmentAndSaysWhy) {
    EXPECT_EQ(parseVcap(nullptr, nullptr).appId, "");
    EXPECT_EQ(parseVcap("", "").problem, "");
    EXPECT_EQ(parseVcap("{not json", nullptr).problem, "VCAP_SERVICES is not a JSON object");
    EXPECT_EQ(parseVcap("[]", nullptr).problem, "VCAP_SERVICES is not a JSON object");
    EXPECT_EQ(parseVcap(nullptr, "42").problem, "VCAP_APPLICATION is not a JSON object");
    const auto wrongTypes =
        parseVcap(R"({"AdvancedMobileAccess": [{"credentials": {"tenantId": 7, "secret": ["s"]}}]})", nullptr);
    EXPECT_EQ(wrongTypes.appId, "");
    EXPECT_EQ(wrongTypes.secret, "");
    EXPECT_EQ(parseVcap(R"({"AdvancedMobileAccess": ["x"]})", nullptr).clientId, "");
    EXPECT_EQ(parseVcap(R"({"AdvancedMobileAccess": {"credentials": {}}})", nullptr).clientId, "");
}

// --- defaultCredentials: explicit credentials win as a whole; the environment as one unit ---

constexpr const char* kMcaBinding = R"({"AdvancedMobileAccess": [{"credentials": {"tenantId": "vcap-tenant",
    "clientId": "vcap-client", "secret": "vcap-secret", "serverUrl": "https://mca.example/imf-authserver"}}]})";
constexpr const char* kAppIdBinding = R"({"AppID": [{"credentials": {"tenantId": "appid-tenant",
    "clientId": "appid-client", "secret": "appid-secret", "oauthServerUrl": "https://appid.example/oauth/v4/t"}}]})";
constexpr const char* kApplication = R"({"application_id": "app-guid"})";

bool same(const Credentials& a, const Credentials& b) {
    return a.appId == b.appId && a.clientId == b.clientId && a.secret == b.secret && a.serverUrl == b.serverUrl &&
           a.tokenUrl == b.tokenUrl && a.scope == b.scope;
}

TEST(DefaultCredentials, NoneGivenTakesTheMcaBindingAsAWhole) {
    std::string problem = "stale";
    const Credentials filled = defaultCredentials(Credentials{}, kMcaBinding, kApplication, problem);
    EXPECT_TRUE(same(filled, Credentials{"vcap-tenant", "vcap-client", "vcap-secret",
                                         "https://mca.example/imf-authserver", "", ""}));
    EXPECT_EQ(problem, "");
}

TEST(DefaultCredentials, NoneGivenTakesTheAppIdBindingWithItsTokenUrl) {
    std::string problem;
    Credentials scopeOnly;
    scopeOnly.scope = "read";  // not a credential: kept, and does not stop the environment
    const Credentials filled = defaultCredentials(scopeOnly, kAppIdBinding, nullptr, problem);
    EXPECT_TRUE(same(filled, Credentials{"appid-tenant", "appid-client", "appid-secret", "",
                                         "https://appid.example/oauth/v4/t/token", "read"}));
}

TEST(DefaultCredentials, AllGivenIgnoresTheEnvironment) {
    std::string problem;
    const Credentials given{"app", "client", "secret", "https://explicit.example", "", "scope"};
    EXPECT_TRUE(same(defaultCredentials(given, kAppIdBinding, kApplication, problem), given));
    EXPECT_TRUE(same(defaultCredentials(given, "{not json", "42", problem), given));
    EXPECT_EQ(problem, "");  // not read, so nothing wrong with it
}

TEST(DefaultCredentials, PartlyGivenIsUsedAsGivenNeverCompleted) {
    std::string problem;
    for (const Credentials& given :
         {Credentials{"app", "", "", "", "", ""}, Credentials{"", "client", "", "", "", ""},
          Credentials{"", "", "secret", "", "", ""}, Credentials{"", "", "", "https://explicit.example", "", ""},
          Credentials{"", "", "", "", "https://explicit.example/token", ""},
          Credentials{"", "client", "secret", "https://explicit.example", "", ""}}) {
        for (const char* services : {kMcaBinding, kAppIdBinding}) {
            EXPECT_TRUE(same(defaultCredentials(given, services, kApplication, problem), given))
                << given.appId << given.clientId << given.serverUrl << given.tokenUrl << " / " << services;
        }
    }
}

TEST(DefaultCredentials, ApplicationIdOnlyCompletesABindingWithoutTenantId) {
    std::string problem;
    const char* withoutTenant =
        R"({"AdvancedMobileAccess": [{"credentials": {"clientId": "c", "secret": "s", "serverUrl": "https://m"}}]})";
    EXPECT_EQ(defaultCredentials(Credentials{}, withoutTenant, kApplication, problem).appId, "app-guid");
    EXPECT_EQ(defaultCredentials(Credentials{}, kMcaBinding, kApplication, problem).appId, "vcap-tenant");
    // No binding: VCAP_APPLICATION alone fills nothing.
    EXPECT_TRUE(same(defaultCredentials(Credentials{}, R"({"other": []})", kApplication, problem), Credentials{}));
    EXPECT_TRUE(same(defaultCredentials(Credentials{}, nullptr, kApplication, problem), Credentials{}));
    // Explicit credentials without an appId: not filled from VCAP_APPLICATION either.
    const Credentials given{"", "client", "secret", "https://explicit.example", "", ""};
    EXPECT_EQ(defaultCredentials(given, nullptr, kApplication, problem).appId, "");
}

TEST(DefaultCredentials, MalformedEnvironmentFillsNothingAndSaysWhy) {
    std::string problem;
    EXPECT_TRUE(same(defaultCredentials(Credentials{}, "{not json", nullptr, problem), Credentials{}));
    EXPECT_EQ(problem, "VCAP_SERVICES is not a JSON object");
    EXPECT_TRUE(same(defaultCredentials(Credentials{}, nullptr, "42", problem), Credentials{}));
    EXPECT_EQ(problem, "VCAP_APPLICATION is not a JSON object");
    EXPECT_TRUE(same(defaultCredentials(Credentials{}, nullptr, nullptr, problem), Credentials{}));
    EXPECT_EQ(problem, "");
    // A binding without a credentials object is the one binding: nothing from the next one.
    EXPECT_TRUE(same(defaultCredentials(Credentials{},
                                        R"({"AppID": [{"name": "x"}], "AdvancedMobileAccess": [{"credentials":
                                            {"clientId": "c", "secret": "s"}}]})",
                                        nullptr, problem),
                     Credentials{}));
}

}  // namespace mca::detail
