"""scans package."""
