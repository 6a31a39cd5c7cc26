"""Reports that go up and come back: one submit / approve / return mechanism for every report kind."""
