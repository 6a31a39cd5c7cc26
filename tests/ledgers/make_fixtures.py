"""Write the ledger import corpus in tests/ledgers/fixtures/: files made the way village clerks make
them (synthetic people, checksum-valid ID numbers of region 990101). Run it again after a change:

    uv run python -m tests.ledgers.make_fixtures

Each file's purpose and the outcome expected row by row are in tests/ledgers/test_import_corpus.py.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import xlwt
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import CoveredTableCell, Table, TableCell, TableRow
from odf.text import P
from openpyxl import Workbook
from openpyxl.styles import Alignment

from backend.ledgers.sheets import HEADERS, TITLES, Annex
from backend.registry import idnumber

HERE = Path(__file__).parent / "fixtures"

# The headers as seed 003 prints them, option lists included.
PRINTED: dict[Annex, list[str]] = {
    Annex.key_minors: [
        "序号", "未成年人姓名", "身份证号码", "性别", "户籍地", "常住地", "是否在读", "联系方式",
        "分类：严重不良行为、不良行为、心理困境、家庭监护困境、生活困境", "具体表现", "监护人姓名", "监护人联系方式",
        "专班人员及联系方式", "帮扶措施", "综合研判风险等级（低风险、一般风险、较大风险、重大风险",
    ],
    Annex.risk_persons: [
        "序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系方式",
        "分类：1、性侵犯罪前科刑满释放人员；2、社区矫正对象；3、流浪乞讨人员；4、涉黄涉毒人员；5、性病患者；"
        "6、与继女（孙女）共同生活男性；7、因组织介绍强制卖淫被公安机关处理过人员。",
        "综合研判风险等级", "管控措施",
    ],
    Annex.vulnerable_minors: list(HEADERS[Annex.vulnerable_minors]),
}


def child(n: int, *, male: bool = True, year: int = 2013) -> str:
    """The n-th synthetic child's ID number (odd sequence: a boy)."""
    sequence = 2 * n + (1 if male else 0)
    return idnumber.make("990101", date(year, 1 + n % 12, 1 + n % 28), sequence)


def adult(n: int, *, male: bool = True) -> str:
    return idnumber.make("990101", date(1970, 1 + n % 12, 1 + n % 28), 2 * n + (1 if male else 0))


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def a1_row(n: int, name: str, number: Any, *, category: str | None = "心理困境", sex: str = "男") -> list[Any]:
    return [n, name, number, sex, "示范县", "青山村", "是", "13800000001", category, "情绪低落", f"{name[0]}父",
            "13900000001", "专班甲 13700000000", "心理疏导", "一般风险"]


def a3_row(n: int, name: str, number: Any, *, sex: str = "男", school: str = "是") -> list[Any]:
    return [n, name, number, sex, "示范县", "溪口村", "13800000002", school, f"{name[0]}母", "13900000002",
            "专班乙", "送教上门"]


def _titled(ws: Any, annex: Annex) -> None:
    ws.append([f"附件{annex.value}："])
    ws.append([TITLES[annex]])


def _save(wb: Workbook, name: str) -> None:
    wb.save(HERE / name)


def a1_clean() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "附件1"
    _titled(ws, Annex.key_minors)
    ws.append(PRINTED[Annex.key_minors])
    ws.append(a1_row(1, "赵一", child(1)))
    ws.append(a1_row(2, "赵二", child(2, male=False), sex="女", category="不良行为、生活困境"))
    ws.append(a1_row(3, "赵三", child(3), category="1、严重不良行为"))
    ws.append(a1_row(4, "赵四", child(4), category="3、4"))
    _save(wb, "a1_clean.xlsx")


def a1_numeric_id() -> None:
    """Row 3 typed as text; row 4 in a General-format cell, stored as a float (what Excel keeps)."""
    wb = Workbook()
    ws = wb.active
    ws.append(PRINTED[Annex.key_minors])
    ws.append(a1_row(1, "钱一", child(10)))
    ws.append(a1_row(2, "钱二", float(child(11)) if child(11)[-1] != "X" else float(child(13))))
    _save(wb, "a1_numeric_id.xlsx")


