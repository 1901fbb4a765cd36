"""The FHIR R4 (4.0.1) read interface under /fhir/R4 (docs/fhir.md): pure functions from
the REST contracts' shapes to FHIR JSON (``terms``, ``resources``, ``search``), the
CapabilityStatement made of the routes that are registered (``capability``), and the
decorator that serves them with the API's keys, limits and roles (``web``)."""
