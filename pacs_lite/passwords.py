"""Password hashing (bcrypt) and the password rules."""

import functools
import secrets

import bcrypt

MIN_LENGTH = 10
MAX_BYTES = 72  # bcrypt reads no further


class PasswordRejected(ValueError):
    """The password breaks a rule; the message says which."""


def check_rules(password):
    """Raise PasswordRejected unless the password is acceptable."""
    if not password or not password.strip():
        raise PasswordRejected("the password is empty")
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password is too short: use at least {MIN_LENGTH} characters")
    if len(password.encode("utf-8")) > MAX_BYTES:
        raise PasswordRejected(f"the password is too long: at most {MAX_BYTES} bytes")


def hash_password(password, rounds):
    """Return the bcrypt hash of a password that passed check_rules."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


@functools.lru_cache(maxsize=None)
def dummy_hash(rounds):
    """Return a hash to check against when the user is unknown, so both cases cost the same."""
    return hash_password(secrets.token_hex(16), rounds)


def verify_password(password, password_hash):
    """Tell whether password matches the hash, in bcrypt's constant time."""
    encoded = (password or "").encode("utf-8")
    if len(encoded) > MAX_BYTES:
        encoded = encoded[:MAX_BYTES]
        password_hash = dummy_hash(int(password_hash.split("$")[2]))
    try:
        return bcrypt.checkpw(encoded, password_hash.encode("ascii"))
    except ValueError:
        return False


def one_time_password():
    """Return a random password for a new account, to be changed at first login."""
    return secrets.token_urlsafe(12)
