#pragma once
/// @file grpc.hpp
/// @brief gRPC call credentials that put an `AuthClient`'s `authorization: Bearer <token>` on
/// every call. Link `mca::oauth_grpc` (gRPC C++ 1.51 or later: Debian's `libgrpc++-dev`).
///
/// Design (gRPC 1.51): the credentials are a plugin of gRPC's C core
/// (`grpc_metadata_credentials_create_from_plugin`), whose `get_metadata` may answer at once or
/// return 0 and call back later from another thread. A cache hit is answered at once, on the
/// thread gRPC asked from; a miss returns 0 and the token arrives from the client's engine thread
/// (the handler form of `getAuthorizationHeader`). No thread, gRPC's or the caller's, ever waits
/// for a token request. The C++ `grpc::MetadataCredentialsFromPlugin` cannot do this in 1.51:
/// its `GetMetadata` must return the metadata, so a plugin with `IsBlocking() == false` would
/// block the thread that starts the call (a gRPC thread, for calls started from callbacks or
/// retried), and one with `IsBlocking() == true` runs every call, hits included, on a thread pool
/// and blocks one of its threads per waiting call.
///
/// The price in 1.51: `grpc::CompositeChannelCredentials` and `grpc::CompositeCallCredentials`
/// accept only call credentials that gRPC made itself (they return nullptr for these). For every
/// call of a channel, make the channel with `mca::grpcChannel`; for one call,
/// `ClientContext::set_credentials`.
///
/// The channel must be secure (TLS, or `grpc::experimental::LocalCredentials` over a Unix
/// socket): gRPC sends call credentials only on channels with privacy and integrity, and fails
/// the call otherwise. A failed fetch fails the call; gRPC 1.51 reports every failure of a
/// credentials plugin as UNAVAILABLE, with the message "Getting metadata from plugin failed with
/// error: " + the `mca::Error` message, which starts with its code name (e.g.
/// "TOKEN_GENERATE_ERROR: ...").
#include "auth_client.hpp"
#include "version.hpp"

#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_interceptor.h>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN

/// @brief Told the header a call is about to carry, just before gRPC sends it: on the thread
/// that started the call (a cache hit) or on the client's engine thread. Must not block; an
/// exception it throws is dropped. With it, a caller knows which header the server refused and
/// can pass it to `AuthClient::invalidate(tenant, refusedHeader)`.
using GrpcHeaderObserver = std::function<void(const std::string& header)>;

/// @brief Call credentials that add `authorization: <header>` from `client` for `tenant` to every
/// call they apply to. Use them per call (`grpc::ClientContext::set_credentials`) or for every
/// call of a channel (`mca::grpcChannel`). A cache hit adds the header at once; a miss waits for
/// the token without blocking any thread. A failed fetch fails the call (UNAVAILABLE in gRPC
/// 1.51, whatever the cause; the message carries the `mca::Error` message and its code name).
/// Thread-safe; `client` is kept alive as long as the credentials are.
/// @throws std::invalid_argument when `client` is null.
std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client, Tenant tenant);
std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client, Credentials tenant);
std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client,
                                                           CertificateCredentials tenant);
std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client, OAuthCredentials tenant);
/// @brief The same, and `onHeader` is told each header just before a call carries it.
std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client, Tenant tenant,
                                                           GrpcHeaderObserver onHeader);

/// @brief A channel whose every call carries `callCredentials` (e.g. `mca::grpcCallCredentials`),
/// unless the call's `ClientContext` has credentials of its own, which then replace them. This
/// stands in for `grpc::CompositeChannelCredentials`, which gRPC 1.51 refuses for call credentials
/// it did not make. `channelCredentials` must be secure (see the file's comment).
std::shared_ptr<grpc::Channel> grpcChannel(const std::string& target,
                                           const std::shared_ptr<grpc::ChannelCredentials>& channelCredentials,
                                           std::shared_ptr<grpc::CallCredentials> callCredentials,
                                           const grpc::ChannelArguments& args = grpc::ChannelArguments());

