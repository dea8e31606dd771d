#include "server/chat_template/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "server/chat_template/text.h"

namespace tessera::chat_template {
namespace {

bool IsIntLike(const Value& v) { return v.IsInt() || v.IsBool(); }

std::string RequireString(const Value& v, const std::string& what) {
  if (!v.IsString()) ThrowTemplateError(what + " must be a string, not " + v.TypeName());
  return v.AsString();
}

int64_t RequireInt(const Value& v, const std::string& what) {
  if (!IsIntLike(v)) ThrowTemplateError(what + " must be an integer, not " + v.TypeName());
  return v.AsInt();
}

// Python's index normalization for a single subscript; returns false when out of range.
bool NormalizeIndex(int64_t index, size_t size, size_t* out) {
  const auto n = static_cast<int64_t>(size);
  if (index < 0) index += n;
  if (index < 0 || index >= n) return false;
  *out = static_cast<size_t>(index);
  return true;
}

std::vector<std::string> StringsOf(const Value& v, const std::string& what) {
  std::vector<std::string> out;
  if (v.IsString()) {
    out.push_back(v.AsString());
  } else if (v.IsArray()) {
    for (const auto& item : v.Items()) out.push_back(RequireString(item, what));
  } else {
    ThrowTemplateError(what + " must be str or a tuple of str, not " + v.TypeName());
  }
  return out;
}

// str.format with automatic ({}), numbered ({0}) and named ({name}) fields and no format specs
// beyond an empty one.
std::string StrFormat(const std::string& format, CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '{') {
      if (i + 1 < format.size() && format[i + 1] == '{') {
        out.push_back('{');
        ++i;
        continue;
      }
      const size_t close = format.find('}', i);
      if (close == std::string::npos) ThrowTemplateError("Single '{' encountered in format string");
      std::string field = format.substr(i + 1, close - i - 1);
      std::string spec;
      if (const size_t colon = field.find(':'); colon != std::string::npos) {
        spec = field.substr(colon + 1);
        field = field.substr(0, colon);
      }
      if (!spec.empty()) ThrowTemplateError("format specifications are not supported");
      Value v;
      if (field.empty()) {
        if (auto_index >= args.positional.size()) ThrowTemplateError("Replacement index out of range");
        v = args.positional[auto_index++];
      } else if (std::all_of(field.begin(), field.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        const size_t index = static_cast<size_t>(std::stoul(field));
        if (index >= args.positional.size()) ThrowTemplateError("Replacement index out of range");
        v = args.positional[index];
      } else {
        bool found = false;
        for (const auto& [k, val] : args.keyword) {
          if (k == field) {
            v = val;
            found = true;
          }
        }
        if (!found) ThrowTemplateError("KeyError: '" + field + "'");
      }
      v.AppendPythonStr(&out);
      i = close;
    } else if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') ++i;
      out.push_back('}');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Value StringMethod(Interpreter& in, const std::string& s, const std::string& name, CallArgs& args) {
  auto strings = [](std::vector<std::string> parts) {
    std::vector<Value> items;
    items.reserve(parts.size());
    for (auto& p : parts) items.push_back(Value::String(std::move(p)));
    return Value::Array(std::move(items));
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgBinder b(name, args, {"chars"});
    const Value chars = b.Get(0, Value::None());
    std::string set;
    if (!chars.IsNone()) set = RequireString(chars, "chars");
    return Value::String(
        std::string(text::Strip(s, chars.IsNone() ? nullptr : &set, name != "rstrip", name != "lstrip")));
  }
  if (name == "split" || name == "rsplit") {
    ArgBinder b(name, args, {"sep", "maxsplit"});
    const Value sep = b.Get(0, Value::None());
    const int64_t maxsplit = RequireInt(b.Get(1, Value::Int(-1)), "maxsplit");
    if (sep.IsNone()) return strings(text::Split(s, nullptr, maxsplit, name == "rsplit"));
    const std::string separator = RequireString(sep, "sep");
    if (separator.empty()) ThrowTemplateError("empty separator");
    return strings(text::Split(s, &separator, maxsplit, name == "rsplit"));
  }
  if (name == "startswith" || name == "endswith") {
    ArgBinder b(name, args, {"prefix"});
    for (const std::string& p : StringsOf(b.Get(0), name + " first arg")) {
      if (name == "startswith" ? s.compare(0, p.size(), p) == 0
                               : (s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0)) {
        return Value::Bool(true);
      }
    }
    return Value::Bool(false);
  }
  if (name == "upper") return Value::String(text::Upper(s));
  if (name == "lower") return Value::String(text::Lower(s));
  if (name == "title") return Value::String(text::Title(s));
  if (name == "capitalize") return Value::String(text::Capitalize(s));
  if (name == "replace") {
    ArgBinder b(name, args, {"old", "new", "count"});
    const std::string result = text::Replace(s, RequireString(b.Get(0), "old"), RequireString(b.Get(1), "new"),
                                             RequireInt(b.Get(2, Value::Int(-1)), "count"));
    in.CheckValueSize(result.size());
    return Value::String(result);
  }
  if (name == "format") {
    const std::string result = StrFormat(s, args);
    in.CheckValueSize(result.size());
    return Value::String(result);
  }
  if (name == "join") {
    ArgBinder b(name, args, {"iterable"});
    std::string out;
    bool first = true;
    for (const Value& item : IterableItems(b.Get(0))) {
      if (!first) out += s;
      first = false;
      out += RequireString(item, "sequence item");
      in.CheckValueSize(out.size());
    }
    return Value::String(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ArgBinder b(name, args, {"sub"});
    const std::string sub = RequireString(b.Get(0), "sub");
    if (name == "count") {
      if (sub.empty()) return Value::Int(static_cast<int64_t>(text::CodePointCount(s) + 1));
      int64_t n = 0;
      for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
      return Value::Int(n);
    }
    const size_t pos = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
    if (pos == std::string::npos) {
      if (name == "index" || name == "rindex") ThrowTemplateError("substring not found");
      return Value::Int(-1);
    }
    return Value::Int(static_cast<int64_t>(text::CodePointCount(std::string_view(s).substr(0, pos))));
  }
  if (name == "splitlines") {
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        lines.push_back(s.substr(start, i - start));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) lines.push_back(s.substr(start));
    return strings(std::move(lines));
  }
  auto all_of = [&](auto pred) {
    if (s.empty()) return Value::Bool(false);
    for (size_t pos = 0; pos < s.size();) {
      if (!pred(text::Decode(s, &pos))) return Value::Bool(false);
    }
    return Value::Bool(true);
  };
  if (name == "isdigit") return all_of([](char32_t c) { return c >= '0' && c <= '9'; });
  if (name == "isspace") return all_of([](char32_t c) { return text::IsSpace(c); });
  if (name == "isalpha")
    return all_of([](char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; });
  if (name == "isalnum") {
    return all_of([](char32_t c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
    });
  }
  if (name == "islower") return Value::Bool(text::Lower(s) == s && text::Upper(s) != s);
  if (name == "isupper") return Value::Bool(text::Upper(s) == s && text::Lower(s) != s);
  ThrowTemplateError("'str' object has no attribute '" + name + "'");
}

bool IsStringMethod(const std::string& name) {
  static const char* const kNames[] = {
      "strip", "lstrip",     "rstrip",  "split",   "rsplit",  "startswith", "endswith", "upper",  "lower",
      "title", "capitalize", "replace", "format",  "join",    "find",       "rfind",    "index",  "rindex",
      "count", "splitlines", "isdigit", "isspace", "isalpha", "isalnum",    "islower",  "isupper"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

Value DictItems(const Value& object) {
  std::vector<Value> items;
  for (const auto& [k, v] : object.object_data()->entries) items.push_back(Value::Array({Value::String(k), v}, true));
  return Value::Array(std::move(items));
}

Value DictMethod(const Value& object, const std::string& name, CallArgs& args) {
  const auto& entries = object.object_data()->entries;
  if (name == "items") {
    ArgBinder b(name, args, {});
    return DictItems(object);
  }
  if (name == "keys" || name == "values") {
    ArgBinder b(name, args, {});
    std::vector<Value> items;
    for (const auto& [k, v] : entries) items.push_back(name == "keys" ? Value::String(k) : v);
    return Value::Array(std::move(items));
  }
  if (name == "get") {
    ArgBinder b(name, args, {"key", "default"});
    const Value key = b.Get(0);
    if (key.IsString()) {
      if (const Value* found = object.object_data()->Find(key.AsString())) return *found;
    }
    return b.Get(1, Value::None());
  }
  if (name == "copy") {
    ArgBinder b(name, args, {});
    auto data = std::make_shared<ObjectData>();
    data->entries = entries;
    return Value::Object(std::move(data));
  }
  ThrowTemplateError("'dict' object has no attribute '" + name + "'");
}

Value ListMethod(const Value& list, const std::string& name, CallArgs& args) {
  const auto& items = list.Items();
  if (name == "count") {
    ArgBinder b(name, args, {"value"});
    const Value needle = b.Get(0);
    return Value::Int(std::count_if(items.begin(), items.end(), [&](const Value& v) { return v.Equals(needle); }));
  }
  if (name == "index") {
    ArgBinder b(name, args, {"value"});
    const Value needle = b.Get(0);
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].Equals(needle)) return Value::Int(static_cast<int64_t>(i));
    }
    ThrowTemplateError(needle.ToPythonRepr() + " is not in list");
  }
  if (name == "copy") return Value::Array(items, list.IsTuple());
  ThrowTemplateError("'" + list.TypeName() + "' object has no attribute '" + name + "'");
}

Value Bound(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  return Value::Function(std::move(name), std::move(fn));
}

}  // namespace

ArgBinder::ArgBinder(const std::string& function, CallArgs& args, std::initializer_list<const char*> names)
    : values_(names.size()) {
  if (args.positional.size() > names.size()) {
    ThrowTemplateError(function + "() takes at most " + std::to_string(names.size()) + " argument(s) (" +
                       std::to_string(args.positional.size()) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) values_[i] = args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    for (const char* n : names) {
      if (key == n) break;
      ++i;
    }
    if (i == names.size()) ThrowTemplateError(function + "() got an unexpected keyword argument '" + key + "'");
    if (values_[i]) ThrowTemplateError(function + "() got multiple values for argument '" + key + "'");
    values_[i] = value;
  }
}

Value ArgBinder::Get(size_t index, Value fallback) const {
  if (index < values_.size() && values_[index]) return *values_[index];
  return fallback;
}

bool ArgBinder::Has(size_t index) const { return index < values_.size() && values_[index].has_value(); }

std::vector<Value> IterableItems(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kArray:
      return value.Items();
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = value.AsString();
      const auto offsets = text::CodePointOffsets(s);
      chars.reserve(offsets.size());
      for (size_t i = 0; i + 1 < offsets.size(); ++i)
        chars.push_back(Value::String(s.substr(offsets[i], offsets[i + 1] - offsets[i])));
      return chars;
    }
    case Value::Kind::kObject: {
      if (value.IsNamespace() || value.object_data()->is_loop)
        ThrowTemplateError("'" + value.TypeName() + "' object is not iterable");
      std::vector<Value> keys;
      for (const auto& [k, v] : value.object_data()->entries) keys.push_back(Value::String(k));
      return keys;
    }
    default:
      ThrowTemplateError("'" + value.TypeName() + "' object is not iterable");
  }
}

