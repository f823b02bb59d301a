"""Dataset formats: detection, normalisation, every kind of bad input, stats, uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quanta.data import (
    DatasetError,
    ValidationReport,
    dataset_stats,
    detect_format,
    read_examples,
    validate_bytes,
    validate_file,
    write_jsonl,
)
from quanta.data.validate import MAX_ERRORS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"

CHAT = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}
CAMEL = {
    "role_1": "Physicist_RoleType.ASSISTANT",
    "topic;": "Optics",
    "sub_topic": "Refraction",
    "message_1": "What is refraction?",
    "message_2": "The bending of light between media.",
}
ALPACA = {"instruction": "Define power.", "input": "", "output": "Work per unit time."}
PREFERENCE = {
    "input": {"messages": [{"role": "user", "content": "Unit of energy?"}]},
    "preferred_output": [{"role": "assistant", "content": "The joule."}],
    "non_preferred_output": [{"role": "assistant", "content": "The watt."}],
}


# --- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [(CHAT, "chat"), (PREFERENCE, "preference"), (CAMEL, "camel"), (ALPACA, "alpaca"),
     ({**CAMEL, "topic": "Optics"}, "camel")],
)
def test_detect_format(record: dict, expected: str) -> None:
    assert detect_format(record) == expected


def test_detect_format_unknown_raises_dataset_error() -> None:
    with pytest.raises(DatasetError, match="unknown format") as info:
        detect_format({"question": "q", "answer": "a"})
    assert isinstance(info.value, ValueError)
    assert "'question'" in str(info.value)


# --- good files --------------------------------------------------------------------------


def test_good_chat_fixture_reads_and_drops_extra_keys() -> None:
    examples = read_examples(FIXTURES / "good_chat.jsonl")
    assert len(examples) == 3
    assert examples[1]["messages"][0] == {"role": "system", "content": "You are a physics tutor."}
    assert all(set(e) == {"messages"} for e in examples)  # "topic" is allowed, not passed on


def test_camel_json_list_with_semicolon_topic_key() -> None:
    report = validate_file(FIXTURES / "good_camel.json")
    assert report.ok, report.errors
    assert report.format == "camel" and report.records == 2
    assert report.topics == {"Quantum mechanics": 1, "Thermodynamics": 1}
    first = report.examples[0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant"]
    assert first[0]["content"].startswith("Light of wavelength 250 nm")
    assert first[1]["content"].endswith("2.68 eV.")


def test_camel_plain_topic_key_jsonl_and_single_object(tmp_path: Path) -> None:
    plain = {k: v for k, v in CAMEL.items() if k != "topic;"} | {"topic": "Optics"}
    assert read_examples(write_jsonl([plain, plain], tmp_path / "c.jsonl"))[0]["messages"][0] == {
        "role": "user", "content": "What is refraction?"}
    single = tmp_path / "one.json"
    single.write_text(json.dumps(CAMEL, indent=2), encoding="utf-8")
    report = validate_file(single)
    assert report.ok and report.format == "camel" and report.records == 1


def test_camel_missing_topic_and_answer_reported(tmp_path: Path) -> None:
    bad = {k: v for k, v in CAMEL.items() if k not in ("topic;", "message_2")}
    report = validate_file(write_jsonl([CAMEL, bad], tmp_path / "c.jsonl"))
    assert not report.ok
    assert any(e.startswith(f"{tmp_path / 'c.jsonl'}:2: field 'message_2': missing")
               for e in report.errors)
    assert any(":2: field 'topic': missing" in e for e in report.errors)


def test_alpaca_with_and_without_input() -> None:
    examples = read_examples(FIXTURES / "good_alpaca.json")
    assert examples[0]["messages"][0]["content"] == "State Newton's second law."
    assert examples[1]["messages"][0]["content"] == (
        "Compute the current through the resistor.\n\n"
        "A 12 V battery is connected across a 4 Ω resistor."
    )
    assert examples[2]["messages"][0]["content"] == "Name the SI unit of capacitance."
    assert examples[1]["messages"][1] == {"role": "assistant", "content": "I = V/R = 12/4 = 3 A."}


def test_alpaca_missing_output_and_wrong_input_type(tmp_path: Path) -> None:
    records = [ALPACA, {"instruction": "x", "input": 3, "output": "y"}, {"instruction": "z"}]
    path = write_jsonl(records, tmp_path / "a.jsonl")
    report = validate_file(path)
    assert f"{path}:2: field 'input': expected a string, got number" in report.errors
    assert f"{path}:3: field 'output': missing" in report.errors


def test_preference_normalised_to_prompt_chosen_rejected() -> None:
    examples = read_examples(FIXTURES / "good_preference.jsonl")
    assert examples[0] == {
        "prompt": [{"role": "user", "content": "What is the SI unit of energy?"}],
        "chosen": [{"role": "assistant", "content": "The joule (J)."}],
        "rejected": [{"role": "assistant", "content": "The watt (W)."}],
    }
    assert [m["role"] for m in examples[1]["prompt"]] == ["system", "user"]


def test_preference_errors(tmp_path: Path) -> None:
    bad_output = {**PREFERENCE, "preferred_output": [{"role": "user", "content": "x"}]}
    no_rejected = {k: v for k, v in PREFERENCE.items() if k != "non_preferred_output"}
    ends_with_assistant = {**PREFERENCE, "input": {"messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}}
    path = write_jsonl([PREFERENCE, bad_output, no_rejected, ends_with_assistant],
                       tmp_path / "p.jsonl")
    report = validate_file(path)
    assert report.format == "preference"
    assert f"{path}:2: field 'preferred_output[0].role': expected 'assistant', got 'user'" in (
        report.errors)
    assert f"{path}:3: field 'non_preferred_output': missing" in report.errors
    assert any(e.startswith(f"{path}:4: field 'input.messages[1].role'") for e in report.errors)


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    path = write_jsonl([CHAT], tmp_path / "x.jsonl")
    report = validate_file(path, format="alpaca")
    assert report.format == "alpaca" and not report.ok
    assert f"{path}:1: field 'instruction': missing" in report.errors
    with pytest.raises(DatasetError, match="unknown format 'csv'"):
        read_examples(path, format="csv")


# --- bad files ---------------------------------------------------------------------------


def test_bad_json_reports_line_number_and_keeps_going() -> None:
    report = validate_file(FIXTURES / "bad_json.jsonl")
    assert not report.ok
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{FIXTURES / 'bad_json.jsonl'}:3: invalid JSON:")
    assert report.records == 3  # lines 1, 2 and 4 still parsed


def test_bad_schema_collects_every_error_with_field_names() -> None:
    path = FIXTURES / "bad_schema.jsonl"
    with pytest.raises(DatasetError) as info:
        read_examples(path)
    errors = info.value.errors
    assert f"{path}:2: field 'messages[1].role': expected one of system, user, assistant, " \
           "got 'bot'" in errors
    assert f"{path}:3: field 'messages[0].content': must not be empty" in errors
    assert f"{path}:3: field 'messages[1].content': expected a string, got number" in errors
    assert f"{path}:4: field 'messages': needs at least one assistant message" in errors
    assert f"{path}:5: field 'messages': expected an array of messages, got string" in errors
    assert f"{path}:6: field 'messages': missing" in errors
    assert not any(":1:" in e for e in errors)
    assert "6 errors" in str(info.value) and "'bot'" in str(info.value)


def test_error_message_names_file_line_and_field() -> None:
    bot = {"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}
    data = "\n".join(json.dumps(r) for r in [CHAT, CHAT, bot]).encode()
    with pytest.raises(DatasetError) as info:
        validate_bytes(data, "train.jsonl").raise_for_errors()
    assert str(info.value) == (
        "train.jsonl:3: field 'messages[1].role': expected one of system, user, assistant, "
        "got 'bot'"
    )
    assert info.value.path == "train.jsonl"


def test_last_message_must_be_assistant(tmp_path: Path) -> None:
    record = {"messages": [*CHAT["messages"], {"role": "user", "content": "And?"}]}
    report = validate_file(write_jsonl([record], tmp_path / "t.jsonl"))
    assert report.errors == [f"{tmp_path / 't.jsonl'}:1: field 'messages[2].role': the last "
                             "message must be from the assistant, got 'user'"]


def test_message_missing_role_and_unknown_key(tmp_path: Path) -> None:
    record = {"messages": [{"content": "hi"}, {"role": "assistant", "content": "yo", "x": 1}]}
    report = validate_file(write_jsonl([record], tmp_path / "t.jsonl"))
    assert any("field 'messages[0].role': missing" in e for e in report.errors)
    assert any("field 'messages[1]': unexpected key(s) 'x'" in e for e in report.errors)


def test_empty_file_and_whitespace_file(tmp_path: Path) -> None:
    assert validate_file(FIXTURES / "empty.jsonl").errors == [
        f"{FIXTURES / 'empty.jsonl'}: file is empty"]
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DatasetError, match="file is empty"):
        read_examples(blank)


def test_empty_json_list_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text("[]", encoding="utf-8")
    assert validate_file(path).errors == [f"{path}: no records"]


def test_unknown_format_reported_at_first_record() -> None:
    report = validate_file(FIXTURES / "unknown_format.jsonl")
    assert report.format is None and not report.ok
    assert report.errors[0].startswith(f"{FIXTURES / 'unknown_format.jsonl'}:1: unknown format")


def test_non_object_records(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps([CHAT, [1, 2], "text"]), encoding="utf-8")
    report = validate_file(path)
    assert report.errors == [f"{path}:record 2: expected a JSON object, got array",
                             f"{path}:record 3: expected a JSON object, got string"]


def test_broken_json_list_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": }\n]\n',
                    encoding="utf-8")
    report = validate_file(path)
    assert len(report.errors) == 1 and report.errors[0].startswith(f"{path}:3: invalid JSON")


def test_mixed_formats_in_one_file_are_errors(tmp_path: Path) -> None:
    report = validate_file(write_jsonl([CHAT, ALPACA], tmp_path / "m.jsonl"))
    assert report.format == "chat"
    assert report.errors == [f"{tmp_path / 'm.jsonl'}:2: field 'messages': missing"]


def test_errors_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("{not json\n" * 120, encoding="utf-8")
    report = validate_file(path)
    assert report.error_count == 120
    assert len(report.errors) == MAX_ERRORS + 1
    assert report.errors[-1].endswith("and 70 more errors not shown")


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    report = validate_bytes(b'{"messages": "\xff\xfe"}', "latin.jsonl")
    assert report.errors == ["latin.jsonl: not UTF-8 text (bad byte at offset 14)"]
    missing = validate_file(tmp_path / "nope.jsonl")
    assert not missing.ok and "cannot read file" in missing.errors[0]


def test_validate_bytes_matches_validate_file() -> None:
    path = FIXTURES / "bad_schema.jsonl"
    from_bytes = validate_bytes(path.read_bytes(), "upload.jsonl")
    from_file = validate_file(path)
    assert isinstance(from_bytes, ValidationReport)
    assert [e.replace("upload.jsonl", str(path)) for e in from_bytes.errors] == from_file.errors
    assert validate_bytes((FIXTURES / "good_camel.json").read_bytes(), "c.json").ok


def test_utf8_bom_and_blank_lines_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + json.dumps(CHAT).encode() + b"\n\n" + json.dumps(CHAT).encode()
    report = validate_bytes(data, "bom.jsonl")
    assert report.ok and report.records == 2


# --- stats -------------------------------------------------------------------------------


def test_dataset_stats_chat_fixture() -> None:
    stats = dataset_stats(FIXTURES / "good_chat.jsonl")
    examples = read_examples(FIXTURES / "good_chat.jsonl")
    lengths = [sum(len(m["content"]) for m in e["messages"]) for e in examples]
    assert stats["format"] == "chat" and stats["records"] == 3
    assert stats["roles"] == {"system": 1, "user": 3, "assistant": 3}
    assert stats["max_chars"] == max(lengths)
    assert stats["mean_chars"] == round(sum(lengths) / 3, 1)
    assert stats["mean_tokens"] == round(sum(lengths) / 3 / 4, 1)
    assert stats["topics"] == {"mechanics": 1}


def test_dataset_stats_camel_topics_and_preference() -> None:
    assert dataset_stats(FIXTURES / "good_camel.json")["topics"] == {
        "Quantum mechanics": 1, "Thermodynamics": 1}
    pref = dataset_stats(FIXTURES / "good_preference.jsonl")
    assert pref["format"] == "preference" and "topics" not in pref
    assert pref["roles"] == {"system": 1, "user": 2, "assistant": 4}


def test_dataset_stats_raises_on_invalid_file() -> None:
    with pytest.raises(DatasetError, match=r"bad_json\.jsonl:3"):
        dataset_stats(FIXTURES / "bad_json.jsonl")


def test_validate_upload_streams_jsonl_with_the_same_findings(tmp_path: Path) -> None:
    from quanta.data import validate_upload

    for name in ("good_chat.jsonl", "bad_json.jsonl", "bad_schema.jsonl", "empty.jsonl"):
        path = FIXTURES / name
        whole = validate_file(path)
        streamed = validate_upload(path, str(path))
        assert streamed.ok == whole.ok, name
        assert streamed.format == whole.format, name
        if whole.records:
            assert streamed.records == whole.records, name
            assert streamed.errors == whole.errors, name
        assert streamed.examples == []  # nothing kept in memory
    array = FIXTURES / "good_alpaca.json"
    assert validate_upload(array, str(array)).ok


def test_validate_upload_reports_bad_utf8_by_line(tmp_path: Path) -> None:
    from quanta.data import validate_upload

    path = tmp_path / "mixed.jsonl"
    good = (b'{"messages": [{"role": "user", "content": "q"}, '
            b'{"role": "assistant", "content": "a"}]}')
    path.write_bytes(good + b"\n" + b"\xff\xfe\n" + good + b"\n")
    report = validate_upload(path, "mixed.jsonl")
    assert not report.ok
    assert report.errors == ["mixed.jsonl:2: not UTF-8 text (bad byte at column 1)"]
    assert report.records == 2
