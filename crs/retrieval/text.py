"""The text an item is embedded as, and the content hash that decides when an index is stale.

An item reads the way a catalog page would describe it: its attributes grouped by kind, then
readable facts that the attributes do not already say ("Genres: Adventure, Animation. Decades:
1990s. Tags: pixar, toys."). Its title is left out: the words of a title are not what a film is,
and with them "something scary" matched *Scary Movie* and its sequels first, "something funny"
*Funny Games* (titles people name are read by the understanding, not matched as text). Links and
ids are left out too: they carry no meaning for a sentence encoder and only dilute the vector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from crs.types import Catalog, Item

# Group names as a person would label them; unknown groups are title-cased and pluralised.
_GROUP_LABELS = {"genre": "Genres", "decade": "Decades", "tag": "Tags"}


def _label(group: str) -> str:
    return _GROUP_LABELS.get(group, group.replace("_", " ").capitalize() + "s")


def item_text(catalog: Catalog, item: Item) -> str:
    groups: dict[str, list[str]] = {}
    for attribute_index in item.attributes:
        attribute = catalog.attributes[attribute_index]
        groups.setdefault(attribute.group, []).append(attribute.name)
    parts = [f"{_label(group)}: {', '.join(names)}" for group, names in groups.items()]
    said = {_label(group).lower() for group in groups} | set(groups)
    for key, value in item.facts:
        # "genres" repeats the genre attributes; URLs (imdb) mean nothing to the encoder.
        if key.lower() in said or "://" in value or not value.strip():
            continue
        parts.append(f"{key.replace('_', ' ').capitalize()}: {value}")
    return ". ".join(parts) + "." if parts else "An item."


def item_texts(catalog: Catalog) -> list[str]:
    return [item_text(catalog, item) for item in catalog.items]


def attribute_texts(catalog: Catalog) -> list[str]:
    # The bare name: the query side ("scary") is a bare word too, and names are what users say.
    return [attribute.name for attribute in catalog.attributes]


def content_hash(model: str, texts: Iterable[str]) -> str:
    """sha256 over the model name and every text, length-prefixed so that no two lists collide."""
    digest = hashlib.sha256()
    for text in (model, *texts):
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()
