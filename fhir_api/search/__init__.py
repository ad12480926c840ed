"""FHIR search: parameter registry, index extraction, request parsing and SQL compilation."""
