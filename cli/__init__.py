"""``bersinar``, the operator's command line (cli.main): it wires every component
together, so it sits above the shared package, the services and the gateway, and may
import them all (docs/architecture.md#layout)."""
