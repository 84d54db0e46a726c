"""Password policy after NIST SP 800-63B: long enough, not common, not the address; no composition rules.

Length is checked by the API schemas (12 to 256 characters) and again here for
the CLI. The common-password list is a data file beside this module
(`common_passwords.txt`), compared case-insensitively; a password with fewer than
four distinct characters ("aaaaaaaaaaaa", "abababababab") is refused as
repetitive, and so is one equal to the account's email address or its local part.
"""

from __future__ import annotations

import functools
from pathlib import Path

from server.errors import InvalidInput

MIN_PASSWORD_LENGTH = 12
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The refused passwords, lower-cased (comment lines start with #)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str, email: str = "") -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"use at least {MIN_PASSWORD_LENGTH} characters (a few words make a good passphrase)"
    lowered = password.strip().lower()
    if lowered in common_passwords():
        return "that password is on a list of commonly used passwords; choose another"
    if len(set(lowered)) < 4:
        return "that password is too repetitive; choose another"
    address = email.strip().lower()
    if address and lowered in {address, address.split("@")[0]}:
        return "do not use your email address as your password"
    return None


def check_new_password(password: str, email: str = "") -> None:
    """Raise a 422 naming the `password` field when a new password breaks the policy."""
    problem = password_problem(password, email)
    if problem:
        raise InvalidInput(f"Password refused: {problem}.", errors=[{"field": "password", "message": problem}])
