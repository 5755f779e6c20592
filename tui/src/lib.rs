//! hone-tui: the live terminal dashboard over the training telemetry.
