#pragma once

/// @file asio.hpp
/// @brief Boost.Asio initiating functions for `mca::AuthClient`: the header as an asynchronous
/// operation that takes any completion token (`use_awaitable`, `use_future`, `deferred`, a plain
/// handler). Link `mca::oauth_asio` (Boost 1.74 or later, headers only).
///
/// @code
/// const std::string header =
///     co_await mca::async_get_authorization_header(client, tenant, boost::asio::use_awaitable);
/// @endcode
///
/// The completion signature is `void(std::exception_ptr error, std::string header)`: exactly one
/// of them is set, and `error` holds the `mca::Error` of the future form (its `code()` and
/// `httpStatus()` included); `use_awaitable` and `use_future` rethrow it as it is.
///
/// Where the completion runs: always through `boost::asio::post` to the handler's associated
/// executor, never inline in the initiating function (a cache hit too) and never on the client's
/// engine thread. A handler without an associated executor runs on `boost::asio::system_executor`
/// (a thread of Asio's system pool), as for Asio's own functions without an I/O object: bind one
/// with `boost::asio::bind_executor`. The operation keeps that executor's work count up until it
/// completes, so `io_context::run` does not return early. The executor and its execution context
/// must outlive the operation (or the `AuthClient`: destroying it completes pending operations with
/// `Errc::Shutdown`).
///
/// Cancellation (Boost 1.77 or later, `MCA_OAUTH_ASIO_HAS_CANCELLATION`): through the handler's
/// associated cancellation slot, `terminal` and `partial` cancellation are supported (`total` is
/// not: the token request may already be out). A cancelled operation completes at once, through
/// the same post, with an `exception_ptr` holding `boost::system::system_error` whose `code()` is
/// `boost::asio::error::operation_aborted`; the fetch goes on for the other callers of the tenant
/// and its token is cached as usual. Emit the signal from the handler's executor, as Asio requires
/// of every cancellable operation. Each operation completes exactly once, whichever of the
/// cancellation and the fetch comes first.
///
/// Thread safety: as `AuthClient::getAuthorizationHeader`; any number of operations at once, from
/// any thread.

#include "auth_client.hpp"
#include "version.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/system_error.hpp>

#if __has_include(<boost/asio/associated_cancellation_slot.hpp>)
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
/// 1 when the operations honour the handler's associated cancellation slot (Boost 1.77 or later).
#define MCA_OAUTH_ASIO_HAS_CANCELLATION 1
#else
#define MCA_OAUTH_ASIO_HAS_CANCELLATION 0
#endif

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

MCA_OAUTH_NAMESPACE_BEGIN

namespace detail {

/// One asynchronous operation: owns the Asio handler until the first of the library's handler
/// and the cancellation slot claims it; the claimer posts the completion to the handler's
/// executor. The library's `HeaderHandler` (a copyable std::function) holds a shared_ptr to it,
/// so move-only handlers work.
template <class Handler>
class AsioHeaderOperation {
  public:
    using Executor = boost::asio::associated_executor_t<Handler, boost::asio::system_executor>;

    explicit AsioHeaderOperation(Handler handler)
        : work_(boost::asio::make_work_guard(
              boost::asio::get_associated_executor(handler, boost::asio::system_executor()))),
#if MCA_OAUTH_ASIO_HAS_CANCELLATION
          slot_(boost::asio::get_associated_cancellation_slot(handler)),
#endif
          handler_(std::move(handler)) {
    }

