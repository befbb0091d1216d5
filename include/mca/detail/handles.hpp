#pragma once

// RAII owners for the C handles of libcurl and OpenSSL, and libcurl's one-time global setup.

#include "../version.hpp"

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>

// The newest libcurl feature used unconditionally is CURLOPT_PROTOCOLS_STR (7.85.0); the others
// are older (CURLOPT_SSLCERT_BLOB and CURLOPT_SSLKEY_BLOB 7.71.0, curl_multi_wakeup 7.68.0,
// curl_multi_poll 7.66.0, the URL API 7.62.0). Newer ones are behind their own #if
// (CURLOPT_QUICK_EXIT, 7.87.0). CMakeLists.txt and the pkg-config files ask for the same version.
#if LIBCURL_VERSION_NUM < 0x075500
#error "mca-oauth needs libcurl 7.85.0 or newer (CURLOPT_PROTOCOLS_STR)"
#endif

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// Calls `Fn` on a non-null pointer; stateless, so a unique_ptr with it is one pointer wide.
template <auto Fn>
struct Deleter {
    template <class T>
    void operator()(T* handle) const noexcept {
        Fn(handle);
    }
};

using CurlEasyPtr = std::unique_ptr<CURL, Deleter<curl_easy_cleanup>>;
using CurlMultiPtr = std::unique_ptr<CURLM, Deleter<curl_multi_cleanup>>;
using CurlUrlPtr = std::unique_ptr<CURLU, Deleter<curl_url_cleanup>>;
using CurlSlistPtr = std::unique_ptr<curl_slist, Deleter<curl_slist_free_all>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;

/// libcurl's global state, set up once before the first handle (curl_global_init is not
/// thread-safe on every build, a function-local static is) and kept for the process lifetime.
inline void ensureCurlGlobalInit() {
    static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (result != CURLE_OK) {
        throw std::runtime_error(std::string("mca: curl_global_init failed: ") + curl_easy_strerror(result));
    }
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
