// Links the optional targets an installed package provides, each when the consumer found it
// (MCA_CONSUMER_REDIS, _ASIO, _GRPC): mca::oauth_redis, mca::oauth_asio and mca::oauth_grpc, or
// their pkg-config modules. None touches the network.
#ifdef MCA_CONSUMER_REDIS
#include <mca/redis_token_store.hpp>
#endif
#ifdef MCA_CONSUMER_ASIO
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <mca/asio.hpp>
#endif
#ifdef MCA_CONSUMER_GRPC
#include <mca/grpc.hpp>
#endif
#include <mca/auth_client.hpp>

#include <stdlib.h>  // unsetenv (POSIX)
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

#ifdef MCA_CONSUMER_REDIS
// A malformed URL is the one thing connect throws for.
bool redisLinks() {
    try {
        mca::RedisTokenStore::connect("not-a-redis-url");
    } catch (const std::invalid_argument&) {
        const auto store = mca::RedisTokenStore::connect("redis://127.0.0.1:1?timeout=5");  // unreachable: fine
        return !store->get("nothing");
    }
    return false;
}
#endif

#ifdef MCA_CONSUMER_ASIO
// A tenant without a client id fails before any request, on the handler's io_context.
bool asioLinks(mca::AuthClient& client) {
    boost::asio::io_context io;
    bool refused = false;
    const auto completed = [&refused](std::exception_ptr error, std::string) {
        try {
            if (error) std::rethrow_exception(error);
        } catch (const mca::Error& e) {
            refused = e.code() == mca::Errc::MissingClientId;
        }
    };
    mca::async_get_authorization_header(client, mca::Credentials{"app", "", "secret", "http://127.0.0.1:1"},
                                        boost::asio::bind_executor(io, completed));
    io.run();
    return refused;
}
#endif

#ifdef MCA_CONSUMER_GRPC
bool grpcLinks(std::shared_ptr<mca::AuthClient> client) {
    return mca::grpcCallCredentials(std::move(client),
                                    mca::Credentials{"app", "client", "secret", "http://127.0.0.1:1"}) != nullptr;
}
#endif

}  // namespace

int main() {
    unsetenv("VCAP_SERVICES");
    unsetenv("VCAP_APPLICATION");
    [[maybe_unused]] const auto client = std::make_shared<mca::AuthClient>();
    bool ok = true;
#ifdef MCA_CONSUMER_REDIS
    ok = ok && redisLinks();
    std::puts("mca::oauth_redis links");
#endif
#ifdef MCA_CONSUMER_ASIO
    ok = ok && asioLinks(*client);
    std::puts("mca::oauth_asio links");
#endif
#ifdef MCA_CONSUMER_GRPC
    ok = ok && grpcLinks(client);
    std::puts("mca::oauth_grpc links");
#endif
    return ok ? 0 : 1;
}
