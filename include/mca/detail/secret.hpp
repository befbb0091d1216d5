#pragma once

// Secrets held in memory, wiped when released, and the digest that stands for a secret in cache keys.

#include "handles.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mca::detail {

/// Wipes a plain string that held a secret (e.g. a copy the caller handed over by value).
inline void wipeString(std::string& value) noexcept {
    if (value.capacity() > 0) OPENSSL_cleanse(value.data(), value.capacity());
    value.clear();
}

/// A string whose bytes are wiped with OPENSSL_cleanse when it is destroyed or reassigned.
/// Small strings live inside std::string itself, so the wipe covers both storage cases.
class SecretString {
  public:
    SecretString() = default;
    explicit SecretString(std::string_view value) : value_(value) {}
    SecretString(const SecretString& other) : value_(other.value_) {}
    SecretString(SecretString&& other) noexcept : value_(other.value_) { other.wipe(); }
    SecretString& operator=(SecretString other) noexcept {
        wipe();
        value_.swap(other.value_);
        return *this;
    }
    ~SecretString() { wipe(); }

    const std::string& view() const noexcept { return value_; }
    /// For building a secret in place: what is appended here is wiped with the rest.
    std::string& buffer() noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

    void wipe() noexcept;

  private:
    std::string value_;
};

inline void SecretString::wipe() noexcept { wipeString(value_); }

using Sha256Digest = std::array<std::uint8_t, 32>;

/// Incremental SHA-256 over several fields; each field is length-prefixed so that
/// ("ab","c") and ("a","bc") never share a digest.
class Sha256 {
  public:
    Sha256() : context_(EVP_MD_CTX_new()) {
        if (!context_ || EVP_DigestInit_ex(context_.get(), algorithm(), nullptr) != 1) {
            throw std::runtime_error("mca: SHA-256 is not available");
        }
    }
    Sha256& field(std::string_view bytes) {
        const std::uint64_t size = bytes.size();
        std::uint8_t prefix[8];
        for (int i = 0; i < 8; ++i) {
            prefix[i] = static_cast<std::uint8_t>(size >> (8 * i));
        }
        EVP_DigestUpdate(context_.get(), prefix, sizeof prefix);
        EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
        return *this;
    }
    Sha256Digest finish() {
        Sha256Digest digest{};
        unsigned int length = 0;
        EVP_DigestFinal_ex(context_.get(), digest.data(), &length);
        return digest;
    }

  private:
    // Fetched once: an implicit fetch per digest costs a provider lookup each time.
    static const EVP_MD* algorithm() {
        static const EvpMdPtr sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
        return sha256.get();
    }
    EvpMdCtxPtr context_;
};

}  // namespace mca::detail
