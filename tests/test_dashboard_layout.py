"""The pane layout tree (pure, no Textual): splits, closing, rectangles, neighbours, saving."""

from __future__ import annotations

import pytest

from glidex_tui.layout import MAX_PANES, LayoutError, PaneLayout, Rect


def test_splits_nest_and_flatten():
    layout = PaneLayout()
    layout.add("a")
    layout.add("b", beside="a", orientation="row")
    layout.add("c", beside="b", orientation="column")
    layout.add("d", beside="a", orientation="row")  # same direction as a's split: a sibling
    assert layout.to_dict() == {"split": "row", "panes": [
        {"vm": "a"}, {"vm": "d"}, {"split": "column", "panes": [{"vm": "b"}, {"vm": "c"}]}]}
    assert layout.leaf_keys() == ["a", "d", "b", "c"]
    layout.add("a", beside="c")  # already there: nothing changes
    assert len(layout) == 4

    layout.remove("c")  # b's split has one pane left: it collapses into the row
    assert layout.to_dict() == {"split": "row", "panes": [{"vm": "a"}, {"vm": "d"}, {"vm": "b"}]}
    for key in ("a", "d", "b"):
        layout.remove(key)
    assert layout.root is None and layout.to_dict() is None


def test_rectangles_share_the_area_without_gaps():
    layout = PaneLayout()
    for key in "abc":
        layout.add(key, beside="a" if key == "c" else None, orientation="row")
    layout.add("d", beside="c", orientation="column")
    rects = layout.rects(101, 31)
    assert rects["a"] == Rect(0, 0, 34, 31)
    assert rects["c"] == Rect(34, 0, 34, 16) and rects["d"] == Rect(34, 16, 34, 15)
    assert rects["b"] == Rect(68, 0, 33, 31)
    assert sum(r.width * r.height for r in rects.values()) == 101 * 31


def test_auto_split_makes_a_grid_on_a_wide_area_and_a_stack_on_a_tall_one():
    wide = PaneLayout()
    for key in "abcd":
        target, orientation = wide.auto_split(200, 50)
        wide.add(key, target, orientation)
    rects = wide.rects(200, 50)
    assert {(r.width, r.height) for r in rects.values()} == {(100, 25)}

    tall = PaneLayout()
    for key in "abc":
        target, orientation = tall.auto_split(80, 90)
        tall.add(key, target, orientation)
    assert {r.x for r in tall.rects(80, 90).values()} == {0}


def test_neighbours_follow_the_geometry():
    layout = PaneLayout()
    layout.add("left")
    layout.add("top", beside="left", orientation="row")
    layout.add("bottom", beside="top", orientation="column")
    size = (100, 40)
    assert layout.neighbour("left", "right", *size) in ("top", "bottom")
    assert layout.neighbour("top", "left", *size) == "left"
    assert layout.neighbour("top", "down", *size) == "bottom"
    assert layout.neighbour("bottom", "up", *size) == "top"
    assert layout.neighbour("left", "left", *size) is None
    assert layout.neighbour("missing", "left", *size) is None


def test_saved_layouts_are_checked_and_mapped():
    saved = {"split": "column", "panes": [{"vm": "web"}, {"vm": "db"}, {"vm": "web"}]}
    layout = PaneLayout.from_dict(saved, key=str.upper)
    assert layout.leaf_keys() == ["WEB", "DB"]  # the duplicate is dropped
    assert layout.to_dict(str.lower) == {"split": "column", "panes": [{"vm": "web"},
                                                                      {"vm": "db"}]}
    assert PaneLayout.from_dict({"split": "row", "panes": [{"vm": "solo"}]}).to_dict() == {
        "vm": "solo"}
    assert PaneLayout.from_dict(None).root is None
    for bad, message in (([], "expected a table"), ({"split": "diagonal", "panes": [{"vm": "a"}]},
                         "split must be"), ({"split": "row", "panes": []}, "non-empty"),
                         ({"vm": 3}, "vm must be"), ({"nothing": 1}, "split must be")):
        with pytest.raises(LayoutError, match=message):
            PaneLayout.from_dict(bad)
    deep: dict = {"vm": "x"}
    for _ in range(20):
        deep = {"split": "row", "panes": [deep]}
    with pytest.raises(LayoutError, match="deeper"):
        PaneLayout.from_dict(deep)


def test_keep_drops_panes_and_the_limit_holds():
    layout = PaneLayout.from_dict({"split": "row", "panes": [
        {"vm": "a"}, {"split": "column", "panes": [{"vm": "b"}, {"vm": "c"}]}]})
    assert layout.keep(lambda key: key != "b") == ["b"]
    assert layout.to_dict() == {"split": "row", "panes": [{"vm": "a"}, {"vm": "c"}]}
    full = PaneLayout()
    for i in range(MAX_PANES):
        full.add(f"p{i}")
    with pytest.raises(LayoutError, match=f"at most {MAX_PANES}"):
        full.add("one-more")
