"""Container names: Docker-style random ``adjective_surname`` names and the name rule.

Pure functions: no kernel interface, nothing on disk. Whether a name is taken is the
caller's question (``taken``), answered from the container store under its lock; this
module never reads the store itself. The word lists are Moorage's own.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from runtime.errors import InvalidSpec, NameInUse

ADJECTIVES: tuple[str, ...] = (
    "agile", "amiable", "ardent", "artful", "astute", "blithe", "bold", "brave",
    "breezy", "bright", "brisk", "buoyant", "calm", "candid", "careful", "cheerful",
    "clever", "cordial", "curious", "daring", "deft", "devoted", "diligent", "eager",
    "earnest", "elated", "elegant", "fearless", "fervent", "festive", "fond", "frank",
    "gallant", "genial", "gentle", "gleaming", "glad", "gracious", "hardy", "hearty",
    "hopeful", "humble", "jolly", "jovial", "keen", "kind", "lively", "loyal",
    "lucid", "merry", "mindful", "modest", "nimble", "noble", "patient", "peppy",
    "placid", "plucky", "poised", "polite", "prudent", "quick", "quiet", "radiant",
    "sincere", "spirited", "spry", "steady", "sturdy", "sunny", "tender", "thrifty",
    "tidy", "upbeat", "valiant", "vibrant", "vivid", "warm", "wise", "witty",
)  # fmt: skip

SURNAMES: tuple[str, ...] = (
    "ampere", "archimedes", "avogadro", "babbage", "backus", "baran", "bardeen",
    "bernoulli", "bohr", "boltzmann", "boole", "brattain", "cantor", "carnot",
    "cavendish", "cerf", "chandrasekhar", "conway", "coulomb", "curie", "dalton",
    "darwin", "diffie", "dijkstra", "dirac", "doppler", "edison", "einstein", "euclid",
    "euler", "faraday", "fermat", "fermi", "feynman", "fibonacci", "fourier",
    "franklin", "galois", "gauss", "goodall", "hamilton", "hamming", "hawking",
    "heisenberg", "hellman", "hertz", "hilbert", "hollerith", "hooke", "hopper",
    "hubble", "huygens", "jacquard", "johnson", "joule", "kahn", "kelvin", "kepler",
    "kernighan", "knuth", "kovalevskaya", "lagrange", "lamarr", "lamport", "laplace",
    "lavoisier", "leibniz", "liskov", "lovelace", "maxwell", "mccarthy", "meitner",
    "mendel", "mendeleev", "michelson", "minsky", "napier", "newton", "noether", "ohm",
    "pascal", "pasteur", "pauli", "planck", "poincare", "ramanujan", "riemann",
    "ritchie", "roentgen", "rutherford", "sagan", "shannon", "stephenson", "tesla",
    "thompson", "turing", "volta", "watt", "wiles", "wirth", "wu", "yalow", "zuse",
)  # fmt: skip

# Docker tries the bare name, then five names with a random digit appended, then
# gives up on words and falls back to the short id.
ATTEMPTS = 6

_VALID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def random_name(
    taken: Callable[[str], bool],
    *,
    fallback: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """A free ``adjective_surname`` name, retried with a digit suffix when taken.

    After :data:`ATTEMPTS` taken names, return ``fallback`` (Docker uses the 12-char
    short id) or, without one, raise :class:`NameInUse`.
    """
    pick = rng or random.SystemRandom()
    for attempt in range(ATTEMPTS):
        name = f"{pick.choice(ADJECTIVES)}_{pick.choice(SURNAMES)}"
        if attempt > 0:
            name += str(pick.randrange(10))
        if not taken(name):
            return name
    if fallback is not None:
        return fallback
    raise NameInUse(f"no free random name after {ATTEMPTS} attempts; pass --name")


def validate_name(name: str) -> str:
    """Docker's container-name rule; returns the name without its leading ``/``."""
    bare = name[1:] if name.startswith("/") else name
    if not _VALID.fullmatch(bare):
        raise InvalidSpec(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return bare
