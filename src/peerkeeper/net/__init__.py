"""Pure: addresses, netgroups, asmap, permissions, connection types, chains."""
