#include "test_support.hpp"

#include <gtest/gtest.h>

namespace mca::detail {
using test::fakeJwt;

TEST(TokenReply, ParsesTheMcaReply) {
    const auto reply =
        parseTokenReply(R"({"access_token":"abc.def.ghi","token_type":"Bearer","expires_in":3600,"id_token":"x"})");
    EXPECT_EQ(reply.accessToken, "abc.def.ghi");
    EXPECT_EQ(reply.expiresIn, Seconds(3600));
    EXPECT_FALSE(reply.jwtExp);
}

TEST(TokenReply, ReadsBothExpiresInAndTheJwtExp) {
    const std::string jwt = fakeJwt(R"({"exp":1900000000})");
    const auto reply = parseTokenReply(R"({"access_token":")" + jwt + R"(","expires_in":60})");
    EXPECT_EQ(reply.expiresIn, Seconds(60));
    EXPECT_EQ(reply.jwtExp, 1900000000);
}

TEST(TokenReply, ReadsExpFromAJwtAccessToken) {
    const auto reply = parseTokenReply(R"({"access_token":")" + fakeJwt(R"({"exp":1900000000,"aud":"app"})") + R"("})");
    EXPECT_EQ(reply.jwtExp, 1900000000);
    EXPECT_FALSE(reply.expiresIn);
}

TEST(TokenReply, RefusesRepliesWithoutAUsableToken) {
    for (const char* body :
         {"", "not json", "[1,2]", R"("token")", "{}", R"({"access_token":null})", R"({"access_token":42})",
          R"({"access_token":""})", R"({"access_token":"a b"})", R"({"access_token":"abc\r\nX-Injected: 1"})",
          R"({"access_token":"abc\nd"})", R"({"access_token":"abc\u0000d"})", R"({"access_token":"caf\u00e9"})",
          R"({"access_token":"abc")"}) {
        EXPECT_THROW(parseTokenReply(body), InvalidReply) << body;
    }
}

TEST(TokenReply, MessagesNeverQuoteTheToken) {
    try {
        parseTokenReply(R"({"access_token":"SENSITIVE\nTOKEN"})");
        FAIL();
    } catch (const InvalidReply& error) {
        EXPECT_EQ(std::string(error.what()).find("SENSITIVE"), std::string::npos);
    }
}

TEST(TokenReply, AcceptsExpiresInAsNumberOrNumericString) {
    EXPECT_EQ(parseTokenReply(R"({"access_token":"t","expires_in":"3600"})").expiresIn, Seconds(3600));
    EXPECT_EQ(parseTokenReply(R"({"access_token":"t","expires_in":59.9})").expiresIn, Seconds(59));
    EXPECT_EQ(parseTokenReply(R"({"access_token":"t","expires_in":0})").expiresIn, Seconds(0));
    EXPECT_EQ(parseTokenReply(R"({"access_token":"t","expires_in":null})").expiresIn, std::nullopt);
}

TEST(TokenReply, ClampsAbsurdLifetimes) {
    EXPECT_EQ(parseTokenReply(R"({"access_token":"t","expires_in":1e300})").expiresIn, kMaxTokenLifetime);
    EXPECT_EQ(parseTokenReply(R"({"access_token":"t","expires_in":"99999999999"})").expiresIn, kMaxTokenLifetime);
}

TEST(TokenReply, RefusesUnusableExpiresIn) {
    for (const char* body : {R"({"access_token":"t","expires_in":-1})", R"({"access_token":"t","expires_in":"soon"})",
                             R"({"access_token":"t","expires_in":"-5"})", R"({"access_token":"t","expires_in":true})",
                             R"({"access_token":"t","expires_in":[3600]})"}) {
        EXPECT_THROW(parseTokenReply(body), InvalidReply) << body;
    }
}

TEST(TokenReply, LifetimeFromExpiresInOrJwtExpCorrectedByDate) {
    const SystemTime local = std::chrono::system_clock::from_time_t(1'700'000'000);
    TokenReply reply;
    reply.expiresIn = Seconds(3600);
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, local), Seconds(3600));

    reply.expiresIn.reset();
    reply.jwtExp = 1'700'000'000 + 600;
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, local), Seconds(600));
    // The local clock runs 5 minutes ahead of the server: the server's Date keeps the lifetime
    // right, to the second it names; the server's time may be anywhere in that second, so the
    // lifetime counts from its end.
    const SystemTime serverDate = local - std::chrono::minutes(5);
    EXPECT_EQ(tokenLifetime(reply, serverDate, local), Seconds(899));

    reply.expiresIn.reset();

    reply.jwtExp = 1'600'000'000;  // exp in the past
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, local), Seconds(0));

    EXPECT_EQ(tokenLifetime(TokenReply{}, std::nullopt, local), std::nullopt);
}

TEST(TokenReply, WithBothExpiresInAndJwtExpTheEarlierEndWins) {
    const SystemTime local = std::chrono::system_clock::from_time_t(1'700'000'000);
    TokenReply reply;
    reply.expiresIn = Seconds(3600);
    reply.jwtExp = 1'700'000'000 + 600;
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, local), Seconds(600));  // the JWT ends first
    EXPECT_EQ(tokenLifetime(reply, local, local), Seconds(600));
    reply.expiresIn = Seconds(60);
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, local), Seconds(60));  // expires_in ends first
    reply.expiresIn = Seconds(0);
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, local), Seconds(0));
    reply.expiresIn = Seconds(3600);
    reply.jwtExp = 1'600'000'000;  // the JWT has expired already
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, local), Seconds(0));
}

