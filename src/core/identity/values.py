"""Identity value rules: email normalisation, password strength, opaque secrets and their hashes."""

from __future__ import annotations

import hashlib
import re
import secrets

from src.ports.shared import InvalidInput

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 has no length limit, but an unbounded input is a denial-of-service lever


def normalise_email(raw: str, field: str = "email") -> str:
    email = (raw or "").strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput("that is not a valid email address", field=field)
    return email


def check_password(password: str, field: str = "password") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password needs at least {MIN_PASSWORD} characters", field=field)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password may have at most {MAX_PASSWORD} characters", field=field)
    if password.strip() == "" or len(set(password)) < 4:
        raise InvalidInput("the password is too easy to guess", field=field)
    return password


def check_name(raw: str, field: str = "name", limit: int = 200) -> str:
    name = (raw or "").strip()
    if not name:
        raise InvalidInput("a name is required", field=field)
    if len(name) > limit:
        raise InvalidInput(f"the name may have at most {limit} characters", field=field)
    return name


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    """Opaque tokens are long random strings: one SHA-256 is enough (no salt/stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
