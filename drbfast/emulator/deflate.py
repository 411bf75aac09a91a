"""permessage-deflate (RFC 7692), negotiated when the client offers it, as production
does (PROTOCOL.md 11: offered -> ``permessage-deflate; client_max_window_bits=15``;
not offered -> plain frames). picows has no extensions, so the emulator compresses
and inflates whole messages itself and sets RSV1 on the frames it compresses."""

from __future__ import annotations

import zlib

__all__ = ["PerMessageDeflate", "negotiate"]

_TAIL = b"\x00\x00\xff\xff"


class PerMessageDeflate:
    """One connection's compression contexts."""

    def __init__(self, server_bits: int = 15, server_no_context_takeover: bool = False) -> None:
        self.server_bits = server_bits
        self.no_takeover = server_no_context_takeover
        self._comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -server_bits)
        # Inflating with the largest window reads whatever window the client used.
        self._dec = zlib.decompressobj(-15)

    def compress(self, payload: bytes) -> bytes:
        if self.no_takeover:
            self._comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.server_bits)
        data = self._comp.compress(payload) + self._comp.flush(zlib.Z_SYNC_FLUSH)
        return data[:-4] if data.endswith(_TAIL) else data

    def decompress(self, payload: bytes, limit: int) -> bytes | None:
        """The message, or None if it inflates past ``limit`` bytes (or is not deflate)."""
        try:
            out = self._dec.decompress(payload + _TAIL, limit + 1)
        except zlib.error:
            return None
        if len(out) > limit or self._dec.unconsumed_tail:
            # The context is lost with the rest of the message: start a fresh one.
            self._dec = zlib.decompressobj(-15)
            return None
        return out


def negotiate(offer: str) -> tuple[str, PerMessageDeflate] | None:
    """Answer the client's Sec-WebSocket-Extensions offer: the header value to send back
    and the contexts, or None if permessage-deflate was not offered (or not acceptably)."""
    for ext in offer.split(","):
        parts = [p.strip() for p in ext.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        params: dict[str, str | None] = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"') or None
        server_bits = 15
        if "server_max_window_bits" in params:
            bits = params["server_max_window_bits"]
            if bits is None or not bits.isdigit() or not 9 <= int(bits) <= 15:
                continue  # zlib cannot make an 8-bit raw window: decline that offer
            server_bits = int(bits)
        answer = ["permessage-deflate"]
        no_takeover = "server_no_context_takeover" in params
        if no_takeover:
            answer.append("server_no_context_takeover")
        if "server_max_window_bits" in params:
            answer.append(f"server_max_window_bits={server_bits}")
        if "client_max_window_bits" in params:
            answer.append("client_max_window_bits=15" if params["client_max_window_bits"] is None
                          else f"client_max_window_bits={params['client_max_window_bits']}")
        return "; ".join(answer), PerMessageDeflate(server_bits, no_takeover)
    return None
