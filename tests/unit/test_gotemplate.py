"""Go text/template as docker's --format uses it: each expected string is what docker
(Go) prints for the same template and data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from runtime.cli.gotemplate import (
    compile,
    format_rows,
    is_table,
    marshal,
    render,
    strip_table,
    tabwrite,
)
from runtime.errors import InvalidSpec

INSPECT: dict[str, Any] = {
    "Id": "4f66ad9a0b2e",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 4242,
              "ExitCode": 0, "Health": None},
    "Config": {
        "Cmd": ["sleep", "1d"],
        "Env": ["PATH=/bin", "TERM=xterm"],
        "Labels": {"zeta": "last", "alpha": "first"},
    },
    "NetworkSettings": {
        "Networks": {
            "mynet": {"IPAddress": "172.20.0.2", "MacAddress": "02:42:ac:14:00:02"},
            "bridge": {"IPAddress": "172.17.0.3", "MacAddress": "02:42:ac:11:00:03"},
        },
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None},
    },
    "RestartCount": 0,
    "SizeRw": 1.5,
}  # fmt: skip


class ContainerRow:
    """Stands in for docker's formatter.ContainerContext: a struct with methods."""

    Image = "busybox"

    def ID(self) -> str:
        return "4f66ad9a0b2e"

    def Names(self) -> str:
        return "web"

    def Label(self, name: str) -> str:
        return {"app": "shop"}.get(name, "")


@dataclass
class Point:
    Y: int
    X: int


def r(template: str, data: Any = INSPECT) -> str:
    return render(template, data)


# ------------------------------------------------------------------------ fields


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Name}}", "/web"),
        ("{{.State.Status}}", "running"),
        ("{{.State.Pid}}", "4242"),
        ("{{.State.Running}} {{.State.Paused}}", "true false"),
        ("{{.State.Health}}", "<nil>"),
        ("{{.Nope}}", "<no value>"),
        ("{{.Nope.Deeper}}", "<no value>"),
        ("{{.Config.Labels.alpha}}", "first"),
        ("{{.Config.Cmd}}", "[sleep 1d]"),
        ("{{.Config.Labels}}", "map[alpha:first zeta:last]"),
        ("{{.NetworkSettings.Ports}}",
         "map[443/tcp:<nil> 80/tcp:[map[HostIp:0.0.0.0 HostPort:8080]]]"),
        ("{{.SizeRw}}", "1.5"),
        ("{{$.Name}}", "/web"),
        ("{{.}}", "map[a:1]"),
    ],
)  # fmt: skip
def test_fields_print_like_go(template: str, expected: str) -> None:
    data = {"a": 1} if template == "{{.}}" else INSPECT
    assert r(template, data) == expected


def test_struct_fields_and_methods_are_both_reachable() -> None:
    row = ContainerRow()
    assert r("{{.ID}}\t{{.Image}}\t{{.Names}}", row) == "4f66ad9a0b2e\tbusybox\tweb"


def test_methods_take_arguments_from_the_command() -> None:
    assert r('{{.Label "app"}}|{{.Label "none"}}|', ContainerRow()) == "shop||"


def test_a_missing_field_on_a_struct_is_an_error_naming_field_and_type() -> None:
    with pytest.raises(InvalidSpec) as err:
        r("{{.Foo}}", ContainerRow())
    assert str(err.value) == (
        'template: :1:2: executing "" at <.Foo>: '
        "can't evaluate field Foo in type *test_gotemplate.ContainerRow"
    )


def test_an_error_deep_in_a_chain_points_at_the_chained_field() -> None:
    with pytest.raises(InvalidSpec) as err:
        r("{{.State.Status.Foo}}")
    assert str(err.value) == (
        'template: :1:8: executing "" at <.State.Status.Foo>: '
        "can't evaluate field Foo in type string"
    )


def test_a_field_of_nil_is_a_nil_pointer_error() -> None:
    with pytest.raises(InvalidSpec) as err:
        r("{{.State.Health.Status}}")
    assert "nil pointer evaluating interface {}.Status" in str(err.value)


def test_errors_on_later_lines_carry_line_and_column() -> None:
    with pytest.raises(InvalidSpec) as err:
        r("ok\n  {{.Foo}}", ContainerRow())
    assert str(err.value).startswith('template: :2:4: executing "" at <.Foo>:')


def test_map_values_cannot_take_arguments() -> None:
    with pytest.raises(InvalidSpec) as err:
        r('{{.Name "x"}}')
    assert str(err.value).endswith("Name is not a method but has arguments")


