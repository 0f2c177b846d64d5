"""Pure: the Bitcoin P2P peer, addrman, banman, eviction, outbound policy, connman core."""
