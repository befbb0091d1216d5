// Calls a protected service with plain libcurl: the header comes from the client; when the service
// answers 401, the refused header is invalidated and the call retried once with a new one.
// usage: MCA_SECRET=... curl_client <resource URL> <MCA server URL> <appId> <clientId>
#include <mca/auth_client.hpp>

#include <curl/curl.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

namespace {

// GETs `url` with `authorization`; prints and returns the HTTP status (0 when there was no reply).
long get(const std::string& url, const std::string& authorization) {
    const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
    const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
        curl_slist_append(nullptr, ("Authorization: " + authorization).c_str()), curl_slist_free_all);
    if (!easy || !headers) return 0;
    curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(
        easy.get(), CURLOPT_WRITEFUNCTION, +[](char*, std::size_t, std::size_t count, void*) {
            return count;  // the body is not needed here
        });
    curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT, 10L);
    long status = 0;
    if (curl_easy_perform(easy.get()) == CURLE_OK) curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
    std::cout << "HTTP " << status << std::endl;
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    const char* secret = std::getenv("MCA_SECRET");
    if (argc != 5 || secret == nullptr) {
        std::cerr << "usage: MCA_SECRET=... curl_client <resource URL> <MCA server URL> <appId> <clientId>\n";
        return 2;
    }
    const std::string resourceUrl = argv[1];
    mca::AuthClient client;
    const mca::Tenant tenant = client.tenant(mca::Credentials{argv[3], argv[4], secret, argv[2]});
    try {
        std::string header = client.getAuthorizationHeader(tenant).get();
        long status = get(resourceUrl, header);
        if (status == 401) {                    // the service refused this token (revoked, say)
            client.invalidate(tenant, header);  // retire exactly that one, if it is still the cached one
            header = client.getAuthorizationHeader(tenant).get();
            status = get(resourceUrl, header);  // once: a second 401 is the service's answer
        }
        return status == 200 ? 0 : 1;
    } catch (const mca::Error& error) {
        std::cerr << error.what() << '\n';
        return 1;
    }
}
