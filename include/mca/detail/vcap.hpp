#pragma once

// Default credentials from Cloud Foundry's environment, read the way the Node SDK reads them,
// and the rule that decides between them and the ones given explicitly.

#include "../auth_client.hpp"
#include "../version.hpp"
#include "secret.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

struct VcapCredentials {
    std::string appId, clientId, secret, serverUrl, oauthServerUrl;
    bool bound = false;   // a matching binding with a credentials object was found
    std::string problem;  // why the environment could not be read, for error messages ("" = fine)
};

/// Reads the first binding of the first service (in document order) whose name starts with
/// `AdvancedMobileAccess` or `AppID`; appId falls back to VCAP_APPLICATION's `application_id`.
/// Fields that are not strings are ignored. Either argument may be null (variable not set).
inline VcapCredentials parseVcap(const char* vcapServices, const char* vcapApplication) {
    VcapCredentials result;
    const auto stringField = [](const nlohmann::ordered_json& object, const char* name) -> std::string {
        const auto field = object.find(name);
        return field != object.end() && field->is_string() ? field->get<std::string>() : std::string();
    };
    if (vcapServices != nullptr && *vcapServices != '\0') {
        auto services = nlohmann::ordered_json::parse(vcapServices, nullptr, /*allow_exceptions=*/false);
        if (!services.is_object()) {
            result.problem = "VCAP_SERVICES is not a JSON object";
        } else {
            for (auto& [name, bindings] : services.items()) {
                const std::string_view serviceName = name;
                const bool isMca =
                    serviceName.rfind("AdvancedMobileAccess", 0) == 0 || serviceName.rfind("AppID", 0) == 0;
                if (!isMca || !bindings.is_array() || bindings.empty()) continue;
                auto& binding = bindings.front();
                if (!binding.is_object()) continue;
                const auto credentials = binding.find("credentials");
                if (credentials != binding.end() && credentials->is_object()) {
                    result.bound = true;
                    result.appId = stringField(*credentials, "tenantId");
                    result.clientId = stringField(*credentials, "clientId");
                    result.serverUrl = stringField(*credentials, "serverUrl");
                    result.oauthServerUrl = stringField(*credentials, "oauthServerUrl");
                    // Moved out of the document and the document's copy wiped, not left in freed memory.
                    const auto secret = credentials->find("secret");
                    if (secret != credentials->end() && secret->is_string()) {
                        auto& text = secret->get_ref<std::string&>();
                        result.secret = std::move(text);
                        wipeString(text);
                    }
                }
                break;
            }
        }
    }
    if (result.appId.empty() && vcapApplication != nullptr && *vcapApplication != '\0') {
        const auto application = nlohmann::ordered_json::parse(vcapApplication, nullptr, /*allow_exceptions=*/false);
        if (application.is_object()) {
            result.appId = stringField(application, "application_id");
        } else if (result.problem.empty()) {
            result.problem = "VCAP_APPLICATION is not a JSON object";
        }
    }
    return result;
}

/// Whether any credential (not the scope) was given explicitly.
inline bool hasExplicitCredentials(const Credentials& given) {
    return !given.appId.empty() || !given.clientId.empty() || !given.secret.empty() || !given.serverUrl.empty() ||
           !given.tokenUrl.empty();
}

/// The client's default credentials. Explicit credentials win as a whole: when any of appId,
/// clientId, secret, serverUrl or tokenUrl is given, `given` is used as it is and the environment
/// is not read (filling the gaps would mix two identities: an explicit secret sent to a server
/// named by VCAP_SERVICES). Otherwise the environment fills them as one unit, from one binding
/// (the first of the first matching service): tenantId, clientId, secret, serverUrl, and
/// oauthServerUrl + "/token" as tokenUrl; VCAP_APPLICATION's application_id is the appId only
/// for such a binding without a tenantId, as the Node SDK does, never alone or for explicit
/// credentials. The scope is always the given one. `problem` says why the environment could
/// not be read ("" = fine or not read). Either variable may be null (not set).
inline Credentials defaultCredentials(const Credentials& given, const char* vcapServices, const char* vcapApplication,
                                      std::string& problem) {
    problem.clear();
    Credentials result;
    if (hasExplicitCredentials(given)) {
        result = given;
        return result;
    }
    VcapCredentials vcap = parseVcap(vcapServices, vcapApplication);
    problem = vcap.problem;
    result.scope = given.scope;
    if (vcap.bound) {
        result.appId = vcap.appId;
        result.clientId = vcap.clientId;
        result.secret.reserve(vcap.secret.size());
        result.secret.append(vcap.secret);
        result.serverUrl = vcap.serverUrl;
        if (!vcap.oauthServerUrl.empty()) result.tokenUrl = vcap.oauthServerUrl + "/token";
    }
    wipeString(vcap.secret);
    return result;
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
