"""GitHub's ids as the simulator makes them, and the mixing that makes generated things look unrelated."""

import base64

_MASK = (1 << 64) - 1


def node_id(prefix: str, database_id: int) -> str:
    """Return GitHub's next-generation global id: the type's prefix and the msgpack of [0, databaseId]."""
    packed = b"\x92\x00" + (b"\xce" + database_id.to_bytes(4, "big") if database_id > 0x7F else bytes([database_id]))
    return f"{prefix}_{base64.urlsafe_b64encode(packed).decode().rstrip('=')}"


def mix(value: int) -> int:
    """splitmix64: spreads consecutive indices over unrelated-looking attributes."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)
