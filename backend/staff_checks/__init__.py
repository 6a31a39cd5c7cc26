"""Staff background checks (从业查询): the staff of institutions in close contact with minors, each
check before hiring and periodically, and the dismissal a record requires (issue 18)."""
