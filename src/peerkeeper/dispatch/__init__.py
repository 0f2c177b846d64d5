"""Pure: the dispatch layer (envelopes, conversations, credit), bulk transfer, gossip core."""
