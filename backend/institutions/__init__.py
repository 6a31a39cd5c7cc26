"""Institutions in close contact with minors (密切接触未成年人单位): schools, kindergartens, training
institutions, hotels, internet cafés, health centres ... The register that prevention activities,
awareness surveys, staff background checks and supervision hang on (issue 18)."""
