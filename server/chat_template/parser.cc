#include "server/chat_template/parser.h"

#include <charconv>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/chat_template/lexer.h"

namespace tessera::chat_template {
namespace {

struct ParseError : std::exception {
  ParseError(int l, int c, std::string m) : line(l), column(c), message(std::move(m)) {}
  int line;
  int column;
  std::string message;
};

bool IsKeywordName(const Token& t, std::string_view name) { return t.type == Token::Type::kName && t.value == name; }

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  std::shared_ptr<const TemplateAst> Run() {
    auto ast = std::make_shared<TemplateAst>();
    std::string end_tag;
    ast->body = Subparse({}, &end_tag);
    if (Cur().type != Token::Type::kEnd) Fail(Cur(), "unexpected tokens after the template end");
    return ast;
  }

 private:
  // ---- token helpers ------------------------------------------------------------------------
  const Token& Cur() const { return tokens_[pos_]; }
  const Token& Peek(size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& Next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  [[noreturn]] static void Fail(const Token& t, std::string message) {
    throw ParseError(t.line, t.column, std::move(message));
  }

  static std::string Describe(const Token& t) {
    switch (t.type) {
      case Token::Type::kData:
        return "template data";
      case Token::Type::kVarBegin:
        return "'{{'";
      case Token::Type::kVarEnd:
        return "'}}'";
      case Token::Type::kBlockBegin:
        return "'{%'";
      case Token::Type::kBlockEnd:
        return "'%}'";
      case Token::Type::kName:
        return "'" + t.value + "'";
      case Token::Type::kString:
        return "string";
      case Token::Type::kInteger:
      case Token::Type::kFloat:
        return "number";
      case Token::Type::kOperator:
        return "'" + t.value + "'";
      case Token::Type::kEnd:
        return "end of template";
    }
    return "token";
  }

  bool IsOp(std::string_view op) const { return Cur().type == Token::Type::kOperator && Cur().value == op; }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  void ExpectOp(std::string_view op) {
    if (!SkipOp(op)) Fail(Cur(), "expected '" + std::string(op) + "', got " + Describe(Cur()));
  }
  bool IsName(std::string_view name) const { return IsKeywordName(Cur(), name); }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  std::string ExpectName() {
    if (Cur().type != Token::Type::kName) Fail(Cur(), "expected a name, got " + Describe(Cur()));
    return Next().value;
  }
  void ExpectBlockEnd() {
    if (Cur().type != Token::Type::kBlockEnd) Fail(Cur(), "expected '%}', got " + Describe(Cur()));
    Next();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : parser(p) {
      if (++parser->depth_ > kMaxParseDepth) Fail(parser->Cur(), "template nested too deeply");
    }
    ~DepthGuard() { --parser->depth_; }
    Parser* parser;
  };

  ExprPtr MakeExpr(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // ---- statements ---------------------------------------------------------------------------

  // Parses statements until a block tag whose name is in `end_names`; leaves the stream after that
  // name (inside the tag) and stores the name in *end_tag.
  Body Subparse(std::initializer_list<std::string_view> end_names, std::string* end_tag) {
    DepthGuard guard(this);
    Body body;
    while (true) {
      const Token& t = Cur();
      switch (t.type) {
        case Token::Type::kEnd:
          if (end_names.size() != 0) {
            std::string expected;
            for (auto n : end_names) expected += (expected.empty() ? "'" : " or '") + std::string(n) + "'";
            Fail(t, "unexpected end of template, expected " + expected);
          }
          return body;
        case Token::Type::kData: {
          auto s = std::make_unique<Stmt>();
          s->kind = Stmt::Kind::kText;
          s->line = t.line;
          s->column = t.column;
          s->text = t.value;
          body.push_back(std::move(s));
          Next();
          break;
        }
        case Token::Type::kVarBegin: {
          Next();
          auto s = std::make_unique<Stmt>();
          s->kind = Stmt::Kind::kPrint;
          s->line = t.line;
          s->column = t.column;
          s->expr = ParseTuple(true, {});
          if (Cur().type != Token::Type::kVarEnd) Fail(Cur(), "expected '}}', got " + Describe(Cur()));
          Next();
          body.push_back(std::move(s));
          break;
        }
        case Token::Type::kBlockBegin: {
          Next();
          const Token& name = Cur();
          if (name.type != Token::Type::kName) Fail(name, "tag name expected");
          for (auto end : end_names) {
            if (name.value == end) {
              *end_tag = name.value;
              Next();
              return body;
            }
          }
          body.push_back(ParseStatement());
          break;
        }
        default:
          Fail(t, "unexpected " + Describe(t));
      }
    }
  }

  StmtPtr NewStmt(Stmt::Kind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  StmtPtr ParseStatement() {
    const Token& tag = Cur();
    const std::string name = tag.value;
    if (name == "if") return ParseIf();
    if (name == "for") return ParseFor();
    if (name == "set") return ParseSet();
    if (name == "macro") return ParseMacro();
    if (name == "call") return ParseCallBlock();
    if (name == "filter") return ParseFilterBlock();
    if (name == "with") return ParseWith();
    if (name == "generation") {
      auto s = NewStmt(Stmt::Kind::kScope, tag);
      Next();
      ExpectBlockEnd();
      std::string end;
      s->bodies.push_back(Subparse({"endgeneration"}, &end));
      ExpectBlockEnd();
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) Fail(tag, "'" + name + "' outside of a loop");
      auto s = NewStmt(name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, tag);
      Next();
      ExpectBlockEnd();
      return s;
    }
    Fail(tag, "unknown tag '" + name + "'");
  }

  StmtPtr ParseIf() {
    auto s = NewStmt(Stmt::Kind::kIf, Cur());
    Next();
    while (true) {
      s->conditions.push_back(ParseTuple(false, {}));
      ExpectBlockEnd();
      std::string end;
      s->bodies.push_back(Subparse({"elif", "else", "endif"}, &end));
      if (end == "elif") continue;
      if (end == "else") {
        ExpectBlockEnd();
        s->else_body = Subparse({"endif"}, &end);
      }
      ExpectBlockEnd();
      return s;
    }
  }

  AssignTarget ParseAssignTarget(bool with_namespace, std::initializer_list<std::string_view> extra_end) {
    AssignTarget target;
    if (with_namespace && Cur().type == Token::Type::kName && Peek().type == Token::Type::kOperator &&
        Peek().value == ".") {
      target.names.push_back(Next().value);
      Next();
      target.attribute = ExpectName();
      return target;
    }
    const bool parenthesized = SkipOp("(");
    while (true) {
      target.names.push_back(ExpectName());
      if (!SkipOp(",")) break;
      target.is_tuple = true;
      bool end = parenthesized ? IsOp(")") : (Cur().type == Token::Type::kBlockEnd || IsOp("="));
      for (auto e : extra_end) end = end || IsName(e);
      if (end) break;
    }
    if (parenthesized) {
      ExpectOp(")");
      target.is_tuple = target.is_tuple || target.names.size() > 1;
    }
    for (const auto& n : target.names) {
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None") {
        Fail(Cur(), "cannot assign to '" + n + "'");
      }
    }
    return target;
  }

  StmtPtr ParseFor() {
    auto s = NewStmt(Stmt::Kind::kFor, Cur());
    Next();
    s->target = ParseAssignTarget(false, {"in"});
    if (!SkipName("in")) Fail(Cur(), "expected 'in', got " + Describe(Cur()));
    s->expr = ParseTuple(false, {"recursive"});
    if (SkipName("if")) s->loop_filter = ParseExpression(true);
    if (IsName("recursive")) Fail(Cur(), "recursive loops are not supported");
    ExpectBlockEnd();
    std::string end;
    ++loop_depth_;
    s->bodies.push_back(Subparse({"endfor", "else"}, &end));
    --loop_depth_;
    if (end == "else") {
      ExpectBlockEnd();
      const int saved = loop_depth_;
      loop_depth_ = 0;
      s->else_body = Subparse({"endfor"}, &end);
      loop_depth_ = saved;
    }
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseSet() {
    const Token& tag = Cur();
    Next();
    AssignTarget target = ParseAssignTarget(true, {});
    if (SkipOp("=")) {
      auto s = NewStmt(Stmt::Kind::kSet, tag);
      s->target = std::move(target);
      s->expr = ParseTuple(true, {});
      ExpectBlockEnd();
      return s;
    }
    auto s = NewStmt(Stmt::Kind::kSetBlock, tag);
    s->target = std::move(target);
    if (IsOp("|")) s->expr = ParseFilterChain(nullptr);
    ExpectBlockEnd();
    std::string end;
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->bodies.push_back(Subparse({"endset"}, &end));
    loop_depth_ = saved;
    ExpectBlockEnd();
    return s;
  }

  void ParseParams(std::vector<MacroParam>* params) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!params->empty()) ExpectOp(",");
      if (IsOp(")")) break;
      MacroParam p;
      p.name = ExpectName();
      if (SkipOp("=")) {
        p.default_value = ParseExpression(true);
      } else if (!params->empty() && params->back().default_value) {
        Fail(Cur(), "non-default argument follows default argument");
      }
      params->push_back(std::move(p));
    }
    ExpectOp(")");
  }