Value SliceValue(const Value& value, std::optional<int64_t> start, std::optional<int64_t> stop,
                 std::optional<int64_t> step) {
  if (value.IsUndefined()) {
    ThrowTemplateError(value.undefined_hint().empty() ? "value is undefined"
                                                      : "'" + value.undefined_hint() + "' is undefined");
  }
  const int64_t st = step.value_or(1);
  if (st == 0) ThrowTemplateError("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t n = 0;
  if (value.IsString()) {
    offsets = text::CodePointOffsets(value.AsString());
    n = static_cast<int64_t>(offsets.size()) - 1;
  } else if (value.IsArray()) {
    n = static_cast<int64_t>(value.Items().size());
  } else {
    ThrowTemplateError("'" + value.TypeName() + "' object is not subscriptable");
  }
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= n) {
      x = st < 0 ? n - 1 : n;
    }
    return x;
  };
  const int64_t lo = adjust(start, st < 0 ? n - 1 : 0);
  const int64_t hi = adjust(stop, st < 0 ? -1 : n);
  std::vector<int64_t> picks;
  if (st > 0) {
    for (int64_t i = lo; i < hi; i += st) picks.push_back(i);
  } else {
    for (int64_t i = lo; i > hi; i += st) picks.push_back(i);
  }
  if (value.IsString()) {
    const std::string& s = value.AsString();
    std::string out;
    for (int64_t i : picks) {
      const auto k = static_cast<size_t>(i);
      out.append(s, offsets[k], offsets[k + 1] - offsets[k]);
    }
    return Value::String(std::move(out));
  }
  std::vector<Value> items;
  items.reserve(picks.size());
  for (int64_t i : picks) items.push_back(value.Items()[static_cast<size_t>(i)]);
  return Value::Array(std::move(items), value.IsTuple());
}

