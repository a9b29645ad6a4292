"""Keyed pseudonyms of user ids: HMAC-SHA256(secret, id) in hex, cut to 32 characters (128 bits).

One home for the scheme, used wherever a raw id meets driftrec: at import, when the CLI looks a user
up by raw id, and (later) at the service's boundary. The pseudonym is keyed, so without the secret
it can be neither reversed nor recomputed from a guessed id (a plain hash of an e-mail address
could be), and stable, so the same secret always maps a user to the same pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from driftrec.errors import InputError

PSEUDONYM_CHARS = 32


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise InputError("the pseudonymisation secret must not be empty")
    return key


def pseudonymise_ids(ids: Sequence[str] | np.ndarray, secret: str | bytes) -> np.ndarray:
    """The pseudonym of each id (object array, same order); each distinct id is hashed once."""
    key = _key(secret)
    codes, uniques = pd.factorize(np.asarray([str(i) for i in ids], dtype=object))
    hashed = np.array(
        [
            hmac.new(key, u.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]
            for u in uniques
        ],
        dtype=object,
    )
    return hashed[codes] if len(codes) else np.zeros(0, dtype=object)


_TOKEN = re.compile(r"[^\s,;:()<>\[\]{}\"']+")


def replace_ids_in_text(
    texts: Sequence[str | None] | np.ndarray, pseudonyms: Mapping[str, str]
) -> np.ndarray:
    """``texts`` with every word that is a raw user id (an e-mail address typed into a search)
    replaced by its pseudonym; a word may end in . ! or ?. Other personal data in free text is
    kept as written: only ids driftrec knows can be found."""

    def word(match: re.Match[str]) -> str:
        token = match.group(0)
        bare = token.rstrip(".!?")
        hit = pseudonyms.get(token) or pseudonyms.get(bare)
        if hit is None:
            return token
        return hit if token in pseudonyms else hit + token[len(bare) :]

    return np.array([t if t is None else _TOKEN.sub(word, t) for t in texts], dtype=object)


def secret_from_env(variable: str) -> str:
    """The secret held by environment variable ``variable`` (never passed on a command line,
    where other users of the machine could read it); an InputError when it is unset or empty."""
    secret = os.environ.get(variable)
    if not secret:
        raise InputError(f"environment variable {variable} is not set or empty")
    return secret
