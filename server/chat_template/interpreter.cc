#include "server/chat_template/interpreter.h"

#include <cmath>
#include <limits>
#include <utility>

#include "server/chat_template/builtins.h"
#include "server/chat_template/text.h"

namespace tessera::chat_template {
namespace {

[[noreturn]] void ThrowUndefined(const Value& v) {
  if (v.undefined_hint().empty()) ThrowTemplateError("value is undefined");
  ThrowTemplateError("'" + v.undefined_hint() + "' is undefined");
}

void RequireDefined(const Value& v) {
  if (v.IsUndefined()) ThrowUndefined(v);
}

std::string OperandTypes(const char* op, const Value& a, const Value& b) {
  return std::string("unsupported operand type(s) for ") + op + ": '" + a.TypeName() + "' and '" + b.TypeName() + "'";
}

bool IsIntLike(const Value& v) { return v.IsInt() || v.IsBool(); }

int64_t CheckedInt(__int128 v) {
  if (v > std::numeric_limits<int64_t>::max() || v < std::numeric_limits<int64_t>::min()) {
    ThrowTemplateError("integer overflow");
  }
  return static_cast<int64_t>(v);
}

// Python floor division and modulo on integers.
int64_t FloorDiv(int64_t a, int64_t b) {
  if (b == 0) ThrowTemplateError("integer division or modulo by zero");
  if (a == std::numeric_limits<int64_t>::min() && b == -1) ThrowTemplateError("integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t FloorMod(int64_t a, int64_t b) {
  if (b == 0) ThrowTemplateError("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double PyFloatMod(double a, double b) {
  if (b == 0) ThrowTemplateError("float modulo");
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// Python ordering for < <= > >=: numbers, strings and sequences of those.
int CompareOrder(const Value& a, const Value& b, const char* op) {
  if (a.IsNumber() && b.IsNumber()) {
    if (IsIntLike(a) && IsIntLike(b)) return a.AsInt() < b.AsInt() ? -1 : (a.AsInt() > b.AsInt() ? 1 : 0);
    const double x = a.AsDouble();
    const double y = b.AsDouble();
    if (std::isnan(x) || std::isnan(y)) return 2;  // every comparison false
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.IsString() && b.IsString()) {
    const int c = a.AsString().compare(b.AsString());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.IsArray() && b.IsArray() && a.IsTuple() == b.IsTuple()) {
    const auto& x = a.Items();
    const auto& y = b.Items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!x[i].Equals(y[i])) return CompareOrder(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.IsUndefined()) ThrowUndefined(a);
  if (b.IsUndefined()) ThrowUndefined(b);
  ThrowTemplateError(std::string("'") + op + "' not supported between instances of '" + a.TypeName() + "' and '" +
                     b.TypeName() + "'");
}

}  // namespace

std::string ToStr(const Value& v) { return v.ToPythonStr(); }

void Interpreter::Step() {
  if (++steps_ > limits_.max_steps) {
    throw RenderError(ErrorKind::kResourceExhausted,
                      "template exceeded the step limit (" + std::to_string(limits_.max_steps) + ")");
  }
}

void Interpreter::CheckValueSize(size_t bytes) {
  if (bytes > limits_.max_value_bytes) {
    throw RenderError(ErrorKind::kResourceExhausted,
                      "template built a value larger than " + std::to_string(limits_.max_value_bytes) + " bytes");
  }
  steps_ += static_cast<int64_t>(bytes / 256);
  Step();
}

void Interpreter::Emit(std::string_view text) {
  if (out_->size() + text.size() > limits_.max_output_bytes) {
    throw RenderError(ErrorKind::kResourceExhausted,
                      "rendered prompt exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
  out_->append(text);
  steps_ += static_cast<int64_t>(text.size() / 256);
}

std::string Interpreter::Render(const TemplateAst& ast, const Value& context) {
  globals_ = std::make_shared<Scope>();
  InstallGlobals(&globals_->vars);
  auto root = std::make_shared<Scope>();
  root->parent = globals_;
  if (context.IsObject()) {
    for (const auto& [k, v] : context.object_data()->entries) root->vars[k] = v;
  }
  scope_ = root;
  captured_scopes_.push_back(root);
  std::string output;
  out_ = &output;
  try {
    ExecBody(ast.body);
  } catch (...) {
    ReleaseAll();
    throw;
  }
  ReleaseAll();
  return output;
}

void Interpreter::ReleaseAll() {
  out_ = nullptr;
  scope_.reset();
  // The vectors keep every namespace and scope alive while their contents are dropped, so no
  // destructor recurses through a long chain of them.
  for (auto& ns : namespaces_) ns->entries.clear();
  for (auto& scope : captured_scopes_) {
    scope->vars.clear();
    scope->parent.reset();
  }
  namespaces_.clear();
  captured_scopes_.clear();
  globals_.reset();
}

Value Interpreter::Lookup(const std::string& name) const {
  for (const Scope* s = scope_.get(); s != nullptr; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  return Value::Undefined(name);
}

void Interpreter::SetLocal(const std::string& name, Value value) { scope_->vars[name] = std::move(value); }

std::string Interpreter::Capture(const Body& body) {
  std::string captured;
  std::string* saved = out_;
  out_ = &captured;
  try {
    ExecBody(body);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return captured;
}

Interpreter::Flow Interpreter::ExecBody(const Body& body) {
  for (const auto& stmt : body) {
    const Flow flow = Exec(*stmt);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::Exec(const Stmt& stmt) {
  Step();
  try {
    switch (stmt.kind) {
      case Stmt::Kind::kText:
        Emit(stmt.text);
        return Flow::kNormal;
      case Stmt::Kind::kPrint: {
        const Value v = Eval(*stmt.expr);
        if (v.IsString()) {
          Emit(v.AsString());
        } else {
          Emit(ToStr(v));
        }
        return Flow::kNormal;
      }
      case Stmt::Kind::kIf:
        for (size_t i = 0; i < stmt.conditions.size(); ++i) {
          if (Eval(*stmt.conditions[i]).Truthy()) return ExecBody(stmt.bodies[i]);
        }
        return ExecBody(stmt.else_body);
      case Stmt::Kind::kFor:
        return ExecFor(stmt);
      case Stmt::Kind::kSet:
      case Stmt::Kind::kSetBlock:
        ExecSet(stmt);
        return Flow::kNormal;
      case Stmt::Kind::kMacro:
        SetLocal(stmt.name, MakeMacro(stmt, scope_, false));
        return Flow::kNormal;
      case Stmt::Kind::kCallBlock: {
        const Expr& call = *stmt.expr;
        Value callee = Eval(*call.children[0]);
        CallArgs args;
        EvalArgs(call, 1, &args);
        args.keyword.emplace_back("caller", MakeMacro(stmt, scope_, true));
        const Value result = Call(callee, args);
        Emit(ToStr(result));
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock: {
        Value body = Value::String(Capture(stmt.bodies[0]));
        // Apply the filter chain innermost first: the chain was parsed with a null input.
        std::vector<const Expr*> chain;
        for (const Expr* e = stmt.expr.get(); e != nullptr; e = e->children[0].get()) chain.push_back(e);
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
          CallArgs args;
          EvalArgs(**it, 1, &args);
          body = ApplyFilter((*it)->name, body, args);
        }
        Emit(ToStr(body));
        return Flow::kNormal;
      }
      case Stmt::Kind::kWith: {
        std::vector<Value> values;
        for (const auto& e : stmt.with_values) values.push_back(Eval(*e));
        auto inner = std::make_shared<Scope>();
        inner->parent = scope_;
        auto saved = scope_;
        scope_ = inner;
        Flow flow = Flow::kNormal;
        try {
          for (size_t i = 0; i < values.size(); ++i) Assign(stmt.with_targets[i], values[i], stmt);
          flow = ExecBody(stmt.bodies[0]);
        } catch (...) {
          scope_ = saved;
          throw;
        }
        scope_ = saved;
        return flow;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kScope:
        return ExecBody(stmt.bodies[0]);
    }
  } catch (RenderError& e) {
    e.AddLocation(stmt.line, stmt.column);
    throw;
  }
  return Flow::kNormal;
}

void Interpreter::Assign(const AssignTarget& target, const Value& value, const Stmt& stmt) {
  if (!target.attribute.empty()) {
    const Value ns = Lookup(target.names[0]);
    if (!ns.IsNamespace()) ThrowTemplateError("can't assign attribute on non-namespace object");
    if (!target.attribute.empty() && target.attribute[0] == '_') {
      ThrowTemplateError("Chat templates cannot store underscore-prefixed attributes on a namespace");
    }
    ns.object_data()->Set(target.attribute, value);
    return;
  }
  if (!target.is_tuple) {
    SetLocal(target.names[0], value);
    return;
  }
  std::vector<Value> items;
  if (value.IsArray()) {
    items = value.Items();
  } else if (value.IsString()) {
    const std::string& s = value.AsString();
    const auto offsets = text::CodePointOffsets(s);
    for (size_t i = 0; i + 1 < offsets.size(); ++i)
      items.push_back(Value::String(s.substr(offsets[i], offsets[i + 1] - offsets[i])));
  } else if (value.IsObject() && !value.IsNamespace()) {
    for (const auto& [k, v] : value.object_data()->entries) items.push_back(Value::String(k));
  } else {
    ThrowTemplateError("cannot unpack non-iterable " + value.TypeName() + " object");
  }
  if (items.size() != target.names.size()) {
    ThrowTemplateError(items.size() > target.names.size()
                           ? "too many values to unpack (expected " + std::to_string(target.names.size()) + ")"
                           : "not enough values to unpack (expected " + std::to_string(target.names.size()) + ", got " +
                                 std::to_string(items.size()) + ")");
  }
  for (size_t i = 0; i < items.size(); ++i) SetLocal(target.names[i], items[i]);
  (void)stmt;
}

void Interpreter::ExecSet(const Stmt& stmt) {
  if (stmt.kind == Stmt::Kind::kSet) {
    Assign(stmt.target, Eval(*stmt.expr), stmt);
    return;
  }
  Value body = Value::String(Capture(stmt.bodies[0]));
  if (stmt.expr) {
    std::vector<const Expr*> chain;
    for (const Expr* e = stmt.expr.get(); e != nullptr; e = e->children[0].get()) chain.push_back(e);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      CallArgs args;
      EvalArgs(**it, 1, &args);
      body = ApplyFilter((*it)->name, body, args);
    }
  }
  Assign(stmt.target, body, stmt);
}

Interpreter::Flow Interpreter::ExecFor(const Stmt& stmt) {
  const Value iterable = Eval(*stmt.expr);
  std::vector<Value> items = IterableItems(iterable);
  // A loop filter (`for x in xs if cond`) runs before the loop: loop.length counts what passes.
  if (stmt.loop_filter) {
    std::vector<Value> kept;
    auto saved = scope_;
    auto probe = std::make_shared<Scope>();
    probe->parent = saved;
    scope_ = probe;
    try {
      for (const Value& item : items) {
        probe->vars.clear();
        Assign(stmt.target, item, stmt);
        if (Eval(*stmt.loop_filter).Truthy()) kept.push_back(item);
      }
    } catch (...) {
      scope_ = saved;
      throw;
    }
    scope_ = saved;
    items = std::move(kept);
  }
  if (items.empty()) return ExecBody(stmt.else_body) == Flow::kBreak ? Flow::kBreak : Flow::kNormal;

  auto saved = scope_;
  const int64_t length = static_cast<int64_t>(items.size());
  Flow result = Flow::kNormal;
  try {
    for (int64_t i = 0; i < length; ++i) {
      Step();
      auto iteration = std::make_shared<Scope>();
      iteration->parent = saved;
      scope_ = iteration;
      auto loop = std::make_shared<ObjectData>();
      loop->is_loop = true;
      loop->entries.reserve(12);
      loop->entries.emplace_back("index", Value::Int(i + 1));
      loop->entries.emplace_back("index0", Value::Int(i));
      loop->entries.emplace_back("revindex", Value::Int(length - i));
      loop->entries.emplace_back("revindex0", Value::Int(length - i - 1));
      loop->entries.emplace_back("first", Value::Bool(i == 0));
      loop->entries.emplace_back("last", Value::Bool(i == length - 1));
      loop->entries.emplace_back("length", Value::Int(length));
      loop->entries.emplace_back("depth", Value::Int(1));
      loop->entries.emplace_back("depth0", Value::Int(0));
      loop->entries.emplace_back("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::Undefined("previtem"));
      loop->entries.emplace_back("nextitem",
                                 i + 1 < length ? items[static_cast<size_t>(i + 1)] : Value::Undefined("nextitem"));
      loop->entries.emplace_back("cycle", Value::Function("cycle", [i](Interpreter&, CallArgs& args) {
                                   if (args.positional.empty()) ThrowTemplateError("no items for cycling given");
                                   return args.positional[static_cast<size_t>(i) % args.positional.size()];
                                 }));
      iteration->vars["loop"] = Value::Object(std::move(loop));
      Assign(stmt.target, items[static_cast<size_t>(i)], stmt);
      const Flow flow = ExecBody(stmt.bodies[0]);
      if (flow == Flow::kBreak) break;
    }
  } catch (...) {
    scope_ = saved;
    throw;
  }
  scope_ = saved;
  return result;
}

Value Interpreter::MakeMacro(const Stmt& stmt, std::shared_ptr<Scope> defining_scope, bool is_caller) {
  const Stmt* def = &stmt;
  captured_scopes_.push_back(defining_scope);
  const std::string name = is_caller ? "caller" : stmt.name;
  return Value::Function(name, [def, defining_scope, name](Interpreter& in, CallArgs& args) -> Value {
    if (in.call_depth_ >= in.limits_.max_call_depth) {
      throw RenderError(ErrorKind::kResourceExhausted,
                        "macro calls nested deeper than " + std::to_string(in.limits_.max_call_depth));
    }
    const auto& params = def->params;
    auto frame = std::make_shared<Scope>();
    frame->parent = defining_scope;
    if (args.positional.size() > params.size()) {
      ThrowTemplateError("macro '" + name + "' takes not more than " + std::to_string(params.size()) + " argument(s)");
    }
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      frame->vars[params[i].name] = args.positional[i];
      bound[i] = true;
    }
    for (auto& [key, value] : args.keyword) {
      bool found = false;
      for (size_t i = 0; i < params.size(); ++i) {
        if (params[i].name == key) {
          frame->vars[key] = value;
          bound[i] = true;
          found = true;
        }
      }
      if (!found) {
        if (key == "caller") {
          frame->vars["caller"] = value;
        } else {
          ThrowTemplateError("macro '" + name + "' was invoked with an unknown keyword argument '" + key + "'");
        }
      }
    }
    auto saved_scope = in.scope_;
    in.scope_ = frame;
    ++in.call_depth_;
    std::string result;
    try {
      for (size_t i = 0; i < params.size(); ++i) {
        if (bound[i]) continue;
        frame->vars[params[i].name] =
            params[i].default_value ? in.Eval(*params[i].default_value) : Value::Undefined(params[i].name);
      }
      result = in.Capture(def->bodies[0]);
    } catch (...) {
      --in.call_depth_;
      in.scope_ = saved_scope;
      throw;
    }
    --in.call_depth_;
    in.scope_ = saved_scope;
    return Value::String(std::move(result));
  });
}

void Interpreter::EvalArgs(const Expr& expr, size_t first_child, CallArgs* args) {
  for (size_t i = first_child; i < expr.children.size(); ++i) args->positional.push_back(Eval(*expr.children[i]));
  for (const auto& [key, value] : expr.kwargs) args->keyword.emplace_back(key, Eval(*value));
}

Value Interpreter::Call(const Value& callee, CallArgs& args) {
  if (callee.IsUndefined()) ThrowUndefined(callee);
  if (!callee.IsCallable()) ThrowTemplateError("'" + callee.TypeName() + "' object is not callable");
  return callee.callable().fn(*this, args);
}

Value Interpreter::ApplyFilter(const std::string& name, const Value& input, CallArgs& args) {
  return CallFilter(*this, name, input, args);
}

bool Interpreter::ApplyTest(const std::string& name, const Value& input, CallArgs& args) {
  return CallTest(*this, name, input, args);
}

Value Interpreter::GetAttr(const Value& object, const std::string& name) { return GetAttribute(*this, object, name); }

Value Interpreter::GetItem(const Value& object, const Value& key) { return GetSubscript(*this, object, key); }

Value Interpreter::Eval(const Expr& expr) {
  Step();
  try {
    return EvalInner(expr);
  } catch (RenderError& e) {
    e.AddLocation(expr.line, expr.column);
    throw;
  }
}

Value Interpreter::EvalInner(const Expr& expr) {
  switch (expr.kind) {
    case Expr::Kind::kLiteral:
      return expr.literal;
    case Expr::Kind::kName:
      return Lookup(expr.name);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      std::vector<Value> items;
      items.reserve(expr.children.size());
      for (const auto& c : expr.children) items.push_back(Eval(*c));
      return Value::Array(std::move(items), expr.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      auto data = std::make_shared<ObjectData>();
      for (size_t i = 0; i + 1 < expr.children.size(); i += 2) {
        const Value key = Eval(*expr.children[i]);
        const Value value = Eval(*expr.children[i + 1]);
        if (key.IsUndefined()) ThrowUndefined(key);
        data->Set(key.IsString() ? key.AsString() : ToStr(key), value);
      }
      return Value::Object(std::move(data));
    }
    case Expr::Kind::kGetAttr: {
      const Value object = Eval(*expr.children[0]);
      return GetAttr(object, expr.name);
    }
    case Expr::Kind::kGetItem: {
      const Value object = Eval(*expr.children[0]);
      const Value key = Eval(*expr.children[1]);
      return GetItem(object, key);
    }
    case Expr::Kind::kSlice:
      return EvalSlice(expr);
    case Expr::Kind::kCall: {
      const Value callee = Eval(*expr.children[0]);
      CallArgs args;
      EvalArgs(expr, 1, &args);
      return Call(callee, args);
    }
    case Expr::Kind::kFilter: {
      const Value input = expr.children[0] ? Eval(*expr.children[0]) : Value();
      CallArgs args;
      EvalArgs(expr, 1, &args);
      return ApplyFilter(expr.name, input, args);
    }
    case Expr::Kind::kTest: {
      const Value input = Eval(*expr.children[0]);
      CallArgs args;
      EvalArgs(expr, 1, &args);
      return Value::Bool(ApplyTest(expr.name, input, args));
    }
    case Expr::Kind::kNeg:
    case Expr::Kind::kPos: {
      const Value v = Eval(*expr.children[0]);
      RequireDefined(v);
      if (!v.IsNumber()) {
        ThrowTemplateError(std::string("bad operand type for unary ") + (expr.kind == Expr::Kind::kNeg ? "-" : "+") +
                           ": '" + v.TypeName() + "'");
      }
      if (expr.kind == Expr::Kind::kPos) return v.IsBool() ? Value::Int(v.AsInt()) : v;
      if (v.IsFloat()) return Value::Float(-v.AsDouble());
      return Value::Int(CheckedInt(-static_cast<__int128>(v.AsInt())));
    }
    case Expr::Kind::kNot:
      return Value::Bool(!Eval(*expr.children[0]).Truthy());
    case Expr::Kind::kAnd: {
      Value left = Eval(*expr.children[0]);
      if (!left.Truthy()) return left;
      return Eval(*expr.children[1]);
    }
    case Expr::Kind::kOr: {
      Value left = Eval(*expr.children[0]);
      if (left.Truthy()) return left;
      return Eval(*expr.children[1]);
    }
    case Expr::Kind::kBinary:
      return EvalBinary(expr);
    case Expr::Kind::kCompare:
      return EvalCompare(expr);
    case Expr::Kind::kCondition: {
      if (Eval(*expr.children[1]).Truthy()) return Eval(*expr.children[0]);
      if (expr.children[2]) return Eval(*expr.children[2]);
      return Value::Undefined();
    }
  }
  return Value::Undefined();
}

Value Interpreter::EvalSlice(const Expr& expr) {
  const Value object = Eval(*expr.children[0]);
  auto bound = [&](size_t i) -> std::optional<int64_t> {
    if (!expr.children[i]) return std::nullopt;
    const Value v = Eval(*expr.children[i]);
    if (v.IsNone()) return std::nullopt;
    RequireDefined(v);
    if (!IsIntLike(v)) ThrowTemplateError("slice indices must be integers or None");
    return v.AsInt();
  };
  const auto start = bound(1);
  const auto stop = bound(2);
  const auto step = bound(3);
  return SliceValue(object, start, stop, step);
}

Value Interpreter::EvalBinary(const Expr& expr) {
  const std::string& op = expr.name;
  const Value a = Eval(*expr.children[0]);
  const Value b = Eval(*expr.children[1]);
  if (op == "~") {
    std::string s = ToStr(a);
    s += ToStr(b);
    CheckValueSize(s.size());
    return Value::String(std::move(s));
  }
  RequireDefined(a);
  RequireDefined(b);
  if (op == "+") {
    if (IsIntLike(a) && IsIntLike(b)) return Value::Int(CheckedInt(static_cast<__int128>(a.AsInt()) + b.AsInt()));
    if (a.IsNumber() && b.IsNumber()) return Value::Float(a.AsDouble() + b.AsDouble());
    if (a.IsString() && b.IsString()) {
      CheckValueSize(a.AsString().size() + b.AsString().size());
      std::string s;
      s.reserve(a.AsString().size() + b.AsString().size());
      s += a.AsString();
      s += b.AsString();
      return Value::String(std::move(s));
    }
    if (a.IsArray() && b.IsArray() && a.IsTuple() == b.IsTuple()) {
      CheckValueSize((a.Items().size() + b.Items().size()) * sizeof(Value));
      std::vector<Value> items = a.Items();
      items.insert(items.end(), b.Items().begin(), b.Items().end());
      return Value::Array(std::move(items), a.IsTuple());
    }
    if (a.IsString()) ThrowTemplateError("can only concatenate str (not \"" + b.TypeName() + "\") to str");
    if (a.IsArray())
      ThrowTemplateError("can only concatenate " + a.TypeName() + " (not \"" + b.TypeName() + "\") to " + a.TypeName());
    ThrowTemplateError(OperandTypes("+", a, b));
  }
  if (op == "-") {
    if (IsIntLike(a) && IsIntLike(b)) return Value::Int(CheckedInt(static_cast<__int128>(a.AsInt()) - b.AsInt()));
    if (a.IsNumber() && b.IsNumber()) return Value::Float(a.AsDouble() - b.AsDouble());
    ThrowTemplateError(OperandTypes("-", a, b));
  }
  if (op == "*") {
    if (IsIntLike(a) && IsIntLike(b)) return Value::Int(CheckedInt(static_cast<__int128>(a.AsInt()) * b.AsInt()));
    if (a.IsNumber() && b.IsNumber()) return Value::Float(a.AsDouble() * b.AsDouble());
    const Value* seq = (a.IsString() || a.IsArray()) ? &a : ((b.IsString() || b.IsArray()) ? &b : nullptr);
    const Value* count = seq == &a ? &b : &a;
    if (seq != nullptr && IsIntLike(*count)) {
      const int64_t n = std::max<int64_t>(0, count->AsInt());
      if (seq->IsString()) {
        if (n > 0)
          CheckValueSize(static_cast<size_t>(n) > limits_.max_value_bytes
                             ? limits_.max_value_bytes + 1
                             : seq->AsString().size() * static_cast<size_t>(n));
        std::string s;
        for (int64_t i = 0; i < n; ++i) s += seq->AsString();
        return Value::String(std::move(s));
      }
      if (n > 0)
        CheckValueSize(static_cast<size_t>(n) > limits_.max_value_bytes
                           ? limits_.max_value_bytes + 1
                           : seq->Items().size() * static_cast<size_t>(n) * sizeof(Value));
      std::vector<Value> items;
      for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq->Items().begin(), seq->Items().end());
      return Value::Array(std::move(items), seq->IsTuple());
    }
    ThrowTemplateError(OperandTypes("*", a, b));
  }
  if (op == "/") {
    if (a.IsNumber() && b.IsNumber()) {
      if (b.AsDouble() == 0) ThrowTemplateError("division by zero");
      return Value::Float(a.AsDouble() / b.AsDouble());
    }
    ThrowTemplateError(OperandTypes("/", a, b));
  }
  if (op == "//") {
    if (IsIntLike(a) && IsIntLike(b)) return Value::Int(FloorDiv(a.AsInt(), b.AsInt()));
    if (a.IsNumber() && b.IsNumber()) {
      if (b.AsDouble() == 0) ThrowTemplateError("float floor division by zero");
      return Value::Float(std::floor(a.AsDouble() / b.AsDouble()));
    }
    ThrowTemplateError(OperandTypes("//", a, b));
  }
  if (op == "%") {
    if (IsIntLike(a) && IsIntLike(b)) return Value::Int(FloorMod(a.AsInt(), b.AsInt()));
    if (a.IsNumber() && b.IsNumber()) return Value::Float(PyFloatMod(a.AsDouble(), b.AsDouble()));
    if (a.IsString()) return Value::String(PercentFormat(*this, a.AsString(), b));
    ThrowTemplateError(OperandTypes("%", a, b));
  }
  if (op == "**") {
    if (IsIntLike(a) && IsIntLike(b) && b.AsInt() >= 0) {
      __int128 result = 1;
      __int128 base = a.AsInt();
      int64_t e = b.AsInt();
      while (e > 0) {
        if (e & 1) result = CheckedInt(result * base);
        e >>= 1;
        if (e > 0) base = CheckedInt(base * base);
      }
      return Value::Int(static_cast<int64_t>(result));
    }
    if (a.IsNumber() && b.IsNumber()) return Value::Float(std::pow(a.AsDouble(), b.AsDouble()));
    ThrowTemplateError(OperandTypes("** or pow()", a, b));
  }
  ThrowTemplateError("unknown operator " + op);
}

Value Interpreter::EvalCompare(const Expr& expr) {
  Value left = Eval(*expr.children[0]);
  for (size_t i = 0; i < expr.ops.size(); ++i) {
    const Value right = Eval(*expr.children[i + 1]);
    const std::string& op = expr.ops[i];
    bool result = false;
    if (op == "==") {
      result = left.Equals(right);
    } else if (op == "!=") {
      result = !left.Equals(right);
    } else if (op == "in" || op == "notin") {
      result = Contains(right, left);
      if (op == "notin") result = !result;
    } else {
      const int c = CompareOrder(left, right, op.c_str());
      if (c == 2) {
        result = false;
      } else if (op == "<") {
        result = c < 0;
      } else if (op == "<=") {
        result = c <= 0;
      } else if (op == ">") {
        result = c > 0;
      } else {
        result = c >= 0;
      }
    }
    if (!result) return Value::Bool(false);
    left = right;
  }
  return Value::Bool(true);
}

}  // namespace tessera::chat_template
