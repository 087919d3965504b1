"""Array form of the item-attribute relation.

Policies run thousands of times per second, so they work on sorted index arrays (CSR in both
directions) rather than on Python sets or the networkx graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def csr(rows: Sequence[Sequence[int]]) -> tuple[IntArray, IntArray]:
    """Compressed rows: (pointers, flat values); row r is flat[pointers[r]:pointers[r + 1]]."""
    lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
    pointers = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=pointers[1:])
    flat = np.fromiter((value for row in rows for value in row), dtype=np.int64, count=int(pointers[-1]))
    return pointers, flat


def row_positions(pointers: IntArray, rows: IntArray) -> IntArray:
    """Positions in the flat array of the entries of compressed rows `rows`, concatenated in order."""
    starts = pointers[rows]
    lengths = pointers[rows + 1] - starts
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))


@dataclass(frozen=True, eq=False)
class AttributeIndex:
    n_items: int
    n_attributes: int
    item_pointers: IntArray  # attributes of item i: item_attributes[item_pointers[i]:item_pointers[i+1]]
    item_attributes: IntArray
    attribute_pointers: IntArray  # items of attribute a: attribute_items[attribute_pointers[a]:...]
    attribute_items: IntArray

    @classmethod
    def from_rows(cls, item_rows: Sequence[Sequence[int]], n_attributes: int) -> AttributeIndex:
        """The index of items whose attribute indices are `item_rows` (row i: item i's attributes)."""
        item_pointers, item_attributes = csr(item_rows)
        entry_items = np.repeat(np.arange(len(item_rows), dtype=np.int64), np.diff(item_pointers))
        # A stable sort by attribute lists each attribute's items in ascending order.
        attribute_items = entry_items[np.argsort(item_attributes, kind="stable")]
        attribute_pointers = np.zeros(n_attributes + 1, dtype=np.int64)
        np.cumsum(np.bincount(item_attributes, minlength=n_attributes), out=attribute_pointers[1:])
        return cls(
            n_items=len(item_rows),
            n_attributes=n_attributes,
            item_pointers=item_pointers,
            item_attributes=item_attributes,
            attribute_pointers=attribute_pointers,
            attribute_items=attribute_items,
        )

    def items_with(self, attribute: int) -> IntArray:
        return self.attribute_items[
            self.attribute_pointers[attribute] : self.attribute_pointers[attribute + 1]
        ]

    def attributes_of(self, item: int) -> IntArray:
        return self.item_attributes[self.item_pointers[item] : self.item_pointers[item + 1]]

    def item_frequency(self) -> IntArray:
        """Number of items carrying each attribute."""
        return np.diff(self.attribute_pointers)

    def mask_of(self, attribute: int) -> BoolArray:
        mask = np.zeros(self.n_items, dtype=bool)
        mask[self.items_with(attribute)] = True
        return mask

    def filter(
        self,
        required: Iterable[int] = (),
        forbidden: Iterable[int] = (),
        excluded_items: Iterable[int] | IntArray = (),
    ) -> IntArray:
        """Items that have every required attribute, none of the forbidden ones, and are not excluded."""
        required = sorted(required, key=lambda a: self.attribute_pointers[a + 1] - self.attribute_pointers[a])
        if required:
            mask = self.mask_of(required[0])
            for attribute in required[1:]:
                mask &= self.mask_of(attribute)
        else:
            mask = np.ones(self.n_items, dtype=bool)
        for attribute in forbidden:
            mask[self.items_with(attribute)] = False
        excluded = np.fromiter(excluded_items, dtype=np.int64)
        if excluded.size:
            mask[excluded] = False
        return np.flatnonzero(mask)

    def gather_attributes(self, items: IntArray) -> tuple[IntArray, IntArray]:
        """Flattened attributes of `items` and, for each entry, the position of its item in `items`."""
        flat = self.item_attributes[row_positions(self.item_pointers, items)]
        owners = np.repeat(np.arange(len(items)), self.item_pointers[items + 1] - self.item_pointers[items])
        return flat, owners

    def attribute_counts(self, items: IntArray, weights: FloatArray | None = None) -> FloatArray:
        """How many of `items` (or how much of their weight) carry each attribute."""
        flat, owners = self.gather_attributes(items)
        if weights is None:
            return np.bincount(flat, minlength=self.n_attributes).astype(np.float64)
        return np.bincount(flat, weights=weights[owners], minlength=self.n_attributes).astype(np.float64)
