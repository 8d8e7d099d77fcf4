"""``edgecls tune``: the most accurate model that meets a device's latency and size budget,
found by a search whose latency and size figures are measured on the target itself."""
