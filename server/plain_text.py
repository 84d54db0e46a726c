"""Names people see: no control characters and no bidirectional overrides.

C0 and C1 control characters (NUL included: PostgreSQL refuses it in text) and
DEL have no place in a name, and the bidi embeddings, overrides and isolates
(U+202A-U+202E, U+2066-U+2069) can make a name display as something else
(a right-to-left override turns "evil...gnp.exe" into what looks like "evil...exe.png"). API schemas refuse them with a
422 naming the field; imports report such rows as bad rows.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from geo.register import UNSAFE_TEXT_CHARACTERS

UNSAFE_CHARACTERS = UNSAFE_TEXT_CHARACTERS  # one definition, in geo (which cannot import server)
PLAIN_TEXT_PATTERN = f"^[^{UNSAFE_CHARACTERS}]*$"

PlainName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern=PLAIN_TEXT_PATTERN, description="No control or bidi-override characters.")
]