namespace detail {

/// What the C plugin holds: shared with the handlers of fetches in flight.
struct GrpcPluginState {
    std::shared_ptr<AuthClient> client;
    Tenant tenant;
    GrpcHeaderObserver onHeader;
};

/// One `get_metadata` call: the result lands here when the handler runs before `get_metadata`
/// has returned (a cache hit, an immediate failure), else it goes to gRPC's callback.
struct GrpcPendingMetadata {
    grpc_credentials_plugin_metadata_cb cb = nullptr;
    void* userData = nullptr;
    std::mutex mutex;
    bool returned = false;  // get_metadata returned 0: the result goes to cb
    bool answered = false;  // the handler ran before that
    std::string header;
    grpc_status_code status = GRPC_STATUS_OK;
    std::string message;
};

inline grpc_status_code grpcStatusOf(Errc code) noexcept {
    switch (code) {
        case Errc::Network:
        case Errc::Timeout:
        case Errc::Shutdown:
        case Errc::InvalidResponse:
            return GRPC_STATUS_UNAVAILABLE;
        default:
            return GRPC_STATUS_UNAUTHENTICATED;
    }
}

/// The outcome of a fetch as gRPC wants it: a header, or a status and a message.
inline void settleGrpcMetadata(GrpcPendingMetadata& pending, const GrpcPluginState& state, std::string header,
                               std::exception_ptr error) {
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const Error& e) {
            pending.status = grpcStatusOf(static_cast<Errc>(e.code().value()));
            pending.message = e.what();
        } catch (const std::exception& e) {
            pending.status = GRPC_STATUS_INTERNAL;
            pending.message = e.what();
        } catch (...) {
            pending.status = GRPC_STATUS_INTERNAL;
            pending.message = "unknown error";
        }
        return;
    }
    if (state.onHeader) {
        try {
            state.onHeader(header);
        } catch (...) {
        }
    }
    pending.status = GRPC_STATUS_OK;
    pending.header = std::move(header);
}

inline int grpcGetMetadata(void* raw, grpc_auth_metadata_context /*context*/, grpc_credentials_plugin_metadata_cb cb,
                           void* userData, grpc_metadata metadata[GRPC_METADATA_CREDENTIALS_PLUGIN_SYNC_MAX],
                           size_t* metadataCount, grpc_status_code* status, const char** errorDetails) {
    const auto& state = *static_cast<const std::shared_ptr<const GrpcPluginState>*>(raw);
    std::shared_ptr<GrpcPendingMetadata> pending;
    try {
        pending = std::make_shared<GrpcPendingMetadata>();
        pending->cb = cb;
        pending->userData = userData;
        state->client->getAuthorizationHeader(
            state->tenant, [pending, state](std::string header, std::exception_ptr error) {
                std::unique_lock lock(pending->mutex);
                settleGrpcMetadata(*pending, *state, std::move(header), error);
                if (!pending->returned) {  // get_metadata has not returned: it answers
                    pending->answered = true;
                    return;
                }
                lock.unlock();
                // Asynchronous answer, from a thread other than get_metadata's (the engine or
                // store thread), as the C API requires. gRPC copies what it needs.
                if (pending->status == GRPC_STATUS_OK) {
                    grpc_metadata entry{};
                    entry.key = grpc_slice_from_static_string("authorization");
                    entry.value = grpc_slice_from_copied_buffer(pending->header.data(), pending->header.size());
                    pending->cb(pending->userData, &entry, 1, GRPC_STATUS_OK, nullptr);
                    grpc_slice_unref(entry.value);
                } else {
                    pending->cb(pending->userData, nullptr, 0, pending->status, pending->message.c_str());
                }
            });
    } catch (const std::exception& e) {  // allocation failures: nothing was started
        *metadataCount = 0;
        *status = GRPC_STATUS_INTERNAL;
        *errorDetails = gpr_strdup(e.what());
        return 1;
    }
    std::lock_guard lock(pending->mutex);
    if (!pending->answered) {
        pending->returned = true;
        return 0;  // the handler calls cb
    }
    // Synchronous answer: gRPC takes ownership of the slices and of errorDetails.
    if (pending->status == GRPC_STATUS_OK) {
        metadata[0].key = grpc_slice_from_static_string("authorization");
        metadata[0].value = grpc_slice_from_copied_buffer(pending->header.data(), pending->header.size());
        *metadataCount = 1;
        *status = GRPC_STATUS_OK;
        *errorDetails = nullptr;
    } else {
        *metadataCount = 0;
        *status = pending->status;
        *errorDetails = gpr_strdup(pending->message.c_str());
    }
    return 1;
}

inline void grpcDestroyPlugin(void* raw) { delete static_cast<std::shared_ptr<const GrpcPluginState>*>(raw); }

inline char* grpcPluginDebugString(void* /*raw*/) { return gpr_strdup("mca::grpcCallCredentials"); }

