"""The HMAC key a webhook secret stands for, per Standard Webhooks: one decoder for config and sender."""

from __future__ import annotations

import base64
import binascii

#: The prefix of a secret given as base64, as Standard Webhooks libraries print them.
WHSEC_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: a `whsec_` secret is base64 (per the spec), any other is raw bytes.

    Raises ValueError if a `whsec_` secret is not base64 after the prefix.
    """
    if not secret.startswith(WHSEC_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(WHSEC_PREFIX)
    try:
        # Padding is optional in what people paste: restore it.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a whsec_ secret must be base64 after the prefix") from None
