"""Zones and lines in cameras.yaml: what loads, and one clear line per bad entry while the camera still runs."""

from __future__ import annotations

import pytest
import yaml

from shared.alerts import AlertsConfig
from shared.config import parse_config
from shared.zones import CameraGeometry, geometry_problem

INSIDE = {"name": "inside", "points": [[0.1, 0.4], [0.9, 0.4], [0.9, 1.0], [0.1, 1.0]]}
POSTER = {"name": "poster", "points": [[0.7, 0.05], [0.95, 0.05], [0.95, 0.35], [0.7, 0.35]], "ignore": True}
DOOR = {"name": "door", "points": [[0.05, 0.6], [0.95, 0.6]], "in": "down"}


def config_text(**door_a) -> str:
    return yaml.safe_dump({"cameras": [{"id": "door-a", "url": "a.mp4", **door_a},
                                       {"id": "hall", "url": "b.mp4", "zones": [INSIDE]}]})


def test_the_issue_example_loads() -> None:
    config = parse_config(config_text(zones=[INSIDE, POSTER], lines=[DOOR, {**DOOR, "name": "side", "in": "inside"}]))
    assert not config.problems and not config.geometry_problems
    door_a = config.cameras[0]
    assert [z.name for z in door_a.zones] == ["inside", "poster"] and door_a.zones[1].ignore
    assert door_a.lines[0].in_ == "down"
    assert door_a.geometry.as_yaml_dict()["lines"][0] == DOOR  # dumps back to the YAML spelling (`in`)


@pytest.mark.parametrize(("door_a", "message"), [
    ({"zones": [{**INSIDE, "points": [[0.1, 0.1], [0.9, 0.1]]}]},
     "zones[0] (inside): points: List should have at least 3 items"),
    ({"zones": [{**INSIDE, "points": [[0.1, 0.1], [1.2, 0.1], [0.5, 0.9]]}]},
     "zones[0] (inside): points: point [1.2, 0.1] is outside the frame (coordinates are 0..1)"),
    ({"zones": [{**INSIDE, "points": [[0, 0], [1, 1], [1, 0], [0, 1]]}]},
     "zones[0] (inside): points: polygon crosses itself"),
    ({"zones": [{**INSIDE, "points": [[0, 0], [0.5, 0.5], [1, 1]]}]},
     "zones[0] (inside): points: polygon has no area"),
    ({"lines": [{**DOOR, "points": [[0.5, 0.5], [0.5, 0.5]]}]},
     "lines[0] (door): points: line has zero length"),
    ({"lines": [{**DOOR, "in": "hall"}]},
     "lines[0] (door): in: 'hall' is not up, down, left, right or a zone of this camera"),
    ({"lines": [{**DOOR, "in": "left"}]}, "lines[0] (door): in: 'left' runs along the line"),
    ({"zones": [INSIDE, INSIDE]}, "zones[1]: duplicate name 'inside'"),
    ({"lines": [DOOR, DOOR]}, "lines[1]: duplicate name 'door'"),
    ({"lines": [{**DOOR, "colour": "red"}]}, "lines[0] (door): unknown option 'colour'"),
    ({"zones": "everywhere"}, "zones: Input should be a valid list"),
])
def test_a_bad_zone_or_line_is_one_line_naming_camera_and_entry(door_a: dict, message: str) -> None:
    config = parse_config(config_text(**door_a))
    problem = config.geometry_problems["door-a"]
    assert problem.startswith("cameras[0] (id 'door-a'): ") and message in problem and "\n" not in problem
    assert [c.id for c in config.cameras] == ["door-a", "hall"]  # both cameras still run
    assert not config.cameras[0].zones and not config.cameras[0].lines and config.cameras[1].zones
    assert not config.problems


def test_geometry_problem_checks_what_an_editor_would_save() -> None:
    assert geometry_problem([INSIDE], [DOOR]) is None
    assert geometry_problem([INSIDE], [{**DOOR, "in": "nowhere"}]).startswith("lines[0] (door): in: 'nowhere'")
    assert CameraGeometry.model_validate({"zones": [INSIDE], "lines": [DOOR]}).lines[0].name == "door"


def test_alert_rules_name_exactly_one_line_or_zone() -> None:
    rules = AlertsConfig.model_validate({"rules": [{"name": "unmasked-entry", "line": "door"}]}).rules
    assert rules[0].direction == "in" and rules[0].labels is None
    with pytest.raises(ValueError, match="give exactly one of line or zone"):
        AlertsConfig.model_validate({"rules": [{"name": "x", "line": "door", "zone": "inside"}]})