/// `grpc::CallCredentials` around the C core's plugin credentials (see the file's comment).
class GrpcCallCredentials final : public grpc::CallCredentials {
  public:
    explicit GrpcCallCredentials(grpc_call_credentials* credentials) : credentials_(credentials) {}
    ~GrpcCallCredentials() override { grpc_call_credentials_release(credentials_); }
    GrpcCallCredentials(const GrpcCallCredentials&) = delete;
    GrpcCallCredentials& operator=(const GrpcCallCredentials&) = delete;

    bool ApplyToCall(grpc_call* call) override { return grpc_call_set_credentials(call, credentials_) == GRPC_CALL_OK; }
    std::string DebugString() override { return "mca::grpcCallCredentials"; }

  private:
    // Only credentials made by gRPC itself have one; composition functions return nullptr.
    grpc::SecureCallCredentials* AsSecureCredentials() override { return nullptr; }

    grpc_call_credentials* credentials_;
};

/// Gives each call of a channel the channel's call credentials, before the call starts, unless
/// the call has credentials of its own. Creates no interceptor.
class GrpcCallCredentialsSetter final : public grpc::experimental::ClientInterceptorFactoryInterface {
  public:
    explicit GrpcCallCredentialsSetter(std::shared_ptr<grpc::CallCredentials> credentials)
        : credentials_(std::move(credentials)) {}
    grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo* info) override {
        grpc::ClientContext* context = info->client_context();
        if (context != nullptr && context->credentials() == nullptr) context->set_credentials(credentials_);
        return nullptr;
    }

  private:
    std::shared_ptr<grpc::CallCredentials> credentials_;
};

/// The credentials of a tenant given by its credentials (of any kind): resolved once, here.
template <class TenantCredentials>
std::shared_ptr<grpc::CallCredentials> grpcCallCredentialsOf(std::shared_ptr<AuthClient> client,
                                                             const TenantCredentials& tenant) {
    if (!client) throw std::invalid_argument("mca::grpcCallCredentials: the AuthClient is null");
    Tenant handle = client->tenant(tenant);
    return grpcCallCredentials(std::move(client), std::move(handle), nullptr);
}

}  // namespace detail

inline std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client, Tenant tenant,
                                                                  GrpcHeaderObserver onHeader) {
    if (!client) throw std::invalid_argument("mca::grpcCallCredentials: the AuthClient is null");
    auto state = std::make_shared<const detail::GrpcPluginState>(
        detail::GrpcPluginState{std::move(client), std::move(tenant), std::move(onHeader)});
    grpc_metadata_credentials_plugin plugin{};
    plugin.get_metadata = detail::grpcGetMetadata;
    plugin.debug_string = detail::grpcPluginDebugString;
    plugin.destroy = detail::grpcDestroyPlugin;
    plugin.state = new std::shared_ptr<const detail::GrpcPluginState>(std::move(state));
    plugin.type = "mca-oauth";
    // Takes the state: destroy() deletes it once gRPC is done with the credentials.
    grpc_call_credentials* raw =
        grpc_metadata_credentials_create_from_plugin(plugin, GRPC_PRIVACY_AND_INTEGRITY, nullptr);
    return std::make_shared<detail::GrpcCallCredentials>(raw);
}

inline std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client, Tenant tenant) {
    return grpcCallCredentials(std::move(client), std::move(tenant), nullptr);
}

inline std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client,
                                                                  Credentials tenant) {
    return detail::grpcCallCredentialsOf(std::move(client), tenant);
}

inline std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client,
                                                                  CertificateCredentials tenant) {
    return detail::grpcCallCredentialsOf(std::move(client), tenant);
}

inline std::shared_ptr<grpc::CallCredentials> grpcCallCredentials(std::shared_ptr<AuthClient> client,
                                                                  OAuthCredentials tenant) {
    return detail::grpcCallCredentialsOf(std::move(client), tenant);
}

inline std::shared_ptr<grpc::Channel> grpcChannel(const std::string& target,
                                                  const std::shared_ptr<grpc::ChannelCredentials>& channelCredentials,
                                                  std::shared_ptr<grpc::CallCredentials> callCredentials,
                                                  const grpc::ChannelArguments& args) {
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> setters;
    setters.push_back(std::make_unique<detail::GrpcCallCredentialsSetter>(std::move(callCredentials)));
    return grpc::experimental::CreateCustomChannelWithInterceptors(target, channelCredentials, args,
                                                                   std::move(setters));
}

MCA_OAUTH_NAMESPACE_END
