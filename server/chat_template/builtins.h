// Builtins of the chat template runtime: globals (range, namespace, dict, raise_exception,
// strftime_now), attribute and subscript rules, str/dict/list methods, and the filters and tests.
// All of them report errors by throwing RenderError.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/chat_template/interpreter.h"
#include "server/chat_template/value.h"

namespace tessera::chat_template {

void InstallGlobals(std::unordered_map<std::string, Value>* globals);

// What `for x in value` iterates: list/tuple items, dict keys, string characters; undefined is
// empty. Anything else is an error.
std::vector<Value> IterableItems(const Value& value);

// value[start:stop:step] on lists, tuples and strings (code points).
Value SliceValue(const Value& value, std::optional<int64_t> start, std::optional<int64_t> stop,
                 std::optional<int64_t> step);

// `item in container`.
bool Contains(const Value& container, const Value& item);

// `format % args` (printf-style %s %d %i %r %f %x %%).
std::string PercentFormat(Interpreter& in, const std::string& format, const Value& args);

Value GetAttribute(Interpreter& in, const Value& object, const std::string& name);
Value GetSubscript(Interpreter& in, const Value& object, const Value& key);

Value CallFilter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);
bool CallTest(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);

// Binds positional and keyword arguments to parameter names (Python call semantics); a missing
// argument takes its default. Throws on unknown keywords or too many positionals.
class ArgBinder {
 public:
  ArgBinder(const std::string& function, CallArgs& args, std::initializer_list<const char*> names);
  // Value of parameter `index`, or `fallback` when not given.
  Value Get(size_t index, Value fallback = Value()) const;
  bool Has(size_t index) const;

 private:
  std::vector<std::optional<Value>> values_;
};

}  // namespace tessera::chat_template
