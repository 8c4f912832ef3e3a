"""Conformance kits: `check_plugin` for plugin authors, `check_algorithm` for
algorithm authors. Run them in your own tests.

```python
from lerax.testing import check_plugin

def test_conformance(tmp_path):
    check_plugin("jsonl", options={"jsonl": {"path": tmp_path / "m.jsonl"}})
```
"""

from lerax.testing.algorithm_check import AlgorithmReport, check_algorithm
from lerax.testing.conformance import ConformanceReport, check_plugin
from lerax.testing.recording import RecordingBackend

__all__ = [
    "AlgorithmReport",
    "ConformanceReport",
    "RecordingBackend",
    "check_algorithm",
    "check_plugin",
]