# ---------------------------------------------------------------------- printing


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (None, "<nil>"),
        (3, "3"),
        (-7, "-7"),
        (1.0, "1"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (float("inf"), "+Inf"),
        ([1, "a", None], "[1 a <nil>]"),
        ([], "[]"),
        ({}, "map[]"),
        ({"b": [1], "a": {"c": True}}, "map[a:map[c:true] b:[1]]"),
        (Point(Y=2, X=1), "{2 1}"),
    ],
)
def test_values_print_with_gos_default_format(value: Any, expected: str) -> None:
    assert r("{{.V}}", {"V": value}) == expected


# -------------------------------------------------------------------------- json


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'),
        ("<a&b>", '"<a&b>"'),
        ('quote " and \\ and \n\t', '"quote \\" and \\\\ and \\n\\t"'),
        ("caf\u00e9 \u2028", '"caf\u00e9 \\u2028"'),
        ("\x01", '"\\u0001"'),
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.5, "0.5"),
        (100000000.0, "100000000"),
        ([], "[]"),
        ({}, "{}"),
        (Point(Y=2, X=1), '{"Y":2,"X":1}'),
    ],
)
def test_json_is_compact_go_json(value: Any, expected: str) -> None:
    assert r("{{json .V}}", {"V": value}) == expected


def test_json_of_inspect_sections() -> None:
    assert r("{{json .Config.Labels}}") == '{"alpha":"first","zeta":"last"}'
    assert r("{{json .NetworkSettings.Ports}}") == (
        '{"443/tcp":null,"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}'
    )
    assert r("{{.Config.Env | json}}") == '["PATH=/bin","TERM=xterm"]'


def test_json_of_a_missing_key_is_null() -> None:
    assert r("{{json .Nope}}") == "null"


def test_marshal_escapes_html_only_when_asked() -> None:
    # Docker's json function turns HTML escaping off; Go's json.Marshal default has it on.
    assert marshal("<a&b>") == '"<a&b>"'
    assert marshal("<a&b>", escape_html=True) == '"\\u003ca\\u0026b\\u003e"'


# --------------------------------------------------------------------- functions


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{upper .State.Status}}", "RUNNING"),
        ('{{lower "ABC"}}', "abc"),
        ('{{title "hello wide-world o\'neil"}}', "Hello Wide-World O'Neil"),
        ('{{join .Config.Cmd " "}}', "sleep 1d"),
        ('{{split "a,b,c" ","}}', "[a b c]"),
        ('{{split "ab" ""}}', "[a b]"),
        ('{{index .Config.Labels "alpha"}}', "first"),
        ('{{index .Config.Labels "missing"}}', ""),
        ("{{index .Config.Cmd 1}}", "1d"),
        ('{{index .NetworkSettings.Networks "mynet" | json}}',
         '{"IPAddress":"172.20.0.2","MacAddress":"02:42:ac:14:00:02"}'),
        ('{{(index .NetworkSettings.Networks "bridge").IPAddress}}', "172.17.0.3"),
        ("{{len .Config.Env}} {{len .Config.Labels}} {{len .Name}}", "2 2 4"),
        ('{{len "caf\u00e9"}}', "5"),
        ('{{println "a" 1}}', "a 1\n"),
        ('{{print "a" 1 2 "b"}}', "a1 2b"),
        ('{{printf "%s:%d" .Name .State.Pid}}', "/web:4242"),
        ('{{printf "%q %v %t" "x" .Config.Cmd true}}', '"x" [sleep 1d] true'),
        ('{{printf "%5s|%-5s|%05d|%x|%X" "ab" "cd" 42 255 255}}', "   ab|cd   |00042|ff|FF"),
        ('{{printf "%.2f %e %g" 3.14159 1500.0 0.5}}', "3.14 1.500000e+03 0.5"),
        ('{{printf "%d" "x"}}', "%!d(string=x)"),
        ('{{printf "%s %s" "only"}}', "only %!s(MISSING)"),
        ('{{printf "%s" "a" 1}}', "a%!(EXTRA int=1)"),
        ('{{printf "100%%"}}', "100%"),
        ('{{pad "x" 1 2}}|{{pad "" 1 2}}|', " x  ||"),
        ('{{truncate "abcdef" 3}} {{truncate "ab" 3}}', "abc ab"),
        ('{{slice "abcdef" 1 3}} {{slice .Config.Env 1}}', "bc [TERM=xterm]"),
        ('{{html "<b>\\"x\\"</b>"}}', "&lt;b&gt;&#34;x&#34;&lt;/b&gt;"),
        ('{{urlquery "a b&c"}}', "a+b%26c"),
    ],
)  # fmt: skip
def test_functions(template: str, expected: str) -> None:
    assert r(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{if eq .State.Status "running"}}up{{else}}down{{end}}', "up"),
        ('{{if ne .State.Status "running"}}up{{else}}down{{end}}', "down"),
        ('{{if eq .State.Status "paused" "running"}}one of{{end}}', "one of"),
        ("{{if eq .RestartCount 0}}never{{end}}", "never"),
        ('{{if eq .Nope "x"}}y{{else}}n{{end}}', "n"),
        ("{{if not .State.Paused}}live{{end}}", "live"),
        ("{{if and .State.Running .State.Paused}}a{{else}}b{{end}}", "b"),
        ("{{if or .State.Paused .State.Running}}a{{else}}b{{end}}", "a"),
        ('{{and 1 0 "x"}} {{and 1 2}} {{or 0 "" "z"}} {{or 0 ""}}', "0 2 z "),
        ("{{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}}", "true true false true"),
        ("{{if .Nope}}y{{else if .Name}}{{.Name}}{{end}}", "/web"),
        ("{{if .Nope}}a{{else if .Nope}}b{{else}}c{{end}}", "c"),
        ("{{if .Config.Env}}env{{end}}{{if .State.Health}}health{{end}}", "env"),
        ('{{if ""}}a{{end}}{{if 0}}b{{end}}{{if 0.0}}c{{end}}{{if 1}}d{{end}}', "d"),
    ],
)  # fmt: skip
def test_conditions_and_comparisons(template: str, expected: str) -> None:
    assert r(template) == expected


