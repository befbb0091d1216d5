// Every way a fetch can fail arrives as a typed mca::Error in the future, with the HTTP status
// when there was one, and without the secret or a token in its message.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

Options shortTimeout(const Credentials& credentials, std::chrono::milliseconds timeout = 3s) {
    Options options = optionsFor(credentials);
    options.timeout = timeout;
    return options;
}

void expectNoSecretIn(const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
    EXPECT_EQ(message.find(detail::base64Encode(std::string(kClientId) + ":" + kSecret)), std::string::npos) << message;
}

TEST(Errors, MissingOptionsArriveInTheFutureInNodeSdkOrder) {
    ::unsetenv("VCAP_SERVICES");
    ::unsetenv("VCAP_APPLICATION");
    const Credentials full{"app", "client", "secret", "http://127.0.0.1:1/x"};
    struct Case {
        Credentials credentials;
        Errc expected;
    };
    const Case cases[] = {
        {{"", "", "", ""}, Errc::MissingAppId},
        {{"app", "", "secret", "http://h/"}, Errc::MissingClientId},
        {{"app", "client", "", "http://h/"}, Errc::MissingSecret},
        {{"app", "client", "secret", ""}, Errc::MissingServerUrl},
        {{"app", "client", "secret", "   "}, Errc::MissingServerUrl},
        {{"app", "client", "secret", "imf-authserver.example.com"}, Errc::MissingServerUrl},
        {{"app", "client", "secret", "ftp://h/x"}, Errc::MissingServerUrl},
    };
    AuthClient client;
    for (const auto& [credentials, expected] : cases) {
        const Error error = errorOf(client.getAuthorizationHeader(credentials));
        EXPECT_EQ(error.code(), expected) << error.what();
        EXPECT_EQ(error.httpStatus(), 0);
        EXPECT_EQ(std::string(error.what()).find("secret\""), std::string::npos);
        AuthClient defaults(optionsFor(credentials));
        EXPECT_EQ(errorOf(defaults.getAuthorizationHeader()).code(), expected);
    }
    EXPECT_EQ(errorOf(client.getAuthorizationHeader()).code(), Errc::MissingAppId);
    (void)full;
}

TEST(Errors, WrongSecretIsATokenGenerateErrorWithTheStatusAndOAuthReason) {
    ServerFixture fixture;
    Credentials wrong = fixture.credentials();
    wrong.secret = "not-the-secret";
    AuthClient client;
    const Error error = errorOf(client.getAuthorizationHeader(wrong));
    EXPECT_EQ(error.code(), Errc::TokenGenerate);
    EXPECT_EQ(error.httpStatus(), 401);
    EXPECT_NE(std::string(error.what()).find("invalid_client"), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("not-the-secret"), std::string::npos);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);  // a refusal is not retried
}

TEST(Errors, ClientErrorsAreNotRetried) {
    for (const int status : {400, 401, 403, 404}) {
        ServerFixture fixture;
        Reply reply;
        reply.action = Action::Status;
        reply.status = status;
        reply.body = R"({"error":"invalid_request","error_description":"no"})";
        fixture.server.setDefaultReply(reply);
        AuthClient client(shortTimeout(fixture.credentials()));
        const Error error = errorOf(client.getAuthorizationHeader());
        EXPECT_EQ(error.code(), Errc::TokenGenerate);
        EXPECT_EQ(error.httpStatus(), status);
        EXPECT_EQ(fixture.server.tokenRequests(), 1u) << status;
    }
}

TEST(Errors, ServerErrorsAndThrottlingAreRetriedThenSucceed) {
    for (const int status : {500, 502, 503, 429}) {
        ServerFixture fixture;
        Reply reply;
        reply.action = Action::Status;
        reply.status = status;
        fixture.server.pushReply(reply);
        fixture.server.pushReply(reply);
        AuthClient client(shortTimeout(fixture.credentials(), 10s));
        EXPECT_NO_THROW(client.getAuthorizationHeader().get()) << status;
        EXPECT_EQ(fixture.server.tokenRequests(), 3u) << status;
    }
}

TEST(Errors, RetryAfterIsHonoured) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Status;
    reply.status = 429;
    reply.headers = {{"Retry-After", "1"}};
    fixture.server.pushReply(reply);
    AuthClient client(shortTimeout(fixture.credentials(), 5s));
    const auto started = std::chrono::steady_clock::now();
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);  // a lower bound only: never flaky
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
}

TEST(Errors, RetryAfterBeyondTheBudgetFailsAtOnceWithTheStatus) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Status;
    reply.status = 503;
    reply.headers = {{"Retry-After", "3600"}};
    fixture.server.setDefaultReply(reply);
    AuthClient client(shortTimeout(fixture.credentials(), 5s));
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::TokenGenerate);
    EXPECT_EQ(error.httpStatus(), 503);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

