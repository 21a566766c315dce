"""The usage window (``dashboard.UsageDashboard``): charts and the table of requests over
the local usage log, its CSV export and the retention of old rows."""
