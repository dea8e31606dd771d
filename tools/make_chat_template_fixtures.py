#!/usr/bin/env python3
"""Renders the chat templates in tests/fixtures/chat_templates/ with Python jinja2, set up exactly as
transformers' apply_chat_template sets it up, over a fixed set of conversations, and writes the
expected prompts (or the expected errors) to tests/fixtures/chat_templates/expected.json.

The C++ test (tests/unit/server/chat_template/chat_template_parity_test.cc) renders the same
conversations with tessera_chat_template and compares byte for byte.

Reference environment (transformers/utils/chat_template_utils.py, _cached_compile_jinja_template):
  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
  filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=indent, separators=..., sort_keys=...)
  globals: raise_exception (TemplateError), strftime_now, dict, namespace (no "_" attributes)
and apply_chat_template's context: special tokens, messages (None-valued keys dropped, reasoning
fields aliased), tools (None when absent), documents=None, add_generation_prompt, extra kwargs.

Needs only jinja2 (tools/requirements-test.txt). When transformers is importable too, every output
is also checked against transformers' own render_jinja_template.

  .venv/bin/python tools/make_chat_template_fixtures.py
"""

import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "chat_templates")

# Seconds since the epoch that strftime_now() formats: 2024-07-26 12:00:00 UTC, the same calendar
# day in every time zone from UTC-11 to UTC+11.
FIXED_NOW = 1721995200

# Special tokens as the models' tokenizer_config.json declares them (transformers passes the
# non-None ones as template variables).
TEMPLATES = {
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2_5": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen3": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "mistral_instruct": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>",
                "pad_token": "<|im_end|>"},
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location — °C or °F",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "top_k": {"type": "integer", "default": 5},
                           "threshold": {"type": "number", "default": 0.25}},
            "required": ["query"],
        },
    },
}


def call(name, arguments, wrapped=True, call_id=None):
    fn = {"name": name, "arguments": arguments}
    if not wrapped:
        return fn
    out = {"type": "function", "function": fn}
    if call_id:
        out = {"id": call_id, **out}
    return out


U = lambda c: {"role": "user", "content": c}  # noqa: E731
A = lambda c: {"role": "assistant", "content": c}  # noqa: E731
S = lambda c: {"role": "system", "content": c}  # noqa: E731

