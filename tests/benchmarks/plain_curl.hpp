#pragma once

// The network floors: the token POST mca-oauth sends, made with nothing but libcurl. Same URL,
// same headers, same body (tests/integration/protocol_test.cpp pins those bytes), same server.

#include <mca/auth_client.hpp>

#include <curl/curl.h>

#include <chrono>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mca::bench {

/// One tenant's token request, spelled as mca-oauth spells it.
class TokenPost {
  public:
    explicit TokenPost(const Credentials& tenant)
        : url_(detail::mcaTokenUrl(detail::normalizeServerUrl(tenant.serverUrl).value(), tenant.appId)) {
        const std::string authorization =
            "Authorization: " + detail::basicAuthorization(tenant.clientId, tenant.secret).view();
        for (const std::string& header : {authorization, std::string("Content-Type: application/x-www-form-urlencoded"),
                                          std::string("Accept: application/json"), std::string("Expect:")}) {
            curl_slist* list = curl_slist_append(headers_.get(), header.c_str());
            if (list == nullptr) throw std::bad_alloc();
            if (!headers_) headers_.reset(list);  // later appends keep the same head
        }
    }

    /// Points `easy` at this request; the reply body is appended to `body`.
    void configure(CURL* easy, std::string& body) const {
        curl_easy_setopt(easy, CURLOPT_URL, url_.c_str());
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, detail::kClientCredentialsForm.data());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(detail::kClientCredentialsForm.size()));
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_.get());
        curl_easy_setopt(easy, CURLOPT_USERAGENT, "mca-oauth/" MCA_OAUTH_VERSION_STRING);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &appendBody);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
    }

  private:
    static std::size_t appendBody(char* data, std::size_t size, std::size_t count, void* body) {
        static_cast<std::string*>(body)->append(data, size * count);
        return size * count;
    }

    std::string url_;
    detail::CurlSlistPtr headers_;
};

inline void requireTokenReply(CURL* easy, CURLcode code) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK || status != 200) {
        throw std::runtime_error(std::string("plain libcurl token POST failed: ") + curl_easy_strerror(code) +
                                 ", HTTP " + std::to_string(status));
    }
}

/// Floor (b): one easy handle, its connection kept alive, fetching one token after another.
class KeptAliveEasyHandle {
  public:
    KeptAliveEasyHandle() : easy_(curl_easy_init()) {
        if (!easy_) throw std::runtime_error("curl_easy_init failed");
    }

    void fetch(const TokenPost& post) {
        body_.clear();
        post.configure(easy_.get(), body_);
        requireTokenReply(easy_.get(), curl_easy_perform(easy_.get()));
    }

  private:
    detail::CurlEasyPtr easy_;
    std::string body_;
};

/// Floor (c): one multi handle sending every request at once. Returns the milliseconds from the
/// start until the last reply is in; closing the connections afterwards is not counted.
inline double fetchAllAtOnce(const std::vector<TokenPost>& posts) {
    const auto start = std::chrono::steady_clock::now();
    const detail::CurlMultiPtr multi(curl_multi_init());
    std::vector<detail::CurlEasyPtr> easies;
    std::vector<std::string> bodies(posts.size());
    for (std::size_t i = 0; i < posts.size(); ++i) {
        easies.emplace_back(curl_easy_init());
        posts[i].configure(easies.back().get(), bodies[i]);
        curl_multi_add_handle(multi.get(), easies.back().get());
    }
    int running = 1;
    while (running > 0) {
        curl_multi_perform(multi.get(), &running);
        if (running > 0) curl_multi_poll(multi.get(), nullptr, 0, 1000, nullptr);
    }
    const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    std::vector<std::pair<CURL*, CURLcode>> results;
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi.get(), &queued)) {
        results.emplace_back(message->easy_handle, message->data.result);
    }
    for (auto& easy : easies) curl_multi_remove_handle(multi.get(), easy.get());
    if (results.size() != posts.size()) throw std::runtime_error("plain libcurl multi lost a transfer");
    for (const auto& [easy, code] : results) requireTokenReply(easy, code);
    return elapsed.count();
}

}  // namespace mca::bench
