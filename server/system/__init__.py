"""Health and status of the controller process and its background components."""
