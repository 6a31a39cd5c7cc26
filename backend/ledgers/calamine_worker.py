"""Read an .xls or .ods from stdin with python-calamine and print its sheets as JSON (or why not: a
sheet of more than argv[1] rows or argv[2] columns is not converted at all); run by
backend/ledgers/reading.py in a child process under a memory limit (calamine holds a sheet as a dense
grid and aborts the process when a hand-made file makes that grid too large)."""

from __future__ import annotations

import io
import json
import resource
import sys
from datetime import date, datetime, time, timedelta
from typing import Any

# Address space, not resident memory: the interpreter and calamine take about 200 MB of it before any
# sheet. Kept well under what an API pod may hold beside its own process (k8s/30-api.yaml: 1 GiB), so
# a hostile sheet ends this child, not the pod.
MEMORY_LIMIT_BYTES = 512 * 1024 * 1024


def _cell(value: Any) -> list[Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int | float):
        return ["n", value]
    if isinstance(value, datetime | date):
        return ["d", value.isoformat()]
    if isinstance(value, time | timedelta):
        return ["s", str(value)]
    return ["s", str(value)]


def main() -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    import python_calamine

    max_rows, max_columns = int(sys.argv[1]), int(sys.argv[2])
    content = sys.stdin.buffer.read()
    try:
        workbook = python_calamine.load_workbook(io.BytesIO(content))
    except python_calamine.PasswordError:
        print(json.dumps({"error": "password"}))
        return 0
    except Exception:  # any file calamine cannot read
        print(json.dumps({"error": "unreadable"}))
        return 0
    sheets = []
    for meta in workbook.sheets_metadata:
        if meta.typ != python_calamine.SheetTypeEnum.WorkSheet:
            sheets.append({"name": meta.name, "skipped": True})
            continue
        if meta.visible != python_calamine.SheetVisibleEnum.Visible:
            sheets.append({"name": meta.name, "hidden": True})
            continue
        sheet = workbook.get_sheet_by_name(meta.name)
        if sheet.height > max_rows or sheet.width > max_columns:  # refused before a cell is converted
            print(json.dumps({"error": "size", "sheet": meta.name, "rows": sheet.height, "columns": sheet.width},
                             ensure_ascii=False))
            return 0
        # Without skip_empty_area the rows start at A1, as the sheet's row and column numbers do.
        rows = [[_cell(v) for v in row] for row in sheet.to_python(skip_empty_area=False)]
        merged = [[c1 + 1, r1 + 1, c2 + 1, r2 + 1] for (r1, c1), (r2, c2) in (sheet.merged_cell_ranges or [])]
        sheets.append({"name": meta.name, "rows": rows, "merged": merged})
    sys.stdout.write(json.dumps({"sheets": sheets}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
