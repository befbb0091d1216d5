#include <mca/auth_client.hpp>

#include <gtest/gtest.h>

#include <type_traits>
#include <utility>

namespace mca {

TEST(Error, IsAnErrorCodeEnumOfTheMcaCategory) {
    static_assert(std::is_error_code_enum<Errc>::value);
    const std::error_code code = Errc::Timeout;
    EXPECT_EQ(code.category().name(), std::string("mca"));
    EXPECT_EQ(code, Errc::Timeout);
    EXPECT_NE(code, Errc::Network);
    EXPECT_EQ(code.message(), "the token fetch timed out");
}

TEST(Error, CarriesCodeStatusAndTheNodeSdkName) {
    const Error error(Errc::TokenGenerate, "token request failed with HTTP 401", 401);
    EXPECT_EQ(error.code(), Errc::TokenGenerate);
    EXPECT_EQ(error.errc(), Errc::TokenGenerate);
    EXPECT_EQ(error.httpStatus(), 401);
    EXPECT_STREQ(error.mcaCode(), "TOKEN_GENERATE_ERROR");
    EXPECT_STREQ(error.what(), "TOKEN_GENERATE_ERROR: token request failed with HTTP 401");
    const std::system_error& base = error;
    EXPECT_EQ(base.code(), Errc::TokenGenerate);
}

TEST(Error, CopiesShareTheMessageAndNeverThrow) {
    static_assert(std::is_nothrow_copy_constructible_v<Error> && std::is_nothrow_copy_assignable_v<Error>);
    static_assert(std::is_nothrow_move_constructible_v<Error>);
    Error source(Errc::Timeout, "the token fetch took longer than 5000 ms");
    const Error moved(std::move(source));
    // A move copies: the source still has its message (what() never returns null).
    // NOLINTNEXTLINE(bugprone-use-after-move)
    EXPECT_STREQ(source.what(), "TIMEOUT_ERROR: the token fetch took longer than 5000 ms");
    EXPECT_EQ(moved.what(), source.what());
    EXPECT_EQ(moved.code(), Errc::Timeout);
}

// Two versions of the library in one program must not share symbols: everything is declared in
// an inline namespace, yet spelled mca::... as before.
TEST(Error, LivesInTheVersionedInlineNamespace) {
    static_assert(std::is_same_v<Error, mca::v1::Error>);
    static_assert(std::is_same_v<detail::ErrorCategory, mca::v1::detail::ErrorCategory>);
    EXPECT_EQ(&errorCategory(), &mca::v1::errorCategory());
}

TEST(Error, EveryCodeHasANameAndAMessage) {
    const std::pair<Errc, const char*> names[] = {
        {Errc::MissingAppId, "MISSING_APPID_ERROR"},
        {Errc::MissingClientId, "MISSING_CLIENTID_ERROR"},
        {Errc::MissingSecret, "MISSING_SECRET_ERROR"},
        {Errc::MissingServerUrl, "MISSING_SERVER_URL_ERROR"},
        {Errc::TokenGenerate, "TOKEN_GENERATE_ERROR"},
        {Errc::Network, "NETWORK_ERROR"},
        {Errc::Timeout, "TIMEOUT_ERROR"},
        {Errc::InvalidResponse, "INVALID_RESPONSE_ERROR"},
        {Errc::Shutdown, "SHUTDOWN_ERROR"},
    };
    for (const auto& [code, name] : names) {
        EXPECT_STREQ(mcaCode(code), name);
        EXPECT_NE(make_error_code(code).message(), "unknown mca error");
        EXPECT_EQ(Error(code, "x").httpStatus(), 0);
    }
}

}  // namespace mca