bool Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.IsString()) ThrowTemplateError("'in <string>' requires string as left operand, not " + item.TypeName());
      return container.AsString().find(item.AsString()) != std::string::npos;
    case Value::Kind::kArray:
      return std::any_of(container.Items().begin(), container.Items().end(),
                         [&](const Value& v) { return v.Equals(item); });
    case Value::Kind::kObject:
      if (container.IsNamespace()) ThrowTemplateError("argument of type 'Namespace' is not iterable");
      return item.IsString() && container.object_data()->Find(item.AsString()) != nullptr;
    default:
      ThrowTemplateError("argument of type '" + container.TypeName() + "' is not iterable");
  }
}

std::string PercentFormat(Interpreter& in, const std::string& format, const Value& args) {
  std::vector<Value> values = args.IsTuple() ? args.Items() : std::vector<Value>{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out.push_back(format[i]);
      continue;
    }
    if (i + 1 >= format.size()) ThrowTemplateError("incomplete format");
    const char conv = format[++i];
    if (conv == '%') {
      out.push_back('%');
      continue;
    }
    if (next >= values.size()) ThrowTemplateError("not enough arguments for format string");
    const Value& v = values[next++];
    switch (conv) {
      case 's':
        v.AppendPythonStr(&out);
        break;
      case 'r':
        v.AppendPythonRepr(&out);
        break;
      case 'd':
      case 'i':
        if (!v.IsNumber()) ThrowTemplateError("%d format: a real number is required, not " + v.TypeName());
        out += std::to_string(v.IsFloat() ? static_cast<int64_t>(v.AsDouble()) : v.AsInt());
        break;
      case 'f': {
        if (!v.IsNumber()) ThrowTemplateError("must be real number, not " + v.TypeName());
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%f", v.AsDouble());
        out += buf;
        break;
      }
      default:
        ThrowTemplateError(std::string("unsupported format character '") + conv + "'");
    }
    in.CheckValueSize(out.size());
  }
  if (next < values.size()) ThrowTemplateError("not all arguments converted during string formatting");
  return out;
}

