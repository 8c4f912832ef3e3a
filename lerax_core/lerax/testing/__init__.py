"""A conformance kit for plugin authors: run `check_plugin` in your plugin's tests.

```python
from lerax.testing import check_plugin

def test_conformance(tmp_path):
    check_plugin("jsonl", options={"jsonl": {"path": tmp_path / "m.jsonl"}})
```
"""

from lerax.testing.conformance import ConformanceReport, check_plugin
from lerax.testing.recording import RecordingBackend

__all__ = ["ConformanceReport", "RecordingBackend", "check_plugin"]
