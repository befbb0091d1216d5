#pragma once

// The certificate flow's credentials: a client certificate and its RSA key (PEM), the clientId
// read from the certificate's subject CN, and the RS256 JWS the request carries as
// `Authorization: IMFCert <jws>`. OpenSSL 3 EVP and X509 APIs, every handle owned by RAII.

#include "../error.hpp"
#include "../version.hpp"
#include "encoding.hpp"
#include "handles.hpp"
#include "pem.hpp"
#include "secret.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// A parsed client certificate with its private key, checked to belong together.
class ClientCertificate {
  public:
    /// Throws MissingPem for an empty PEM, InvalidCertificate for anything unusable. Messages
    /// never quote the key.
    ClientCertificate(std::string_view certificatePem, std::string_view privateKeyPem) {
        if (trimWhitespace(certificatePem).empty()) throw Error(Errc::MissingPem, "certificatePem is empty");
        if (trimWhitespace(privateKeyPem).empty()) throw Error(Errc::MissingPem, "privateKeyPem is empty");
        certificate_ = readLeafCertificate(certificatePem, /*wholeChain=*/false);
        key_ = readUnencryptedPrivateKey(privateKeyPem);
        if (EVP_PKEY_is_a(key_.get(), "RSA") != 1) {
            throw Error(Errc::InvalidCertificate, "privateKeyPem is not an RSA key (the protocol signs with RS256)");
        }
        if (X509_check_private_key(certificate_.get(), key_.get()) != 1) {
            ERR_clear_error();
            throw Error(Errc::InvalidCertificate, "privateKeyPem does not belong to certificatePem");
        }
        commonName_ = readCommonName(certificate_.get());
        derBase64_ = readDerBase64(certificate_.get());
    }

    /// The clientId: the certificate subject's Common Name.
    const std::string& commonName() const noexcept { return commonName_; }

    /// The JWS the token request carries: header {"alg":"RS256","x5c":"<certificate DER, base64>"}
    /// (x5c is one string, as the Node SDK sends it), payload {"timestamp":<ms since epoch>}.
    std::string signedAssertion(std::chrono::system_clock::time_point now) const {
        const nlohmann::ordered_json header = {{"alg", "RS256"}, {"x5c", derBase64_}};
        const nlohmann::ordered_json payload = {
            {"timestamp", std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()}};
        const std::string signingInput = base64UrlEncode(header.dump()) + "." + base64UrlEncode(payload.dump());
        const EvpMdCtxPtr context(EVP_MD_CTX_new());
        std::size_t size = 0;
        if (!context ||
            EVP_DigestSignInit_ex(context.get(), nullptr, "SHA256", nullptr, nullptr, key_.get(), nullptr) != 1 ||
            EVP_DigestSign(context.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(signingInput.data()),
                           signingInput.size()) != 1) {
            ERR_clear_error();
            throw Error(Errc::InvalidCertificate, "signing with privateKeyPem failed");
        }
        std::string signature(size, '\0');
        if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                           reinterpret_cast<const unsigned char*>(signingInput.data()), signingInput.size()) != 1) {
            ERR_clear_error();
            throw Error(Errc::InvalidCertificate, "signing with privateKeyPem failed");
        }
        signature.resize(size);
        return signingInput + "." + base64UrlEncode(signature);
    }

  private:
    static std::string readCommonName(X509* certificate) {
        X509_NAME* subject = X509_get_subject_name(certificate);
        const int index = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
        if (index < 0) throw Error(Errc::InvalidCertificate, "the certificate's subject has no CN (the clientId)");
        ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
        unsigned char* utf8 = nullptr;
        const int length = ASN1_STRING_to_UTF8(&utf8, value);
        if (length <= 0) {
            OPENSSL_free(utf8);
            throw Error(Errc::InvalidCertificate, "the certificate's CN is empty or unreadable");
        }
        std::string commonName(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
        OPENSSL_free(utf8);
        return commonName;
    }

    static std::string readDerBase64(X509* certificate) {
        unsigned char* der = nullptr;
        const int length = i2d_X509(certificate, &der);
        if (length <= 0) throw Error(Errc::InvalidCertificate, "the certificate cannot be encoded");
        std::string encoded =
            base64Encode(std::string_view(reinterpret_cast<char*>(der), static_cast<std::size_t>(length)));
        OPENSSL_free(der);
        return encoded;
    }

    X509Ptr certificate_;
    EvpPkeyPtr key_;
    std::string commonName_;
    std::string derBase64_;
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
