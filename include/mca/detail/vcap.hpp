#pragma once

// Default credentials from Cloud Foundry's environment, read the way the Node SDK reads them.

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace mca::detail {

struct VcapCredentials {
    std::string appId, clientId, secret, serverUrl, oauthServerUrl;
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
        const auto services = nlohmann::ordered_json::parse(vcapServices, nullptr, /*allow_exceptions=*/false);
        if (!services.is_object()) {
            result.problem = "VCAP_SERVICES is not a JSON object";
        } else {
            for (const auto& [name, bindings] : services.items()) {
                const std::string_view serviceName = name;
                const bool isMca =
                    serviceName.rfind("AdvancedMobileAccess", 0) == 0 || serviceName.rfind("AppID", 0) == 0;
                if (!isMca || !bindings.is_array() || bindings.empty()) continue;
                const auto& binding = bindings.front();
                if (!binding.is_object()) continue;
                const auto credentials = binding.find("credentials");
                if (credentials != binding.end() && credentials->is_object()) {
                    result.appId = stringField(*credentials, "tenantId");
                    result.clientId = stringField(*credentials, "clientId");
                    result.secret = stringField(*credentials, "secret");
                    result.serverUrl = stringField(*credentials, "serverUrl");
                    result.oauthServerUrl = stringField(*credentials, "oauthServerUrl");
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

}  // namespace mca::detail
