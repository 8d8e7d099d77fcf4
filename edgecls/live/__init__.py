"""The live application on the device, above the inference engine: frame collection for relabelling."""
