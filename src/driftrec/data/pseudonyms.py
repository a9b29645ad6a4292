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


# Ids worth looking for in free text: short or all-digit ids ("12") are ordinary words there.
_MIN_ID_IN_TEXT = 6
_EDGE = ".,;:!?()[]{}<>\"'"


def replace_ids_in_text(
    texts: Sequence[object] | np.ndarray, pseudonyms: Mapping[str, str]
) -> np.ndarray:
    """``texts`` with every word that is a raw user id (an e-mail address typed into a search)
    replaced by its pseudonym. A word is a run of non-space characters, punctuation at its ends
    aside; only ids of at least 6 characters that are not all digits are looked for (e-mail
    addresses, user names, UUIDs), since "12" in a text is rarely a user. Missing texts (None,
    NaN) stay missing. Other personal data in free text is kept as written."""
    wanted = {
        raw: alias
        for raw, alias in pseudonyms.items()
        if len(raw) >= _MIN_ID_IN_TEXT and not raw.isdigit()
    }

    def word(match: re.Match[str]) -> str:
        token = match.group(0)
        core = token.strip(_EDGE)
        alias = wanted.get(core)
        if alias is None:
            return token
        start = token.index(core)
        return token[:start] + alias + token[start + len(core) :]

    return np.array(
        [re.sub(r"\S+", word, t) if isinstance(t, str) and wanted else t for t in texts],
        dtype=object,
    )


def secret_from_env(variable: str) -> str:
    """The secret held by environment variable ``variable`` (never passed on a command line,
    where other users of the machine could read it); an InputError when it is unset or empty."""
    secret = os.environ.get(variable)
    if not secret:
        raise InputError(f"environment variable {variable} is not set or empty")
    return secret