def a1_villages() -> None:
    """One sheet per village: every sheet's children are imported."""
    wb = Workbook()
    first = wb.active
    first.title = "青山村"
    second = wb.create_sheet("溪口村")
    for ws, base in ((first, 20), (second, 30)):
        _titled(ws, Annex.key_minors)
        ws.append(PRINTED[Annex.key_minors])
        ws.append(a1_row(1, f"孙{base}", child(base)))
        ws.append(a1_row(2, f"孙{base + 1}", child(base + 1)))
    _save(wb, "a1_villages.xlsx")


def a1_merged() -> None:
    """分类 merged over three rows (F4:F6 style): each of the three children is 家庭监护困境."""
    wb = Workbook()
    ws = wb.active
    ws.append(PRINTED[Annex.key_minors])
    ws.append(a1_row(1, "李一", child(40), category="家庭监护困境"))
    ws.append(a1_row(2, "李二", child(41), category=None))
    ws.append(a1_row(3, "李三", child(42), category=None))
    ws.merge_cells("I2:I4")
    _save(wb, "a1_merged.xlsx")


def a1_extra_columns() -> None:
    """An inserted 备注 column, and 出生日期 beside the ID: row 3 agrees, row 4's date and row 5's sex
    contradict the ID number."""
    wb = Workbook()
    ws = wb.active
    header = [*PRINTED[Annex.key_minors][:3], "出生日期", *PRINTED[Annex.key_minors][3:], "备注"]
    ws.append(header)

    def row(n: int, name: str, number: str, born: date, sex: str = "男") -> list[Any]:
        cells = a1_row(n, name, number, sex=sex)
        return [*cells[:3], born, *cells[3:], "已走访"]

    good = child(50)
    wrong_date = child(51)
    ws.append(row(1, "周一", good, idnumber.parse(good).birth_date))
    ws.append(row(2, "周二", wrong_date, date(2010, 1, 1)))
    ws.append(row(3, "周三", child(52), idnumber.parse(child(52)).birth_date, sex="女"))
    _save(wb, "a1_extra_columns.xlsx")


def a1_clerk_layout() -> None:
    """An instructions sheet first; then 填报单位/填报人/日期 above the title, line breaks typed in the
    header cells, full-width colons and spaces."""
    wb = Workbook()
    notes = wb.active
    notes.title = "填表说明"
    notes.append(["填表说明"])
    notes.append(["1. 身份证号码一列请设置为文本格式。"])
    notes.append(["2. 分类可多选，用顿号隔开。"])
    ws = wb.create_sheet("台账")
    ws.append(["填报单位：青山村村委会", None, None, "填报人：王某", None, None, "日期：2026年11月20日"])
    _titled(ws, Annex.key_minors)
    header = list(PRINTED[Annex.key_minors])
    header[1] = "未成年人\n姓名"
    header[2] = "身份证\n号码"
    header[7] = "联系 方式"
    header[8] = header[8].replace("：", "：\n")
    ws.append(header)
    for cell in ws[4]:
        cell.alignment = Alignment(wrap_text=True)
    ws.append(a1_row(1, "吴一", child(60)))
    ws.append(header)  # the header again, as printed at the top of page 2
    ws.append(a1_row(2, "吴二", child(61)))
    _save(wb, "a1_clerk_layout.xlsx")


def a1_missing_column() -> None:
    """身份证号码 renamed 证件 and 性别 deleted: refused, naming the missing and the unknown columns."""
    wb = Workbook()
    ws = wb.active
    header = list(PRINTED[Annex.key_minors])
    header[2] = "证件"
    del header[3]
    ws.append(header)
    row = a1_row(1, "郑一", child(70))
    del row[3]
    ws.append(row)
    _save(wb, "a1_missing_column.xlsx")


def a2_clean() -> None:
    """附件2 classes by number, short name and full name."""
    wb = Workbook()
    ws = wb.active
    _titled(ws, Annex.risk_persons)
    ws.append(PRINTED[Annex.risk_persons])
    ws.append([1, "冯一", adult(1), "男", "示范县", "示范镇", "13600000001", "2", "较大风险", "每周报到"])
    ws.append([2, "冯二", adult(2), "男", "示范县", "示范镇", "13600000002", "流浪乞讨 5", "低风险", ""])
    ws.append([3, "冯三", adult(3, male=False), "女", "", "", "", "涉黄涉毒人员", "一般", "走访"])
    _save(wb, "a2_clean.xlsx")


