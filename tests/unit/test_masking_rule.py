"""masking.py: which keys are secret, which values a command line gives, and the stream that
masks a value even when it is written in pieces."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hyperpod_launcher.util import masking


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("git.token", True),
        ("recipes.model.hf_access_token", True),
        ("+env_vars.HF_TOKEN", True),
        ("env_vars.WANDB_API_KEY", True),
        ("env_vars.NCCL_DEBUG", False),
        ("recipes.model.max_tokens", False),  # a token count is no secret
        ("git.branch", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert masking.is_secret_key(key) is secret


def test_values_as_a_parser_or_an_error_may_show_them() -> None:
    found = masking.values_in_overrides(
        [
            "git.token=[ghp_one_1234]",
            "+env_vars.HF_TOKEN='hf_two_5678",
            "git.repo_url_or_path=https://me:ghp_three_9012@example.com/r.git",
            "recipes.model.max_tokens=2048",
        ]
    )
    assert {"ghp_one_1234", "hf_two_5678", "ghp_three_9012"} <= found
    assert "2048" not in found


def test_a_value_written_in_pieces_is_masked_and_short_or_plain_words_are_not() -> None:
    masking.remember(["sk_piecewise_4321", "abc", "true"])
    target = io.StringIO()
    stream = masking.MaskingStream(target)
    stream.write("token sk_piece")
    stream.write("wise_4321 and abc is true\nnext ")
    assert target.getvalue() == "token **** and abc is true\n"
    stream.flush()
    assert target.getvalue().endswith("next ")


def test_files_are_masked_in_place_byte_for_byte_otherwise(tmp_path: Path) -> None:
    from hyperpod_launcher.util.log_mask import mask_files

    copy = tmp_path / "attempt_0" / "0" / "stdout.log"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"step 1 \xff\xfe\nrank 0 has hf_canary_5555 here\n")
    copy.chmod(0o640)
    plain = tmp_path / "attempt_0" / "0" / "stderr.log"
    plain.write_bytes(b"nothing secret \xff\n")
    before = plain.stat()
    mask_files(tmp_path, ["hf_canary_5555"])
    assert copy.read_bytes() == b"step 1 \xff\xfe\nrank 0 has **** here\n"
    assert copy.stat().st_mode & 0o777 == 0o640
    assert plain.read_bytes() == b"nothing secret \xff\n"
    assert (plain.stat().st_ino, plain.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["stderr.log", "stdout.log"]