CONVERSATIONS = [
    {"name": "user_only_gen", "messages": [U("Hello, who are you?")], "add_generation_prompt": True},
    {"name": "user_only_nogen", "messages": [U("Hello, who are you?")], "add_generation_prompt": False},
    {"name": "system_user_gen", "messages": [S("You are a pirate."), U("Say hi.")], "add_generation_prompt": True},
    {"name": "multi_turn_gen",
     "messages": [S("Be brief."), U("What is 2+2?"), A("4."), U("And 3+3?")], "add_generation_prompt": True},
    {"name": "multi_turn_ends_assistant",
     "messages": [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke."), A("Why did the chicken cross the road?")],
     "add_generation_prompt": False},
    {"name": "unicode",
     "messages": [S("Réponds en français 🇫🇷."), U("日本語で答えて。Привет! مرحبا 👋🏽 naïve café"), A("はい、わかりました 😊"), U("Ω≈ç√∫˜µ≤≥÷")],
     "add_generation_prompt": True},
    {"name": "empty_user_content", "messages": [U("")], "add_generation_prompt": True},
    {"name": "empty_assistant_content", "messages": [U("Say nothing."), A(""), U("Thanks")], "add_generation_prompt": True},
    {"name": "whitespace_content",
     "messages": [S("  \n System with spaces \n\n"), U("\n\n  indented question?  \n"), A("   "), U("\tTabs\t")],
     "add_generation_prompt": True},
    {"name": "template_like_text",
     "messages": [U("Render {{ this }} and {% that %} and {# not a comment #} with 'quotes' \"double\" \\backslash\\")],
     "add_generation_prompt": True},
    {"name": "crlf_content", "messages": [U("line one\r\nline two\rline three\n")], "add_generation_prompt": True},
    {"name": "long_conversation",
     "messages": [S("Count.")] + [m for i in range(6) for m in (U(f"n={i}"), A(f"{i + 1}"))] + [U("next")],
     "add_generation_prompt": True},
    {"name": "tools_user", "messages": [U("What's the weather in Paris?")], "tools": [WEATHER_TOOL],
     "add_generation_prompt": True},
    {"name": "tools_system_user", "messages": [S("You are a weather bot."), U("Weather in Tokyo?")],
     "tools": [WEATHER_TOOL, SEARCH_TOOL], "add_generation_prompt": True},
    {"name": "tool_call_and_result",
     "messages": [U("What's the weather in Paris?"),
                  {"role": "assistant", "content": None,
                   "tool_calls": [call("get_current_weather", {"location": "Paris, France", "unit": "celsius"}, True, "call_1")]},
                  {"role": "tool", "tool_call_id": "call_1", "name": "get_current_weather", "content": "{\"temperature\": 22, \"unit\": \"celsius\"}"}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    {"name": "tool_call_unwrapped_with_content",
     "messages": [U("Search for cats"),
                  {"role": "assistant", "content": "Let me search.", "tool_calls": [call("search", {"query": "cats", "top_k": 3}, False)]},
                  {"role": "tool", "content": "Cats are small carnivorous mammals."},
                  A("Cats are small carnivorous mammals.")],
     "tools": [SEARCH_TOOL], "add_generation_prompt": False},
    {"name": "parallel_tool_calls",
     "messages": [U("Weather in Paris and Rome?"),
                  {"role": "assistant", "content": "",
                   "tool_calls": [call("get_current_weather", {"location": "Paris"}), call("get_current_weather", {"location": "Rome"})]},
                  {"role": "tool", "content": "sunny"},
                  {"role": "tool", "content": "rainy"}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    {"name": "tool_arguments_string",
     "messages": [U("Search dogs"),
                  {"role": "assistant", "content": None, "tool_calls": [call("search", "{\"query\": \"dogs\"}")]},
                  {"role": "tool", "content": "Dogs bark."}],
     "tools": [SEARCH_TOOL], "add_generation_prompt": True},
    {"name": "tool_arguments_numbers",
     "messages": [U("Search with numbers"),
                  {"role": "assistant", "content": None,
                   "tool_calls": [call("search", {"query": "x", "top_k": 10, "threshold": 1e-05, "big": 12345678901234,
                                                  "ratio": 3.0, "flag": True, "none": None, "nested": {"a": [1, 2.5, "ü"]}})]},
                  {"role": "tool", "content": "ok"}],
     "tools": [SEARCH_TOOL], "add_generation_prompt": True},
    {"name": "multi_step_tools",
     "messages": [U("Plan a trip"),
                  {"role": "assistant", "content": "", "tool_calls": [call("search", {"query": "flights"})]},
                  {"role": "tool", "content": "Flight AB123"},
                  {"role": "assistant", "content": "", "tool_calls": [call("search", {"query": "hotels"})]},
                  {"role": "tool", "content": "Hotel Z"},
                  A("Book flight AB123 and Hotel Z.")],
     "tools": [SEARCH_TOOL], "add_generation_prompt": False},
    {"name": "empty_tools_list", "messages": [U("No tools here")], "tools": [], "add_generation_prompt": True},
    {"name": "think_in_content",
     "messages": [U("What is 1+1?"), A("<think>\nSimple arithmetic.\n</think>\n\n2"), U("And 2+2?")],
     "add_generation_prompt": True},
    {"name": "think_last_assistant",
     "messages": [U("What is 1+1?"), A("<think>\nSimple arithmetic.\n</think>\n\nIt is 2.")],
     "add_generation_prompt": False},
    {"name": "reasoning_content_field",
     "messages": [U("Why is the sky blue?"),
                  {"role": "assistant", "content": "Rayleigh scattering.", "reasoning_content": "Think about light."}],
     "add_generation_prompt": False},
    {"name": "enable_thinking_false", "messages": [U("Quick answer please")], "add_generation_prompt": True,
     "kwargs": {"enable_thinking": False}},
    {"name": "tool_response_user_message",
     "messages": [U("Start"), A("ok"), U("<tool_response>\nresult\n</tool_response>"), A("<think>x</think>done")],
     "add_generation_prompt": False},
    {"name": "date_string_kwarg", "messages": [U("What day is it?")], "add_generation_prompt": True,
     "kwargs": {"date_string": "01 Jan 2030"}},
    {"name": "tools_in_system_prompt", "messages": [S("Sys."), U("Use a tool")], "tools": [WEATHER_TOOL],
     "add_generation_prompt": True, "kwargs": {"tools_in_user_message": False}},
    {"name": "builtin_tools_ipython",
     "messages": [U("Search the web for jinja"),
                  {"role": "assistant", "content": None, "tool_calls": [call("brave_search", {"query": "jinja"})]},
                  {"role": "ipython", "content": "Jinja is a template engine."}],
     "add_generation_prompt": True, "kwargs": {"builtin_tools": ["brave_search", "wolfram_alpha"]}},
    {"name": "tool_result_structured",
     "messages": [U("Weather?"),
                  {"role": "assistant", "content": None, "tool_calls": [call("get_current_weather", {"location": "Oslo"})]},
                  {"role": "tool", "content": ""}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    {"name": "error_two_users", "messages": [U("first"), U("second")], "add_generation_prompt": True},
    {"name": "error_assistant_first", "messages": [A("I start"), U("ok")], "add_generation_prompt": True},
    {"name": "system_only_with_tools", "messages": [S("Only a system prompt")], "tools": [WEATHER_TOOL],
     "add_generation_prompt": True},
    {"name": "system_mid_conversation",
     "messages": [U("Hi"), A("Hello"), S("New instructions: be formal."), U("Greetings")], "add_generation_prompt": True},
    {"name": "extra_message_fields",
     "messages": [{"role": "user", "content": "Hi", "name": "alice", "metadata": {"k": "v"}}, A("Hello alice")],
     "add_generation_prompt": True},
]


# Small templates, one language feature each, rendered by the same environment into
# features.json. Each entry: (name, template, context).
FEATURES = [
    ("text_only", "plain text\n", {}),
    ("trailing_newline_dropped", "a\n", {}),
    ("two_trailing_newlines", "a\n\n", {}),
    ("crlf_source", "a\r\nb\rc\n", {}),
    ("print_var", "{{ x }}", {"x": "hi"}),
    ("print_int_float_bool_none", "{{ 1 }} {{ 2.5 }} {{ true }} {{ none }} {{ 1e16 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ 1e15 }}", {}),
    ("print_list_dict_repr", "{{ [1, 'a', none, true, 1.5, {'k': 'v'}] }} {{ (1, 2) }} {{ (1,) }} {{ ['it\\'s', 'a\"b', 'a\\nb'] }}", {}),
    ("undefined_prints_empty", "[{{ missing }}][{{ d.missing }}]", {"d": {}}),
    ("comment", "a{# comment #}b", {}),
    ("whitespace_minus", "a  {{- 'b' -}}  c {%- if true -%}  d  {%- endif -%}  e", {}),
    ("whitespace_plus", "x\n  {%+ if true %}y{% endif +%}\nz", {}),
    ("trim_blocks", "{% if true %}\nline\n{% endif %}\nend", {}),
    ("lstrip_blocks", "  {% if true %}\n    keep\n  {% endif %}\n  {{ 'var' }}\n", {}),
    ("lstrip_comment", "  {# c #}\nA\n  {{ 1 }}\n", {}),
    ("raw_block", "{% raw %}{{ not rendered }}{% endraw %}", {}),
    ("if_elif_else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %};{% endfor %}", {}),
    ("for_loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {}),
    ("for_previtem_nextitem", "{% for a in [1, 2, 3] %}{{ loop.previtem }}<{{ a }}>{{ loop.nextitem }};{% endfor %}", {}),
    ("for_else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}", {}),
    ("for_dict_keys", "{% for k in d %}{{ k }};{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("for_items_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("for_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("for_nested_loop", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("loop_cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("set_scoping_loop", "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("set_in_if_leaks", "{% if true %}{% set y = 3 %}{% endif %}{{ y }}", {}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 3, 4 %}{{ c }}", {}),
    ("set_block", "{% set body %}Hello {{ name }}!{% endset %}[{{ body }}]", {"name": "Bob"}),
    ("set_block_filter", "{% set body | upper %}hello{% endset %}{{ body }}", {}),
    ("namespace", "{% set ns = namespace(a=1, b='x') %}{% for i in [1, 2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}", {}),
    ("macro_defaults", "{% macro m(a, b='q', c=none) %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }} {{ m(1, 2) }} {{ m(1, c=3) }}", {}),
    ("macro_sees_globals", "{% macro m() %}{{ y }}{% endmacro %}{% set y = 5 %}{{ m() }}", {}),
    ("macro_call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}),
    ("macro_call_block_args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) each([1, 2]) %}[{{ v }}]{% endcall %}", {}),
    ("filter_block", "{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("arith", "{{ 1 + 2 }} {{ 7 - 10 }} {{ 3 * 4 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}),
    ("unary", "{{ -x }} {{ +x }} {{ -1.5 }} {{ - 2 ** 2 }} {{ -x | abs }}", {"x": 3}),
    ("concat_tilde", "{{ 'a' ~ 1 ~ none ~ true ~ [1] }}", {}),
    ("string_ops", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 2 * 'xy' }} {{ [1, 2] + [3] }} {{ [0] * 3 }} {{ '%s-%d' % ('a', 3) }}", {}),
    ("comparison", "{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 'a' < 'b' }} {{ 2 >= 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ [1, 2] < [1, 3] }} {{ none == none }}", {}),
    ("logic", "{{ true and 'x' }} {{ 0 or 'fallback' }} {{ not 0 }} {{ 1 and 0 }} {{ '' or [] }} {{ not (1 == 1) }}", {}),
    ("in_not_in", "{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in d }} {{ 'z' not in d }} {{ 3 not in [1] }}", {"d": {"k": 1}}),
    ("is_tests", "{{ x is defined }} {{ y is undefined }} {{ n is none }} {{ 's' is string }} {{ d is mapping }} {{ [1] is iterable }} {{ 1 is number }} {{ [] is sequence }} {{ true is boolean }} {{ 1 is integer }} {{ 1.0 is float }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'a' is eq 'a' }} {{ 'a' is equalto 'b' }} {{ 2 is in [1, 2] }} {{ x is not none }} {{ n is sameas none }} {{ 'abc' is lower }} {{ 5 is gt 3 }} {{ 5 is lt(3) }} {{ true is true }} {{ false is false }}", {"x": 1, "n": None, "d": {}}),
    ("undefined_tests", "{{ u is sequence }} {{ u is iterable }} {{ 1 in u }} {{ u == u2 }} {{ u is mapping }} {{ u is string }} {{ u | length }} {{ u is none }}", {}),
    ("conditional_expr", "{{ 'yes' if x else 'no' }} {{ 'a' if false }}|{{ 1 if none is none else 2 }}", {"x": 1}),
    ("attribute_vs_item", "{{ d.a }} {{ d['a'] }} {{ d.items is defined }} {{ d['items'] }} {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ l[0] }} {{ l.0 }} {{ l[-1] }} {{ l[9] }}|", {"d": {"a": 1, "items": 3}, "l": [1, 2]}),
    ("dict_methods", "{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ d | length }}", {"d": {"x": 1, "y": [2]}}),
    ("list_dict_literals", "{{ [1, [2, 3], {'a': (4, 5)}] }} {{ {'k': 'v', 'n': none}['k'] }} {{ {} }} {{ [] }} {{ () }}", {}),
    ("slicing", "{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[5:] }} {{ s[1:3] }} {{ s[::-1] }} {{ 'héllo'[1] }} {{ 'héllo'[::-1] }} {{ l[3:0:-1] }}", {"l": [1, 2, 3, 4], "s": "abcdef"}),
    ("string_methods", "{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  l'.lstrip() }}|{{ 'r  '.rstrip() }}|{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a-b-c'.rsplit('-', 1) }}", {}),
    ("string_methods2", "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'aBc'.upper() }} {{ 'aBc'.lower() }} {{ 'a-b'.replace('-', '+') }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ '{} and {x}'.format(1, x=2) }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ ', '.join(['a', 'b']) }} {{ 'banana'.count('a') }} {{ 'banana'.find('n') }} {{ 'a\\nb'.splitlines() }}", {}),
    ("unicode_case", "{{ 'straße'.upper() }} {{ 'ÉCOLE'.lower() }} {{ 'ǆemal'.title() }} {{ 'ΣΑΣ'.lower() }} {{ 'éa'|capitalize }}", {}),
    ("filters_basic", "{{ '  hi  ' | trim }}|{{ 'abc' | upper }} {{ 'ABC' | lower }} {{ 'abc' | length }} {{ [1, 2] | count }} {{ 5 | string }} {{ '42' | int + 1 }} {{ 'x' | int }} {{ '3.7' | int }} {{ 3.7 | int }} {{ '2.5' | float }} {{ 'ab' | list }} {{ [3, 1] | first }} {{ [3, 1] | last }} {{ 'abc' | first }}", {}),
    ("filter_default", "{{ u | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ none | d('x') }} {{ 0 | default(5, boolean=true) }}", {}),
    ("filter_join_replace", "{{ [1, 2, 3] | join(', ') }} {{ ['a', 'b'] | join }} {{ 'aaa' | replace('a', 'b', 2) }} {{ users | join(',', attribute='name') }}", {"users": [{"name": "x"}, {"name": "y"}]}),
    ("filter_case", "{{ 'hello world' | capitalize }} {{ 'hello world' | title }} {{ \"they're bill's\" | title }}", {}),
    ("filter_items_map", "{{ d | items | list }} {{ users | map(attribute='name') | list }} {{ users | map(attribute='age', default=0) | list }} {{ ['a', 'b'] | map('upper') | join }}", {"d": {"a": 1}, "users": [{"name": "x", "age": 3}, {"name": "y"}]}),
    ("filter_select", "{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ users | selectattr('admin') | map(attribute='name') | list }} {{ users | rejectattr('admin') | map(attribute='name') | list }} {{ users | selectattr('name', 'equalto', 'y') | list }}", {"users": [{"name": "x", "admin": True}, {"name": "y", "admin": False}]}),
    ("filter_unique_sort", "{{ ['b', 'A', 'a', 'B'] | unique | list }} {{ ['b', 'A', 'a'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ users | sort(attribute='age') | map(attribute='n') | join }} {{ [1, 2, 1] | unique | list }}", {"users": [{"n": "a", "age": 3}, {"n": "b", "age": 1}]}),
    ("filter_misc", "{{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ [3, 9, 1] | max }} {{ [3, 9, 1] | min }} {{ [1, 2, 3] | sum }} {{ 'a b  c' | wordcount }} {{ '<a href=\"x\">&\\'</a>' | escape }} {{ '<b>' | safe }}", {}),
    ("filter_indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}", {}),
    ("filter_dictsort", "{{ d | dictsort }} {{ d | dictsort(by='value') }}", {"d": {"b": 1, "a": 2, "C": 0}}),
    ("tojson", "{{ x | tojson }}", {"x": {"a": [1, 2.0, "é\"\n\t\u0001", None, True, False], "b": {}, "c": [], "d": 1e-07, "e": 123456789012345678}}),
    ("tojson_indent", "{{ x | tojson(indent=2) }}|{{ x | tojson(indent=0) }}|{{ [] | tojson(indent=2) }}", {"x": {"a": [1, {}], "b": [], "c": {"d": "é"}}}),
    ("tojson_options", "{{ x | tojson(sort_keys=true) }} {{ x | tojson(separators=(',', ':')) }} {{ x | tojson(ensure_ascii=true) }}", {"x": {"z": "ü😀", "a": [1, 2]}}),
    ("tojson_string_scalar", "{{ 'a\"b' | tojson }} {{ 3 | tojson }} {{ none | tojson }} {{ 1.5 | tojson }}", {}),
    ("string_literals", "{{ 'a\\tb' }}|{{ \"q'\" }}|{{ '\\u00e9\\x41\\101' }}|{{ 'a' 'b' }}|{{ '\\d' }}", {}),
    ("number_literals", "{{ 1_000 }} {{ 0x1f }} {{ 0b101 }} {{ 0o17 }} {{ 1.5e3 }} {{ 2E-2 }}", {}),
    ("range_function", "{{ range(3) | list }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }}", {}),
    ("dict_global", "{{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }}", {}),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d') }}", {}),
    ("raise_exception", "before{{ raise_exception('Custom failure: ' ~ x) }}", {"x": 7}),
    ("error_undefined_attr", "{{ u.x }}", {}),
    ("error_add_types", "{{ 1 + 'a' }}", {}),
    ("error_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("error_undefined_plus", "{{ 'a' + u }}", {}),
    ("error_compare_types", "{{ 1 < 'a' }}", {}),
    ("error_unsafe_method", "{{ [1, 2].append(3) }}", {}),
    ("error_tojson_undefined", "{{ u | tojson }}", {}),
    ("error_namespace_underscore", "{% set ns = namespace(_x=1) %}", {}),
    ("unsafe_attr_is_undefined", "{{ [1, 2].append is defined }} {{ d.update is defined }} {{ 'x'.__class__ is defined }}", {"d": {}}),
    ("messages_reverse_index", "{% for m in messages[::-1] %}{{ (messages | length - 1) - loop.index0 }}:{{ m.role }} {% endfor %}", {"messages": [{"role": "a"}, {"role": "b"}, {"role": "c"}]}),
    ("none_attribute", "{{ none.x }}|{{ (none).x is defined }}", {}),
]


def make_environment(now_timestamp):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.fromtimestamp(now_timestamp).strftime(format)

    class TemplateDict:
        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    class TemplateNamespace(jinja2.utils.Namespace):
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check_name(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"underscore-prefixed namespace attribute {name!r}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = TemplateNamespace
    return env


REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


def normalize_messages(messages):
    """apply_chat_template's normalization: drop None values, alias the reasoning fields."""
    out = []
    for message in messages:
        message = {k: v for k, v in message.items() if v is not None}
        reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
        if reasoning is not None:
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        out.append(message)
    return out


def build_context(conversation, special_tokens):
    context = dict(special_tokens)
    context.update(messages=normalize_messages(conversation["messages"]), tools=conversation.get("tools"),
                   documents=None, add_generation_prompt=conversation["add_generation_prompt"])
    context.update(conversation.get("kwargs", {}))
    return context


def transformers_render(source, conversation, special_tokens):
    try:
        from transformers.utils.chat_template_utils import render_jinja_template
    except ImportError:
        return None
    kwargs = dict(special_tokens)
    kwargs.update(conversation.get("kwargs", {}))
    rendered, _ = render_jinja_template(conversations=[[{k: v for k, v in m.items() if v is not None}
                                                        for m in conversation["messages"]]],
                                        tools=conversation.get("tools"), documents=None, chat_template=source,
                                        add_generation_prompt=conversation["add_generation_prompt"], **kwargs)
    return rendered[0]


def main():
    env = make_environment(FIXED_NOW)
    results = {}
    counts = {"outputs": 0, "errors": 0, "transformers_checked": 0}
    for name, special_tokens in TEMPLATES.items():
        with open(os.path.join(FIXTURES, name + ".jinja"), encoding="utf-8", newline="") as f:
            source = f.read()
        template = env.from_string(source)
        per_template = {}
        for conversation in CONVERSATIONS:
            context = build_context(conversation, special_tokens)
            try:
                output = template.render(**context)
                per_template[conversation["name"]] = {"output": output}
                counts["outputs"] += 1
                cross = None
                try:
                    cross = transformers_render(source, conversation, special_tokens)
                except Exception as e:  # transformers raised where plain jinja2 did not
                    sys.exit(f"{name}/{conversation['name']}: transformers raised {e!r}, jinja2 rendered")
                if cross is not None:
                    if cross != output:
                        sys.exit(f"{name}/{conversation['name']}: transformers and jinja2 disagree")
                    counts["transformers_checked"] += 1
            except jinja2.exceptions.TemplateError as e:
                kind = "raise_exception" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
                per_template[conversation["name"]] = {"error": str(e), "error_kind": kind}
                counts["errors"] += 1
            except (TypeError, ValueError, KeyError, AttributeError) as e:
                per_template[conversation["name"]] = {"error": str(e), "error_kind": type(e).__name__}
                counts["errors"] += 1
        results[name] = {"special_tokens": special_tokens, "cases": per_template}

    features = []
    for name, source, context in FEATURES:
        entry = {"name": name, "template": source, "context": context}
        try:
            entry["output"] = env.from_string(source).render(**context)
        except jinja2.exceptions.TemplateError as e:
            entry["error"] = str(e)
            entry["error_kind"] = "raise_exception" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            entry["error"] = str(e)
            entry["error_kind"] = type(e).__name__
        features.append(entry)
    with open(os.path.join(FIXTURES, "features.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "tools/make_chat_template_fixtures.py", "jinja2_version": jinja2.__version__,
                   "now": FIXED_NOW, "features": features}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote features.json: {len(features)} feature templates, "
          f"{sum('error' in e for e in features)} expected errors")

    fixture = {
        "generator": "tools/make_chat_template_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "now": FIXED_NOW,
        "conversations": CONVERSATIONS,
        "templates": results,
    }
    path = os.path.join(FIXTURES, "expected.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(TEMPLATES)} templates x {len(CONVERSATIONS)} conversations, "
          f"{counts['outputs']} outputs, {counts['errors']} expected errors, "
          f"{counts['transformers_checked']} cross-checked with transformers")


if __name__ == "__main__":
    main()