def a3_clean() -> None:
    wb = Workbook()
    ws = wb.active
    _titled(ws, Annex.vulnerable_minors)
    ws.append(PRINTED[Annex.vulnerable_minors])
    ws.append(a3_row(1, "陈一", child(80)))
    ws.append(a3_row(2, "陈二", child(81, male=False), sex="女", school="否"))
    _save(wb, "a3_clean.xlsx")


def a3_two_row_header() -> None:
    """The header in two rows: 监护人 over 姓名 and 联系电话, every other header cell merged down."""
    wb = Workbook()
    ws = wb.active
    header = PRINTED[Annex.vulnerable_minors]
    ws.append([*header[:8], "监护人", None, *header[10:]])
    ws.append([None] * 8 + ["姓名", "联系电话"] + [None] * 2)
    for column in range(1, 13):
        if column not in (9, 10):
            ws.merge_cells(start_row=1, start_column=column, end_row=2, end_column=column)
    ws.merge_cells("I1:J1")
    ws.append(a3_row(1, "褚一", child(150)))
    ws.append(a3_row(2, "褚二", child(151)))
    _save(wb, "a3_two_row_header.xlsx")


def a3_fullwidth() -> None:
    """Row 2's ID number typed with full-width digits (the same child as a3_clean.xlsx's row 3); rows 3
    and 4 are one new child, once in full-width digits and once in ASCII."""
    wb = Workbook()
    ws = wb.active
    ws.append(PRINTED[Annex.vulnerable_minors])
    ws.append(a3_row(1, "陈一", full_width(child(80))))
    ws.append(a3_row(2, "陈五", full_width(child(85))))
    ws.append(a3_row(3, "陈五", child(85)))
    _save(wb, "a3_fullwidth.xlsx")


def a3_moved() -> None:
    """a3_clean.xlsx's two children again, the first with a new 常住地 (the change shown before it is made)."""
    wb = Workbook()
    ws = wb.active
    ws.append(PRINTED[Annex.vulnerable_minors])
    first = a3_row(1, "陈一", child(80))
    first[5] = "青山村8组"
    ws.append(first)
    ws.append(a3_row(2, "陈二", child(81, male=False), sex="女", school="否"))
    _save(wb, "a3_moved.xlsx")


def a3_wps() -> None:
    """What WPS 表格 writes: shared strings split into rich-text runs (a header typed in two styles),
    cells without their r="A1" reference, the ID with the quote prefix WPS puts on numbers typed as text,
    and its KSOProductBuildVer property."""
    header = PRINTED[Annex.vulnerable_minors]
    rows = [header, a3_row(1, "许一", child(130)), a3_row(2, "许二", child(131, male=False), sex="女")]
    strings: list[str] = []

    def shared(text: str) -> int:
        if text not in strings:
            strings.append(text)
        return strings.index(text)

    body = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            if isinstance(value, int):
                cells.append(f"<c><v>{value}</v></c>")
            else:
                style = ' s="1"' if c == 2 and r > 1 else ""
                cells.append(f'<c t="s"{style}><v>{shared(str(value))}</v></c>')
        body.append(f'<row r="{r}" spans="1:12">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    sheet = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<worksheet {ns} '
             'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
             f'<sheetPr/><dimension ref="A1:L3"/><sheetData>{"".join(body)}</sheetData></worksheet>')

    def item(text: str) -> str:
        if text == "身份证号码":  # typed in two styles: two runs
            return ('<si><r><rPr><b/><sz val="11"/></rPr><t>身份证</t></r>'
                    '<r><rPr><sz val="11"/></rPr><t>号码</t></r></si>')
        return f"<si><t>{text}</t></si>"

    sst = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<sst {ns} count="{len(strings)}" '
           f'uniqueCount="{len(strings)}">{"".join(item(t) for t in strings)}</sst>')
    custom = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<Properties '
              'xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
              'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
              '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="KSOProductBuildVer">'
              "<vt:lpwstr>2052-12.1.0.16120</vt:lpwstr></property></Properties>")
    wb = Workbook()
    wb.active.append(["x"])
    wb.active["A2"].number_format = "@"
    buffer = io.BytesIO()
    wb.save(buffer)
    source = zipfile.ZipFile(buffer)
    with zipfile.ZipFile(HERE / "a3_wps.xlsx", "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet.encode()
            elif info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="'
                                    b'application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                                    b"</Types>")
            elif info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", b'<Relationship Id="rId9" Type="http://schemas.openxml'
                                    b'formats.org/officeDocument/2006/relationships/sharedStrings" '
                                    b'Target="sharedStrings.xml"/></Relationships>')
            target.writestr(info.filename, data)
        target.writestr("xl/sharedStrings.xml", sst)
        target.writestr("docProps/custom.xml", custom)


