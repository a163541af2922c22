"""The ground segment: operators command the satellite and read its telemetry."""
