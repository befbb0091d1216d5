#pragma once

// The client's log sink: the user's handler, called so that it can never break token delivery.

#include "../auth_client.hpp"
#include "../version.hpp"

#include <string>
#include <utility>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

class Logger {
  public:
    Logger() = default;
    explicit Logger(LogHandler handler) : handler_(std::move(handler)) {}

    explicit operator bool() const noexcept { return static_cast<bool>(handler_); }

    /// Hands `message` to the handler; whatever the handler throws is dropped.
    void operator()(LogLevel level, const std::string& message) const noexcept {
        if (!handler_) return;
        try {
            handler_(level, message);
        } catch (...) {
        }
    }

  private:
    LogHandler handler_;
};

/// The message of an exception_ptr holding a std::exception, or a fixed text.
inline std::string describe(const std::exception_ptr& error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
    }
    return "unknown error";
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
