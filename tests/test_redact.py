"""Secrets never stored: every published token shape is replaced, ordinary text is kept."""

from __future__ import annotations

import pytest

from tundra_tui.domain.redact import holds_secret, mask_mapping, mask_value, redact

# Built at run time so no scanner mistakes this file for a leak.
GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
ANT = "sk-ant-api03-" + "x" * 40
OAI = "sk-proj-" + "Ab3" * 12
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SLACK = "xoxb-" + "1234567890-abcdefghij"
HOOK = "https://hooks.slack.com/services/T0000/B0000/" + "X" * 24
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("secret", "label"),
    [
        (GH, "github"),
        ("github_pat_" + "a" * 30, "github"),
        (ANT, "anthropic"),
        (OAI, "openai"),
        (AWS, "aws"),
        (SLACK, "slack"),
        ("AIza" + "B" * 35, "google"),
    ],
)
def test_each_shape_is_replaced_with_its_label(secret: str, label: str) -> None:
    out = redact(f"export X={secret} # done")
    assert secret not in out
    assert f"[REDACTED:{label}]" in out
    assert out.startswith("export X=") and out.endswith(" # done")


def test_context_shapes_keep_their_names() -> None:
    assert redact(f"aws_secret_access_key = {AWS_SECRET}") == (
        "aws_secret_access_key = [REDACTED:aws-secret]"
    )
    assert redact("Authorization: Bearer abcdefghijklmnop1234") == (
        "Authorization: Bearer [REDACTED:bearer]"
    )
    assert AWS_SECRET not in redact(f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}")


def test_a_pem_block_goes_whole_even_when_cut_off() -> None:
    out = redact(f"key:\n{PEM}\nafter")
    assert out == "key:\n[REDACTED:private-key]\nafter"
    cut = redact("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk")
    assert cut == "[REDACTED:private-key]"


def test_slack_webhook_path_is_redacted() -> None:
    out = redact(f"curl -X POST {HOOK}")
    assert "X" * 24 not in out and "[REDACTED:slack-webhook]" in out


def test_ordinary_text_is_untouched() -> None:
    text = "sk-short ghp_short AKIA123 the skeleton key; task-ant-colony; bearer of news"
    assert redact(text) == text
    assert not holds_secret(text)
    assert holds_secret(GH)


def test_masking_by_name_and_by_shape() -> None:
    assert mask_value("GITHUB_TOKEN", "anything") == "••••"
    assert mask_value("API_KEY", "short") == "••••"
    assert mask_value("BASE_URL", "http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert mask_value("ARGS", f"--token={GH}") == "--token=[REDACTED:github]"
    assert mask_mapping({"HOME": "/root", "OPENAI_API_KEY": OAI}) == {
        "HOME": "/root",
        "OPENAI_API_KEY": "••••",
    }


def test_a_token_glued_to_a_colour_code_is_still_found() -> None:
    for secret in (GH, ANT, AWS, SLACK):
        assert secret not in redact(f"\x1b[32m{secret}\x1b[0m")
    assert redact("risk-assessment-document-v2-final") == "risk-assessment-document-v2-final"
