"""The json-file writer: Docker's entry format, line splitting, partial lines, rotation."""

from __future__ import annotations

import json
from pathlib import Path

from runtime import logs


def entries(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_each_complete_line_is_one_entry_with_its_newline_and_stream(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    writer = logs.JsonFileWriter(log)
    writer.write("stdout", b"one\ntwo\n")
    writer.write("stderr", b"oops\n")
    writer.close()
    got = entries(log)
    assert [(e["log"], e["stream"]) for e in got] == [
        ("one\n", "stdout"),
        ("two\n", "stdout"),
        ("oops\n", "stderr"),
    ]
    assert all(e["time"].endswith("Z") and len(e["time"]) == 30 for e in got)


def test_a_line_split_across_chunks_is_joined_and_streams_keep_their_own_partials(
    tmp_path: Path,
) -> None:
    log = tmp_path / "c-json.log"
    writer = logs.JsonFileWriter(log)
    writer.write("stdout", b"hel")
    writer.write("stderr", b"err")
    writer.write("stdout", b"lo\nwor")
    writer.write("stderr", b"or\n")
    writer.close()  # flushes the unterminated "wor"
    assert [(e["log"], e["stream"]) for e in entries(log)] == [
        ("hello\n", "stdout"),
        ("error\n", "stderr"),
        ("wor", "stdout"),
    ]


def test_lines_longer_than_16k_become_partial_entries_like_dockers(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    writer = logs.JsonFileWriter(log)
    writer.write("stdout", b"a" * 40000 + b"\n")
    writer.write("stdout", b"b" * (2 * logs.PARTIAL_LIMIT + 5))  # no newline yet
    writer.write("stdout", b"\n")
    writer.close()
    sizes = [len(e["log"]) for e in entries(log)]
    assert sizes == [16384, 16384, 40001 - 32768, 16384, 16384, 6]
    assert "".join(e["log"] for e in entries(log)) == "a" * 40000 + "\n" + "b" * 32773 + "\n"


def test_text_is_escaped_as_json_and_bad_utf8_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    writer = logs.JsonFileWriter(log)
    writer.write("stdout", 'quote " slash \\ tab \t é ✓\n'.encode() + b"\xff\x1b[0m\n")
    writer.close()
    assert [e["log"] for e in entries(log)] == ['quote " slash \\ tab \t é ✓\n', "\ufffd\x1b[0m\n"]
    assert "é ✓".encode() in log.read_bytes()  # kept as UTF-8, like ensure_ascii=False


def test_max_size_rotates_to_numbered_files_and_keeps_max_file_of_them(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    writer = logs.JsonFileWriter(log, max_size=300, max_files=2)
    writer.write("stdout", b"".join(b"line %03d\n" % n for n in range(20)))
    writer.close()
    current, older = entries(log), entries(tmp_path / "c-json.log.1")
    assert log.stat().st_size <= 300 and (tmp_path / "c-json.log.1").stat().st_size <= 300
    assert not (tmp_path / "c-json.log.2").exists()
    kept = [e["log"] for e in older + current]
    assert kept == [f"line {n:03d}\n" for n in range(20 - len(kept), 20)]
