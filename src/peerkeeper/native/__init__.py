"""Pure: the native protocol's peer, messages, identity, and the Octez-style pool."""
