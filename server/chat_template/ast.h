// Syntax tree of a parsed chat template.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/chat_template/value.h"

namespace tessera::chat_template {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,    // literal
    kName,       // name
    kList,       // children: items
    kTuple,      // children: items
    kDict,       // children: key0, value0, key1, value1, ...
    kGetAttr,    // children[0].name
    kGetItem,    // children[0][children[1]]
    kSlice,      // children[0][children[1]:children[2]:children[3]] (null entries are omitted bounds)
    kCall,       // children[0](children[1..], kwargs)
    kFilter,     // children[0] | name(children[1..], kwargs); children[0] is null in {% filter %}
    kTest,       // children[0] is name(children[1..], kwargs)
    kNeg,        // -children[0]
    kPos,        // +children[0]
    kNot,        // not children[0]
    kBinary,     // children[0] name children[1], name in + - * / // % ** ~
    kAnd,        // children[0] and children[1]
    kOr,         // children[0] or children[1]
    kCompare,    // children[0] ops[0] children[1] ops[1] children[2] ...
    kCondition,  // children[0] if children[1] else children[2] (children[2] may be null)
  };

  Kind kind;
  int line = 0;
  int column = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare: "==", "!=", "<", "<=", ">", ">=", "in", "notin"
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Target of set / for / with: one name, a tuple of names, or namespace.attribute.
struct AssignTarget {
  std::vector<std::string> names;  // more than one: tuple unpacking
  std::string attribute;           // non-empty: names[0].attribute (namespace assignment)
  bool is_tuple = false;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  enum class Kind {
    kText,         // text
    kPrint,        // {{ expr }}
    kIf,           // conditions[i] -> bodies[i]; else_body
    kFor,          // for target in expr [if filter] body else else_body
    kSet,          // set target = expr
    kSetBlock,     // set target [| filter] body endset
    kMacro,        // macro name(params) body endmacro
    kCallBlock,    // call(params) expr body endcall
    kFilterBlock,  // filter expr body endfilter
    kWith,         // with targets = values body endwith
    kBreak,
    kContinue,
    kScope,  // a body with no semantics of its own ({% generation %})
  };

  Kind kind;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;         // print, for iterable, set value, call expression, filter (block set / filter)
  ExprPtr loop_filter;  // for ... if <loop_filter>
  AssignTarget target;
  std::vector<AssignTarget> with_targets;
  std::vector<ExprPtr> with_values;
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;  // if: one per condition; everything else: bodies[0]
  Body else_body;
  std::string name;  // macro name
  std::vector<MacroParam> params;
};

struct TemplateAst {
  Body body;
};

}  // namespace tessera::chat_template
