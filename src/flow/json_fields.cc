#include "flow/json_fields.h"

namespace mitmd {

using nlohmann::json;

JsonFields::JsonFields(const json& object, std::string path, std::string& error)
    : object_(object), path_(std::move(path)), error_(error) {
  if (!object_.is_object() && !object_.is_null()) {
    Bad(path_.empty() ? "the record" : path_, StrCat("expected an object, got ", object_.type_name()));
  }
}

std::string JsonFields::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : StrCat(path_, ".", key);
}

const json* JsonFields::Find(std::string_view key) const {
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonFields::Require(std::string_view key) {
  if (Has(key)) return true;
  Bad(PathOf(key), "is missing");
  return false;
}

void JsonFields::Bad(std::string_view path, std::string_view what) {
  if (error_.empty()) error_ = StrCat(path, what.starts_with("is ") ? " " : ": ", what);
}

void JsonFields::WrongType(std::string_view key, std::string_view want, const json& got) {
  bool out_of_range = got.is_number() && want.starts_with("an integer");
  Bad(PathOf(key), StrCat("expected ", want, ", got ", out_of_range ? "a number out of range"
                                                                    : got.type_name()));
}

void JsonFields::String(std::string_view key, std::string& out) {
  const json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_string()) return WrongType(key, "a string", *v);
  if (ok()) out = v->get_ref<const std::string&>();
}

void JsonFields::Bool(std::string_view key, bool& out) {
  const json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_boolean()) return WrongType(key, "true or false", *v);
  if (ok()) out = v->get<bool>();
}

void JsonFields::Double(std::string_view key, double& out) {
  const json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_number()) return WrongType(key, "a number", *v);
  if (ok()) out = v->get<double>();
}

void JsonFields::StringList(std::string_view key, std::vector<std::string>& out) {
  const json* arr = Array(key);
  if (arr == nullptr) return;
  std::vector<std::string> list;
  for (size_t i = 0; i < arr->size(); ++i) {
    const json& v = (*arr)[i];
    if (!v.is_string()) return Bad(StrCat(PathOf(key), "[", i, "]"), StrCat("expected a string, got ", v.type_name()));
    list.push_back(v.get_ref<const std::string&>());
  }
  if (ok()) out = std::move(list);
}

void JsonFields::IntList(std::string_view key, std::vector<int>& out) {
  const json* arr = Array(key);
  if (arr == nullptr) return;
  std::vector<int> list;
  for (size_t i = 0; i < arr->size(); ++i) {
    auto n = AsInteger<int>((*arr)[i]);
    if (!n) return Bad(StrCat(PathOf(key), "[", i, "]"), "expected an integer");
    list.push_back(*n);
  }
  if (ok()) out = std::move(list);
}

std::optional<JsonFields> JsonFields::Object(std::string_view key) {
  const json* v = Find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) {
    WrongType(key, "an object", *v);
    return std::nullopt;
  }
  return JsonFields(*v, PathOf(key), error_);
}

const json* JsonFields::Array(std::string_view key) {
  const json* v = Find(key);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    WrongType(key, "an array", *v);
    return nullptr;
  }
  return v;
}

}  // namespace mitmd