Value GetAttribute(Interpreter& in, const Value& object, const std::string& name) {
  (void)in;
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      ThrowTemplateError(object.undefined_hint().empty() ? "value is undefined"
                                                         : "'" + object.undefined_hint() + "' is undefined");
    case Value::Kind::kString:
      if (IsStringMethod(name)) {
        const std::string s = object.AsString();
        return Bound(name,
                     [s, name](Interpreter& interp, CallArgs& args) { return StringMethod(interp, s, name, args); });
      }
      return Value::Undefined(name);
    case Value::Kind::kObject: {
      const auto& data = object.object_data();
      if (data->is_namespace || data->is_loop) {
        if (const Value* found = data->Find(name)) return *found;
        return Value::Undefined(name);
      }
      if (name == "items" || name == "keys" || name == "values" || name == "get" || name == "copy") {
        const Value self = object;
        return Bound(name, [self, name](Interpreter&, CallArgs& args) { return DictMethod(self, name, args); });
      }
      // Mutating dict methods are unsafe in the sandbox and read as undefined.
      if (name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" || name == "update") {
        return Value::Undefined(name);
      }
      if (const Value* found = data->Find(name)) return *found;
      return Value::Undefined(name);
    }
    case Value::Kind::kArray:
      if (name == "count" || name == "index" || (name == "copy" && !object.IsTuple())) {
        const Value self = object;
        return Bound(name, [self, name](Interpreter&, CallArgs& args) { return ListMethod(self, name, args); });
      }
      return Value::Undefined(name);
    default:
      return Value::Undefined(name);
  }
}

Value GetSubscript(Interpreter& in, const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      ThrowTemplateError(object.undefined_hint().empty() ? "value is undefined"
                                                         : "'" + object.undefined_hint() + "' is undefined");
    case Value::Kind::kArray:
      if (IsIntLike(key)) {
        size_t index = 0;
        if (NormalizeIndex(key.AsInt(), object.Items().size(), &index)) return object.Items()[index];
        return Value::Undefined();
      }
      break;
    case Value::Kind::kString:
      if (IsIntLike(key)) {
        const std::string& s = object.AsString();
        const auto offsets = text::CodePointOffsets(s);
        size_t index = 0;
        if (NormalizeIndex(key.AsInt(), offsets.size() - 1, &index)) {
          return Value::String(s.substr(offsets[index], offsets[index + 1] - offsets[index]));
        }
        return Value::Undefined();
      }
      break;
    case Value::Kind::kObject: {
      const auto& data = object.object_data();
      if (!data->is_namespace && !data->is_loop && key.IsString()) {
        if (const Value* found = data->Find(key.AsString())) return *found;
      }
      break;
    }
    default:
      break;
  }
  if (key.IsString()) return GetAttribute(in, object, key.AsString());
  return Value::Undefined();
}