def test_comparing_different_types_is_an_error() -> None:
    with pytest.raises(InvalidSpec) as err:
        r('{{eq .State.Pid "4242"}}')
    assert str(err.value) == (
        'template: :1:2: executing "" at <eq .State.Pid "4242">: '
        "error calling eq: incompatible types for comparison"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{index .Config.Cmd 5}}", "error calling index: index out of range: 5"),
        ("{{upper 3}}", "wrong type for value; expected string; got int"),
        ("{{upper .Nope}}", "invalid value; expected string"),
        ('{{join .Config.Labels ","}}',
         "wrong type for value; expected []string; got map[string]interface {}"),
        ("{{len 3}}", "error calling len: len of type int"),
        ("{{upper}}", "wrong number of args for upper: want 1 got 0"),
        ("{{range .Name}}{{end}}", "range can't iterate over /web"),
        ('{{"x" | .Name}}', "Name is not a method but has arguments"),
        ("{{nil}}", "nil is not a command"),
    ],
)  # fmt: skip
def test_runtime_errors_read_like_go(template: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        r(template)
    assert str(err.value).startswith("template: :1:")
    assert str(err.value).endswith(message)


# ------------------------------------------------------------ range, with, variables


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "172.17.0.3 172.20.0.2 "),
        ("{{range $name, $net := .NetworkSettings.Networks}}{{$name}}={{$net.IPAddress}};{{end}}",
         "bridge=172.17.0.3;mynet=172.20.0.2;"),
        ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:PATH=/bin 1:TERM=xterm "),
        ("{{range $e := .Config.Cmd}}<{{$e}}>{{end}}", "<sleep><1d>"),
        ("{{range .Config.Cmd}}{{.}},{{end}}", "sleep,1d,"),
        ("{{range .Nope}}x{{else}}empty{{end}}", "empty"),
        ("{{range .State.Health}}x{{end}}", ""),
        ("{{range .Config.Cmd}}{{if eq . \"sleep\"}}{{continue}}{{end}}{{.}}{{end}}", "1d"),
        ("{{range .Config.Env}}{{.}}{{break}}{{end}}", "PATH=/bin"),
        ("{{range .Config.Cmd}}{{$.Name}}{{end}}", "/web/web"),
        ("{{range 3}}{{.}}{{end}}", "012"),
        ("{{with .State}}{{.Status}}/{{.Pid}}{{end}}", "running/4242"),
        ("{{with .Nope}}x{{else}}none{{end}}", "none"),
        ("{{with $s := .State.Status}}{{$s}}{{end}}", "running"),
        ("{{$n := .Name}}{{$n}} {{$n = \"other\"}}{{$n}}", "/web other"),
        ("{{$x := 1}}{{range .Config.Cmd}}{{$x = .}}{{end}}{{$x}}", "1d"),
    ],
)  # fmt: skip
def test_range_with_and_variables(template: str, expected: str) -> None:
    assert r(template) == expected


