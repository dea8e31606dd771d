#include "server/chat_template/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "server/chat_template/error.h"
#include "server/chat_template/text.h"

namespace tessera::chat_template {
namespace {

const std::string& EmptyString() {
  static const std::string* empty = new std::string();
  return *empty;
}

void AppendHex(uint32_t value, int digits, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out->push_back(kHex[(value >> shift) & 0xF]);
}

void AppendStringRepr(std::string_view s, std::string* out) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  out->push_back(quote);
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const char32_t c = text::Decode(s, &pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (pos - start == 1 && c >= 0x80) {  // an invalid byte (Python would show a surrogate escape)
      out->append("\\udc");
      AppendHex(c, 2, out);
    } else if (text::IsPrintable(c)) {
      out->append(s.substr(start, pos - start));
    } else if (c < 0x100) {
      out->append("\\x");
      AppendHex(c, 2, out);
    } else if (c < 0x10000) {
      out->append("\\u");
      AppendHex(c, 4, out);
    } else {
      out->append("\\U");
      AppendHex(c, 8, out);
    }
  }
  out->push_back(quote);
}

void AppendJsonNumber(const Value& v, std::string* out) {
  if (v.IsBool()) {
    out->append(v.AsBool() ? "true" : "false");
  } else if (v.IsInt()) {
    out->append(std::to_string(v.AsInt()));
  } else {
    const double d = v.AsDouble();
    if (std::isnan(d)) {
      out->append("NaN");
    } else if (std::isinf(d)) {
      out->append(d > 0 ? "Infinity" : "-Infinity");
    } else {
      out->append(PythonFloatRepr(d));
    }
  }
}

// json.dumps converts non-string keys to strings; our dict keys are strings already.
void AppendJson(const Value& v, const JsonOptions& options, int depth, std::string* out) {
  if (depth > kMaxValueDepth + 8) ThrowTemplateError("tojson: value nested too deeply");
  const bool pretty = options.indent >= 0;
  const std::string item_sep = !options.item_separator.empty() ? options.item_separator : (pretty ? "," : ", ");
  const std::string key_sep = !options.key_separator.empty() ? options.key_separator : ": ";
  auto newline = [&](int level) {
    out->push_back('\n');
    out->append(static_cast<size_t>(options.indent) * static_cast<size_t>(level), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      ThrowTemplateError("Object of type Undefined is not JSON serializable");
    case Value::Kind::kCallable:
      ThrowTemplateError("Object of type function is not JSON serializable");
    case Value::Kind::kNone:
      out->append("null");
      return;
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
      AppendJsonNumber(v, out);
      return;
    case Value::Kind::kString:
      AppendJsonString(v.AsString(), options.ensure_ascii, out);
      return;
    case Value::Kind::kArray: {
      const auto& items = v.Items();
      if (items.empty()) {
        out->append("[]");
        return;
      }
      out->push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out->append(item_sep);
        if (pretty) newline(depth + 1);
        AppendJson(items[i], options, depth + 1, out);
      }
      if (pretty) newline(depth);
      out->push_back(']');
      return;
    }
    case Value::Kind::kObject: {
      if (v.IsNamespace()) ThrowTemplateError("Object of type Namespace is not JSON serializable");
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& entry : v.object_data()->entries) entries.push_back(&entry);
      if (options.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      if (entries.empty()) {
        out->append("{}");
        return;
      }
      out->push_back('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) out->append(item_sep);
        if (pretty) newline(depth + 1);
        AppendJsonString(entries[i]->first, options.ensure_ascii, out);
        out->append(key_sep);
        AppendJson(entries[i]->second, options, depth + 1, out);
      }
      if (pretty) newline(depth);
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

const Value* ObjectData::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ObjectData::Set(std::string key, Value value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

Value Value::Undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.string_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}

Value Value::Float(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.d_ = d;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.string_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

int Value::NestingDepth() const {
  if (kind_ == Kind::kArray) return array_->depth;
  if (kind_ == Kind::kObject && !object_->is_namespace) return object_->depth;
  return 0;
}

Value Value::Array(std::vector<Value> items, bool is_tuple) {
  int depth = 1;
  for (const Value& item : items) depth = std::max(depth, 1 + item.NestingDepth());
  if (depth > kMaxValueDepth)
    ThrowTemplateError("value nested more than " + std::to_string(kMaxValueDepth) + " levels deep");
  Value v;
  v.kind_ = Kind::kArray;
  v.array_ = std::make_shared<ArrayData>();
  v.array_->items = std::move(items);
  v.array_->is_tuple = is_tuple;
  v.array_->depth = depth;
  return v;
}

Value Value::Object(std::shared_ptr<ObjectData> data) {
  int depth = 1;
  for (const auto& entry : data->entries) depth = std::max(depth, 1 + entry.second.NestingDepth());
  if (depth > kMaxValueDepth)
    ThrowTemplateError("value nested more than " + std::to_string(kMaxValueDepth) + " levels deep");
  data->depth = depth;
  Value v;
  v.kind_ = Kind::kObject;
  v.object_ = std::move(data);
  return v;
}

Value Value::EmptyObject() { return Object(std::make_shared<ObjectData>()); }

Value Value::Function(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.callable_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::FromJson(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth)
    ThrowTemplateError("input nested more than " + std::to_string(kMaxValueDepth) + " levels deep");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return None();
    case nlohmann::ordered_json::value_t::boolean:
      return Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        ThrowTemplateError("integer " + std::to_string(u) + " is out of range");
      }
      return Int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return String(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(FromJson(item, depth + 1));
      return Array(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto data = std::make_shared<ObjectData>();
      data->entries.reserve(j.size());
      for (const auto& [key, item] : j.items()) data->entries.emplace_back(key, FromJson(item, depth + 1));
      return Object(std::move(data));
    }
    default:
      return None();  // binary and discarded values have no JSON text form
  }
}

double Value::AsDouble() const {
  switch (kind_) {
    case Kind::kBool:
      return b_ ? 1.0 : 0.0;
    case Kind::kInt:
      return static_cast<double>(i_);
    default:
      return d_;
  }
}

const std::string& Value::undefined_hint() const { return string_ ? *string_ : EmptyString(); }

Value Value::Get(std::string_view key) const {
  if (kind_ == Kind::kObject) {
    if (const Value* found = object_->Find(key)) return *found;
  }
  return Undefined(std::string(key));
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return d_ != 0.0;
    case Kind::kString:
      return !string_->empty();
    case Kind::kArray:
      return !array_->items.empty();
    case Kind::kObject:
      return object_->is_namespace || object_->is_loop || !object_->entries.empty();
    case Kind::kCallable:
      return true;
  }
  return false;
}

void Value::AppendPythonStr(std::string* out) const {
  switch (kind_) {
    case Kind::kUndefined:
      return;
    case Kind::kString:
      out->append(*string_);
      return;
    default:
      AppendPythonRepr(out);
  }
}

void Value::AppendPythonRepr(std::string* out, int depth) const {
  if (depth > kMaxValueDepth + 8) ThrowTemplateError("value nested too deeply to print");
  switch (kind_) {
    case Kind::kUndefined:
      out->append("Undefined");
      return;
    case Kind::kNone:
      out->append("None");
      return;
    case Kind::kBool:
      out->append(b_ ? "True" : "False");
      return;
    case Kind::kInt:
      out->append(std::to_string(i_));
      return;
    case Kind::kFloat:
      out->append(PythonFloatRepr(d_));
      return;
    case Kind::kString:
      AppendStringRepr(*string_, out);
      return;
    case Kind::kArray: {
      out->push_back(array_->is_tuple ? '(' : '[');
      for (size_t i = 0; i < array_->items.size(); ++i) {
        if (i > 0) out->append(", ");
        array_->items[i].AppendPythonRepr(out, depth + 1);
      }
      if (array_->is_tuple && array_->items.size() == 1) out->push_back(',');
      out->push_back(array_->is_tuple ? ')' : ']');
      return;
    }
    case Kind::kObject: {
      if (object_->is_namespace) out->append("<Namespace ");
      out->push_back('{');
      bool first = true;
      for (const auto& [k, v] : object_->entries) {
        if (!first) out->append(", ");
        first = false;
        AppendStringRepr(k, out);
        out->append(": ");
        v.AppendPythonRepr(out, depth + 1);
      }
      out->push_back('}');
      if (object_->is_namespace) out->push_back('>');
      return;
    }
    case Kind::kCallable:
      out->append("<function " + callable_->name + ">");
      return;
  }
}

std::string Value::ToPythonStr() const {
  std::string out;
  AppendPythonStr(&out);
  return out;
}

std::string Value::ToPythonRepr() const {
  std::string out;
  AppendPythonRepr(&out);
  return out;
}

std::string Value::ToJsonString(const JsonOptions& options) const {
  std::string out;
  AppendJson(*this, options, 0, &out);
  return out;
}

nlohmann::ordered_json Value::ToJson() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
    case Kind::kCallable:
      return nullptr;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_;
    case Kind::kFloat:
      return d_;
    case Kind::kString:
      return *string_;
    case Kind::kArray: {
      auto arr = nlohmann::ordered_json::array();
      for (const auto& item : array_->items) arr.push_back(item.ToJson());
      return arr;
    }
    case Kind::kObject: {
      auto obj = nlohmann::ordered_json::object();
      for (const auto& [k, v] : object_->entries) obj[k] = v.ToJson();
      return obj;
    }
  }
  return nullptr;
}

bool Value::Equals(const Value& other, int depth) const {
  if (depth > kMaxValueDepth + 8) ThrowTemplateError("values nested too deeply to compare");
  if (IsNumber() && other.IsNumber()) {
    if ((IsInt() || IsBool()) && (other.IsInt() || other.IsBool())) return AsInt() == other.AsInt();
    return AsDouble() == other.AsDouble();
  }
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return *string_ == *other.string_;
    case Kind::kArray: {
      if (array_->is_tuple != other.array_->is_tuple) return false;
      const auto& a = array_->items;
      const auto& b = other.array_->items;
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].Equals(b[i], depth + 1)) return false;
      }
      return true;
    }
    case Kind::kObject: {
      if (object_->is_namespace || other.object_->is_namespace) return object_ == other.object_;
      const auto& a = object_->entries;
      const auto& b = other.object_->entries;
      if (a.size() != b.size()) return false;
      for (const auto& [k, v] : a) {
        const Value* found = other.object_->Find(k);
        if (found == nullptr || !v.Equals(*found, depth + 1)) return false;
      }
      return true;
    }
    case Kind::kCallable:
      return callable_ == other.callable_;
    default:
      return false;
  }
}

std::string Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kArray:
      return array_->is_tuple ? "tuple" : "list";
    case Kind::kObject:
      return object_->is_namespace ? "Namespace" : (object_->is_loop ? "LoopContext" : "dict");
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

std::string PythonFloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, result.ptr);
  // sci looks like "-1.2345e+16" or "5e-05".
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out = sign;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out += digits;
      out.append(static_cast<size_t>(exponent) + 1 - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(exponent) + 1);
      out += '.';
      out += digits.substr(static_cast<size_t>(exponent) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  out += exp_buf;
  return out;
}

void AppendJsonString(std::string_view s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const char32_t c = text::Decode(s, &pos);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            out->append("\\u");
            AppendHex(0xD800 + (v >> 10), 4, out);
            out->append("\\u");
            AppendHex(0xDC00 + (v & 0x3FF), 4, out);
          } else {
            out->append("\\u");
            AppendHex(c, 4, out);
          }
        } else {
          out->append(s.substr(start, pos - start));
        }
    }
  }
  out->push_back('"');
}

}  // namespace tessera::chat_template
