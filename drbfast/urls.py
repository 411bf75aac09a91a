"""Endpoints (PROTOCOL.md 11). Real users start on the testnet."""

TESTNET = "wss://test.deribit.com/ws/api/v2"
MAINNET = "wss://www.deribit.com/ws/api/v2"
#: Coinbase's Deribit-based gateway: trading host (private/* and user.* channels) and
#: market-data host (public/(un)subscribe only).
COINBASE = "wss://drb.coinbase.com/ws/api/v2"
COINBASE_STREAMS = "wss://streams.drb.coinbase.com/ws/api/v2"

__all__ = ["COINBASE", "COINBASE_STREAMS", "MAINNET", "TESTNET"]
