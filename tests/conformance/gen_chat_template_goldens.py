"""Writes chat-template goldens: transformers' apply_chat_template(..., tokenize=False) and
jinja2 (configured exactly as transformers configures it) are the reference.

Regenerate (offline; needs ../shared/tokenizers):
    /root/.venvs/nibble/bin/python tests/conformance/gen_chat_template_goldens.py

Outputs, in tests/golden/chat_templates/:
  model_cases.json    real templates (qwen3, deepseek-v3 from shared/, and the harmony-style
                      template in harmony/) rendered by AutoTokenizer.apply_chat_template
  feature_cases.json  small templates, one feature each, rendered by transformers' compiled
                      jinja2 environment (trim_blocks, lstrip_blocks, its tojson,
                      raise_exception, strftime_now); errors are recorded as such
strftime_now is pinned to NOW (noon UTC, so the date is the same in every usual time zone).
"""

import datetime as _dt
import json
import os
import shutil
import sys
import tempfile

import transformers
from transformers import AutoTokenizer
from transformers.utils import chat_template_utils as ctu

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "tokenizers")
OUT = os.path.join(ROOT, "tests", "golden", "chat_templates")
NOW = 1773576000  # 2026-03-15 12:00:00 UTC


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp(NOW, tz)


ctu.datetime = _FixedDatetime  # strftime_now reads the module's datetime at call time

# ---------------------------------------------------------------- conversations

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — «quoted» & <escaped>?",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. 台北"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                "days": {"type": "integer", "description": "Forecast days"},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.\n",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "filters": {
                    "type": "object",
                    "properties": {"site": {"type": "string"}, "max_results": {"type": ["integer", "null"]}},
                    "required": [],
                },
                "tags": {"type": "array", "items": {"type": "string"}},
                "score": {"type": "number", "nullable": True, "default": 0.5},
            },
            "required": ["query", "tags"],
        },
    },
}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]

SIMPLE = [{"role": "user", "content": "Hello! What's 2+2?"}]
SYSTEM_MULTI = [
    {"role": "system", "content": "You are a concise assistant.\nAnswer in one line."},
    {"role": "user", "content": "DGX Spark 有 128GB 統一記憶體?"},
    {"role": "assistant", "content": "是的，128GB。"},
    {"role": "user", "content": "Et en français ? 😀👩‍👩‍👧"},
]
THINK_HISTORY = [
    {"role": "user", "content": "Solve x+1=3"},
    {"role": "assistant", "content": "<think>\nSubtract 1 from both sides.\n</think>\n\nx = 2"},
    {"role": "user", "content": "And x+2=3?"},
    {"role": "assistant", "content": "<think>\nx = 1.\n</think>\n\nx = 1"},
]
THINK_LAST_AFTER_QUERY = [
    {"role": "system", "content": "Think step by step."},
    {"role": "user", "content": "Is 91 prime?"},
    {"role": "assistant", "content": "<think>\n91 = 7 * 13\n</think>\n\nNo, 91 = 7 × 13."},
]
REASONING_FIELD = [
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris.", "reasoning_content": "The user asks about France.\n"},
    {"role": "user", "content": "And Italy?"},
    {"role": "assistant", "content": "Rome.", "reasoning_content": "Italy's capital is Rome."},
]
TOOL_CONV = [
    {"role": "system", "content": "Use tools when helpful."},
    {"role": "user", "content": "Weather in Taipei and search for typhoon news"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "台北", "unit": "celsius"}}},
            {"type": "function", "function": {"name": "search", "arguments": "{\"query\": \"typhoon\", \"tags\": [\"news\"]}"}},
        ],
    },
    {"role": "tool", "content": "{\"temp\": 31, \"sky\": \"sunny\"}"},
    {"role": "tool", "content": "<results>3 hits</results>"},
    {"role": "assistant", "content": "<think>\nSummarise.\n</think>\n\nIt is 31°C and sunny; 3 typhoon stories."},
    {"role": "user", "content": "<tool_response>\nignored?\n</tool_response>"},
]
TOOL_CALL_NO_CONTENT = [
    {"role": "user", "content": "What's the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ],
    },
    {"role": "tool", "content": "{\"temp\": 18}", "tool_call_id": "call_1"},
]
DEEPSEEK_TOOLS = [
    {"role": "system", "content": "You are DeepSeek."},
    {"role": "system", "content": "Second system part."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}},
        ],
    },
    {"role": "tool", "content": "18C"},
    {"role": "tool", "content": "24C"},
    {"role": "assistant", "content": "Paris 18°C, Rome 24°C."},
    {"role": "user", "content": "Thanks"},
]
DEEPSEEK_TOOL_PENDING = DEEPSEEK_TOOLS[:6]
# transformers 5 drops content=None, so DeepSeek-V3's tool-call branch (content is none) cannot be
# reached; an empty content still exercises its tool-output bookkeeping.
DEEPSEEK_TOOL_OUTPUTS = [dict(m, content="") if m.get("content") is None else m for m in DEEPSEEK_TOOLS]

