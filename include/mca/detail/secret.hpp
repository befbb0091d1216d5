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

/// SHA-256 over several fields, each length-prefixed so that ("ab","c") and ("a","bc") never
/// share a digest. Fields are gathered in one buffer (one digest update is much cheaper than
/// several) that is wiped after use, since fields may be secrets.
class FieldDigest {
  public:
    FieldDigest() : context_(EVP_MD_CTX_new()) {
        if (!context_) throw std::runtime_error("mca: EVP_MD_CTX_new failed");
    }
    FieldDigest(const FieldDigest&) = delete;
    FieldDigest& operator=(const FieldDigest&) = delete;
    ~FieldDigest() { wipeString(buffer_); }

    FieldDigest& field(std::string_view bytes) {
        const std::uint64_t size = bytes.size();
        for (int i = 0; i < 8; ++i) buffer_ += static_cast<char>(size >> (8 * i));
        buffer_ += bytes;
        return *this;
    }

    Sha256Digest finish() {
        Sha256Digest digest{};
        unsigned int length = 0;
        const bool ok = EVP_DigestInit_ex2(context_.get(), algorithm(), nullptr) == 1 &&
                        EVP_DigestUpdate(context_.get(), buffer_.data(), buffer_.size()) == 1 &&
                        EVP_DigestFinal_ex(context_.get(), digest.data(), &length) == 1;
        OPENSSL_cleanse(buffer_.data(), buffer_.size());
        buffer_.clear();  // keeps its capacity: the next digest on this thread does not allocate it again
        if (!ok) throw std::runtime_error("mca: SHA-256 failed");
        return digest;
    }

    /// A digest object for this thread, reused across calls.
    static FieldDigest& forThisThread() {
        thread_local FieldDigest digest;
        return digest;
    }

  private:
    // Fetched once: an implicit fetch per digest costs a provider lookup each time.
    static const EVP_MD* algorithm() {
        static const EvpMdPtr sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
        if (!sha256) throw std::runtime_error("mca: SHA-256 is not available");
        return sha256.get();
    }

    EvpMdCtxPtr context_;
    std::string buffer_;
};

}  // namespace mca::detail
