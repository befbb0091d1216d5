#pragma once

/// @file error.hpp
/// @brief Error codes of mca-oauth: `mca::Errc`, its `std::error_category`, and `mca::Error`.

#include "version.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

MCA_OAUTH_NAMESPACE_BEGIN

/// @brief Why a token could not be delivered. Each value maps to the Node SDK's error code
/// (see `mcaCode()`); values are stable and new ones are only ever appended.
enum class Errc {
    MissingAppId = 1,    ///< MISSING_APPID_ERROR: no appId in the options, the tenant or VCAP
    MissingClientId,     ///< MISSING_CLIENTID_ERROR
    MissingSecret,       ///< MISSING_SECRET_ERROR
    MissingServerUrl,    ///< MISSING_SERVER_URL_ERROR: absent, or not an http(s) URL
    TokenGenerate,       ///< TOKEN_GENERATE_ERROR: the server refused (see `Error::httpStatus()`)
    Network,             ///< the server could not be reached (connect, TLS, transfer error)
    Timeout,             ///< the fetch did not finish within `Options::timeout`
    InvalidResponse,     ///< the server's 200 reply is not a usable token reply
    Shutdown,            ///< the `AuthClient` was destroyed before the fetch finished
    MissingPem,          ///< MISSING_PEM_ERROR: the certificate flow's certificate or key PEM is missing
    InvalidCertificate,  ///< the certificate or key is unusable: unreadable, mismatched, not RSA, no CN
    /// INVALID_CONFIGURATION_ERROR: options that contradict each other or the server (an unknown
    /// signing algorithm, a reserved form field, a method the server's metadata does not list,
    /// an unreadable client assertion file)
    InvalidConfiguration,
};

/// @brief The Node SDK's name for an error code, e.g. "TOKEN_GENERATE_ERROR".
inline const char* mcaCode(Errc code) noexcept {
    switch (code) {
        case Errc::MissingAppId:
            return "MISSING_APPID_ERROR";
        case Errc::MissingClientId:
            return "MISSING_CLIENTID_ERROR";
        case Errc::MissingSecret:
            return "MISSING_SECRET_ERROR";
        case Errc::MissingServerUrl:
            return "MISSING_SERVER_URL_ERROR";
        case Errc::TokenGenerate:
            return "TOKEN_GENERATE_ERROR";
        case Errc::Network:
            return "NETWORK_ERROR";
        case Errc::Timeout:
            return "TIMEOUT_ERROR";
        case Errc::InvalidResponse:
            return "INVALID_RESPONSE_ERROR";
        case Errc::Shutdown:
            return "SHUTDOWN_ERROR";
        case Errc::MissingPem:
            return "MISSING_PEM_ERROR";
        case Errc::InvalidCertificate:
            return "INVALID_CERTIFICATE_ERROR";
        case Errc::InvalidConfiguration:
            return "INVALID_CONFIGURATION_ERROR";
    }
    return "UNKNOWN_ERROR";
}

namespace detail {
class MCA_OAUTH_VISIBLE ErrorCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "mca"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::MissingAppId:
                return "appId is missing";
            case Errc::MissingClientId:
                return "clientId is missing";
            case Errc::MissingSecret:
                return "secret is missing";
            case Errc::MissingServerUrl:
                return "serverUrl is missing or not an http(s) URL";
            case Errc::TokenGenerate:
                return "the server refused to issue a token";
            case Errc::Network:
                return "the token server could not be reached";
            case Errc::Timeout:
                return "the token fetch timed out";
            case Errc::InvalidResponse:
                return "the token server's reply is not a valid token reply";
            case Errc::Shutdown:
                return "the AuthClient was shut down";
            case Errc::MissingPem:
                return "the certificate or private key PEM is missing";
            case Errc::InvalidCertificate:
                return "the client certificate or its private key is unusable";
            case Errc::InvalidConfiguration:
                return "the client configuration is contradictory or unusable";
        }
        return "unknown mca error";
    }
};
}  // namespace detail

/// @brief The `std::error_category` of `mca::Errc` (name "mca"): one object in the process, also
/// across shared libraries built with hidden visibility.
MCA_OAUTH_VISIBLE inline const std::error_category& errorCategory() noexcept {
    static const detail::ErrorCategory category;
    return category;
}

inline std::error_code make_error_code(Errc code) noexcept { return {static_cast<int>(code), errorCategory()}; }

/// @brief What every failed future holds: an `Errc` (compare `e.code() == mca::Errc::Timeout`),
/// the HTTP status when the server answered, and a message that never contains a secret or a
/// whole token. Copies allocate nothing and never throw (the message is shared, immutable).
class MCA_OAUTH_VISIBLE Error : public std::system_error {
  public:
    Error(Errc code, const std::string& detail, int httpStatus = 0)
        : std::system_error(make_error_code(code)),
          message_(std::make_shared<const std::string>(std::string(mca::mcaCode(code)) + ": " + detail)),
          httpStatus_(httpStatus) {}
    // Copies only: a move would leave the source without a message.
    Error(const Error&) noexcept = default;
    Error& operator=(const Error&) noexcept = default;
    ~Error() override = default;

    /// @brief "<MCA code>: <what happened>", e.g. "TOKEN_GENERATE_ERROR: token request to ... failed
    /// with HTTP 401: invalid_client". Never contains a secret or a whole token.
    const char* what() const noexcept override { return message_->c_str(); }

    /// @brief The HTTP status of the server's reply; 0 when there was no HTTP reply.
    int httpStatus() const noexcept { return httpStatus_; }

    /// @brief The error as an `Errc`.
    Errc errc() const noexcept { return static_cast<Errc>(code().value()); }

    /// @brief The Node SDK's name for this error, e.g. "MISSING_SECRET_ERROR".
    const char* mcaCode() const noexcept { return mca::mcaCode(errc()); }

  private:
    // Not system_error's own what(): it would append the category's text again. Shared and
    // immutable so that copying the exception (std::exception_ptr, promise::set_exception, a
    // catch by value) neither allocates nor throws.
    std::shared_ptr<const std::string> message_;
    int httpStatus_;
};

static_assert(std::is_nothrow_copy_constructible_v<Error> && std::is_nothrow_copy_assignable_v<Error>,
              "an exception type must copy without throwing");

MCA_OAUTH_NAMESPACE_END

template <>
struct std::is_error_code_enum<mca::Errc> : std::true_type {};