TEST(Errors, PersistentServerErrorsEndAsTokenGenerateWithinTheBudget) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Status;
    reply.status = 500;
    reply.body = "Internal Server Error";
    fixture.server.setDefaultReply(reply);
    AuthClient client(shortTimeout(fixture.credentials(), 1s));
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::TokenGenerate);
    EXPECT_EQ(error.httpStatus(), 500);
    EXPECT_NE(std::string(error.what()).find("Internal Server Error"), std::string::npos);
    EXPECT_GE(fixture.server.tokenRequests(), 2u);
}

TEST(Errors, AServerThatNeverAnswersIsATimeout) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Hang;
    fixture.server.setDefaultReply(reply);
    AuthClient client(shortTimeout(fixture.credentials(), 300ms));
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::Timeout) << error.what();
    EXPECT_EQ(error.httpStatus(), 0);
}

TEST(Errors, ATrickledReplyCannotHoldAFetchPastTheBudget) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Trickle;
    reply.trickleInterval = 200ms;
    fixture.server.setDefaultReply(reply);
    AuthClient client(shortTimeout(fixture.credentials(), 500ms));
    EXPECT_EQ(errorOf(client.getAuthorizationHeader()).code(), Errc::Timeout);
}

TEST(Errors, ARefusedConnectionIsANetworkErrorWithCurlsReason) {
    // A port that was just free: nothing listens on it.
    const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    socklen_t length = sizeof address;
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(probe);
    const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/imf-authserver";

    AuthClient client(shortTimeout({kAppId, kClientId, kSecret, url}, 500ms));
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::Network) << error.what();
    EXPECT_NE(std::string(error.what()).find("onnect"), std::string::npos) << error.what();
    expectNoSecretIn(error);
}

TEST(Errors, DroppedConnectionsAreRetried) {
    for (const Action action : {Action::DropBeforeReply, Action::DropMidReply}) {
        ServerFixture fixture;
        Reply reply;
        reply.action = action;
        fixture.server.pushReply(reply);
        AuthClient client(shortTimeout(fixture.credentials()));
        EXPECT_NO_THROW(client.getAuthorizationHeader().get());
        EXPECT_EQ(fixture.server.tokenRequests(), 2u);
    }
}

TEST(Errors, UnusableRepliesAreInvalidResponse) {
    const std::string bodies[] = {
        "",
        "<html>oops</html>",
        R"({"access_token": "abc")",
        R"(["access_token"])",
        R"({"token_type": "Bearer", "expires_in": 3600})",
        R"({"access_token": ""})",
        R"({"access_token": 12345})",
        R"({"access_token": "abc\r\nSet-Cookie: x=1", "expires_in": 3600})",
        R"({"access_token": "abc\u0000def", "expires_in": 3600})",
        R"({"access_token": "abc", "expires_in": -60})",
        R"({"access_token": "abc", "expires_in": "an hour"})",
    };
    ServerFixture fixture;
    auto clock = std::make_shared<ManualClock>();
    Options options = shortTimeout(fixture.credentials());
    options.clock = clock;
    AuthClient client(options);
    for (const std::string& body : bodies) {
        Reply reply;
        reply.action = Action::RawBody;
        reply.body = body;
        fixture.server.pushReply(reply);
        clock->advance(std::chrono::seconds(10));  // past the previous failure's backoff
        const Error error = errorOf(client.getAuthorizationHeader());
        EXPECT_EQ(error.code(), Errc::InvalidResponse) << body << " -> " << error.what();
        EXPECT_EQ(error.httpStatus(), 200);
        EXPECT_EQ(std::string(error.what()).find("Set-Cookie"), std::string::npos);
    }
    EXPECT_EQ(fixture.server.tokenRequests(), std::size(bodies));  // not retried
}

TEST(Errors, RefusesBodiesOverOneMebibyteWithoutBufferingThem) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::RawBody;
    reply.body = R"({"access_token": ")" + std::string(5 * 1024 * 1024, 'a') + R"("})";
    fixture.server.pushReply(reply);
    auto clock = std::make_shared<ManualClock>();
    Options options = shortTimeout(fixture.credentials());
    options.clock = clock;
    AuthClient client(options);
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::InvalidResponse);
    EXPECT_NE(std::string(error.what()).find("1 MiB"), std::string::npos) << error.what();
    clock->advance(std::chrono::seconds(10));
    // Just under the limit is fine.
    Reply large;
    large.action = Action::RawBody;
    large.body = R"({"access_token": ")" + std::string(1024 * 1024 - 64, 'a') + R"(", "expires_in": 60})";
    fixture.server.pushReply(large);
    EXPECT_EQ(client.getAuthorizationHeader().get().size(), 7 + 1024 * 1024 - 64);
}

