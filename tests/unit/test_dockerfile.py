"""The Dockerfile parser and the builder's word expansion (no root, no disk)."""

from __future__ import annotations

import pytest

from runtime.build import dockerfile as df
from runtime.errors import InvalidSpec


def test_instructions_keep_their_line_numbers_and_upper_case_keywords() -> None:
    parsed = df.parse("# comment\n\nfrom busybox\nrun echo hi\n")
    assert [(i.keyword, i.rest, i.line) for i in parsed.instructions] == [
        ("FROM", "busybox", 3),
        ("RUN", "echo hi", 4),
    ]


def test_continuation_lines_join_and_comments_inside_them_vanish() -> None:
    parsed = df.parse("FROM busybox\nRUN echo a \\\n# note\n  && echo b\n")
    run = parsed.instructions[1]
    assert run.rest == "echo a   && echo b"
    assert run.line == 2


def test_the_escape_directive_switches_to_backtick() -> None:
    parsed = df.parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo ok\n")
    assert parsed.escape == "`"
    assert parsed.directives == {"escape": "`"}
    assert parsed.instructions[1].rest == "dir c:\\   && echo ok"


def test_a_directive_after_a_comment_is_only_a_comment() -> None:
    parsed = df.parse("# hello\n# escape=`\nFROM busybox\n")
    assert parsed.escape == "\\"


def test_unknown_instruction_names_its_line() -> None:
    with pytest.raises(
        df.DockerfileError, match="Dockerfile parse error line 3: unknown instruction: FOO"
    ):
        df.parse("FROM busybox\nRUN true\nFOO bar\n")


def test_unknown_flag_and_missing_arguments_are_parse_errors() -> None:
    with pytest.raises(df.DockerfileError, match="line 2: Unknown flag: bogus"):
        df.parse("FROM busybox\nCOPY --bogus=1 a b\n")
    with pytest.raises(df.DockerfileError, match="line 2: COPY requires at least two"):
        df.parse("FROM busybox\nCOPY a\n")
    with pytest.raises(df.DockerfileError, match="line 1: FROM requires either one or three"):
        df.parse("FROM a b\n")
    with pytest.raises(df.DockerfileError, match="line 2: SHELL requires the arguments"):
        df.parse("FROM busybox\nSHELL /bin/bash -c\n")
    with pytest.raises(df.DockerfileError, match="line 2: ONBUILD isn't allowed"):
        df.parse("FROM busybox\nONBUILD ONBUILD RUN true\n")


def test_an_empty_dockerfile_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="cannot be empty"):
        df.parse("# only a comment\n\n")


def test_json_form_is_recognised_and_broken_json_falls_back_to_shell_form() -> None:
    parsed = df.parse('FROM busybox\nCMD ["echo", "$HOME"]\nCMD [echo, hi]\n')
    assert parsed.instructions[1].json_args == ("echo", "$HOME")
    assert parsed.instructions[2].json_args is None


def test_flags_are_split_from_the_arguments() -> None:
    ins = df.parse_line("COPY --from=builder --chown=1:2 /a /b", 1)
    assert ins.flag("from") == "builder"
    assert ins.flag("chown") == "1:2"
    assert ins.rest == "/a /b"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "1"),
        ("${A}x", "1x"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${A:+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("${UNSET:-${A}2}", "12"),
        ("'$A'", "$A"),
        ('"$A b"', "1 b"),
        ("\\$A", "$A"),
        ('"\\$A"', "$A"),
        ("$", "$"),
        ("a$UNSETb", "a"),
    ],
)
def test_words_expand_like_docker(word: str, expected: str) -> None:
    assert df.expand(word, {"A": "1", "EMPTY": ""}) == expected


def test_required_variable_errors_when_unset() -> None:
    with pytest.raises(InvalidSpec, match="X: needed"):
        df.expand("${X:?needed}", {})


def test_expand_words_splits_only_on_unquoted_blanks() -> None:
    assert df.expand_words('a "b c" ${V}', {"V": "v"}) == ["a", "b c", "v"]


def test_env_pairs_in_both_forms() -> None:
    new = df.parse_line('ENV A=1 B="two words" C=${A:-x}', 1)
    assert df.pairs(new, {"A": "9"}, "\\") == [("A", "1"), ("B", "two words"), ("C", "9")]
    legacy = df.parse_line("ENV GREETING hello world", 1)
    assert df.pairs(legacy, {}, "\\") == [("GREETING", "hello world")]


def test_arg_without_default_is_marked() -> None:
    assert df.pairs(df.parse_line("ARG A B=2", 1), {}, "\\") == [("A", "\0"), ("B", "2")]


def test_env_without_value_is_a_parse_error() -> None:
    with pytest.raises(df.DockerfileError, match="line 2: ENV must have two arguments"):
        df.parse("FROM busybox\nENV ONLYNAME\n")


def test_an_unterminated_quote_is_a_parse_error_with_its_line() -> None:
    with pytest.raises(df.DockerfileError, match="line 2: .*matching"):
        df.parse('FROM busybox\nENV A="open\n')
