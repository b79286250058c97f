# Times with their zone named ("4 Dec 2026 17:30 CET"): the pages show them in the
# organisation's time zone (mailboxes.middleware), which a reader may not share.
DATETIME_FORMAT = "j M Y H:i T"
SHORT_DATETIME_FORMAT = "j M Y H:i T"
