// The value model of the chat template interpreter: the dynamic values a Jinja expression produces,
// with Python's semantics where a template can observe them (str(), repr(), json.dumps, truthiness,
// equality and ordering).
//
//   Value v = Value::FromJson(nlohmann::ordered_json::parse(R"({"a": [1, 2.5, "x"]})"));
//   v.Get("a").ToPythonStr();   // "[1, 2.5, 'x']"
//   v.ToJson(JsonOptions{});    // {"a": [1, 2.5, "x"]}
//
// Lists and dicts from the request are immutable (the sandbox Hugging Face renders in has no
// mutating methods); a namespace() object is the one mutable container.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nlohmann/json.hpp"

namespace tessera::chat_template {

class Value;
class Interpreter;

// Arguments of a call: f(a, b, key=value).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A callable value: a builtin global (range, namespace, raise_exception), a bound string/dict
// method, a macro or a `caller`. Errors are reported by throwing RenderError (see interpreter.h).
struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

// Values nest at most this deep (JSON input and values a template builds); deeper nesting is a
// template error, so recursive printing, comparison and destruction stay within the stack.
inline constexpr int kMaxValueDepth = 256;

struct ArrayData {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;  // 1 + the deepest item
};

// Insertion-ordered string-keyed map (Python dicts keep insertion order and json.dumps writes keys
// in that order).
struct ObjectData {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;
  bool is_loop = false;
  int depth = 1;  // 1 + the deepest value (namespaces, being mutable, count as 1 inside others)

  const Value* Find(std::string_view key) const;
  void Set(std::string key, Value value);
};

struct JsonOptions {
  int indent = -1;  // < 0: one line with ", " and ": " separators, as json.dumps(indent=None)
  bool sort_keys = false;
  bool ensure_ascii = false;
  std::string item_separator;  // empty: the json.dumps default for the indent mode
  std::string key_separator;
};

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kCallable };

  Value() = default;  // undefined
  static Value Undefined(std::string hint = {});
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value Array(std::vector<Value> items, bool is_tuple = false);
  static Value Object(std::shared_ptr<ObjectData> data);
  static Value EmptyObject();
  static Value Function(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);

  // Converts JSON (objects keep their key order). Throws RenderError for numbers that do not fit
  // Python's int range we support (|n| < 2^63).
  static Value FromJson(const nlohmann::ordered_json& j, int depth = 0);

  Kind kind() const { return kind_; }
  bool IsUndefined() const { return kind_ == Kind::kUndefined; }
  bool IsNone() const { return kind_ == Kind::kNone; }
  bool IsBool() const { return kind_ == Kind::kBool; }
  bool IsInt() const { return kind_ == Kind::kInt; }
  bool IsFloat() const { return kind_ == Kind::kFloat; }
  bool IsNumber() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool IsString() const { return kind_ == Kind::kString; }
  bool IsArray() const { return kind_ == Kind::kArray; }
  bool IsTuple() const { return kind_ == Kind::kArray && array_->is_tuple; }
  bool IsObject() const { return kind_ == Kind::kObject; }
  bool IsNamespace() const { return kind_ == Kind::kObject && object_->is_namespace; }
  bool IsCallable() const { return kind_ == Kind::kCallable; }

  bool AsBool() const { return b_; }
  int64_t AsInt() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }
  double AsDouble() const;  // for int, bool and float
  const std::string& AsString() const { return *string_; }
  const std::vector<Value>& Items() const { return array_->items; }
  const std::shared_ptr<ArrayData>& array_data() const { return array_; }
  const std::shared_ptr<ObjectData>& object_data() const { return object_; }
  const Callable& callable() const { return *callable_; }
  const std::string& undefined_hint() const;

  // Member of an object, or an undefined value naming the missing key.
  Value Get(std::string_view key) const;

  // Python truthiness (undefined is false).
  bool Truthy() const;

  // Python str() and repr(); undefined prints as "".
  std::string ToPythonStr() const;
  std::string ToPythonRepr() const;
  void AppendPythonStr(std::string* out) const;
  void AppendPythonRepr(std::string* out, int depth = 0) const;

  // json.dumps with the given options. Throws RenderError for undefined and callables (json.dumps
  // raises TypeError on them).
  std::string ToJsonString(const JsonOptions& options) const;

  // Lossy conversion for host code (tests, tools).
  nlohmann::ordered_json ToJson() const;

  // Python ==.
  bool Equals(const Value& other, int depth = 0) const;
  // Nesting depth of this value as a container item (scalars and namespaces: 0).
  int NestingDepth() const;

  // Short type name as Python reports it ("str", "int", "dict", ...).
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<const std::string> string_;  // string contents, or the undefined hint
  std::shared_ptr<ArrayData> array_;
  std::shared_ptr<ObjectData> object_;
  std::shared_ptr<const Callable> callable_;
};

// Python float repr (shortest round trip; "1e-05", "1e+16", "0.5", "2.0", "inf", "nan").
std::string PythonFloatRepr(double d);

// Appends the JSON form of a string as json.dumps writes it.
void AppendJsonString(std::string_view s, bool ensure_ascii, std::string* out);

}  // namespace tessera::chat_template
