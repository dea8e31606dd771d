// Filters and tests of the chat template runtime (jinja2's builtins plus Hugging Face's tojson).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "server/chat_template/builtins.h"
#include "server/chat_template/text.h"

namespace tessera::chat_template {
namespace {

bool IsIntLike(const Value& v) { return v.IsInt() || v.IsBool(); }

[[noreturn]] void ThrowUndefined(const Value& v) {
  ThrowTemplateError(v.undefined_hint().empty() ? "value is undefined" : "'" + v.undefined_hint() + "' is undefined");
}

int64_t Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(text::CodePointCount(v.AsString()));
    case Value::Kind::kArray:
      return static_cast<int64_t>(v.Items().size());
    case Value::Kind::kObject:
      if (v.IsNamespace() || v.object_data()->is_loop) break;
      return static_cast<int64_t>(v.object_data()->entries.size());
    default:
      break;
  }
  ThrowTemplateError("object of type '" + v.TypeName() + "' has no len()");
}

// Attribute lookup for filters taking attribute= (dotted paths and integer parts allowed).
Value AttributeOf(Interpreter& in, const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = numeric ? in.GetItem(v, Value::Int(std::strtoll(part.c_str(), nullptr, 10)))
                : in.GetItem(v, Value::String(part));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

// Sort/unique key: strings fold case unless case_sensitive.
Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.IsString()) return Value::String(text::Lower(v.AsString()));
  return v;
}

bool LessThan(Interpreter& in, const Value& a, const Value& b) {
  CallArgs args;
  args.positional.push_back(b);
  return in.ApplyTest("lt", a, args);
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// select / reject / selectattr / rejectattr.
Value SelectFilter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  const bool by_attr = name == "selectattr" || name == "rejectattr";
  const bool keep_when = name == "select" || name == "selectattr";
  size_t next = 0;
  std::string attribute;
  if (by_attr) {
    if (args.positional.empty() || !args.positional[0].IsString())
      ThrowTemplateError(name + "() needs an attribute name");
    attribute = args.positional[0].AsString();
    next = 1;
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].IsString()) ThrowTemplateError(name + "() test name must be a string");
    test = args.positional[next].AsString();
    ++next;
  }
  std::vector<Value> kept;
  for (const Value& item : IterableItems(input)) {
    in.Step();
    const Value probe = by_attr ? AttributeOf(in, item, attribute) : item;
    bool ok = false;
    if (test.empty()) {
      ok = probe.Truthy();
    } else {
      CallArgs test_args;
      test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end());
      test_args.keyword = args.keyword;
      ok = in.ApplyTest(test, probe, test_args);
    }
    if (ok == keep_when) kept.push_back(item);
  }
  return Value::Array(std::move(kept));
}

Value ToInt(const Value& v, const Value& fallback, int base) {
  if (v.IsBool()) return Value::Int(v.AsInt());
  if (v.IsInt()) return v;
  if (v.IsFloat()) {
    const double d = v.AsDouble();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::Int(static_cast<int64_t>(d));
  }
  if (v.IsString()) {
    std::string s(text::Strip(v.AsString(), nullptr, true, true));
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (!s.empty()) {
      char* end = nullptr;
      errno = 0;
      const long long parsed = std::strtoll(s.c_str(), &end, base);
      if (errno == 0 && end == s.c_str() + s.size()) return Value::Int(parsed);
      const double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18)
        return Value::Int(static_cast<int64_t>(d));
    }
  }
  return fallback;
}

}  // namespace

