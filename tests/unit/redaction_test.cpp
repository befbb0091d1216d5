// redaction.hpp: a secret is removed in every form a server could echo it, before and after
// decoding, and before the description is cut short.

#include <mca/auth_client.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mca::detail {
namespace {

std::string redacted(std::string text, std::string_view secret) {
    redact(text, secret);
    return text;
}

std::vector<SecretString> secrets(std::initializer_list<std::string_view> values) {
    std::vector<SecretString> list;
    for (const auto value : values) list.emplace_back(value);
    return list;
}

TEST(Redaction, RemovesTheRawSecret) {
    EXPECT_EQ(redacted("secret=hunter2 and again hunter2", "hunter2"), "secret=*** and again ***");
    EXPECT_EQ(redacted("nothing here", "hunter2"), "nothing here");
    EXPECT_EQ(redacted("hunter2", ""), "hunter2");
}

TEST(Redaction, RemovesEveryJsonEscapeOfTheSecret) {
    const std::string secret = "a\"b/c\\d\n\xC3\xA9\xF0\x9F\x94\x91";  // ", /, \, LF, U+00E9, U+1F511
    for (const char* echoed : {R"(a\"b/c\\d\n)"
                               "\xC3\xA9\xF0\x9F\x94\x91",
                               R"(a\"b\/c\\d\n\u00e9\ud83d\udd11)",
                               R"(\u0061\u0022\u0062\u002F\u0063\u005C\u0064\u000A\u00E9\uD83D\uDD11)"}) {
        EXPECT_EQ(redacted(std::string("<") + echoed + ">", secret), "<***>") << echoed;
    }
}

TEST(Redaction, RemovesFormPercentAndHtmlEncodings) {
    const std::string secret = "p@ss w/rd&<x>";
    EXPECT_EQ(redacted("x=p%40ss+w%2Frd%26%3Cx%3E&y", secret), "x=***&y");
    EXPECT_EQ(redacted("x=p%40ss%20w%2frd%26%3cx%3e", secret), "x=***");
    EXPECT_EQ(redacted("<b>p@ss w/rd&amp;&lt;x&#62;</b>", secret), "<b>***</b>");
    EXPECT_EQ(redacted("p&#x40;ss&#32;w/rd&#38;&lt;x&gt;", secret), "***");
}

TEST(Redaction, RemovesTheBase64OfTheSecretAloneOrInsideALongerText) {
    const std::string secret = "s3cr3t-Value";
    EXPECT_EQ(redacted("[" + base64Encode(secret) + "]", secret).find(base64Encode(secret).substr(0, 12)),
              std::string::npos);
    for (const std::string prefix : {"c:", "cl:", "cli:"}) {  // every alignment of the secret
        const std::string encoded = base64Encode(prefix + secret);
        const std::string text = redacted("Basic " + encoded, secret);
        EXPECT_NE(text.find("***"), std::string::npos) << prefix << ": " << text;
        EXPECT_LT(text.size(), 6 + encoded.size() - 8) << text;
    }
    // base64url too, and a short secret's base64 is left alone (a few characters occur anywhere).
    EXPECT_NE(redacted(base64UrlEncode("\xfb\xff\xfe\xfb\xff\xfe\xfb\xff\xfe"), "\xfb\xff\xfe\xfb\xff\xfe\xfb\xff\xfe")
                  .find("***"),
              std::string::npos);
    EXPECT_EQ(redacted("YWJj is abc", "abc"), "YWJj is ***");
}

TEST(Redaction, ASecretOfStarsTerminates) {
    for (const char* secret : {"*", "**", "***", "****"}) {
        const std::string text = redacted("a***b*c", secret);
        EXPECT_LE(text.size(), 3 * std::string("a***b*c").size()) << secret;
    }
}

TEST(Redaction, RedactAllRemovesEachSecret) {
    std::string text = "id client-1, secret hunter2, header Basic Y2xpZW50LTE6aHVudGVyMg==";
    redactAll(text, secrets({"hunter2", "Basic Y2xpZW50LTE6aHVudGVyMg=="}));
    EXPECT_EQ(text, "id client-1, secret ***, header ***");
}

TEST(Redaction, DescribesAfterDecodingAndRedactsBeforeCutting) {
    const auto list = secrets({"pa\"ss/word"});
    EXPECT_EQ(describeErrorBody(R"({"error":"invalid_client","error_description":"pa\"ss\/word is wrong"})", list),
              "invalid_client: *** is wrong");
    EXPECT_EQ(describeErrorBody(
                  R"({"error":"invalid_client","error_description":"\u0070\u0061\u0022ss\/word is wrong"})", list),
              "invalid_client: *** is wrong");
    // The secret straddles the 200th character: redacted first, so no half of it is shown.
    const std::string body = R"({"error":"e","error_description":")" + std::string(194, '.') + R"( pa\"ss\/word"})";
    const std::string description = describeErrorBody(body, list);
    EXPECT_EQ(description.find("pa\""), std::string::npos) << description;
    EXPECT_EQ(description.find("pa"), std::string::npos) << description;
    // Not JSON: the raw body is redacted, escapes and all.
    EXPECT_EQ(describeErrorBody(R"(denied: pa\"ss\/word)", list), "body \"denied: ***\"");
}

TEST(Redaction, ErrorBodiesAreReadWithoutADocumentAndDeepNestingIsNotAnOAuthError) {
    EXPECT_EQ(describeErrorBody(R"({"x":[[[{"error":"nested"}]]],"error":"top"})", {}), "top");
    const std::string deep = std::string(100, '[') + std::string(100, ']');
    EXPECT_EQ(describeErrorBody(deep, {}).rfind("body \"[[[", 0), 0u);
}

TEST(ProxyUrl, TakesTheCredentialsOutOfTheUrl) {
    const ProxySetting setting = splitProxyUrl("http://us%20er:p%40ss%2Fw@127.0.0.1:3128/x");
    EXPECT_EQ(setting.url, "http://127.0.0.1:3128/x");
    EXPECT_TRUE(setting.hasCredentials);
    EXPECT_EQ(setting.user.view(), "us er");
    EXPECT_EQ(setting.password.view(), "p@ss/w");
    ASSERT_EQ(setting.redactions.size(), 2u);
    EXPECT_EQ(setting.redactions[0].view(), "p@ss/w");
    EXPECT_EQ(setting.redactions[1].view(), "p%40ss%2Fw");

    const ProxySetting plain = splitProxyUrl("http://127.0.0.1:3128");
    EXPECT_EQ(plain.url, "http://127.0.0.1:3128");
    EXPECT_FALSE(plain.hasCredentials);
    EXPECT_TRUE(plain.redactions.empty());

    const ProxySetting noScheme = splitProxyUrl("user:pw@proxy:8080");
    EXPECT_EQ(noScheme.url, "proxy:8080");
    EXPECT_EQ(noScheme.password.view(), "pw");
    EXPECT_EQ(splitProxyUrl("http://proxy:8080/p@th").url, "http://proxy:8080/p@th");  // '@' after the host
    EXPECT_EQ(splitProxyUrl("http://u:bad%zz@h").password.view(), "bad%zz");           // kept as written
}

}  // namespace
}  // namespace mca::detail
