"""The official PEPPOL BIS Billing 3.0 validation (vendored in tests/peppol), compiled once per
test process: what every generated invoice and credit note must pass."""

from __future__ import annotations

import functools
import importlib.util
import tempfile
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).parent / "peppol"


@functools.cache
def _validator() -> Any:
    spec = importlib.util.spec_from_file_location("peppol_validate", ARTIFACTS / "validate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Validator(ARTIFACTS)


def fatal_findings(xml: bytes) -> list[str]:
    """Every fatal finding (XSD, EN 16931, PEPPOL incl. SE-R) as "rule: text"; [] when it passes."""
    with tempfile.NamedTemporaryFile(suffix=".xml") as handle:
        handle.write(xml)
        handle.flush()
        findings, _ = _validator().validate(Path(handle.name))
    return [f"{f['id']}: {f.get('text', '')}" for f in findings if f.get("flag") == "fatal"]
