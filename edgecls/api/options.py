"""Help texts of the options several commands and API functions share, that no config
dataclass holds."""

MAX_PIXELS_HELP = ("Refuse images whose header declares more pixels than this (e.g. 90M), before "
                   "decoding them. Default: 64M, or $EDGECLS_MAX_PIXELS.")
EXPORT_THREADS_HELP = "Threads for validation inference."
EXPLAIN_CHANGES_HELP = (
    "Also write OUT/changes.html: held-out images whose top-1 INT8 changed, with float and INT8 "
    "heatmaps (RISE). Which images changed comes from the validation just done "
    "(OUT/predictions.json); off by default because RISE takes ~2 x 250 inferences per image "
    "shown (4 per artifact).")
