"""IO: the asyncio drivers that feed the pure cores events and ``now`` and execute their actions."""
