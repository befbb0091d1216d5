// Calls a protected service from a C++20 coroutine with Boost.Asio and Boost.Beast: the header
// comes from mca::async_get_authorization_header; when the service answers 401, the refused header
// is invalidated and the call retried once with a new one.
// usage: MCA_SECRET=... asio_client <resource URL, http://host:port/path> <MCA server URL> <appId> <clientId>
#include <mca/asio.hpp>  // link mca::oauth_asio (needs Boost's headers: libboost-dev)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

struct HttpUrl {
    std::string host, port, target;
};

// "http://host:port/target"; plain http only (https would add asio::ssl).
HttpUrl parseHttpUrl(std::string url) {
    url.erase(0, url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    const std::size_t slash = std::min(url.find('/'), url.size());
    const std::string authority = url.substr(0, slash);
    const std::size_t colon = authority.rfind(':');
    return {authority.substr(0, colon), colon == std::string::npos ? "80" : authority.substr(colon + 1),
            slash < url.size() ? url.substr(slash) : "/"};
}

// GETs `url` with `authorization`; prints and returns the HTTP status.
asio::awaitable<unsigned> get(const HttpUrl& url, const std::string& authorization) {
    const auto executor = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(executor);
    boost::beast::tcp_stream stream(executor);
    co_await stream.async_connect(co_await resolver.async_resolve(url.host, url.port, asio::use_awaitable),
                                  asio::use_awaitable);
    http::request<http::empty_body> request(http::verb::get, url.target, 11);
    request.set(http::field::host, url.host);
    request.set(http::field::authorization, authorization);
    co_await http::async_write(stream, request, asio::use_awaitable);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    co_await http::async_read(stream, buffer, response, asio::use_awaitable);
    std::cout << "HTTP " << response.result_int() << std::endl;
    co_return response.result_int();
}

asio::awaitable<unsigned> callService(mca::AuthClient& client, mca::Tenant tenant, HttpUrl url) {
    std::string header = co_await mca::async_get_authorization_header(client, tenant, asio::use_awaitable);
    unsigned status = co_await get(url, header);
    if (status == 401) {                    // the service refused this token (revoked, say)
        client.invalidate(tenant, header);  // retire exactly that one, if it is still the cached one
        header = co_await mca::async_get_authorization_header(client, tenant, asio::use_awaitable);
        status = co_await get(url, header);  // once: a second 401 is the service's answer
    }
    co_return status;
}

}  // namespace

int main(int argc, char** argv) {
    const char* secret = std::getenv("MCA_SECRET");
    if (argc != 5 || secret == nullptr) {
        std::cerr << "usage: MCA_SECRET=... asio_client <resource URL> <MCA server URL> <appId> <clientId>\n";
        return 2;
    }
    mca::AuthClient client;  // declared before the io_context: it outlives the operations
    const mca::Tenant tenant = client.tenant(mca::Credentials{argv[3], argv[4], secret, argv[2]});
    asio::io_context context;
    unsigned status = 0;
    asio::co_spawn(context, callService(client, tenant, parseHttpUrl(argv[1])),
                   [&status](std::exception_ptr error, unsigned result) {
                       try {
                           if (error) std::rethrow_exception(error);
                           status = result;
                       } catch (const std::exception& failure) {  // an mca::Error, or Beast's system_error
                           std::cerr << failure.what() << '\n';
                       }
                   });
    context.run();
    return status == 200 ? 0 : 1;
}
