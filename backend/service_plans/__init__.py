"""Service plans of cases (服务计划, issue 16): each service a record with its providing unit, status and history."""
