#pragma once

// Reading a few top-level members of an untrusted JSON object without building a document:
// nlohmann/json's SAX interface, keeping only the members asked for. A hostile reply of
// millions of tiny values then costs its longest string and one bit per nesting level, not a
// DOM node per value (a 1 MiB body of empty objects made a 40 MiB DOM).

#include "../version.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// Deepest nesting accepted in a reply; no token or error reply comes near it.
inline constexpr std::size_t kMaxJsonDepth = 64;

/// One top-level member of a JSON object, as far as a caller needs it.
struct JsonField {
    enum class Kind { Absent, Null, Boolean, Number, String, Array, Object };
    Kind kind = Kind::Absent;
    double number = 0;  // Kind::Number
    std::string text;   // Kind::String
};

enum class JsonShape {
    Object,     // a JSON object: the fields asked for are filled
    NotObject,  // valid JSON, but not an object
    Invalid,    // not JSON (or a number that overflows a double)
    TooDeep,    // nested deeper than kMaxJsonDepth
};

/// What readJsonFields fills: a member's name and where its value goes.
struct JsonFieldTarget {
    std::string_view name;
    JsonField* field;
};

namespace json_fields_detail {

/// The SAX handler: counts depth, remembers which wanted member (if any) the current top-level
/// key names, and stores that member's value. A duplicate member overwrites, as in a DOM.
class Reader {
  public:
    using Json = nlohmann::json;

    template <std::size_t N>
    explicit Reader(const JsonFieldTarget (&targets)[N]) : targets_(targets), count_(N) {}

    bool null() { return scalar(JsonField::Kind::Null); }
    bool boolean(bool) { return scalar(JsonField::Kind::Boolean); }
    bool number_integer(Json::number_integer_t value) { return number(static_cast<double>(value)); }
    bool number_unsigned(Json::number_unsigned_t value) { return number(static_cast<double>(value)); }
    bool number_float(Json::number_float_t value, const Json::string_t&) {
        if (!std::isfinite(value)) return false;  // "1e400": not JSON, as nlohmann's DOM parser says
        return number(value);
    }
    bool string(Json::string_t& value) {
        if (JsonField* field = take()) {
            field->kind = JsonField::Kind::String;
            field->text = std::move(value);
        }
        return true;
    }
    bool binary(Json::binary_t&) { return true; }
    bool start_object(std::size_t) { return open(JsonField::Kind::Object); }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(JsonField::Kind::Array); }
    bool end_array() { return close(); }
    bool key(Json::string_t& name) {
        if (depth_ == 1) {
            current_ = nullptr;
            for (std::size_t i = 0; i < count_; ++i) {
                if (targets_[i].name == name) current_ = targets_[i].field;
            }
        }
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

    JsonShape shape(bool parsed) const {
        if (tooDeep_) return JsonShape::TooDeep;
        if (!parsed) return JsonShape::Invalid;
        return topIsObject_ ? JsonShape::Object : JsonShape::NotObject;
    }

  private:
    JsonField* take() {
        if (depth_ != 1) return nullptr;
        JsonField* field = current_;
        current_ = nullptr;
        return field;
    }
    bool scalar(JsonField::Kind kind) {
        if (JsonField* field = take()) {
            field->kind = kind;
            field->text.clear();
        }
        return true;
    }
    bool number(double value) {
        if (JsonField* field = take()) {
            field->kind = JsonField::Kind::Number;
            field->number = value;
            field->text.clear();
        }
        return true;
    }
    bool open(JsonField::Kind kind) {
        if (depth_ == 0) topIsObject_ = kind == JsonField::Kind::Object;
        scalar(kind);
        if (++depth_ > kMaxJsonDepth) {
            tooDeep_ = true;
            return false;
        }
        return true;
    }
    bool close() {
        --depth_;
        return true;
    }

    const JsonFieldTarget* targets_;
    std::size_t count_;
    JsonField* current_ = nullptr;
    std::size_t depth_ = 0;
    bool topIsObject_ = false;
    bool tooDeep_ = false;
};

}  // namespace json_fields_detail

/// Parses `json` (strictly: one value, nothing after it) and fills the fields of `targets` from
/// the top-level members of that name; members not asked for are skipped without being kept.
/// Never throws for malformed input.
template <std::size_t N>
JsonShape readJsonFields(std::string_view json, const JsonFieldTarget (&targets)[N]) {
    json_fields_detail::Reader reader(targets);
    bool parsed = false;
    try {
        parsed = nlohmann::json::sax_parse(json.begin(), json.end(), &reader);
    } catch (const nlohmann::json::exception&) {
        parsed = false;
    }
    return reader.shape(parsed);
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
