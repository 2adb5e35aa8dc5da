"""API keys of the emulator's accounts and how each verifies a signature.

HMAC-SHA256 (hex, case-insensitive) or Ed25519 (base64; pycryptodome, which python-binance
already requires, imported only when an Ed25519 key is configured). The key table maps an
`X-MBX-APIKEY` to its verifier and the account it trades.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from binance_cluster.errors import ConfigError
from binance_cluster.exchange.emulator.accounts import Account, AccountSpec


def hmac_sha256(secret: str, payload: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `payload` with `secret` (Binance's HMAC signature)."""
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


class HmacKey:
    """Verifies HMAC-SHA256 signatures with one secret."""

    def __init__(self, secret: str):
        self._secret = secret

    def verify(self, payload: bytes, signature: str) -> bool:
        return hmac.compare_digest(hmac_sha256(self._secret, payload), signature.lower())


class Ed25519Key:
    """Verifies Ed25519 (RFC 8032) signatures with one public key (PEM)."""

    def __init__(self, pem: str, where: str = "accounts"):
        try:
            from Crypto.PublicKey import ECC
            from Crypto.Signature import eddsa
        except ImportError:
            raise ConfigError(f"{where}: Ed25519 keys need pycryptodome (installed with "
                              "python-binance)") from None
        try:
            key = ECC.import_key(pem)
        except (ValueError, IndexError, TypeError):
            raise ConfigError(f"{where}: ed25519_public_key is not a PEM public key") from None
        if getattr(key, "curve", "") not in ("Ed25519", "ed25519"):
            raise ConfigError(f"{where}: ed25519_public_key is not an Ed25519 key")
        self._verifier = eddsa.new(key, "rfc8032")

    def verify(self, payload: bytes, signature: str) -> bool:
        try:
            raw = base64.b64decode(signature.replace(" ", "+"), validate=True)
            self._verifier.verify(payload, raw)
        except (ValueError, TypeError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A configured API key: how its requests are verified and the account it trades."""

    verifier: HmacKey | Ed25519Key = field(repr=False)
    account: Account


def verifier_for(spec: AccountSpec, where: str) -> HmacKey | Ed25519Key:
    """The verifier of an account's configured key (HMAC secret or Ed25519 public key)."""
    if spec.secret is not None:
        return HmacKey(spec.secret)
    return Ed25519Key(spec.ed25519_public_key or "", where)