Value CallFilter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  in.Step();
  if (name == "tojson") {
    ArgBinder b(name, args, {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonOptions options;
    options.ensure_ascii = b.Get(0, Value::Bool(false)).Truthy();
    const Value indent = b.Get(1, Value::None());
    if (!indent.IsNone()) {
      if (!IsIntLike(indent)) ThrowTemplateError("tojson indent must be an integer");
      options.indent = static_cast<int>(std::clamp<int64_t>(indent.AsInt(), 0, 64));
    }
    const Value separators = b.Get(2, Value::None());
    if (!separators.IsNone()) {
      if (!separators.IsArray() || separators.Items().size() != 2 || !separators.Items()[0].IsString() ||
          !separators.Items()[1].IsString()) {
        ThrowTemplateError("tojson separators must be a pair of strings");
      }
      options.item_separator = separators.Items()[0].AsString();
      options.key_separator = separators.Items()[1].AsString();
    }
    options.sort_keys = b.Get(3, Value::Bool(false)).Truthy();
    std::string out = input.ToJsonString(options);
    in.CheckValueSize(out.size());
    return Value::String(std::move(out));
  }
  if (name == "trim") {
    ArgBinder b(name, args, {"chars"});
    const Value chars = b.Get(0, Value::None());
    const std::string s = ToStr(input);
    if (chars.IsNone()) return Value::String(std::string(text::Strip(s, nullptr, true, true)));
    const std::string set = ToStr(chars);
    return Value::String(std::string(text::Strip(s, &set, true, true)));
  }
  if (name == "upper") return Value::String(text::Upper(ToStr(input)));
  if (name == "lower") return Value::String(text::Lower(ToStr(input)));
  if (name == "capitalize") return Value::String(text::Capitalize(ToStr(input)));
  if (name == "title") return Value::String(text::TitleWords(ToStr(input)));
  if (name == "length" || name == "count") return Value::Int(Length(input));
  if (name == "string") return Value::String(ToStr(input));
  if (name == "safe") return input.IsString() ? input : Value::String(ToStr(input));
  if (name == "escape" || name == "e" || name == "forceescape") return Value::String(HtmlEscape(ToStr(input)));
  if (name == "int") {
    ArgBinder b(name, args, {"default", "base"});
    const Value base = b.Get(1, Value::Int(10));
    if (!IsIntLike(base)) ThrowTemplateError("int base must be an integer");
    return ToInt(input, b.Get(0, Value::Int(0)), static_cast<int>(base.AsInt()));
  }
  if (name == "float") {
    ArgBinder b(name, args, {"default"});
    if (input.IsNumber()) return Value::Float(input.AsDouble());
    if (input.IsString()) {
      const std::string s(text::Strip(input.AsString(), nullptr, true, true));
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size()) return Value::Float(d);
    }
    return b.Get(0, Value::Float(0.0));
  }
  if (name == "list") return Value::Array(IterableItems(input));
  if (name == "join") {
    ArgBinder b(name, args, {"d", "attribute"});
    const std::string sep = ToStr(b.Get(0, Value::String("")));
    const Value attribute = b.Get(1, Value::None());
    std::string out;
    bool first = true;
    for (const Value& item : IterableItems(input)) {
      if (!first) out += sep;
      first = false;
      const Value v = attribute.IsNone() ? item : AttributeOf(in, item, ToStr(attribute));
      v.AppendPythonStr(&out);
      in.CheckValueSize(out.size());
    }
    return Value::String(std::move(out));
  }
  if (name == "default" || name == "d") {
    ArgBinder b(name, args, {"default_value", "boolean"});
    const bool boolean = b.Get(1, Value::Bool(false)).Truthy();
    if (input.IsUndefined() || (boolean && !input.Truthy())) return b.Get(0, Value::String(""));
    return input;
  }
  if (name == "first") {
    if (input.IsUndefined()) ThrowUndefined(input);
    const std::vector<Value> items = IterableItems(input);
    return items.empty() ? Value::Undefined("first") : items.front();
  }
  if (name == "last") {
    if (input.IsUndefined()) ThrowUndefined(input);
    if (input.IsObject()) ThrowTemplateError("'dict' object is not reversible");
    const std::vector<Value> items = IterableItems(input);
    return items.empty() ? Value::Undefined("last") : items.back();
  }
  if (name == "replace") {
    ArgBinder b(name, args, {"old", "new", "count"});
    const Value count = b.Get(2, Value::None());
    const std::string out = text::Replace(ToStr(input), ToStr(b.Get(0)), ToStr(b.Get(1)),
                                          count.IsNone() ? -1 : (IsIntLike(count) ? count.AsInt() : -1));
    in.CheckValueSize(out.size());
    return Value::String(out);
  }
  if (name == "items") {
    if (input.IsUndefined()) return Value::Array({});
    if (!input.IsObject() || input.IsNamespace()) ThrowTemplateError("Can only get item pairs from a mapping.");
    std::vector<Value> items;
    for (const auto& [k, v] : input.object_data()->entries) items.push_back(Value::Array({Value::String(k), v}, true));
    return Value::Array(std::move(items));
  }
  if (name == "dictsort") {
    ArgBinder b(name, args, {"case_sensitive", "by", "reverse"});
    if (!input.IsObject() || input.IsNamespace()) ThrowTemplateError("dictsort: expected a mapping");
    const bool case_sensitive = b.Get(0, Value::Bool(false)).Truthy();
    const bool by_value = ToStr(b.Get(1, Value::String("key"))) == "value";
    std::vector<Value> items;
    for (const auto& [k, v] : input.object_data()->entries) items.push_back(Value::Array({Value::String(k), v}, true));
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return LessThan(in, SortKey(x.Items()[by_value ? 1 : 0], case_sensitive),
                      SortKey(y.Items()[by_value ? 1 : 0], case_sensitive));
    });
    if (b.Get(2, Value::Bool(false)).Truthy()) std::reverse(items.begin(), items.end());
    return Value::Array(std::move(items));
  }
  if (name == "map") {
    std::vector<Value> out;
    const Value* attribute = nullptr;
    const Value* fallback = nullptr;
    for (const auto& [k, v] : args.keyword) {
      if (k == "attribute") attribute = &v;
      if (k == "default") fallback = &v;
    }
    if (attribute != nullptr) {
      for (const Value& item : IterableItems(input)) {
        in.Step();
        Value v = AttributeOf(in, item, ToStr(*attribute));
        if (v.IsUndefined() && fallback != nullptr) v = *fallback;
        out.push_back(std::move(v));
      }
      return Value::Array(std::move(out));
    }
    if (args.positional.empty() || !args.positional[0].IsString())
      ThrowTemplateError("map() needs a filter name or attribute=");
    const std::string filter = args.positional[0].AsString();
    for (const Value& item : IterableItems(input)) {
      CallArgs filter_args;
      filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
      filter_args.keyword = args.keyword;
      out.push_back(in.ApplyFilter(filter, item, filter_args));
    }
    return Value::Array(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    return SelectFilter(in, name, input, args);
  }
  if (name == "unique") {
    ArgBinder b(name, args, {"case_sensitive", "attribute"});
    const bool case_sensitive = b.Get(0, Value::Bool(false)).Truthy();
    const Value attribute = b.Get(1, Value::None());
    std::vector<Value> seen;
    std::vector<Value> out;
    for (const Value& item : IterableItems(input)) {
      in.Step();
      const Value key = SortKey(attribute.IsNone() ? item : AttributeOf(in, item, ToStr(attribute)), case_sensitive);
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.Equals(key); })) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::Array(std::move(out));
  }
  if (name == "sort") {
    ArgBinder b(name, args, {"reverse", "case_sensitive", "attribute"});
    const bool reverse = b.Get(0, Value::Bool(false)).Truthy();
    const bool case_sensitive = b.Get(1, Value::Bool(false)).Truthy();
    const Value attribute = b.Get(2, Value::None());
    std::vector<Value> items = IterableItems(input);
    std::vector<std::pair<Value, Value>> keyed;
    for (const Value& item : items) {
      keyed.emplace_back(SortKey(attribute.IsNone() ? item : AttributeOf(in, item, ToStr(attribute)), case_sensitive),
                         item);
    }
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
      return reverse ? LessThan(in, y.first, x.first) : LessThan(in, x.first, y.first);
    });
    std::vector<Value> out;
    for (auto& [k, v] : keyed) out.push_back(std::move(v));
    return Value::Array(std::move(out));
  }
  if (name == "reverse") {
    if (input.IsString()) return SliceValue(input, std::nullopt, std::nullopt, -1);
    std::vector<Value> items = IterableItems(input);
    std::reverse(items.begin(), items.end());
    return Value::Array(std::move(items));
  }
  if (name == "abs") {
    if (input.IsFloat()) return Value::Float(std::fabs(input.AsDouble()));
    if (IsIntLike(input)) {
      if (input.AsInt() == std::numeric_limits<int64_t>::min()) ThrowTemplateError("integer overflow");
      return Value::Int(std::llabs(input.AsInt()));
    }
    ThrowTemplateError("bad operand type for abs(): '" + input.TypeName() + "'");
  }
  if (name == "round") {
    ArgBinder b(name, args, {"precision", "method"});
    if (!input.IsNumber()) ThrowTemplateError("round: expected a number");
    const int64_t precision = IsIntLike(b.Get(0, Value::Int(0))) ? b.Get(0, Value::Int(0)).AsInt() : 0;
    const std::string method = ToStr(b.Get(1, Value::String("common")));
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = input.AsDouble() * scale;
    double r = 0;
    if (method == "ceil") {
      r = std::ceil(x);
    } else if (method == "floor") {
      r = std::floor(x);
    } else {
      r = std::nearbyint(x);  // Python's round(): halves go to the even neighbour
    }
    return Value::Float(r / scale);
  }
  if (name == "max" || name == "min") {
    ArgBinder b(name, args, {"case_sensitive", "attribute"});
    const bool case_sensitive = b.Get(0, Value::Bool(false)).Truthy();
    const Value attribute = b.Get(1, Value::None());
    const std::vector<Value> items = IterableItems(input);
    if (items.empty()) return Value::Undefined(name);
    size_t best = 0;
    auto key = [&](const Value& v) {
      return SortKey(attribute.IsNone() ? v : AttributeOf(in, v, ToStr(attribute)), case_sensitive);
    };
    for (size_t i = 1; i < items.size(); ++i) {
      const bool better =
          name == "max" ? LessThan(in, key(items[best]), key(items[i])) : LessThan(in, key(items[i]), key(items[best]));
      if (better) best = i;
    }
    return items[best];
  }
  if (name == "sum") {
    ArgBinder b(name, args, {"attribute", "start"});
    const Value attribute = b.Get(0, Value::None());
    Value total = b.Get(1, Value::Int(0));
    for (const Value& item : IterableItems(input)) {
      const Value v = attribute.IsNone() ? item : AttributeOf(in, item, ToStr(attribute));
      if (!v.IsNumber() || !total.IsNumber()) ThrowTemplateError("sum: unsupported operand types");
      total = (IsIntLike(total) && IsIntLike(v)) ? Value::Int(total.AsInt() + v.AsInt())
                                                 : Value::Float(total.AsDouble() + v.AsDouble());
    }
    return total;
  }
  if (name == "indent") {
    ArgBinder b(name, args, {"width", "first", "blank"});
    const Value width = b.Get(0, Value::Int(4));
    const std::string pad = width.IsString()
                                ? width.AsString()
                                : std::string(static_cast<size_t>(std::clamp<int64_t>(width.AsInt(), 0, 256)), ' ');
    const bool first = b.Get(1, Value::Bool(false)).Truthy();
    const bool blank = b.Get(2, Value::Bool(false)).Truthy();
    std::string s = ToStr(input);
    std::string out;
    size_t start = 0;
    bool is_first = true;
    while (start <= s.size()) {
      const size_t nl = s.find('\n', start);
      const std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if ((!is_first || first) && (blank || !line.empty())) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      start = nl + 1;
      is_first = false;
    }
    in.CheckValueSize(out.size());
    return Value::String(std::move(out));
  }
  if (name == "wordcount")
    return Value::Int(static_cast<int64_t>(text::Split(ToStr(input), nullptr, -1, false).size()));
  if (name == "attr") {
    ArgBinder b(name, args, {"name"});
    return in.GetAttr(input, ToStr(b.Get(0)));
  }
  if (name == "batch") {
    ArgBinder b(name, args, {"linecount", "fill_with"});
    const Value count = b.Get(0);
    if (!IsIntLike(count) || count.AsInt() <= 0) ThrowTemplateError("batch: linecount must be a positive integer");
    std::vector<Value> out;
    std::vector<Value> current;
    for (const Value& item : IterableItems(input)) {
      current.push_back(item);
      if (static_cast<int64_t>(current.size()) == count.AsInt()) {
        out.push_back(Value::Array(std::move(current)));
        current.clear();
      }
    }
    if (!current.empty()) {
      if (b.Has(1)) {
        while (static_cast<int64_t>(current.size()) < count.AsInt()) current.push_back(b.Get(1));
      }
      out.push_back(Value::Array(std::move(current)));
    }
    return Value::Array(std::move(out));
  }
  if (name == "pprint") return Value::String(input.ToPythonRepr());
  if (name == "center") {
    ArgBinder b(name, args, {"width"});
    const std::string s = ToStr(input);
    const int64_t width =
        std::clamp<int64_t>(IsIntLike(b.Get(0, Value::Int(80))) ? b.Get(0, Value::Int(80)).AsInt() : 80, 0, 4096);
    const auto len = static_cast<int64_t>(text::CodePointCount(s));
    if (width <= len) return Value::String(s);
    const int64_t total = width - len;
    const int64_t left = total / 2 + (total & width & 1);
    return Value::String(std::string(static_cast<size_t>(left), ' ') + s +
                         std::string(static_cast<size_t>(total - left), ' '));
  }
  ThrowTemplateError("No filter named '" + name + "'.");
}

