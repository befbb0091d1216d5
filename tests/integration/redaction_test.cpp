// A server that echoes the secret back, in whatever encoding it likes, must not get it into an
// mca::Error message or a log line: redaction runs after every decoding step. Also the proxy
// password of a proxy URL that libcurl refuses.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include "support/loopback_proxy.hpp"

#include <mutex>
#include <string>
#include <vector>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

// Bytes that JSON, form and HTML encoders all treat differently: '"', '/', '\', ' ', '&', '@',
// '+', '<' and a non-ASCII letter (U+00E9, UTF-8 C3 A9).
constexpr const char* kAwkwardSecret =
    "Zq\"9/rT\\u x&v@+w<\xC3\xA9"
    "8Kp";

std::string everyCharAsUnicodeEscape(std::string_view text) {
    std::string out;
    char buffer[8];
    for (std::size_t i = 0; i < text.size(); ++i) {
        unsigned code = static_cast<unsigned char>(text[i]);
        if (code == 0xC3) code = 0xC0 | (static_cast<unsigned char>(text[++i]) & 0x3F);  // the one 2-byte letter
        std::snprintf(buffer, sizeof buffer, "\\u%04X", code);
        out += buffer;
    }
    return out;
}

/// The ways a server could write the secret back, each with the text around it.
std::vector<std::pair<std::string, std::string>> echoedBodies() {
    const std::string secret = kAwkwardSecret;
    // As nlohmann/json, PHP (\/) and ensure_ascii encoders write it.
    const std::string jsonMinimal =
        "Zq\\\"9/rT\\\\u x&v@+w<\xC3\xA9"
        "8Kp";
    const std::string jsonSlashes =
        "Zq\\\"9\\/rT\\\\u x&v@+w<\xC3\xA9"
        "8Kp";
    const std::string jsonAscii = "Zq\\\"9\\/rT\\\\u x\\u0026v@+w\\u003c\\u00e98Kp";
    const std::string form = "Zq%229%2FrT%5Cu+x%26v%40%2Bw%3C%C3%A98Kp";
    const std::string percent = "Zq%229%2frT%5cu%20x%26v%40%2bw%3c%c3%a98Kp";
    const std::string html = "Zq&quot;9/rT\\u x&amp;v@+w&lt;&#233;8Kp";
    const std::string base64 = detail::base64Encode(secret);
    const auto oauth = [](const std::string& description) {
        return R"({"error":"invalid_client","error_description":"client secret )" + description + R"( is wrong"})";
    };
    return {
        {"JSON, minimal escaping", oauth(jsonMinimal)},
        {"JSON, \\/ escaped", oauth(jsonSlashes)},
        {"JSON, ASCII only", oauth(jsonAscii)},
        {"JSON, every character \\u-escaped", oauth(everyCharAsUnicodeEscape(secret))},
        {"JSON around a form-encoded echo", oauth("client_secret=" + form)},
        {"JSON around a percent-encoded echo", oauth(percent)},
        {"JSON around a base64 echo", oauth("(" + base64 + ")")},
        {"JSON, cut by the 200-character limit", oauth(std::string(185, '.') + " " + jsonSlashes)},
        {"not JSON: raw", "denied: " + secret},
        {"not JSON: JSON-escaped in a broken document",
         R"({"error":"invalid_client","error_description":")" + jsonSlashes},
        {"not JSON: form body echoed", "bad request body grant_type=client_credentials&client_secret=" + form},
        {"not JSON: HTML", "<html><body>secret " + html + " refused</body></html>"},
        {"not JSON: base64", "basic credential " + base64 + " refused"},
    };
}

/// Every 6-character window of the secret and of each encoding above that holds at least one
/// of the secret's distinctive characters: none may show in a message.
std::vector<std::string> fragmentsOfTheSecret() {
    std::vector<std::string> fragments;
    const std::string secret = kAwkwardSecret;
    for (std::size_t at = 0; at + 6 <= secret.size(); ++at) fragments.push_back(secret.substr(at, 6));
    for (const auto& encoded : {std::string("Zq%229%2FrT%5Cu+x%26v%40%2Bw%3C%C3%A98Kp"),
                                std::string("Zq\\\"9\\/rT\\\\u x"), detail::base64Encode(secret)}) {
        for (std::size_t at = 0; at + 8 <= encoded.size(); ++at) fragments.push_back(encoded.substr(at, 8));
    }
    return fragments;
}

