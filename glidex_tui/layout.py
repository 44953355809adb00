"""The console panes' layout: a tree of splits, kept free of Textual so it tests fast.

Why a tree: "split the focused pane side by side, then split the right one stacked" is how tmux
users think, and only a tree remembers it. The tree is turned into rectangles
(:meth:`PaneLayout.rects`) that the console area gives its panes as absolute positions, so a
pane is never re-mounted when the layout changes (a re-mount would drop its connection and its
screen). Leaves hold an opaque key (the dashboard uses VM ids, and VM names when saving).

Saved form (config.toml, ``[dashboard_layout]``)::

    split = "row"                       # "row": side by side, "column": stacked
    panes = [{vm = "web"}, {split = "column", panes = [{vm = "db"}, {vm = "cache"}]}]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Orientation = Literal["row", "column"]
Direction = Literal["left", "right", "up", "down"]
ORIENTATIONS: tuple[Orientation, ...] = ("row", "column")
MAX_PANES = 8  # the issue asks for at least 4; beyond 8 an 80x24 guest is unreadable anyway
MAX_DEPTH = 8


class LayoutError(ValueError):
    """A saved layout that cannot be read; the message says what is wrong."""


@dataclass
class Leaf:
    key: str


@dataclass
class Split:
    orientation: Orientation
    children: list[Node] = field(default_factory=list)


Node = Leaf | Split


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


def _shares(total: int, count: int) -> list[int]:
    """``total`` cells cut into ``count`` near-equal parts (the first ones get the remainder)."""
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


class PaneLayout:
    """A tree of panes. Every operation keeps it normalised: no split with fewer than two
    children, and no split directly inside a split of the same orientation."""

    def __init__(self, root: Node | None = None) -> None:
        self.root = root

    # -- reading -------------------------------------------------------------------------
    def leaf_keys(self) -> list[str]:
        """Leaf keys in reading order (left to right, top to bottom)."""
        return [leaf.key for leaf in self._leaves(self.root)]

    def __len__(self) -> int:
        return len(self.leaf_keys())

    def __contains__(self, key: object) -> bool:
        return key in self.leaf_keys()

    def _leaves(self, node: Node | None) -> Iterator[Leaf]:
        if isinstance(node, Leaf):
            yield node
        elif isinstance(node, Split):
            for child in node.children:
                yield from self._leaves(child)

    def _parent(self, key: str) -> tuple[Split | None, Leaf | None]:
        def walk(node: Node, parent: Split | None) -> tuple[Split | None, Leaf | None]:
            if isinstance(node, Leaf):
                return (parent, node) if node.key == key else (None, None)
            for child in node.children:
                found = walk(child, node)
                if found[1] is not None:
                    return found
            return None, None

        return walk(self.root, None) if self.root is not None else (None, None)

    # -- changing ------------------------------------------------------------------------
    def add(self, key: str, beside: str | None = None,
            orientation: Orientation = "row") -> None:
        """Add a pane after ``beside`` (split in ``orientation``), or at the end of the root."""
        if key in self:
            return
        if len(self) >= MAX_PANES:
            raise LayoutError(f"at most {MAX_PANES} console panes at once")
        new = Leaf(key)
        if self.root is None:
            self.root = new
            return
        parent, leaf = self._parent(beside) if beside is not None else (None, None)
        if leaf is None:  # no anchor: split the whole area
            if isinstance(self.root, Split) and self.root.orientation == orientation:
                self.root.children.append(new)
            else:
                self.root = Split(orientation, [self.root, new])
            return
        if parent is not None and parent.orientation == orientation:
            parent.children.insert(parent.children.index(leaf) + 1, new)
            return
        replacement = Split(orientation, [leaf, new])
        if parent is None:
            self.root = replacement
        else:
            parent.children[parent.children.index(leaf)] = replacement

    def remove(self, key: str) -> None:
        """Remove a pane; its siblings share its space."""
        self.root = self._without(self.root, lambda k: k == key)

    def keep(self, wanted: Callable[[str], bool]) -> list[str]:
        """Drop every pane whose key is not ``wanted``; return the dropped keys."""
        dropped = [k for k in self.leaf_keys() if not wanted(k)]
        self.root = self._without(self.root, lambda k: not wanted(k))
        return dropped

    def _without(self, node: Node | None, gone: Callable[[str], bool]) -> Node | None:
        if node is None or isinstance(node, Leaf):
            return None if node is None or gone(node.key) else node
        children: list[Node] = []
        for child in node.children:
            kept = self._without(child, gone)
            if isinstance(kept, Split) and kept.orientation == node.orientation:
                children.extend(kept.children)  # flatten: same direction twice is one split
            elif kept is not None:
                children.append(kept)
        if not children:
            return None
        return children[0] if len(children) == 1 else Split(node.orientation, children)

    # -- geometry ------------------------------------------------------------------------
    def rects(self, width: int, height: int) -> dict[str, Rect]:
        """Each pane's rectangle in an area of ``width`` x ``height`` cells."""
        out: dict[str, Rect] = {}

        def place(node: Node, rect: Rect) -> None:
            if isinstance(node, Leaf):
                out[node.key] = rect
                return
            along = rect.width if node.orientation == "row" else rect.height
            offset = 0
            for child, size in zip(node.children, _shares(along, len(node.children)),
                                   strict=True):
                if node.orientation == "row":
                    place(child, Rect(rect.x + offset, rect.y, size, rect.height))
                else:
                    place(child, Rect(rect.x, rect.y + offset, rect.width, size))
                offset += size

        if self.root is not None:
            place(self.root, Rect(0, 0, max(0, width), max(0, height)))
        return out

    def auto_split(self, width: int, height: int,
                   aspect: float = 80 / 24) -> tuple[str | None, Orientation]:
        """Where a new pane goes when the user did not say: halve the biggest pane along the
        side that leaves both halves closest to a guest screen's shape (80x24 by default), so
        four panes end up as a 2x2 grid on a wide terminal and as a stack on a tall one."""
        rects = self.rects(width, height)
        if not rects:
            return None, "row"
        key, rect = max(rects.items(), key=lambda item: item[1].width * item[1].height)

        def misfit(w: float, h: float) -> float:
            return abs(math.log(max(w, 1) / max(h, 1) / aspect))

        side_by_side = misfit(rect.width / 2, rect.height)
        stacked = misfit(rect.width, rect.height / 2)
        return key, "row" if side_by_side <= stacked else "column"

    def neighbour(self, key: str, direction: Direction, width: int,
                  height: int) -> str | None:
        """The pane next to ``key`` in ``direction`` (the one sharing the most edge, then the
        nearest), as tmux's select-pane -L/-R/-U/-D picks it; None at the edge."""
        rects = self.rects(width, height)
        if key not in rects:
            return None
        here = rects[key]
        best: tuple[tuple[float, float], str] | None = None
        for other, rect in rects.items():
            if other == key:
                continue
            if direction in ("left", "right"):
                gap = here.x - (rect.x + rect.width) if direction == "left" else rect.x - (
                    here.x + here.width)
                shared = min(here.y + here.height, rect.y + rect.height) - max(here.y, rect.y)
            else:
                gap = here.y - (rect.y + rect.height) if direction == "up" else rect.y - (
                    here.y + here.height)
                shared = min(here.x + here.width, rect.x + rect.width) - max(here.x, rect.x)
            if gap < 0 or shared <= 0:
                continue
            score = (gap, -shared)
            if best is None or score < best[0]:
                best = (score, other)
        return best[1] if best else None

    # -- saving --------------------------------------------------------------------------
    def to_dict(self, name: Callable[[str], str] = str) -> dict | None:
        """The saved form, with each leaf key mapped through ``name`` (ids to VM names)."""

        def dump(node: Node) -> dict:
            if isinstance(node, Leaf):
                return {"vm": name(node.key)}
            return {"split": node.orientation, "panes": [dump(c) for c in node.children]}

        return dump(self.root) if self.root is not None else None

    @classmethod
    def from_dict(cls, data: object, key: Callable[[str], str] = str) -> PaneLayout:
        """Read a saved layout, mapping each ``vm`` through ``key`` (names to ids); raises
        LayoutError saying what is wrong. Duplicates and panes beyond MAX_PANES are dropped."""
        seen: set[str] = set()

        def load(item: object, depth: int) -> Node | None:
            if depth > MAX_DEPTH:
                raise LayoutError(f"nested deeper than {MAX_DEPTH} splits")
            if not isinstance(item, dict):
                raise LayoutError(f"expected a table, got {item!r}")
            if "vm" in item:
                if not isinstance(item["vm"], str) or not item["vm"]:
                    raise LayoutError(f"vm must be a VM name, got {item['vm']!r}")
                leaf_key = key(item["vm"])
                if leaf_key in seen or len(seen) >= MAX_PANES:
                    return None
                seen.add(leaf_key)
                return Leaf(leaf_key)
            orientation, panes = item.get("split"), item.get("panes")
            if orientation not in ORIENTATIONS:
                raise LayoutError(f"split must be 'row' or 'column', got {orientation!r}")
            if not isinstance(panes, list) or not panes:
                raise LayoutError("a split needs a non-empty list of panes")
            children = [c for c in (load(p, depth + 1) for p in panes) if c is not None]
            return Split(orientation, children) if children else None

        layout = cls(load(data, 0) if data is not None else None)
        layout.root = layout._without(layout.root, lambda _k: False)  # normalise
        return layout
