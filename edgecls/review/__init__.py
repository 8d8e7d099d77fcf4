"""Labelling what devices collected: ``edgecls review INBOX --data DATASET`` (a page on loopback)."""