void InstallGlobals(std::unordered_map<std::string, Value>* globals) {
  (*globals)["range"] = Value::Function("range", [](Interpreter& in, CallArgs& args) {
    if (!args.keyword.empty()) ThrowTemplateError("range() takes no keyword arguments");
    if (args.positional.empty() || args.positional.size() > 3) ThrowTemplateError("range expected 1 to 3 arguments");
    int64_t start = 0;
    int64_t stop = 0;
    int64_t step = 1;
    if (args.positional.size() == 1) {
      stop = RequireInt(args.positional[0], "range argument");
    } else {
      start = RequireInt(args.positional[0], "range argument");
      stop = RequireInt(args.positional[1], "range argument");
      if (args.positional.size() == 3) step = RequireInt(args.positional[2], "range argument");
    }
    if (step == 0) ThrowTemplateError("range() arg 3 must not be zero");
    const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
    const __int128 count = span <= 0 ? 0 : (span + (step > 0 ? step : -step) - 1) / (step > 0 ? step : -step);
    if (count > 100000) {
      ThrowTemplateError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    in.Step();
    std::vector<Value> items;
    items.reserve(static_cast<size_t>(count));
    for (__int128 i = 0; i < count; ++i) items.push_back(Value::Int(static_cast<int64_t>(start + i * step)));
    return Value::Array(std::move(items));
  });
  auto make_mapping = [](const char* fname, CallArgs& args, bool check_names) {
    auto data = std::make_shared<ObjectData>();
    if (args.positional.size() > 1) ThrowTemplateError(std::string(fname) + " expected at most 1 positional argument");
    if (!args.positional.empty()) {
      const Value& source = args.positional[0];
      if (source.IsObject() && !source.IsNamespace()) {
        data->entries = source.object_data()->entries;
      } else if (source.IsArray()) {
        for (const Value& pair : source.Items()) {
          if (!pair.IsArray() || pair.Items().size() != 2)
            ThrowTemplateError(std::string(fname) + ": sequence elements must be pairs");
          const Value& k = pair.Items()[0];
          data->Set(k.IsString() ? k.AsString() : k.ToPythonStr(), pair.Items()[1]);
        }
      } else {
        ThrowTemplateError(std::string("'") + source.TypeName() + "' object is not iterable");
      }
    }
    for (const auto& [k, v] : args.keyword) data->Set(k, v);
    if (check_names) {
      for (const auto& [k, v] : data->entries) {
        if (!k.empty() && k[0] == '_') {
          ThrowTemplateError("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                             k + "'");
        }
      }
    }
    return data;
  };
  (*globals)["namespace"] = Value::Function("namespace", [make_mapping](Interpreter& in, CallArgs& args) {
    auto data = make_mapping("namespace", args, true);
    data->is_namespace = true;
    in.TrackNamespace(data);
    return Value::Object(std::move(data));
  });
  (*globals)["dict"] = Value::Function("dict", [make_mapping](Interpreter&, CallArgs& args) {
    return Value::Object(make_mapping("dict", args, false));
  });
  (*globals)["raise_exception"] = Value::Function("raise_exception", [](Interpreter&, CallArgs& args) -> Value {
    ArgBinder b("raise_exception", args, {"message"});
    throw RenderError(ErrorKind::kRaised, b.Get(0).ToPythonStr());
  });
  (*globals)["strftime_now"] = Value::Function("strftime_now", [](Interpreter& in, CallArgs& args) {
    ArgBinder b("strftime_now", args, {"format"});
    const std::string format = RequireString(b.Get(0), "format");
    const std::time_t now = in.now();
    std::tm local{};
    localtime_r(&now, &local);
    std::string out(256 + format.size() * 8, '\0');
    const size_t n = format.empty() ? 0 : std::strftime(out.data(), out.size(), format.c_str(), &local);
    out.resize(n);
    return Value::String(std::move(out));
  });
}

}  // namespace tessera::chat_template