bool CallTest(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  in.Step();
  auto arg = [&](const char* what) {
    ArgBinder b(name, args, {what});
    return b.Get(0);
  };
  if (name == "defined") return !input.IsUndefined();
  if (name == "undefined") return input.IsUndefined();
  if (name == "none") return input.IsNone();
  if (name == "boolean") return input.IsBool();
  if (name == "false") return input.IsBool() && !input.AsBool();
  if (name == "true") return input.IsBool() && input.AsBool();
  if (name == "integer") return input.IsInt();
  if (name == "float") return input.IsFloat();
  if (name == "number") return input.IsNumber();
  if (name == "string") return input.IsString();
  if (name == "mapping") return input.IsObject() && !input.IsNamespace() && !input.object_data()->is_loop;
  if (name == "iterable") {
    return input.IsUndefined() || input.IsString() || input.IsArray() ||
           (input.IsObject() && !input.IsNamespace() && !input.object_data()->is_loop);
  }
  if (name == "sequence") {
    return input.IsUndefined() || input.IsString() || input.IsArray() ||
           (input.IsObject() && !input.IsNamespace() && !input.object_data()->is_loop);
  }
  if (name == "callable") return input.IsCallable();
  if (name == "escaped") return false;
  if (name == "odd" || name == "even") {
    if (!IsIntLike(input)) ThrowTemplateError("odd/even test needs an integer");
    return (input.AsInt() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const Value d = arg("num");
    if (!IsIntLike(input) || !IsIntLike(d)) ThrowTemplateError("divisibleby needs integers");
    if (d.AsInt() == 0) ThrowTemplateError("integer division or modulo by zero");
    return input.AsInt() % d.AsInt() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return input.Equals(arg("other"));
  if (name == "ne" || name == "!=") return !input.Equals(arg("other"));
  if (name == "lt" || name == "<" || name == "le" || name == "<=" || name == "gt" || name == ">" || name == "ge" ||
      name == ">=" || name == "lessthan" || name == "greaterthan") {
    const Value other = arg("other");
    int c = 0;
    if (input.IsNumber() && other.IsNumber()) {
      const double x = input.AsDouble();
      const double y = other.AsDouble();
      if (IsIntLike(input) && IsIntLike(other)) {
        c = input.AsInt() < other.AsInt() ? -1 : (input.AsInt() > other.AsInt() ? 1 : 0);
      } else {
        if (std::isnan(x) || std::isnan(y)) return false;
        c = x < y ? -1 : (x > y ? 1 : 0);
      }
    } else if (input.IsString() && other.IsString()) {
      const int r = input.AsString().compare(other.AsString());
      c = r < 0 ? -1 : (r > 0 ? 1 : 0);
    } else if (input.IsArray() && other.IsArray()) {
      const auto& x = input.Items();
      const auto& y = other.Items();
      size_t i = 0;
      while (i < x.size() && i < y.size() && x[i].Equals(y[i])) ++i;
      if (i < x.size() && i < y.size()) {
        CallArgs inner;
        inner.positional.push_back(y[i]);
        c = CallTest(in, "lt", x[i], inner) ? -1 : 1;
      } else {
        c = x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
      }
    } else {
      if (input.IsUndefined()) ThrowUndefined(input);
      if (other.IsUndefined()) ThrowUndefined(other);
      ThrowTemplateError("'<' not supported between instances of '" + input.TypeName() + "' and '" + other.TypeName() +
                         "'");
    }
    if (name == "lt" || name == "<" || name == "lessthan") return c < 0;
    if (name == "le" || name == "<=") return c <= 0;
    if (name == "gt" || name == ">" || name == "greaterthan") return c > 0;
    return c >= 0;
  }
  if (name == "in") return Contains(arg("seq"), input);
  if (name == "sameas") {
    const Value other = arg("other");
    if (input.kind() != other.kind()) return false;
    if (input.IsNone() || input.IsUndefined()) return true;
    if (input.IsBool()) return input.AsBool() == other.AsBool();
    if (input.IsObject()) return input.object_data() == other.object_data();
    if (input.IsArray()) return input.array_data() == other.array_data();
    return input.Equals(other);
  }
  if (name == "lower" || name == "upper") {
    if (!input.IsString()) return false;
    const std::string& s = input.AsString();
    return name == "lower" ? (text::Lower(s) == s && text::Upper(s) != s)
                           : (text::Upper(s) == s && text::Lower(s) != s);
  }
  ThrowTemplateError("No test named '" + name + "'.");
}

}  // namespace tessera::chat_template