HARMONY_CONV = [
    {"role": "developer", "content": "  Always answer in English.  "},
    {"role": "user", "content": "Weather in Oslo?\r\nBe brief."},
    {
        "role": "assistant",
        "thinking": "Need the weather tool.",
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}}],
    },
    {"role": "tool", "content": {"temp": -3, "sky": "snow ❄", "ok": True, "wind": None}},
    {"role": "assistant", "content": "It is -3 °C with snow.", "thinking": "Report it."},
]
HARMONY_PLAIN = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!", "reasoning_content": "Greet back."},
    {"role": "user", "content": "Tell me a joke"},
]

MODEL_CASES = [
    # (name, model, messages, tools, add_generation_prompt, kwargs)
    ("qwen3_simple_gen", "qwen3", SIMPLE, None, True, {}),
    ("qwen3_simple_nogen", "qwen3", SIMPLE, None, False, {}),
    ("qwen3_system_multi_gen", "qwen3", SYSTEM_MULTI, None, True, {}),
    ("qwen3_system_multi_nothink", "qwen3", SYSTEM_MULTI, None, True, {"enable_thinking": False}),
    ("qwen3_think_history", "qwen3", THINK_HISTORY, None, False, {}),
    ("qwen3_think_history_gen", "qwen3", THINK_HISTORY, None, True, {"enable_thinking": True}),
    ("qwen3_think_last", "qwen3", THINK_LAST_AFTER_QUERY, None, False, {}),
    ("qwen3_reasoning_field", "qwen3", REASONING_FIELD, None, False, {}),
    ("qwen3_tools_empty_conv", "qwen3", SIMPLE, TOOLS, True, {}),
    ("qwen3_tools_conv", "qwen3", TOOL_CONV, TOOLS, True, {}),
    ("qwen3_tools_conv_nothink", "qwen3", TOOL_CONV, TOOLS, True, {"enable_thinking": False}),
    ("qwen3_tool_call_no_content", "qwen3", TOOL_CALL_NO_CONTENT, [WEATHER_TOOL], False, {}),
    ("deepseek_simple_gen", "deepseek-v3", SIMPLE, None, True, {}),
    ("deepseek_simple_nogen", "deepseek-v3", SIMPLE, None, False, {}),
    ("deepseek_system_multi", "deepseek-v3", SYSTEM_MULTI, None, True, {}),
    ("deepseek_system_multi_nogen", "deepseek-v3", SYSTEM_MULTI, None, False, {}),
    ("deepseek_tools", "deepseek-v3", DEEPSEEK_TOOLS, None, True, {}),
    ("deepseek_tool_pending_gen", "deepseek-v3", DEEPSEEK_TOOL_PENDING, None, True, {}),
    ("deepseek_tool_pending_nogen", "deepseek-v3", DEEPSEEK_TOOL_PENDING, None, False, {}),
    ("deepseek_tool_outputs", "deepseek-v3", DEEPSEEK_TOOL_OUTPUTS, None, True, {}),
    ("deepseek_tool_outputs_pending", "deepseek-v3", DEEPSEEK_TOOL_OUTPUTS[:6], None, True, {}),
    ("deepseek_think_history", "deepseek-v3", THINK_HISTORY, None, True, {}),
    ("harmony_tools", "golden:harmony", HARMONY_CONV, TOOLS, False, {"reasoning_effort": "HIGH"}),
    ("harmony_tools_gen", "golden:harmony", HARMONY_CONV, TOOLS, True, {"model_identity": "Nibble"}),
    ("harmony_plain_gen", "golden:harmony", HARMONY_PLAIN, None, True, {}),
    ("harmony_bad_role", "golden:harmony", [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}], None, True, {}),
    ("harmony_unknown_tool", "golden:harmony",
     [{"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"function": {"name": "nope", "arguments": "{}"}}]}], TOOLS, False, {}),
]

# ---------------------------------------------------------------- feature templates

NESTED = {"name": "Ada", "tags": ["x", "y"], "meta": {"age": 36, "ratio": 0.25, "ok": True, "none": None},
          "items": "key named items", "b": 2, "a": 1}
PEOPLE = [{"name": "bob", "age": 30, "admin": False}, {"name": "Alice", "age": 25, "admin": True},
          {"name": "carol", "age": 35}, {"name": "alice", "age": 41, "admin": False}]

FEATURES = [
    # whitespace control, trim_blocks / lstrip_blocks
    ("ws_trim_lstrip", "Start\n  {% if true %}\n    inside\n  {% endif %}\nEnd\n", {}),
    ("ws_minus", "a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c", {}),
    ("ws_plus", "a\n    {%+ if true %}b{% endif +%}\nc", {}),
    ("ws_var_minus", "x  {{- 'y' -}}  z\n{{ 'no' }}  \n{{ 'trim' }}\n", {}),
    ("ws_comments", "a\n  {# comment #}\nb {#- stripped -#} c\n{# multi\nline #}\nd", {}),
    ("ws_raw", "{% raw %}{{ not evaluated }} {% if %}{% endraw %}|\n  {%- raw -%}  x  {%- endraw -%}  |", {}),
    ("ws_crlf", "line1\r\n{% if true %}\r\nline2\r\n{% endif %}\r\nline3\r\n", {}),
    ("ws_trailing_newlines", "a\n\n", {}),
    ("ws_inline_blocks", "{% for i in range(3) %}{{ i }} {% endfor %}\n{% set x = 1 %}after", {}),
    ("ws_lstrip_not_var", "  {{ 'v' }}\n  {% if true %}b{% endif %}\n\t{% if true %}t{% endif %}", {}),
    # for loops
    ("for_loop_vars", "{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                      "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {}),
    ("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}{% for x in none_list %}{% else %}E{% endfor %}",
     {"none_list": []}),
    ("for_filter", "{% for p in people if p.age > 28 %}{{ p.name }}{{ loop.index }}/{{ loop.length }} {% endfor %}",
     {"people": PEOPLE}),
    ("for_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}",
     {"d": NESTED}),
    ("for_dict_and_string", "{% for k in d %}{{ k }},{% endfor %}|{% for c in 'héllo' %}{{ c }}.{% endfor %}", {"d": NESTED}),
    ("for_nested_loop", "{% for i in range(2) %}{% for j in range(2) %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ loop.last }}{% endfor %}", {}),
    ("for_break_continue", "{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("for_cycle_prev_next", "{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}{{ loop.previtem is defined }}{{ loop.nextitem | default('-') }}{% endfor %}", {}),
    ("for_undefined_iter", "{% for x in missing %}x{% else %}none{% endfor %}", {}),
    ("for_scope", "{% set x = 0 %}{% for i in range(3) %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("for_scope_if", "{% for i in range(3) %}{% if i == 0 %}{% set y = 5 %}{% endif %}[{{ y }}]{% endfor %}", {}),
    ("for_range_args", "{{ range(5)|list }}{{ range(2, 8, 3)|list }}{{ range(5, 0, -2)|list }}{{ range(0)|list }}", {}),
    # set / namespace / with
    ("set_namespace", "{% set ns = namespace(count=0, items=[]) %}{% for p in people %}{% set ns.count = ns.count + p.age %}"
                      "{% set ns.items = ns.items + [p.name] %}{% endfor %}{{ ns.count }} {{ ns.items }}", {"people": PEOPLE}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 'x' %}{{ t }}", {}),
    ("set_block", "{% set body %}Hello {{ name }}!{% endset %}[{{ body }}]{% set up | upper %}shout {{ name }}{% endset %}{{ up }}",
     {"name": "Ada"}),
    ("set_if_leaks", "{% if true %}{% set z = 'leaked' %}{% endif %}{{ z }}", {}),
    ("with_block", "{% set a = 1 %}{% with a = 2, b = a %}{{ a }}{{ b }}{% endwith %}{{ a }}", {}),
    ("namespace_dict_arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}", {}),
    # macros
    ("macro_defaults", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}"
                       "{{ greet('Ada') }} {{ greet('Bob', 'Hi') }} {{ greet('Cy', punct='?') }} {{ greet() }}", {}),
    ("macro_globals_and_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}"
                                    "{{ fact(5) }} {% macro show() %}{{ who }}{% endmacro %}{{ show() }}", {"who": "global"}),
    ("macro_call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
                         "{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}"
                         "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
                         "{% call(item) each([1,2]) %}[{{ item }}]{% endcall %}", {}),
    ("macro_whitespace", "{%- macro m(x) -%}\n  value: {{ x }}\n{%- endmacro -%}\n{{ m(1) }}\n{{ m(2) }}", {}),
    # expressions and literals
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7 / 2 }} "
              "{{ 4 / 2 }} {{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 10 - -3 }} {{ +5 }} {{ -(3) }}", {}),
    ("floats", "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 100.0 * 3 }} {{ 1/3 }} {{ 2.5e15 }} {{ 1e16 }} "
               "{{ 123456789012345678.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 3 * 1.0 }} {{ x }}", {"x": 1.5}),
    ("compare_logic", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} "
                      "{{ 1 != 2 }} {{ none == none }} {{ 'x' and 'y' }} {{ '' or 'z' }} {{ 0 or none }} {{ not 0 }} "
                      "{{ 1 in [1,2] }} {{ 'b' in 'abc' }} {{ 'k' not in {'k': 1} }} {{ 3 >= 3 }} {{ 2 <= 1 }}", {}),
    ("concat_tilde", "{{ 'a' ~ 1 ~ none ~ true ~ [1, 'x'] ~ missing ~ 2.0 }}", {}),
    ("cond_expr", "{{ 'yes' if 1 > 0 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'only' if false }}] {{ 1 if none is none else 2 }}", {}),
    ("literals_print", "{{ [1, 'two', 3.0, none, true, ['n']] }} {{ {'a': 1, 'b': [2]} }} {{ (1,) }} {{ (1, 2) }} {{ () }} "
                       "{{ 'it\\'s' }} {{ [\"a'b\", 'c\"d', 'e\\nf', 'g\\\\h', 'tab\\there'] }} {{ none }} {{ true }} {{ false }}", {}),
    ("string_escapes", "{{ 'a\\tb\\nc\\\\d\\'e\\\"f' }}|{{ \"\\u00e9\\x41\\101\" }}|{{ 'unknown \\q' }}|{{ 'adj' 'acent' }}", {}),
    ("subscript_slice", "{{ s[0] }}{{ s[-1] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[::2] }}{{ s[-3:] }}{{ s[:-3] }}{{ l[1] }}{{ l[-1] }}"
                        "{{ l[1:] }}{{ l[::-1] }}{{ l[5:] }}{{ l[-10:2] }}{{ d['a'] }}{{ d.b }}{{ d['meta']['age'] }}{{ d.tags.0 }}",
     {"s": "héllo wörld", "l": [1, 2, 3, 4], "d": NESTED}),
    ("attr_vs_item", "{{ d.items is defined }} {{ d['items'] }} {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} "
                     "{{ d.keys()|list }} {{ d.values()|list|length }}", {"d": NESTED}),
    # undefined semantics
    ("undefined_print", "[{{ missing }}][{{ d.nokey }}][{{ missing|default('dflt') }}][{{ none|default('x') }}]"
                        "[{{ ''|default('e', true) }}][{{ missing|length }}][{{ missing is defined }}][{{ d.nokey is undefined }}]"
                        "[{{ missing == missing }}][{{ missing is none }}][{{ 'x' in missing }}][{{ l[10] is defined }}]",
     {"d": NESTED, "l": [1]}),
    ("undefined_attr_error", "{{ missing.attr }}", {}),
    ("undefined_add_error", "{{ missing + 1 }}", {}),
    ("undefined_call_error", "{{ missing() }}", {}),
    # filters
    ("filter_tojson", "{{ d|tojson }}\n{{ d|tojson(indent=2) }}\n{{ 'é\"\\n\\u0001</x>'|tojson }}\n{{ d|tojson(sort_keys=true) }}\n"
                      "{{ [1, 2.5, none, true, 1e20, 0.1]|tojson(separators=(',', ':')) }}\n{{ d|tojson(ensure_ascii=true) }}\n"
                      "{{ {}|tojson }}{{ []|tojson(indent=2) }}{{ {'k': {}}|tojson(indent=4) }}{{ 'x'|tojson(indent='\\t') }}",
     {"d": {"z": "台北 😀", "a": [1, {"b": None}], "f": 3.0}}),
    ("filter_length_count", "{{ 'héllo'|length }} {{ [1,2]|count }} {{ {'a':1}|length }} {{ ''|length }}", {}),
    ("filter_trim_join", "[{{ '  x y \\n'|trim }}][{{ 'xxhixx'|trim('x') }}][{{ [1,2,3]|join(', ') }}][{{ ['a','b']|join }}]"
                         "[{{ people|join('/', attribute='name') }}]", {"people": PEOPLE}),
    ("filter_map_select", "{{ people|map(attribute='name')|list }} {{ people|selectattr('admin')|map(attribute='name')|join(',') }} "
                          "{{ people|rejectattr('admin')|map(attribute='name')|join(',') }} {{ people|selectattr('age', 'gt', 30)|list|length }} "
                          "{{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('even')|list }} {{ [0,1,'',none,'a']|select|list }} "
                          "{{ ['a','B']|map('upper')|list }} {{ people|map(attribute='admin', default='n/a')|list }} "
                          "{{ people|selectattr('name', 'equalto', 'bob')|list|length }} {{ [1,2,3]|map('string')|join('-') }}",
     {"people": PEOPLE}),
    ("filter_first_last_list", "{{ [3,4]|first }} {{ [3,4]|last }} {{ 'abc'|first }} {{ 'abc'|list }} {{ d|list }} [{{ []|first }}]",
     {"d": {"x": 1, "y": 2}}),
    ("filter_string_int_float", "{{ 42|string }} {{ '42'|int + 1 }} {{ '3.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} "
                                "{{ '0x1A'|int(0, 16) }} {{ '2.5'|float }} {{ 'bad'|float }} {{ 3|float }} {{ true|int }} {{ ' 12 '|int }}", {}),
    ("filter_case", "{{ 'hello WORLD'|upper }} {{ 'Hello WORLD'|lower }} {{ 'hello wORLD-foo bar(baz)'|title }} "
                    "{{ 'hELLO world'|capitalize }} {{ 'ünïcode ßtraße'|upper }}", {}),
    ("filter_replace_items", "{{ 'a-b-c'|replace('-', '+') }} {{ 'a-b-c'|replace('-', '', 1) }} {{ 'abc'|replace('', '.') }} "
                             "{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %} {{ missing|items|list }}", {"d": {"p": 1, "q": 2}}),
    ("filter_sort_unique", "{{ d|dictsort }} {{ d|dictsort(reverse=true) }} {{ d|dictsort(by='value') }} "
                           "{{ ['b','A','a','c']|unique|list }} {{ ['b','A','a','c']|unique(case_sensitive=true)|list }} "
                           "{{ ['b','A','a','c']|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ people|sort(attribute='age')|map(attribute='name')|join }} "
                           "{{ people|map(attribute='age')|max }} {{ people|map(attribute='age')|min }} {{ [1,2,3]|sum }} "
                           "{{ people|sum(attribute='age') }}",
     {"d": {"b": 1, "A": 3, "c": 2}, "people": PEOPLE}),
    ("filter_misc", "{{ [1,2,3]|reverse|list }} {{ 'abc'|reverse }} {{ -5|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} "
                    "{{ 1.23456|round(2) }} {{ 7|round }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ '<b>'|safe }} "
                    "{{ '<a href=\"x\">&'|e }} [{{ 'abc'|center(9) }}] {{ 'one two  three'|wordcount }}", {}),
    ("filter_indent", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(width='> ', blank=true) }}|"
                      "{{ 'x\\n'|indent(first=true) }}|", {}),
    ("filter_chain_precedence", "{{ -3|abs }} {{ not [] | length }} {{ 'ab' ~ 'cd'|upper }} {{ [1,2]|length * 2 }} "
                                "{{ (1 + 2)|string ~ '!' }}", {}),
    # tests
    ("tests_types", "{{ none is none }} {{ 1 is number }} {{ 1.5 is float }} {{ 1 is integer }} {{ true is boolean }} "
                    "{{ true is integer }} {{ true is number }} {{ 's' is string }} {{ d is mapping }} {{ l is sequence }} "
                    "{{ 's' is iterable }} {{ 1 is iterable }} {{ l is mapping }} {{ range is callable }} {{ true is true }} "
                    "{{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ missing is undefined }} {{ d is defined }}",
     {"d": {"a": 1}, "l": [1]}),
    ("tests_values", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 2 is in [1,2] }} "
                     "{{ 'a' is in 'cat' }} {{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 3 is gt 2 }} {{ 3 is lt 2 }} "
                     "{{ 3 is ge 3 }} {{ 3 is le 2 }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ none is sameas none }} "
                     "{{ x is not none }} {{ not x is none }} {{ 'upper' is filter }} {{ 'odd' is test }}", {"x": 0}),
    # string methods
    ("str_methods", "{{ s.startswith('He') }} {{ s.endswith(('x', 'ld')) }} [{{ p.strip() }}] [{{ p.lstrip() }}] [{{ p.rstrip() }}] "
                    "{{ '--x--'.strip('-') }} {{ 'xxhixx'.lstrip('x') }} {{ 'a,b,,c'.split(',') }} {{ '  a  b c '.split() }} "
                    "{{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'a b  c'.rsplit(None, 1) }} {{ s.replace('l', 'L', 2) }} "
                    "{{ s.upper() }} {{ s.lower() }} {{ 'hello wORLD 3rd'.title() }} {{ 'hELLO'.capitalize() }} {{ s.find('o') }} "
                    "{{ s.find('zz') }} {{ s.rfind('o') }} {{ s.count('l') }} {{ '-'.join(['a', 'b']) }} {{ 'é-x'.find('x') }} "
                    "{{ s.index('W') }} {{ '{} and {}'.format(1, 'b') }} {{ '{0}{name}'.format('x', name='y') }} "
                    "{{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'AB'.isupper() }} {{ 'ab'.islower() }} "
                    "{{ 'l1\\nl2\\r\\nl3'.splitlines() }} {{ 'x'.center(5, '*') }} {{ 'x'.ljust(3, '.') }} {{ 'x'.rjust(3) }} "
                    "{{ '42'.zfill(5) }} {{ 'a=b=c'.partition('=') }} {{ 'prefix_x'.removeprefix('prefix_') }}",
     {"s": "Hello World", "p": "  padded \n"}),
    ("str_method_unicode", "{{ s|length }} {{ s[2] }} {{ s.upper() }} {{ s.split('，') }} {{ s[1:4] }} {{ s.strip('台') }}",
     {"s": "台北，高雄，花蓮"}),
    ("list_methods", "{{ [1,2,3,2].count(2) }} {{ [1,2,3].index(3) }} {{ (1,2).index(2) }}", {}),
    ("dict_literal_and_global", "{{ dict(a=1, b='x') }} {{ dict([('k', 'v')]) }} {{ dict({'z': 0}, y=1) }} {{ {'a': 1, 'a': 2} }} "
                                "{{ {1: 'int key', 1.0: 'same'} }}", {}),
    # transformers globals
    ("strftime_now", "{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %B %Y, %A') }} {{ strftime_now('%b %j') }}", {}),
    ("raise_exception", "a{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}b", {}),
    # error cases: jinja2 refuses these, so must we
    ("err_unknown_filter", "{% if false %}{{ x|no_such_filter }}{% endif %}ok", {}),
    ("err_unknown_test", "{{ x is no_such_test }}", {}),
    ("err_syntax_unclosed_if", "{% if true %}x", {}),
    ("err_syntax_bad_expr", "{{ 1 + }}", {}),
    ("err_unknown_tag", "{% frobnicate %}", {}),
    ("err_div_zero", "{{ 1 / 0 }}", {}),
    ("err_mod_zero", "{{ 1 % 0 }}", {}),
    ("err_list_append", "{% set l = [1] %}{{ l.append(2) }}", {}),
    ("err_dict_update", "{% set d = {} %}{{ d.update({'a': 1}) }}", {}),
    ("err_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("err_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("err_namespace_underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    ("err_set_attr_non_namespace", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("err_none_iter", "{% for x in n %}{% endfor %}", {"n": None}),
    ("err_compare_types", "{{ 1 < 'a' }}", {}),
    ("err_unterminated_string", "{{ 'abc }}", {}),
    ("err_missing_endraw", "{% raw %}abc", {}),
    ("err_break_outside_loop", "{% break %}", {}),
    ("err_comment_unclosed", "{# abc", {}),
    ("err_macro_too_many_args", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    # more edge cases
    ("generation_tag", "{% for m in messages %}{% generation %}[{{ m.content }}]{% endgeneration %}{% endfor %}",
     {"messages": [{"content": "a"}, {"content": "b"}]}),
    ("format_filter_and_percent", "{{ '%s-%d'|format('a', 3) }} {{ '%s and %s' % ('x', 'y') }} {{ '%05.2f' % 3.14159 }} {{ '%r' % 'q' }}", {}),
    ("ws_lstrip_comment_line", "a\n    {# note #}\n    {%- if true %}\n  b\n    {% endif -%}\n\nc", {}),
    ("ws_set_block_trim", "{% set x %}\n  inner\n{% endset %}[{{ x }}]", {}),
    ("ws_tabs_lstrip", "x\n\t \t{% if true %}y{% endif %}\n \u3000{% if true %}z{% endif %}", {}),
    ("ws_minus_unicode_space", "a\u3000\u00a0 {{- 'b' -}} \u2003c", {}),
    ("nested_loop_outer_ref", "{% for row in [[1,2],[3]] %}{% set outer = loop %}{% for x in row %}{{ outer.index }}.{{ loop.index }}={{ x }} {% endfor %}{% endfor %}", {}),
    ("loop_last_with_filter_cond", "{% for m in msgs if m.role != 'system' %}{{ m.role }}{{ ',' if not loop.last }}{% endfor %}",
     {"msgs": [{"role": "system"}, {"role": "user"}, {"role": "assistant"}, {"role": "system"}]}),
    ("macro_kwargs_and_nested_call", "{% macro outer(x) %}<{{ caller(x * 2) }}>{% endmacro %}{% macro inner(y, sep='|') %}{{ y }}{{ sep }}{% endmacro %}"
                                     "{% call(v) outer(3) %}{{ inner(v, sep=';') }}{% endcall %}", {}),
    ("tojson_numbers", "{{ [0, -1, 1.5, -0.0, 1e300, 2e-308, 1234567890123456789, -9223372036854775807, 3.0e10, 0.1]|tojson }}", {}),
    ("tojson_keys", "{{ {1: 'a', 2.5: 'b', true: 'c', none: 'd'}|tojson }} {{ {'b': 1, 'a': {'d': 2, 'c': 3}}|tojson(sort_keys=true, indent=1) }}", {}),
    ("string_repr_in_list", "{{ ['\\x00\\x7f', 'é', '\\u2028', \"'\", '\\\\'] }} {{ {'k': none, 'n': [1.0, 2]} }}", {}),
    ("is_tests_edge", "{{ [] is sequence }} {{ {} is iterable }} {{ none is mapping }} {{ 1.0 is integer }} {{ 'a' is sequence }} "
                      "{{ d.get is callable }} {{ (1,2) is sequence }} {{ 0 is divisibleby 1 }} {{ -3 is odd }}", {"d": {}}),
    ("inline_if_undefined_branch", "[{{ x if false }}]{{ (x if false) is defined }}{{ 'a' if x is undefined else 'b' }}", {}),
    ("in_operator_variants", "{{ 'a' in ['a'] }} {{ 1.0 in [1] }} {{ 'k' in {'k': 0} }} {{ '' in 'abc' }} {{ [1] in [[1], 2] }} "
                             "{{ none in [none] }} {{ 'x' not in 'y' }}", {}),
    ("chained_filters_tests", "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|map('trim')|join(' / ') }} "
                              "{{ messages|map(attribute='content')|select('string')|list|length }} {{ messages|rejectattr('tool_calls', 'defined')|list|length }}",
     {"messages": [{"role": "user", "content": " a "}, {"role": "assistant", "content": "b", "tool_calls": []}, {"role": "user", "content": "c "}]}),
    ("string_multiply_and_concat", "{{ '=' * 5 }}{{ 3 * 'ab' }}{{ [0] * 3 }}{{ 'a' + 'b' }}{{ [1] + [2] }}{{ (1,) + (2,) }}", {}),
    ("split_edge", "{{ ''.split() }} {{ ''.split(',') }} {{ 'a,,b,'.split(',') }} {{ ' a b '.rsplit(None) }} {{ 'abc'.split('abc') }} "
                   "{{ 'a.b.c'.rsplit('.', 5) }} {{ 'a b c'.split(None, 0) }}", {}),
    ("strip_variants", "[{{ '\t\n x \u3000'.strip() }}][{{ 'abcxcba'.strip('abc') }}][{{ '  x'.lstrip(none) }}][{{ 'x..'.rstrip('.') }}]", {}),
    ("dict_iteration_order", "{% for k, v in d|dictsort %}{{ k }}{% endfor %}{% for k in d.keys() %}{{ k }}{% endfor %}{% for v in d.values() %}{{ v }}{% endfor %}",
     {"d": {"z": 1, "a": 2, "m": 3}}),
    ("unpack_dict_items_loop_index", "{% for name, spec in props.items() %}{{ loop.index }}:{{ name }}={{ spec.type }}{{ '' if loop.last else ', ' }}{% endfor %}",
     {"props": {"city": {"type": "string"}, "n": {"type": "integer"}}}),
    ("for_tuple_parens", "{% for (a, b) in [(1, 2)] %}{{ a }}{{ b }}{% endfor %}", {}),
    ("default_boolean_variants", "{{ none|default('x', true) }} {{ 0|d('zero', boolean=true) }} {{ false|default('f') }} {{ missing|d }}|", {}),
    ("bool_int_arith", "{{ true + true }} {{ true * 3 }} {{ 10 / 4 }} {{ 10 // 4.0 }} {{ 2 ** 0.5 }} {{ -2 ** 2 }} {{ (-2) ** 2 }}", {}),
    ("range_negative_and_loop_revindex", "{% for i in range(3, -3, -2) %}{{ i }}:{{ loop.revindex }} {% endfor %}", {}),
    ("for_recursive", "{% for node in tree recursive %}{{ node.name }}@{{ loop.depth }}{{ loop.depth0 }}"
                      "{% if node.children %}[{{ loop(node.children) }}]{% endif %}{{ ',' if not loop.last }}{% endfor %}",
     {"tree": [{"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}, {"name": "d"}]}, {"name": "e"}]}),
    ("err_string_percent_mismatch", "{{ '%s %s' % 'a' }}", {}),
    ("err_int_filter_list_index", "{{ [1][5] + 1 }}", {}),
    ("err_tojson_undefined", "{{ missing|tojson }}", {}),
    ("err_loop_var_named_loop", "{% for loop in [1] %}{% endfor %}", {}),
]


def model_path(model, tmp):
    if not model.startswith("golden:"):
        return os.path.join(SHARED, model)
    # Golden template folders carry no tokenizer.json; borrow gpt-oss's so AutoTokenizer loads
    # the folder the ordinary way (chat_template.jinja, tokenizer_config.json special tokens).
    src = os.path.join(OUT, model.split(":", 1)[1])
    dst = os.path.join(tmp, model.split(":", 1)[1])
    if not os.path.isdir(dst):
        shutil.copytree(src, dst)
        shutil.copy(os.path.join(SHARED, "gpt-oss", "tokenizer.json"), dst)
    return dst


def main():
    print("transformers", transformers.__version__, file=sys.stderr)
    model_cases = []
    tokenizers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, messages, tools, agp, kwargs in MODEL_CASES:
            if model not in tokenizers:
                tokenizers[model] = AutoTokenizer.from_pretrained(model_path(model, tmp))
            tok = tokenizers[model]
            case = {"name": name, "model": model, "messages": messages, "tools": tools,
                    "add_generation_prompt": agp, "kwargs": kwargs, "now": NOW}
            try:
                case["expected"] = tok.apply_chat_template(
                    json.loads(json.dumps(messages)), tools=tools, add_generation_prompt=agp, tokenize=False, **kwargs)
            except Exception as e:  # noqa: BLE001 - recorded as the expected outcome
                case["error"] = f"{type(e).__name__}: {e}"
            model_cases.append(case)

    feature_cases = []
    for name, template, variables in FEATURES:
        case = {"name": name, "template": template, "vars": variables, "now": NOW}
        try:
            case["expected"] = ctu._compile_jinja_template(template).render(**json.loads(json.dumps(variables)))
        except Exception as e:  # noqa: BLE001
            case["error"] = f"{type(e).__name__}: {e}"
        feature_cases.append(case)

    os.makedirs(OUT, exist_ok=True)
    for fname, cases in (("model_cases.json", model_cases), ("feature_cases.json", feature_cases)):
        with open(os.path.join(OUT, fname), "w", encoding="utf-8") as f:
            json.dump(cases, f, ensure_ascii=False, indent=1)
            f.write("\n")
        errors = sum("error" in c for c in cases)
        print(f"{fname}: {len(cases)} cases ({errors} expected errors)", file=sys.stderr)


if __name__ == "__main__":
    main()
