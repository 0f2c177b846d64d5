"""IO: node wiring, configuration, the CLI and the JSON-RPC method tables."""
