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

}  // namespace mca::detail
