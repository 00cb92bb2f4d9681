"""What the OpenAPI description must say beyond what pydantic writes by itself.

The Case's checks that pydantic cannot express in JSON Schema — the code lists (regions,
municipalities, countries), a municipality lying in the home region, a product area fitting the kind
of case — are written into the description here, from the same code lists and tables the checks use.
A client (or a generator such as schemathesis) can then tell a valid case from an invalid one by the
schema alone.
"""

from __future__ import annotations

from typing import Any

from vembetalar.model import codes
from vembetalar.model.case import KIND_AREAS

#: The personnummer shown as an example: Skatteverket's well-known test number, which belongs to
#: nobody (never a demo patient's, which would look real and end up in copied requests).
EXAMPLE_PERSONNUMMER = "19121212-1212"

#: pydantic writes a number bound on a union (``int | float``) under its own name, not JSON Schema's.
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _bounds(node: Any) -> None:
    if isinstance(node, dict):
        for ours, standard in _BOUNDS.items():
            if ours in node and "anyOf" in node:
                node[standard] = node.pop(ours)
        for value in node.values():
            _bounds(value)
    elif isinstance(node, list):
        for value in node:
            _bounds(value)


def _codes(prop: dict[str, Any], values: list[str], what: str) -> None:
    """Put the code list on the text branch of an optional code field."""
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch["enum"] = values
    prop["description"] = what


def _component(name: str, schemas: dict[str, Any]) -> dict[str, Any] | None:
    for key in (name, f"{name}In"):
        if key in schemas:
            return schemas[key]  # type: ignore[no-any-return]
    return None


def describe_case(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the Case's code lists and cross-field rules to an OpenAPI document (in place)."""
    schemas: dict[str, Any] = openapi.get("components", {}).get("schemas", {})
    _bounds(schemas)
    regions = sorted(codes.regions())
    municipalities = sorted(codes.municipalities())
    patient, care = _component("Patient", schemas), _component("Care", schemas)
    case = _component("Case", schemas)
    create = schemas.get("CaseCreate")
    if create is not None and "patient_id" in create.get("properties", {}):
        prop = create["properties"]["patient_id"]
        prop["description"] = (
            f"Personnummer eller samordningsnummer, t.ex. {EXAMPLE_PERSONNUMMER} "
            "(Skatteverkets testpersonnummer); kontrollsiffran ska stämma"
        )
        prop["examples"] = [EXAMPLE_PERSONNUMMER]
    if patient is not None:
        props = patient["properties"]
        _codes(props["home_region"], regions, "Länskod enligt SCB (två siffror)")
        _codes(props["last_home_region"], regions, "Länskod enligt SCB (två siffror)")
        _codes(props["home_municipality"], municipalities, "Kommunkod enligt SCB; ligger i home_region")
        _codes(props["country"], sorted(codes.countries()), "Landskod enligt ISO 3166-1 alfa-2")
        # The municipality lies in the home region (when both are given).
        patient["anyOf"] = [
            {"properties": {"home_region": {"type": "null"}}},
            {"properties": {"home_municipality": {"type": "null"}}},
            *(
                {
                    "properties": {
                        "home_region": {"const": region},
                        "home_municipality": {"enum": [m for m in municipalities if m[:2] == region]},
                    }
                }
                for region in regions
            ),
        ]
    if care is not None:
        _codes(care["properties"]["region"], regions, "Länskod enligt SCB (två siffror)")
    if case is not None:
        # The product area fits the kind of case (when given).
        case["anyOf"] = [
            {
                "properties": {
                    "kind": {"const": kind},
                    "product": {"properties": {"area": {"enum": [*areas, None]}}},
                }
            }
            for kind, areas in KIND_AREAS.items()
        ]
    return openapi
