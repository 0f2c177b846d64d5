"""Per-chain network parameters: message start (magic), default P2P and RPC ports.

Values from Bitcoin Core ``src/kernel/chainparams.cpp`` (``pchMessageStart``,
``nDefaultPort``, ``vSeeds``) and ``src/chainparamsbase.cpp`` (RPC ports). The
default signet magic is the first four bytes of the hash of the default signet
challenge, as computed in ``SigNetParams``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Chain", "CHAINS", "get_chain"]


@dataclass(frozen=True, slots=True)
class Chain:
    """One Bitcoin network.

    Attributes: ``name`` (Core's ``-chain`` value), ``magic`` (4 bytes that open
    every v1 message), ``default_port`` (P2P, TCP), ``rpc_port`` (JSON-RPC, TCP),
    ``dns_seeds`` (host names, Core's ``vSeeds``).
    """

    name: str
    magic: bytes
    default_port: int
    rpc_port: int
    dns_seeds: tuple[str, ...] = ()


CHAINS: dict[str, Chain] = {
    c.name: c
    for c in (
        Chain(
            "main",
            bytes.fromhex("f9beb4d9"),
            8333,
            8332,
            (
                "dnsseed.bluematt.me",
                "seed.bitcoin.jonasschnelli.ch",
                "seed.btc.petertodd.net",
                "seed.bitcoin.sprovoost.nl",
                "dnsseed.emzy.de",
                "seed.bitcoin.wiz.biz",
                "seed.mainnet.achownodes.xyz",
            ),
        ),
        Chain(
            "test",
            bytes.fromhex("0b110907"),
            18333,
            18332,
            (
                "testnet-seed.bitcoin.jonasschnelli.ch",
                "seed.tbtc.petertodd.net",
                "testnet-seed.bluematt.me",
                "seed.testnet.achownodes.xyz",
            ),
        ),
        Chain(
            "testnet4",
            bytes.fromhex("1c163f28"),
            48333,
            48332,
            ("seed.testnet4.bitcoin.sprovoost.nl", "seed.testnet4.wiz.biz"),
        ),
        Chain(
            "signet",
            bytes.fromhex("0a03cf40"),
            38333,
            38332,
            ("seed.signet.bitcoin.sprovoost.nl", "seed.signet.achownodes.xyz"),
        ),
        # Core lists one unresolvable seed on regtest so that its functional tests can
        # drive ThreadDNSAddressSeed (p2p_dns_seeds); ".invalid" never leaves the machine
        # (RFC 6761 section 6.4, see peerkeeper.io.dns).
        Chain("regtest", bytes.fromhex("fabfb5da"), 18444, 18443, ("dummySeed.invalid",)),
    )
}


def get_chain(name: str) -> Chain:
    """Return the :class:`Chain` called ``name`` (main, test, testnet4, signet, regtest).

    Raises ``ValueError`` for an unknown name.
    """
    try:
        return CHAINS[name]
    except KeyError:
        raise ValueError(f"unknown chain {name!r}; choose one of {', '.join(CHAINS)}") from None
