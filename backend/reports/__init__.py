"""Monthly reports: the .xlsx workbook and PNG coverage map, due by the 17th of the next month."""