    /// Lets the handler's cancellation slot complete the operation (before the fetch starts).
    static void connectCancellation([[maybe_unused]] const std::shared_ptr<AsioHeaderOperation>& self) {
#if MCA_OAUTH_ASIO_HAS_CANCELLATION
        if (!self->slot_.is_connected()) return;
        self->slot_.assign([self](boost::asio::cancellation_type type) {
            using boost::asio::cancellation_type;
            if ((type & (cancellation_type::terminal | cancellation_type::partial)) == cancellation_type::none) {
                return;
            }
            self->complete(std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted)),
                           {});
        });
#endif
    }

    /// Completes the operation unless it already is: called by the library (on the engine thread,
    /// the store thread, the thread destroying the client, or inline on a hit) and by the
    /// cancellation slot (on the thread emitting the signal). The first call wins.
    void complete(std::exception_ptr error, std::string header) noexcept {
        if (claimed_.exchange(true, std::memory_order_acq_rel)) return;
        {
            Handler handler = std::move(*handler_);
            handler_.reset();
            try {
                boost::asio::post(work_->get_executor(),
                                  [handler = std::move(handler),
#if MCA_OAUTH_ASIO_HAS_CANCELLATION
                                   slot = slot_,
#endif
                                   error = std::move(error), header = std::move(header)]() mutable {
#if MCA_OAUTH_ASIO_HAS_CANCELLATION
                                      if (slot.is_connected())
                                          slot.clear();  // on the handler's executor, as the signal is emitted
#endif
                                      std::move(handler)(std::move(error), std::move(header));
                                  });
            } catch (...) {
                // post only throws when it cannot allocate; there is nowhere left to report it.
            }
        }
        // Last: until the work is released, the executor's context cannot be finished with, so
        // what is left of the moved-from handler (a copy of a strand, say) is destroyed above,
        // before. The library may keep this object, empty, until its fetch ends (after a
        // cancellation), possibly past the executor's context.
        work_.reset();
    }

  private:
    std::optional<boost::asio::executor_work_guard<Executor>> work_;  // the handler's executor, kept busy
#if MCA_OAUTH_ASIO_HAS_CANCELLATION
    boost::asio::associated_cancellation_slot_t<Handler> slot_;
#endif
    std::optional<Handler> handler_;  // moved out by the one call of complete() that claims the operation
    std::atomic<bool> claimed_{false};
};

/// The initiation passed to `boost::asio::async_initiate` (copyable, for `deferred`).
struct InitiateGetAuthorizationHeader {
    AuthClient* client;

    template <class Handler, class... Tenant>
    void operator()(Handler&& handler, const Tenant&... tenant) const {
        using Operation = AsioHeaderOperation<std::decay_t<Handler>>;
        auto operation = std::make_shared<Operation>(std::forward<Handler>(handler));
        Operation::connectCancellation(operation);
        client->getAuthorizationHeader(tenant..., [operation](std::string header, std::exception_ptr error) {
            operation->complete(std::move(error), std::move(header));
        });
    }
};

using AsioHeaderSignature = void(std::exception_ptr, std::string);

}  // namespace detail

/// @brief The header for the default credentials (see `Options`), as an Asio operation with the
/// completion signature `void(std::exception_ptr, std::string)`: see the file comment.
template <class CompletionToken>
auto async_get_authorization_header(AuthClient& client, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::AsioHeaderSignature>(
        detail::InitiateGetAuthorizationHeader{&client}, token);
}

/// @brief The header for a tenant of the secret flow, App ID or a token URL (see `Credentials`).
template <class CompletionToken>
auto async_get_authorization_header(AuthClient& client, Credentials tenant, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::AsioHeaderSignature>(
        detail::InitiateGetAuthorizationHeader{&client}, token, std::move(tenant));
}

/// @brief The header for a tenant of the certificate flow.
template <class CompletionToken>
auto async_get_authorization_header(AuthClient& client, CertificateCredentials tenant, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::AsioHeaderSignature>(
        detail::InitiateGetAuthorizationHeader{&client}, token, std::move(tenant));
}

/// @brief The header for a client of any OAuth 2.0 server.
template <class CompletionToken>
auto async_get_authorization_header(AuthClient& client, OAuthCredentials tenant, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::AsioHeaderSignature>(
        detail::InitiateGetAuthorizationHeader{&client}, token, std::move(tenant));
}

/// @brief The header for a resolved tenant (`AuthClient::tenant`), for hot paths.
template <class CompletionToken>
auto async_get_authorization_header(AuthClient& client, Tenant tenant, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::AsioHeaderSignature>(
        detail::InitiateGetAuthorizationHeader{&client}, token, std::move(tenant));
}

MCA_OAUTH_NAMESPACE_END
