#pragma once

// Helpers shared by the test files (one unity translation unit): an injectable clock, JWT
// building without a signature, and credentials for the loopback test server.

#include <mca/auth_client.hpp>
#include <mca/detail/encoding.hpp>  // base64UrlEncode, also with MCA_OAUTH_SEPARATE_COMPILATION

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <mutex>
#include <string>

namespace mca::test {

/// A clock that moves only when told to; both time lines advance together.
class ManualClock final : public Clock {
  public:
    std::chrono::steady_clock::time_point steadyNow() const override {
        std::lock_guard lock(mutex_);
        return steady_;
    }
    std::chrono::system_clock::time_point systemNow() const override {
        std::lock_guard lock(mutex_);
        return system_;
    }
    void advance(std::chrono::milliseconds by) {
        std::lock_guard lock(mutex_);
        steady_ += by;
        system_ += by;
    }

  private:
    mutable std::mutex mutex_;
    std::chrono::steady_clock::time_point steady_ = std::chrono::steady_clock::now();
    std::chrono::system_clock::time_point system_ = std::chrono::system_clock::now();
};

inline std::string base64Url(const std::string& bytes) { return detail::base64UrlEncode(bytes); }

/// For tests that make their own libcurl requests: the reply's body is appended to `body`.
inline void collectBody(CURL* easy, std::string& body) {
    curl_easy_setopt(
        easy, CURLOPT_WRITEFUNCTION, +[](char* data, std::size_t size, std::size_t count, void* out) {
            static_cast<std::string*>(out)->append(data, size * count);
            return size * count;
        });
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
}

/// An unsigned JWT with the given payload (the client never checks signatures).
inline std::string fakeJwt(const std::string& payloadJson) {
    return base64Url(R"({"alg":"RS256","typ":"JWT"})") + "." + base64Url(payloadJson) + ".c2lnbmF0dXJl";
}

/// The error a failed future holds; fails the test when the future holds a value.
inline Error errorOf(std::future<std::string> future) {
    try {
        const std::string header = future.get();
        ADD_FAILURE() << "expected an mca::Error, got a header of " << header.size() << " bytes";
    } catch (const Error& error) {
        return error;
    } catch (const std::exception& other) {
        ADD_FAILURE() << "expected an mca::Error, got " << other.what();
    }
    return Error(Errc::Shutdown, "no error");
}

/// The mca::Error a completion reported (Asio's `std::exception_ptr`); anything else fails the test.
inline Error errorOf(std::exception_ptr failure) {
    if (!failure) {
        ADD_FAILURE() << "expected an mca::Error, got none";
        return Error(Errc::Shutdown, "no error");
    }
    try {
        std::rethrow_exception(failure);
    } catch (const Error& error) {
        return error;
    } catch (const std::exception& other) {
        ADD_FAILURE() << "expected an mca::Error, got " << other.what();
    }
    return Error(Errc::Shutdown, "no error");
}

}  // namespace mca::test

#include "support/mca_test_server.hpp"

#include <gtest/gtest.h>

namespace mca::test {

inline constexpr const char* kAppId = "6d5b1c2e-7f3a-4c2f-9d4b-1e2f3a4b5c6d";
inline constexpr const char* kClientId = "backend-client";
inline constexpr const char* kSecret = "s3cr3t-Value-that-must-never-leak";

/// A test server with one registered client, and credentials that match it.
struct ServerFixture {
    explicit ServerFixture(ServerOptions options = {}) : server(std::move(options)) {
        server.addClient(kAppId, kClientId, kSecret);
    }
    Credentials credentials() const { return {kAppId, kClientId, kSecret, server.baseUrl()}; }
    Credentials tenant(int index) {
        const std::string id = "tenant-" + std::to_string(index);
        server.addClient(id, kClientId, kSecret);
        return {id, kClientId, kSecret, server.baseUrl()};
    }
    McaTestServer server;
};

inline Options optionsFor(const Credentials& credentials) {
    Options options;
    options.appId = credentials.appId;
    options.clientId = credentials.clientId;
    options.secret = credentials.secret;
    options.serverUrl = credentials.serverUrl;
    return options;
}

inline std::string accessTokenOf(const std::string& header) {
    EXPECT_EQ(header.rfind("Bearer ", 0), 0u) << "not a Bearer header";
    return header.substr(7);
}

}  // namespace mca::test
