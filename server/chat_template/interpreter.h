// Tree-walking evaluator of a parsed chat template with jinja2's runtime semantics as Hugging Face
// configures it (ImmutableSandboxedEnvironment, default Undefined, loopcontrols, HF's globals).
//
// Evaluation throws RenderError; ChatTemplate::Render catches it and returns an absl::Status.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/chat_template/ast.h"
#include "server/chat_template/error.h"
#include "server/chat_template/value.h"

namespace tessera::chat_template {

// Bounds on one render; exceeding any of them is a RESOURCE_EXHAUSTED error, never a crash.
struct RenderLimits {
  int64_t max_steps = 5'000'000;       // statements + expression nodes evaluated
  size_t max_output_bytes = 16 << 20;  // rendered text
  size_t max_value_bytes = 16 << 20;   // any single string or list built by the template
  int max_call_depth = 64;             // nested macro / caller calls
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};

class Interpreter {
 public:
  // `now` is what strftime_now() formats (local time, as Python's datetime.now()).
  Interpreter(const RenderLimits& limits, std::time_t now) : limits_(limits), now_(now) {}

  // Renders `ast` with `context` (an object: messages, tools, add_generation_prompt, ...).
  std::string Render(const TemplateAst& ast, const Value& context);

  // ---- used by the builtins ----
  const RenderLimits& limits() const { return limits_; }
  std::time_t now() const { return now_; }
  void Step();
  // Rejects a value over max_value_bytes and charges one step per 256 bytes built, so that the step
  // limit also bounds the work of string-heavy templates.
  void CheckValueSize(size_t bytes);
  Value Call(const Value& callee, CallArgs& args);
  // Applies a filter or test by name (map('upper'), select('odd'), ...).
  Value ApplyFilter(const std::string& name, const Value& input, CallArgs& args);
  bool ApplyTest(const std::string& name, const Value& input, CallArgs& args);
  // Keeps a namespace() object until the render ends, when every namespace is emptied so that
  // reference cycles through namespaces (ns.self = ns) are broken.
  void TrackNamespace(std::shared_ptr<ObjectData> ns) { namespaces_.push_back(std::move(ns)); }
  // Attribute access with jinja2's sandboxed getattr rules (`a.b`).
  Value GetAttr(const Value& object, const std::string& name);
  // Subscript with jinja2's getitem rules (`a[b]`).
  Value GetItem(const Value& object, const Value& key);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow ExecBody(const Body& body);
  Flow Exec(const Stmt& stmt);
  Value Eval(const Expr& expr);
  Value EvalInner(const Expr& expr);
  Value EvalBinary(const Expr& expr);
  Value EvalCompare(const Expr& expr);
  Value EvalSlice(const Expr& expr);
  void EvalArgs(const Expr& expr, size_t first_child, CallArgs* args);

  Flow ExecFor(const Stmt& stmt);
  void ExecSet(const Stmt& stmt);
  void Assign(const AssignTarget& target, const Value& value, const Stmt& stmt);
  Value MakeMacro(const Stmt& stmt, std::shared_ptr<Scope> defining_scope, bool is_caller);
  std::string Capture(const Body& body);

  Value Lookup(const std::string& name) const;
  void SetLocal(const std::string& name, Value value);
  void Emit(std::string_view text);
  // Empties every namespace and macro-captured scope (breaks reference cycles such as a macro
  // stored in the scope it closes over).
  void ReleaseAll();

  RenderLimits limits_;
  std::time_t now_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  std::string* out_ = nullptr;
  std::shared_ptr<Scope> scope_;
  std::shared_ptr<Scope> globals_;
  std::vector<std::shared_ptr<ObjectData>> namespaces_;
  std::vector<std::shared_ptr<Scope>> captured_scopes_;
};

// Truncating output helper shared by filters: Python str() of a value.
std::string ToStr(const Value& v);

}  // namespace tessera::chat_template