TEST(Errors, RedirectsAreNotFollowedAndCredentialsStayHome) {
    ServerFixture elsewhere;
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Redirect;
    reply.status = 307;
    reply.location = elsewhere.server.baseUrl() + "/authorization/v1/apps/x/token";
    fixture.server.pushReply(reply);
    AuthClient client(shortTimeout(fixture.credentials()));
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::TokenGenerate);
    EXPECT_EQ(error.httpStatus(), 307);
    EXPECT_TRUE(elsewhere.server.requests().empty());
}

TEST(Errors, AFailedKeyFailsFastWithTheSameErrorUntilItsBackoffEnds) {
    ServerFixture fixture;
    Reply refusal;
    refusal.action = Action::Status;
    refusal.status = 503;
    refusal.headers = {{"Retry-After", "3600"}};  // not retried within the budget
    fixture.server.pushReply(refusal);
    auto clock = std::make_shared<ManualClock>();
    Options options = shortTimeout(fixture.credentials());
    options.clock = clock;
    AuthClient client(options);
    const Error first = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(first.httpStatus(), 503);
    for (int i = 0; i < 100; ++i) {
        auto future = client.getAuthorizationHeader();
        ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);  // no queueing
        const Error again = errorOf(std::move(future));
        EXPECT_EQ(again.httpStatus(), 503);
        EXPECT_STREQ(again.what(), first.what());
    }
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);  // the failing server saw one request, not 101
    clock->advance(std::chrono::seconds(6));        // longer than any backoff
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
}

TEST(Secrets, NoErrorMessageCarriesTheSecretOrAToken) {
    ServerFixture fixture;
    auto clock = std::make_shared<ManualClock>();
    Options options = shortTimeout(fixture.credentials(), 500ms);
    options.clock = clock;
    AuthClient client(options);
    const std::string token = accessTokenOf(client.getAuthorizationHeader().get());
    const std::string basic = detail::base64Encode(std::string(kClientId) + ":" + kSecret);
    // A hostile or buggy server echoes everything it knows, in every kind of reply.
    const std::string echo = std::string("secret=") + kSecret + " basic=" + basic + " token=" + token;
    std::vector<Reply> replies;
    for (const int status : {400, 401, 500}) {
        Reply plain;
        plain.action = Action::Status;
        plain.status = status;
        plain.body = echo;
        replies.push_back(plain);
        Reply oauth = plain;
        oauth.body = nlohmann::json{{"error", echo}, {"error_description", echo}}.dump();
        replies.push_back(oauth);
    }
    Reply invalid;
    invalid.action = Action::RawBody;
    invalid.body = nlohmann::json{{"access_token", token + "\r\n" + kSecret}}.dump();
    replies.push_back(invalid);
    Reply hang;
    hang.action = Action::Hang;
    replies.push_back(hang);
    Reply drop;
    drop.action = Action::DropMidReply;
    replies.push_back(drop);

    std::vector<Error> errors;
    Credentials other = fixture.credentials();
    for (const Reply& reply : replies) {
        fixture.server.setDefaultReply(reply);
        clock->advance(std::chrono::hours(2));  // the cached token is gone: every call fetches
        errors.push_back(errorOf(client.getAuthorizationHeader()));
    }
    other.serverUrl = "gopher://127.0.0.1/" + std::string(kSecret);
    errors.push_back(errorOf(client.getAuthorizationHeader(other)));
    {
        Options doomed = shortTimeout(fixture.credentials(), std::chrono::seconds(30));
        auto dying = std::make_unique<AuthClient>(doomed);
        auto pending = dying->getAuthorizationHeader();
        dying.reset();
        errors.push_back(errorOf(std::move(pending)));
    }
    for (const Error& error : errors) {
        const std::string message = error.what();
        EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
        EXPECT_EQ(message.find(basic), std::string::npos) << message;
        EXPECT_EQ(message.find(token), std::string::npos) << message;
        EXPECT_EQ(message.find(token.substr(0, 40)), std::string::npos) << message;
    }
}

TEST(Errors, ASecretAcrossTheMessagesCutIsStillRedacted) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Status;
    reply.status = 400;
    std::string body;
    for (int i = 0; i < 96; ++i) body += "x ";  // the secret straddles the 200-character cut
    reply.body = body + kSecret;
    fixture.server.pushReply(reply);
    AuthClient client(shortTimeout(fixture.credentials()));
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(std::string(error.what()).find(std::string(kSecret).substr(0, 8)), std::string::npos) << error.what();
}

TEST(Errors, ServerBodiesEchoingTheSecretAreRedacted) {
    ServerFixture fixture;
    Reply reply;
    reply.action = Action::Status;
    reply.status = 400;
    reply.body = std::string(R"({"error":"invalid_request","error_description":"secret )") + kSecret + R"( rejected"})";
    fixture.server.pushReply(reply);
    AuthClient client(shortTimeout(fixture.credentials()));
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.httpStatus(), 400);
    expectNoSecretIn(error);
    EXPECT_NE(std::string(error.what()).find("rejected"), std::string::npos);
}

}  // namespace
}  // namespace mca::test
