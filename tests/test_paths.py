"""TinkerPath: the grammar, table-driven, and the round trip as a property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinker_rest import InvalidTinkerPathError, TinkerPath

VALID = [
    ("tinker://sess-7f3a:train:0/weights/0001", "sess-7f3a:train:0", "weights", "0001", "training"),
    ("tinker://run-id/sampler_weights/final", "run-id", "sampler_weights", "final", "sampler"),
    ("tinker://r/external_weights/x.y-z", "r", "external_weights", "x.y-z", "external"),
]

INVALID = [
    ("", "does not start with 'tinker://'"),
    ("weights/0001", "does not start with 'tinker://'"),
    ("s3://run/weights/0001", "does not start with 'tinker://'"),
    ("tinker://run/weights", "expected 3 parts"),
    ("tinker://run/weights/0001/extra", "expected 3 parts"),
    ("tinker:///weights/0001", "the training run id is empty"),
    ("tinker://run/weights/", "the checkpoint name is empty"),
    ("tinker://run/checkpoints/0001", "the kind 'checkpoints' is not one of"),
    ("tinker://run/Weights/0001", "the kind 'Weights' is not one of"),
    ("tinker://run id/weights/0001", "whitespace"),
    ("tinker://run/weights/0001 ", "whitespace"),
    ("tinker://run/weights/00\x0001", "control character"),
    ("tinker://run/weights/\u200b", "control character"),
]


@pytest.mark.parametrize(("text", "run", "kind", "name", "checkpoint_type"), VALID)
def test_parse_valid(text: str, run: str, kind: str, name: str, checkpoint_type: str) -> None:
    path = TinkerPath.parse(text)
    assert (path.training_run_id, path.kind, path.name) == (run, kind, name)
    assert path.checkpoint_id == f"{kind}/{name}"
    assert path.checkpoint_type == checkpoint_type
    assert str(path) == text
    assert TinkerPath.from_checkpoint_id(run, f"{kind}/{name}") == path


@pytest.mark.parametrize(("text", "problem"), INVALID)
def test_parse_invalid_quotes_the_input_and_says_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidTinkerPathError) as raised:
        TinkerPath.parse(text)
    assert repr(text) in str(raised.value)
    assert problem in str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("checkpoint_id", ["0001", "weights/", "weights/a/b", "bogus/0001", ""])
def test_from_checkpoint_id_refuses_malformed_ids(checkpoint_id: str) -> None:
    with pytest.raises(InvalidTinkerPathError, match=repr(checkpoint_id)):
        TinkerPath.from_checkpoint_id("run", checkpoint_id)


def test_parse_refuses_a_non_string() -> None:
    with pytest.raises(InvalidTinkerPathError, match="expected a str"):
        TinkerPath.parse(42)  # type: ignore[arg-type]


def test_paths_are_frozen_values() -> None:
    path = TinkerPath.parse("tinker://run/weights/1")
    assert path == TinkerPath("run", "weights", "1")
    assert hash(path) == hash(TinkerPath("run", "weights", "1"))
    with pytest.raises(AttributeError):
        path.name = "2"  # type: ignore[misc]


segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
).filter(lambda s: "/" not in s and not any(c.isspace() or not c.isprintable() for c in s))
kinds = st.sampled_from(["weights", "sampler_weights", "external_weights"])


@given(run=segment, kind=kinds, name=segment)
def test_parse_then_format_is_the_identity(run: str, kind: str, name: str) -> None:
    text = f"tinker://{run}/{kind}/{name}"
    assert str(TinkerPath.parse(text)) == text


@given(st.text())
def test_every_string_either_parses_and_round_trips_or_raises(text: str) -> None:
    try:
        path = TinkerPath.parse(text)
    except InvalidTinkerPathError as exc:
        assert repr(text) in str(exc)
    else:
        assert str(path) == text
        assert text.startswith("tinker://") and text.count("/") == 4


@given(run=segment, kind=kinds, name=segment, junk=st.sampled_from([" ", "\t", "\n", "\x00", "/"]))
def test_a_bad_character_anywhere_is_refused(run: str, kind: str, name: str, junk: str) -> None:
    for text in (f"tinker://{junk}{run}/{kind}/{name}", f"tinker://{run}/{kind}/{name}{junk}"):
        with pytest.raises(InvalidTinkerPathError):
            TinkerPath.parse(text)


def test_query_strings_are_what_urlencode_makes() -> None:
    """The client skips urlencode's quoting where nothing needs it; the string is the same."""
    import urllib.parse

    from hypothesis import given
    from hypothesis import strategies as st

    from tinker_rest._client import _query

    values = st.one_of(st.text(), st.integers(), st.sampled_from(["owned", "a-b_c.d~e", "100"]))

    @given(st.dictionaries(st.text(min_size=1), values, min_size=1, max_size=4))
    def same(params: dict[str, object]) -> None:
        assert _query(params) == urllib.parse.urlencode(params)

    same()