def a3_spellings() -> None:
    """Spellings clerks use (男性/女性, √/×, 辍学/休学) and two that are refused (M, 也许)."""
    wb = Workbook()
    ws = wb.active
    ws.append(PRINTED[Annex.vulnerable_minors])
    ws.append(a3_row(1, "蒋一", child(90), sex="男性", school="√"))
    ws.append(a3_row(2, "蒋二", child(91, male=False), sex="女性", school="辍学"))
    ws.append(a3_row(3, "蒋三", child(92, male=False), sex="女性", school="休学"))
    ws.append(a3_row(4, "蒋四", child(93), sex="M", school="也许"))
    _save(wb, "a3_spellings.xlsx")


def a3_xls() -> None:
    """An old .xls: row 3 text, row 4 the ID as a number cell."""
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("附件3")
    rows = [PRINTED[Annex.vulnerable_minors], a3_row(1, "韩一", child(100)), a3_row(2, "韩二", child(101))]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if r == 2 and c == 2:
                value = float(value)
            ws.write(r, c, value)
    book.save(str(HERE / "a3_old.xls"))


def _csv(name: str, rows: list[list[Any]], encoding: str) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    (HERE / name).write_bytes(buffer.getvalue().encode(encoding))


def a3_csv() -> None:
    """A CSV saved by Excel/WPS in GBK, and one in UTF-8 with BOM whose row 3 holds what Excel writes for
    an 18-digit number cell (9.90101E+17)."""
    header = PRINTED[Annex.vulnerable_minors]
    _csv("a3_gbk.csv", [header, a3_row(1, "杨一", child(110)), a3_row(2, "杨二", child(111, male=False), sex="女",
                                                                     school="×")], "gbk")
    _csv("a3_utf8_bom.csv", [header, a3_row(1, "朱一", child(120)), a3_row(2, "朱二", "9.90101E+17")], "utf-8-sig")


def a2_ods() -> None:
    """附件2 saved as .ods (LibreOffice / WPS), classes by number."""
    doc = OpenDocumentSpreadsheet()
    table = Table(name="附件2")
    rows = [PRINTED[Annex.risk_persons],
            [1, "秦一", adult(20), "男", "示范县", "示范镇", "13600000020", "1、2", "重大风险", "每日报到"],
            [2, "秦二", adult(21), "男", "", "", "", "6", "", ""]]
    for row in rows:
        tr = TableRow()
        for value in row:
            if isinstance(value, int):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(HERE / "a2_table.ods"))


def a1_merged_ods() -> None:
    """a1_merged.xlsx saved as .ods: 分类 spans three rows (table:number-rows-spanned)."""
    doc = OpenDocumentSpreadsheet()
    table = Table(name="附件1")
    rows = [PRINTED[Annex.key_minors], a1_row(1, "李四", child(140), category="生活困境"),
            a1_row(2, "李五", child(141), category=None), a1_row(3, "李六", child(142), category=None)]
    for r, row in enumerate(rows):
        tr = TableRow()
        for c, value in enumerate(row):
            if c == 8 and r >= 2:
                tr.addElement(CoveredTableCell())
                continue
            if isinstance(value, int):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string", **({"numberrowsspanned": 3} if c == 8 and r == 1 else {}))
            if value is not None:
                cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(HERE / "a1_merged.ods"))


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for make in (a1_clean, a1_numeric_id, a1_villages, a1_merged, a1_extra_columns, a1_clerk_layout,
                 a1_missing_column, a2_clean, a3_clean, a3_fullwidth, a3_two_row_header, a3_moved, a3_wps,
                 a3_spellings, a3_xls, a3_csv, a2_ods, a1_merged_ods):
        make()


if __name__ == "__main__":
    main()