// 3-second tokens: `exp` is whole seconds (iat + 3) while the reply arrives some way into the
// second; counting expires_in from the moment of receipt would outlive the JWT.
TEST(TokenReply, ShortTokensAreNotKeptPastTheirWholeSecondExp) {
    const SystemTime issued = std::chrono::system_clock::from_time_t(1'700'000'000);
    const SystemTime received = issued + std::chrono::milliseconds(900);
    TokenReply reply;
    reply.expiresIn = Seconds(3);
    reply.jwtExp = 1'700'000'000 + 3;
    // The Date header says 1'700'000'000 (whole seconds); the local clock agrees and is finer.
    EXPECT_EQ(tokenLifetime(reply, issued, received), Seconds(2));
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, received), Seconds(2));
    // Without expires_in too.
    reply.expiresIn.reset();
    EXPECT_EQ(tokenLifetime(reply, issued, received), Seconds(2));
    EXPECT_EQ(tokenLifetime(reply, std::nullopt, received), Seconds(2));
}

TEST(TokenReply, JwtExpIgnoresMalformedTokens) {
    EXPECT_FALSE(jwtExpiry("no-dots"));
    EXPECT_FALSE(jwtExpiry("a.!!!.c"));
    EXPECT_FALSE(jwtExpiry(fakeJwt(R"({"exp":"tomorrow"})")));
    EXPECT_FALSE(jwtExpiry(fakeJwt(R"([1])")));
    EXPECT_FALSE(jwtExpiry(fakeJwt(R"({"exp":-5})")));
    EXPECT_EQ(jwtExpiry(fakeJwt(R"({"exp":12345.7})")), 12345);
}

TEST(TokenReply, ParsesHttpDatesAndRetryAfter) {
    const auto date = parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT");
    ASSERT_TRUE(date);
    EXPECT_EQ(std::chrono::system_clock::to_time_t(*date), 784111777);
    EXPECT_FALSE(parseHttpDate("yesterday-ish"));

    const SystemTime now = std::chrono::system_clock::from_time_t(784111777);
    EXPECT_EQ(parseRetryAfter(" 7 ", now), std::chrono::seconds(7));
    EXPECT_EQ(parseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", now), std::chrono::seconds(10));
    EXPECT_EQ(parseRetryAfter("Sun, 06 Nov 1994 08:49:00 GMT", now), std::chrono::seconds(0));
    EXPECT_FALSE(parseRetryAfter("-3", now));
    EXPECT_FALSE(parseRetryAfter("", now));
    EXPECT_GE(*parseRetryAfter("99999999999999", now), std::chrono::hours(24));
}

TEST(TokenReply, DescribesOAuthErrorsAndShortensOtherBodies) {
    EXPECT_EQ(describeErrorBody(R"({"error":"invalid_client","error_description":"bad secret"})", {}),
              "invalid_client: bad secret");
    EXPECT_EQ(describeErrorBody(R"({"error":"invalid_grant"})", {}), "invalid_grant");
    EXPECT_EQ(describeErrorBody("  ", {}), "empty body");
    EXPECT_EQ(describeErrorBody("Service\r\nUnavailable", {}), "body \"Service??Unavailable\"");
    const std::string longBody(5000, 'x');
    EXPECT_LT(describeErrorBody(longBody, {}).size(), 220u);
}

TEST(TokenReply, ErrorDescriptionsNeverCarryTokenLikeStrings) {
    const std::string jwt = fakeJwt(R"({"exp":1900000000,"aud":"app"})");
    EXPECT_EQ(describeErrorBody(R"({"error":"invalid_token","error_description":"token )" + jwt + R"( expired"})", {}),
              "invalid_token: token <redacted> expired");
    EXPECT_EQ(describeErrorBody("Basic YmFja2VuZC1jbGllbnQ6czNjcjN0LVZhbHVlLXRoYXQtbXVzdA== rejected", {}),
              "body \"Basic <redacted> rejected\"");
    EXPECT_EQ(describeErrorBody("upstream timeout (request 5f2c1a)", {}), "body \"upstream timeout (request 5f2c1a)\"");
    EXPECT_EQ(redactTokenLikeRuns(std::string(31, 'a') + " " + std::string(32, 'b')),
              std::string(31, 'a') + " <redacted>");
}

// Found by fuzz_http_headers: curl reads years up to 9999, system_clock ends in 2262.
TEST(TokenReply, DatesBeyondTheClocksRangeAreUnreadableNotOverflowed) {
    EXPECT_TRUE(parseHttpDate("Fri, 11 Apr 2262 23:47:16 GMT"));
    EXPECT_FALSE(parseHttpDate("Fri, 11 Apr 2262 23:47:17 GMT"));
    EXPECT_FALSE(parseHttpDate("Fri, 31 Dec 9999 23:59:59 GMT"));
    EXPECT_FALSE(parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", std::chrono::system_clock::now()));
}

// Found by fuzz_redact: a secret that matches the replacement text looped forever.
TEST(TokenReply, RedactingASecretMadeOfStarsTerminates) {
    for (const char* secret : {"*", "**", "***", "****"}) {
        std::string text = "a***b*c";
        redact(text, secret);
        EXPECT_LE(text.size(), 3 * std::string("a***b*c").size()) << secret;
    }
}

TEST(TokenReply, RedactsEveryOccurrence) {
    std::string text = "secret=hunter2 and again hunter2";
    redact(text, "hunter2");
    EXPECT_EQ(text, "secret=*** and again ***");
}

}  // namespace mca::detail