  StmtPtr ParseMacro() {
    auto s = NewStmt(Stmt::Kind::kMacro, Cur());
    Next();
    s->name = ExpectName();
    ParseParams(&s->params);
    ExpectBlockEnd();
    std::string end;
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->bodies.push_back(Subparse({"endmacro"}, &end));
    loop_depth_ = saved;
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseCallBlock() {
    auto s = NewStmt(Stmt::Kind::kCallBlock, Cur());
    Next();
    if (IsOp("(")) ParseParams(&s->params);
    s->expr = ParseExpression(true);
    if (s->expr->kind != Expr::Kind::kCall) Fail(Cur(), "expected a call expression in call block");
    ExpectBlockEnd();
    std::string end;
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->bodies.push_back(Subparse({"endcall"}, &end));
    loop_depth_ = saved;
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseFilterBlock() {
    auto s = NewStmt(Stmt::Kind::kFilterBlock, Cur());
    Next();
    if (Cur().type != Token::Type::kName) Fail(Cur(), "expected a filter name");
    s->expr = ParseFilterChain(nullptr, /*first_without_pipe=*/true);
    ExpectBlockEnd();
    std::string end;
    s->bodies.push_back(Subparse({"endfilter"}, &end));
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseWith() {
    auto s = NewStmt(Stmt::Kind::kWith, Cur());
    Next();
    while (Cur().type != Token::Type::kBlockEnd) {
      if (!s->with_targets.empty()) ExpectOp(",");
      AssignTarget target = ParseAssignTarget(false, {});
      ExpectOp("=");
      s->with_targets.push_back(std::move(target));
      s->with_values.push_back(ParseExpression(true));
    }
    ExpectBlockEnd();
    std::string end;
    s->bodies.push_back(Subparse({"endwith"}, &end));
    ExpectBlockEnd();
    return s;
  }

  // ---- expressions --------------------------------------------------------------------------

  bool IsTupleEnd(std::initializer_list<std::string_view> extra_end) const {
    const Token& t = Cur();
    if (t.type == Token::Type::kVarEnd || t.type == Token::Type::kBlockEnd || t.type == Token::Type::kEnd) return true;
    if (t.type == Token::Type::kOperator && t.value == ")") return true;
    for (auto e : extra_end) {
      if (IsKeywordName(t, e)) return true;
    }
    return false;
  }

  ExprPtr ParseTuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                     bool explicit_parens = false) {
    const Token& start = Cur();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) {
        if (!SkipOp(",")) break;
        is_tuple = true;
      }
      if (IsTupleEnd(extra_end)) break;
      items.push_back(with_condexpr ? ParseExpression(true) : ParseOr());
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) Fail(Cur(), "expected an expression, got " + Describe(Cur()));
    }
    auto e = MakeExpr(Expr::Kind::kTuple, start);
    e->children = std::move(items);
    return e;
  }

  ExprPtr ParseExpression(bool with_condexpr) { return with_condexpr ? ParseCondExpr() : ParseOr(); }

  ExprPtr ParseCondExpr() {
    DepthGuard guard(this);
    const Token& start = Cur();
    ExprPtr expr1 = ParseOr();
    while (SkipName("if")) {
      ExprPtr expr2 = ParseOr();
      ExprPtr expr3;
      if (SkipName("else")) expr3 = ParseCondExpr();
      auto e = MakeExpr(Expr::Kind::kCondition, start);
      e->children.push_back(std::move(expr1));
      e->children.push_back(std::move(expr2));
      e->children.push_back(std::move(expr3));
      expr1 = std::move(e);
    }
    return expr1;
  }

  ExprPtr Binary(Expr::Kind kind, const Token& at, ExprPtr left, ExprPtr right, std::string op = {}) {
    auto e = MakeExpr(kind, at);
    e->name = std::move(op);
    e->children.push_back(std::move(left));
    e->children.push_back(std::move(right));
    return e;
  }

  ExprPtr ParseOr() {
    DepthGuard guard(this);
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      const Token& at = Next();
      left = Binary(Expr::Kind::kOr, at, std::move(left), ParseAnd());
    }
    return left;
  }

  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      const Token& at = Next();
      left = Binary(Expr::Kind::kAnd, at, std::move(left), ParseNot());
    }
    return left;
  }

  ExprPtr ParseNot() {
    DepthGuard guard(this);
    if (IsName("not")) {
      const Token& at = Next();
      auto e = MakeExpr(Expr::Kind::kNot, at);
      e->children.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    const Token& start = Cur();
    ExprPtr first = ParseMath1();
    ExprPtr compare;
    while (true) {
      std::string op;
      if (Cur().type == Token::Type::kOperator && (Cur().value == "==" || Cur().value == "!=" || Cur().value == "<" ||
                                                   Cur().value == "<=" || Cur().value == ">" || Cur().value == ">=")) {
        op = Next().value;
      } else if (SkipName("in")) {
        op = "in";
      } else if (IsName("not") && IsKeywordName(Peek(), "in")) {
        Next();
        Next();
        op = "notin";
      } else {
        break;
      }
      if (!compare) {
        compare = MakeExpr(Expr::Kind::kCompare, start);
        compare->children.push_back(std::move(first));
      }
      compare->ops.push_back(op);
      compare->children.push_back(ParseMath1());
    }
    return compare ? std::move(compare) : std::move(first);
  }

  ExprPtr ParseMath1() {
    ExprPtr left = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      const Token& at = Next();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParseConcat(), at.value);
    }
    return left;
  }

  ExprPtr ParseConcat() {
    ExprPtr left = ParseMath2();
    while (IsOp("~")) {
      const Token& at = Next();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParseMath2(), "~");
    }
    return left;
  }

  ExprPtr ParseMath2() {
    ExprPtr left = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const Token& at = Next();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParsePow(), at.value);
    }
    return left;
  }

  ExprPtr ParsePow() {
    ExprPtr left = ParseUnary(true);
    while (IsOp("**")) {
      const Token& at = Next();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParseUnary(true), "**");
    }
    return left;
  }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const Token& at = Next();
      node = MakeExpr(at.value == "-" ? Expr::Kind::kNeg : Expr::Kind::kPos, at);
      node->children.push_back(ParseUnary(false));
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterExpr(std::move(node));
    return node;
  }

  ExprPtr ParsePrimary() {
    DepthGuard guard(this);
    const Token& t = Cur();
    switch (t.type) {
      case Token::Type::kName: {
        Next();
        auto e = MakeExpr(Expr::Kind::kLiteral, t);
        if (t.value == "true" || t.value == "True") {
          e->literal = Value::Bool(true);
        } else if (t.value == "false" || t.value == "False") {
          e->literal = Value::Bool(false);
        } else if (t.value == "none" || t.value == "None") {
          e->literal = Value::None();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.value;
        }
        return e;
      }
      case Token::Type::kString: {
        std::string s;
        while (Cur().type == Token::Type::kString) s += Next().value;
        auto e = MakeExpr(Expr::Kind::kLiteral, t);
        e->literal = Value::String(std::move(s));
        return e;
      }
      case Token::Type::kInteger: {
        Next();
        auto e = MakeExpr(Expr::Kind::kLiteral, t);
        int base = 10;
        std::string_view digits = t.value;
        if (digits.size() > 2 && digits[0] == '0') {
          const char b = static_cast<char>(digits[1] | 0x20);
          base = b == 'x' ? 16 : (b == 'o' ? 8 : (b == 'b' ? 2 : 10));
          if (base != 10) digits.remove_prefix(2);
        }
        int64_t value = 0;
        const auto result = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
        if (result.ec != std::errc() || result.ptr != digits.data() + digits.size())
          Fail(t, "integer literal out of range");
        e->literal = Value::Int(value);
        return e;
      }
      case Token::Type::kFloat: {
        Next();
        auto e = MakeExpr(Expr::Kind::kLiteral, t);
        e->literal = Value::Float(std::strtod(t.value.c_str(), nullptr));
        return e;
      }
      case Token::Type::kOperator:
        if (t.value == "(") {
          Next();
          ExprPtr e = ParseTuple(true, {}, /*explicit_parens=*/true);
          ExpectOp(")");
          return e;
        }
        if (t.value == "[") {
          Next();
          auto e = MakeExpr(Expr::Kind::kList, t);
          while (!IsOp("]")) {
            if (!e->children.empty()) ExpectOp(",");
            if (IsOp("]")) break;
            e->children.push_back(ParseExpression(true));
          }
          ExpectOp("]");
          return e;
        }
        if (t.value == "{") {
          Next();
          auto e = MakeExpr(Expr::Kind::kDict, t);
          while (!IsOp("}")) {
            if (!e->children.empty()) ExpectOp(",");
            if (IsOp("}")) break;
            e->children.push_back(ParseExpression(true));
            ExpectOp(":");
            e->children.push_back(ParseExpression(true));
          }
          ExpectOp("}");
          return e;
        }
        break;
      default:
        break;
    }
    Fail(t, "unexpected " + Describe(t));
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".") || IsOp("[")) {
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        node = ParseFilterChain(std::move(node));
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr node) {
    DepthGuard guard(this);
    const Token& at = Next();
    if (at.value == ".") {
      const Token& attr = Cur();
      if (attr.type == Token::Type::kName) {
        Next();
        auto e = MakeExpr(Expr::Kind::kGetAttr, attr);
        e->name = attr.value;
        e->children.push_back(std::move(node));
        return e;
      }
      if (attr.type == Token::Type::kInteger) {
        Next();
        auto e = MakeExpr(Expr::Kind::kGetItem, attr);
        auto index = MakeExpr(Expr::Kind::kLiteral, attr);
        index->literal = Value::Int(std::strtoll(attr.value.c_str(), nullptr, 10));
        e->children.push_back(std::move(node));
        e->children.push_back(std::move(index));
        return e;
      }
      Fail(attr, "expected name or number after '.'");
    }
    // '[' subscript: an index, a slice, or a tuple of them.
    std::vector<ExprPtr> args;
    while (!IsOp("]")) {
      if (!args.empty()) {
        ExpectOp(",");
        if (IsOp("]")) break;
      }
      args.push_back(ParseSubscribed());
    }
    ExpectOp("]");
    if (args.empty()) Fail(at, "expected subscript expression");
    ExprPtr index;
    if (args.size() == 1) {
      index = std::move(args[0]);
    } else {
      index = MakeExpr(Expr::Kind::kTuple, at);
      index->children = std::move(args);
    }
    if (index->kind == Expr::Kind::kSlice) {
      index->children[0] = std::move(node);
      return index;
    }
    auto e = MakeExpr(Expr::Kind::kGetItem, at);
    e->children.push_back(std::move(node));
    e->children.push_back(std::move(index));
    return e;
  }

  // One subscript argument: an expression or a slice a:b:c. A slice is returned as kSlice with a
  // null children[0] placeholder for the sliced object.
  ExprPtr ParseSubscribed() {
    const Token& at = Cur();
    ExprPtr start;
    if (!IsOp(":")) {
      start = ParseExpression(true);
      if (!IsOp(":")) return start;
    }
    Next();  // ':'
    auto slice = MakeExpr(Expr::Kind::kSlice, at);
    slice->children.push_back(nullptr);
    slice->children.push_back(std::move(start));
    ExprPtr stop;
    if (!IsOp("]") && !IsOp(",") && !IsOp(":")) stop = ParseExpression(true);
    ExprPtr step;
    if (SkipOp(":")) {
      if (!IsOp("]") && !IsOp(",")) step = ParseExpression(true);
    }
    slice->children.push_back(std::move(stop));
    slice->children.push_back(std::move(step));
    return slice;
  }

  void ParseCallArgs(Expr* e) {
    ExpectOp("(");
    bool first = true;
    while (!IsOp(")")) {
      if (!first) {
        ExpectOp(",");
        if (IsOp(")")) break;
      }
      first = false;
      if (IsOp("*") || IsOp("**")) Fail(Cur(), "*args and **kwargs are not supported");
      if (Cur().type == Token::Type::kName && Peek().type == Token::Type::kOperator && Peek().value == "=") {
        std::string key = Next().value;
        Next();
        e->kwargs.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!e->kwargs.empty()) Fail(Cur(), "positional argument follows keyword argument");
        e->children.push_back(ParseExpression(true));
      }
    }
    ExpectOp(")");
  }

  ExprPtr ParseCall(ExprPtr node) {
    DepthGuard guard(this);
    auto e = MakeExpr(Expr::Kind::kCall, Cur());
    e->children.push_back(std::move(node));
    ParseCallArgs(e.get());
    return e;
  }

  ExprPtr ParseFilterChain(ExprPtr node, bool first_without_pipe = false) {
    DepthGuard guard(this);
    bool first = true;
    while (IsOp("|") || (first && first_without_pipe)) {
      if (!(first && first_without_pipe)) Next();
      first = false;
      const Token& name_token = Cur();
      std::string name = ExpectName();
      while (IsOp(".")) {
        Next();
        name += "." + ExpectName();
      }
      auto e = MakeExpr(Expr::Kind::kFilter, name_token);
      e->name = std::move(name);
      e->children.push_back(std::move(node));
      if (IsOp("(")) ParseCallArgs(e.get());
      node = std::move(e);
    }
    return node;
  }

  ExprPtr ParseTest(ExprPtr node) {
    DepthGuard guard(this);
    Next();  // 'is'
    const bool negated = SkipName("not");
    const Token& name_token = Cur();
    std::string name = ExpectName();
    while (IsOp(".")) {
      Next();
      name += "." + ExpectName();
    }
    auto e = MakeExpr(Expr::Kind::kTest, name_token);
    e->name = std::move(name);
    e->children.push_back(std::move(node));
    const Token& t = Cur();
    if (IsOp("(")) {
      ParseCallArgs(e.get());
    } else if ((t.type == Token::Type::kName || t.type == Token::Type::kString || t.type == Token::Type::kInteger ||
                t.type == Token::Type::kFloat || IsOp("[") || IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and")) {
      if (IsName("is")) Fail(t, "You cannot chain multiple tests with is");
      e->children.push_back(ParsePostfix(ParsePrimary()));
    }
    if (!negated) return e;
    auto n = MakeExpr(Expr::Kind::kNot, name_token);
    n->children.push_back(std::move(e));
    return n;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const TemplateAst>> ParseTemplate(std::string_view source) {
  auto tokens = Tokenize(source);
  if (!tokens.ok()) return tokens.status();
  try {
    Parser parser(*std::move(tokens));
    return parser.Run();
  } catch (const ParseError& e) {
    return absl::InvalidArgumentError(absl::StrCat(e.line, ":", e.column, ": ", e.message));
  }
}

}  // namespace tessera::chat_template
