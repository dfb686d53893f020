"""Date formats of the admin: ISO-like and to the second, because auditors compare timestamps
across records (the default "Nov. 28, 2026, 4:30 a.m." hides the seconds)."""

DATETIME_FORMAT = "Y-m-d H:i:s"
DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