# --------------------------------------------------- pipelines, literals, whitespace


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.State.Status | upper}}", "RUNNING"),
        ('{{.Name | printf "%s!"}}', "/web!"),
        ('{{.Name | printf "%s-%s" "a"}}', "a-/web"),
        ('{{"x" | printf "%s%s" (upper "y")}}', "Yx"),
        ("{{3}} {{-2}} {{1.0}} {{1e3}} {{0x1F}} {{017}} {{1_000}}", "3 -2 1 1000 31 15 1000"),
        ("{{true}} {{false}}", "true false"),
        ("{{'a'}}", "97"),
        ('{{"tab\\there\\u00e9"}}', "tab\there\u00e9"),
        ("{{`raw \\n`}}", "raw \\n"),
        ("a  {{- .State.Status -}}  \n b", "arunningb"),
        ("a {{- /* comment */ -}} b", "ab"),
        ("{{/* a comment */}}x", "x"),
        ("{{- 3 }}", "3"),
        ("{{\n  .State.Status\n}}", "running"),
        ("x{{.Name}}y\n", "x/weby\n"),
    ],
)  # fmt: skip
def test_pipelines_literals_and_trimming(template: str, expected: str) -> None:
    assert r(template) == expected


# ------------------------------------------------------------------- parse errors


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Name", "template: :1: unclosed action"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        ("{{if .A}}x", "template: :1: unexpected EOF"),
        ("{{range .A}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
        ("{{foo .A}}", 'template: :1: function "foo" not defined'),
        ("{{}}", "template: :1: missing value for command"),
        ("{{if}}{{end}}", "template: :1: missing value for if"),
        ("{{$x}}", 'template: :1: undefined variable "$x"'),
        ("{{with $x := 1}}{{end}}{{$x}}", 'template: :1: undefined variable "$x"'),
        ("{{.A | 3}}", "template: :1: non executable command in pipeline stage 2"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("{{ .A ) }}", "template: :1: unexpected right paren"),
        ("{{ (.A }}", "template: :1: unclosed left paren"),
        ('{{"abc}}', "template: :1: unterminated quoted string"),
        ("{{/* x }}", "template: :1: unclosed comment"),
        ("x\n\n{{.A", "template: :3: unclosed action"),
        ("{{.A#}}", "template: :1: bad character U+0023 '#'"),
    ],
)
def test_malformed_templates_fail_to_parse_like_docker(template: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        compile(template)
    assert str(err.value) == f"template parsing error: {message}"


def test_a_compiled_template_runs_many_times() -> None:
    template = compile("{{.N}};")
    assert [template.execute({"N": n}) for n in (1, 2)] == ["1;", "2;"]


# ------------------------------------------------------------------------- tables


def test_table_directive_is_detected_and_stripped_like_docker() -> None:
    assert is_table("table {{.ID}}\\t{{.Names}}")
    assert not is_table("{{.ID}}")
    assert strip_table("table {{.ID}}\\t{{.Names}}") == "{{.ID}}\t{{.Names}}"
    assert strip_table("  {{.ID}}\\n ") == "{{.ID}}\n"


def test_tabwrite_gives_dockers_empty_ps_header() -> None:
    header = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n"
    assert tabwrite(header) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )


def test_tabwrite_pads_columns_to_the_widest_cell_plus_three() -> None:
    text = "NAME\tIMAGE\tX\nsome-long-name-here\tbusybox:latest\ty\n"
    assert tabwrite(text) == (
        "NAME                  IMAGE            X\nsome-long-name-here   busybox:latest   y\n"
    )


def test_tabwrite_accepts_a_list_of_rows() -> None:
    assert tabwrite(["a\tb", "cc\td"]) == "a         b\ncc        d\n"


def test_tabwrite_column_blocks_end_at_a_line_without_that_column() -> None:
    # Go aligns a column only over consecutive lines that have a cell in it.
    text = "a\tb\nplain line\nlonger-cell\tc\n"
    assert tabwrite(text) == "a         b\nplain line\nlonger-cell   c\n"


def test_format_rows_renders_a_docker_table_with_a_header() -> None:
    rows = [ContainerRow()]
    header = {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE"}
    out = format_rows("table {{.ID}}\\t{{json .Names}}\\t{{.Image}}", rows, header)
    assert out == ('CONTAINER ID   NAMES     IMAGE\n4f66ad9a0b2e   "web"     busybox\n')


def test_format_rows_without_table_prints_one_line_per_row() -> None:
    assert format_rows("{{.ID}}: {{.Names}}", [ContainerRow(), ContainerRow()]) == (
        "4f66ad9a0b2e: web\n4f66ad9a0b2e: web\n"
    )


def test_header_mode_passes_header_text_through_docker_functions() -> None:
    template = compile('{{upper .A}} {{json .B}} {{join .C ","}}')
    headers = {"A": "Name", "B": "LABELS", "C": "CMD"}
    assert template.execute(headers, header=True) == "Name LABELS CMD"