TEST(Redaction, AnEchoedSecretNeverReachesMessagesOrLogsInAnyEncoding) {
    McaTestServer server;
    server.addClient(kAppId, kClientId, kAwkwardSecret);
    for (const auto& [encoding, body] : echoedBodies()) {
        SCOPED_TRACE(encoding);
        std::mutex mutex;
        std::vector<std::string> lines;
        Options options;
        options.log = [&](LogLevel, std::string_view line) {
            std::lock_guard lock(mutex);
            lines.emplace_back(line);
        };
        AuthClient client(options);
        Reply refusal;
        refusal.action = Action::Status;
        refusal.status = 401;
        refusal.body = body;
        refusal.headers = {{"Content-Type", "application/json"}};
        server.pushReply(refusal);
        const Error error =
            errorOf(client.getAuthorizationHeader(Credentials{kAppId, kClientId, kAwkwardSecret, server.baseUrl()}));
        EXPECT_EQ(error.code(), Errc::TokenGenerate);
        EXPECT_EQ(error.httpStatus(), 401);
        const std::string message = error.what();
        EXPECT_NE(message.find("HTTP 401"), std::string::npos) << message;
        std::lock_guard lock(mutex);
        lines.push_back(message);
        for (const auto& line : lines) {
            for (const auto& fragment : fragmentsOfTheSecret()) {
                EXPECT_EQ(line.find(fragment), std::string::npos) << "'" << fragment << "' in: " << line;
            }
        }
    }
}

TEST(Redaction, TheOAuthReasonSurvivesRedaction) {
    McaTestServer server;
    server.addClient(kAppId, kClientId, kAwkwardSecret);
    AuthClient client;
    Reply refusal;
    refusal.action = Action::Status;
    refusal.status = 401;
    refusal.body = R"({"error":"invalid_client","error_description":"secret Zq\"9\/rT\\u x&v@+w<\u00e98Kp is wrong"})";
    server.pushReply(refusal);
    const std::string message =
        errorOf(client.getAuthorizationHeader(Credentials{kAppId, kClientId, kAwkwardSecret, server.baseUrl()})).what();
    EXPECT_NE(message.find("invalid_client: secret *** is wrong"), std::string::npos) << message;
}

// libcurl quotes a proxy URL it refuses, as written, in its error text; the text goes into the
// error and into the log line of every retry.
TEST(Redaction, AProxyPasswordNeverReachesMessagesOrLogsWhenLibcurlRefusesTheProxy) {
    ServerFixture fixture;
    LoopbackProxy proxy;
    const std::string port = std::to_string(proxy.port());
    const std::vector<std::string> refusedUrls = {"socks9://squid:pr0xy%40pass%2Fword@127.0.0.1:" + port,
                                                  "http://squid:pr0xy%40pass%2Fword@127.0.0.1:99999",
                                                  "http://squid:pr0xy%40pass%2Fword@127.0.0.1:" + port + "x"};
    for (const std::string& proxyUrl : refusedUrls) {
        SCOPED_TRACE(proxyUrl);
        std::mutex mutex;
        std::vector<std::string> lines;
        Options options = optionsFor(fixture.credentials());
        options.proxy = proxyUrl;
        options.timeout = 600ms;  // long enough for a retry or two of a refused proxy
        options.log = [&](LogLevel, std::string_view line) {
            std::lock_guard lock(mutex);
            lines.emplace_back(line);
        };
        AuthClient client(options);
        const Error error = errorOf(client.getAuthorizationHeader());
        EXPECT_TRUE(error.code() == Errc::Network || error.code() == Errc::Timeout) << error.what();
        std::lock_guard lock(mutex);
        lines.emplace_back(error.what());
        for (const auto& line : lines) {
            for (const char* fragment : {"pr0xy", "pass%2F", "pass/word", "%40pass", "@pass"}) {
                EXPECT_EQ(line.find(fragment), std::string::npos) << fragment << " in: " << line;
            }
        }
    }
    EXPECT_EQ(proxy.requestsForwarded(), 0u);
}

// The credentials of a proxy URL are handed to libcurl apart from it, decoded: a proxy that
// asks for them still gets them (a password with '@' and '/' in it included).
TEST(Redaction, ProxyCredentialsPassedApartStillAuthenticate) {
    ServerFixture fixture;
    LoopbackProxy proxy;
    proxy.requireBasicAuth("squid user", "pr0xy@pass/word");
    Options options = optionsFor(fixture.credentials());
    options.proxy = "http://squid%20user:pr0xy%40pass%2Fword@127.0.0.1:" + std::to_string(proxy.port());
    AuthClient client(options);
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_EQ(proxy.requestsForwarded(), 1u);
}

}  // namespace
}  // namespace mca::test
