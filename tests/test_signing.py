"""Webhook secrets: one decoder, so what the config accepts is exactly what signs."""

from __future__ import annotations

import base64

import pytest

from jobsvc.config import read_settings
from jobsvc.core.signing import secret_key
from jobsvc.errors import ConfigError


def test_a_whsec_secret_is_its_base64_bytes_padded_or_not():
    encoded = base64.b64encode(b"sixteen byte key").decode()
    assert secret_key("whsec_" + encoded) == secret_key("whsec_" + encoded.rstrip("=")) == b"sixteen byte key"


def test_any_other_secret_is_its_own_bytes():
    assert secret_key("plain-secret") == b"plain-secret"


def test_the_config_refuses_a_whsec_secret_the_sender_could_not_decode():
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        read_settings({"WEBHOOK_SECRET": "good-one,whsec_not*base64"}, env_file=None)
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_not*base64")
