"""fhir_api."""
