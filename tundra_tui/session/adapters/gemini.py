"""Gemini CLI 0.61.0: `1` allows once, Esc denies."""

from __future__ import annotations

import re

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import ESC, Adapter, Dialog

ADAPTER = Adapter(
    runtime=Runtime.GEMINI,
    approve_keys=b"1",
    deny_keys=ESC,
    dialogs=(
        Dialog(
            "gemini.trust",
            re.compile(r"Do you trust the files in this folder\?"),
            (b"1",),
            trust=True,
        ),
    ),
    rate_limited=re.compile(r"(?i)(quota exceeded|rate limit|resource_exhausted|429)"),
    auth_failed=re.compile(r"(?i)(api key not valid|permission_denied|401)"),
    # The API key, or Vertex AI's project, location and credentials file.
    env_keys=(
        "GEMINI_*",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_*",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ),
)
