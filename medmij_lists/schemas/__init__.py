"""Own XSDs of the MedMij lists (package data)."""
