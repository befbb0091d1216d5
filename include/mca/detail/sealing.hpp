#pragma once

// Tokens at rest in a shared store: sealed with AES-256-GCM under a key derived (HKDF-SHA256)
// from the tenant's secret (and the fleet key, when there is one), and filed under names that
// carry only a digest (HMAC-SHA256 keyed by the fleet key, or SHA-256 without one). A reader
// without the secret, or with another tenant's, gets nothing usable; anything that does not
// open is ignored, never trusted.

#include "../version.hpp"
#include "encoding.hpp"
#include "handles.hpp"
#include "secret.hpp"
#include "token_reply.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX_free>>;
using EvpKdfPtr = std::unique_ptr<EVP_KDF, Deleter<EVP_KDF_free>>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Deleter<EVP_KDF_CTX_free>>;

/// The name a tenant's entries are filed under: a digest of length-prefixed `fields` (so that
/// ("ab","c") and ("a","bc") differ), in hex. With a fleet key it is HMAC-SHA256 keyed by it, so
/// that a reader of the store without the key cannot test guesses of a secret among the fields
/// offline; without one, SHA-256, as before fleet keys (stable across processes and versions).
inline std::string storeNameDigest(std::string_view fleetKey, const std::vector<std::string_view>& fields) {
    SecretString input;  // fields may be secrets
    std::size_t size = 0;
    for (const std::string_view field : fields) size += 8 + field.size();
    input.buffer().reserve(size);
    for (const std::string_view field : fields) {
        const std::uint64_t length = field.size();
        for (int i = 0; i < 8; ++i) input.buffer() += static_cast<char>(length >> (8 * i));
        input.buffer() += field;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    const auto* bytes = reinterpret_cast<const unsigned char*>(input.view().data());
    const bool ok = fleetKey.empty()
                        ? EVP_Digest(bytes, input.view().size(), digest, &length, EVP_sha256(), nullptr) == 1
                        : HMAC(EVP_sha256(), fleetKey.data(), static_cast<int>(fleetKey.size()), bytes,
                               input.view().size(), digest, &length) != nullptr;
    if (!ok) {
        ERR_clear_error();
        throw std::runtime_error("mca: SHA-256 failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    text.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        text += hex[digest[i] >> 4];
        text += hex[digest[i] & 15];
    }
    return text;
}

/// storeNameDigest without a fleet key: SHA-256 in hex over length-prefixed fields.
inline std::string stableDigestHex(const std::vector<std::string_view>& fields) { return storeNameDigest({}, fields); }

/// A token as the fleet shares it: the ready header, its expiry in wall-clock time (steady
/// clocks are per machine), and when its reply was received, so that a reader schedules its
/// refresh from the token's whole lifetime rather than from what is left of it. Values sealed
/// before issuedAt existed open with it unknown.
struct SharedToken {
    std::string header;
    std::chrono::system_clock::time_point expiresAt;
    std::optional<std::chrono::system_clock::time_point> issuedAt{};
};

/// Seals and opens one tenant's tokens. The AES key is HKDF(secret, salt, info = the store name),
/// so a value copied under another name does not open either. With a fleet key, the salt is
/// the fleet key (after a label): HKDF's extract step is then HMAC keyed by it, and a reader of
/// the store without it cannot test guesses of the secret against a sealed value.
class TokenSeal {
  public:
    TokenSeal(std::string_view secret, std::string_view name, std::string_view fleetKey = {}) : name_(name) {
        const EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
        const EvpKdfCtxPtr context(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
        static constexpr std::string_view kSalt = "mca-oauth token store v1";
        static constexpr std::string_view kFleetSalt = "mca-oauth token store v1, fleet key:";
        SecretString salt;
        salt.buffer().reserve(kFleetSalt.size() + fleetKey.size());
        salt.buffer().append(fleetKey.empty() ? kSalt : kFleetSalt).append(fleetKey);
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()), secret.size()),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.buffer().data(), salt.view().size()),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, name_.data(), name_.size()),
            OSSL_PARAM_construct_end()};
        if (!context || EVP_KDF_derive(context.get(), key_.data(), key_.size(), params) != 1) {
            ERR_clear_error();
            throw std::runtime_error("mca: HKDF is not available");
        }
    }
    TokenSeal(const TokenSeal&) = delete;
    TokenSeal& operator=(const TokenSeal&) = delete;
    ~TokenSeal() { OPENSSL_cleanse(key_.data(), key_.size()); }

    /// version (1 byte) | nonce (12) | ciphertext | tag (16); the name is authenticated data.
    std::string seal(const SharedToken& token) const {
        const auto millis = [](std::chrono::system_clock::time_point at) {
            return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
        };
        nlohmann::json fields{{"header", token.header}, {"expiresAt", millis(token.expiresAt)}};
        if (token.issuedAt) fields["issuedAt"] = millis(*token.issuedAt);
        const std::string plain = fields.dump();
        std::string sealed(1 + kNonceSize + plain.size() + kTagSize, '\0');
        sealed[0] = kVersion;
        auto* nonce = reinterpret_cast<unsigned char*>(sealed.data() + 1);
        auto* out = nonce + kNonceSize;
        const EvpCipherCtxPtr context(EVP_CIPHER_CTX_new());
        int length = 0;
        const bool ok =
            context && RAND_bytes(nonce, kNonceSize) == 1 &&
            EVP_EncryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) == 1 &&
            EVP_EncryptUpdate(context.get(), nullptr, &length, aad(), static_cast<int>(name_.size())) == 1 &&
            EVP_EncryptUpdate(context.get(), out, &length, reinterpret_cast<const unsigned char*>(plain.data()),
                              static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(context.get(), out + length, &length) == 1 &&
            EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, out + plain.size()) == 1;
        if (!ok) {
            ERR_clear_error();
            throw std::runtime_error("mca: sealing a token failed");
        }
        return sealed;
    }

    /// The token, or nullopt for anything that is not a value sealed under this name and key.
    std::optional<SharedToken> open(std::string_view sealed) const {
        if (sealed.size() < 1 + kNonceSize + kTagSize || sealed[0] != kVersion || sealed.size() > kLargestValue) {
            return std::nullopt;
        }
        const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data() + 1);
        const auto* cipher = nonce + kNonceSize;
        const std::size_t cipherSize = sealed.size() - 1 - kNonceSize - kTagSize;
        std::string plain(cipherSize, '\0');
        const EvpCipherCtxPtr context(EVP_CIPHER_CTX_new());
        int length = 0;
        const bool ok =
            context && EVP_DecryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) == 1 &&
            EVP_DecryptUpdate(context.get(), nullptr, &length, aad(), static_cast<int>(name_.size())) == 1 &&
            EVP_DecryptUpdate(context.get(), reinterpret_cast<unsigned char*>(plain.data()), &length, cipher,
                              static_cast<int>(cipherSize)) == 1 &&
            EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                                const_cast<unsigned char*>(cipher + cipherSize)) == 1 &&
            EVP_DecryptFinal_ex(context.get(), reinterpret_cast<unsigned char*>(plain.data()) + length, &length) == 1;
        if (!ok) {
            ERR_clear_error();
            return std::nullopt;
        }
        const auto json = nlohmann::json::parse(plain, nullptr, /*allow_exceptions=*/false);
        if (!json.is_object() || !json.contains("header") || !json["header"].is_string() ||
            !json.contains("expiresAt") || !json["expiresAt"].is_number_integer()) {
            return std::nullopt;
        }
        const auto issuedAt = json.find("issuedAt");
        if (issuedAt != json.end() && !issuedAt->is_number_integer()) return std::nullopt;
        const auto at = [](std::int64_t millis) {
            return std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
        };
        SharedToken token;
        token.header = json["header"].get<std::string>();
        token.expiresAt = at(json["expiresAt"].get<std::int64_t>());
        if (issuedAt != json.end()) token.issuedAt = at(issuedAt->get<std::int64_t>());
        if (token.header.rfind("Bearer ", 0) != 0 || !isHeaderSafeToken(std::string_view(token.header).substr(7))) {
            return std::nullopt;
        }
        return token;
    }

  private:
    static constexpr char kVersion = 1;
    static constexpr int kNonceSize = 12;
    static constexpr int kTagSize = 16;
    static constexpr std::size_t kLargestValue = 2 * 1024 * 1024;

    const unsigned char* aad() const { return reinterpret_cast<const unsigned char*>(name_.data()); }

    std::string name_;
    std::array<unsigned char, 32> key_{};
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
