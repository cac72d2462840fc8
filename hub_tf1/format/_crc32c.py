"""crc32c (Castagnoli) and the masked form LevelDB tables store.

Rules of this file:
- Pure functions on bytes and ints; no I/O, no imports beyond the standard
  library.  TensorFlow's Python API exposes no binding for crc32c, and the
  blocks checksummed here (bundle indexes) are small, so a table-driven pure
  Python loop is fast enough.  Tensor data is never checksummed here: copied
  entries carry the crc32c TensorFlow stored.
"""

from typing import Tuple

_CRC_MASK_DELTA = 0xa282ead8
_U32 = 0xffffffff


def _make_crc32c_table() -> Tuple[int, ...]:
  poly = 0x82f63b78  # Reversed Castagnoli polynomial.
  table = []
  for n in range(256):
    c = n
    for _ in range(8):
      c = (c >> 1) ^ poly if c & 1 else c >> 1
    table.append(c)
  return tuple(table)


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
  """crc32c of `data`, continuing from a previous (unmasked) `crc`."""
  table = _CRC32C_TABLE
  c = crc ^ _U32
  for b in data:
    c = table[(c ^ b) & 0xff] ^ (c >> 8)
  return c ^ _U32


def mask_crc(crc: int) -> int:
  """The masked form of a crc32c that LevelDB tables store."""
  return ((((crc >> 15) | (crc << 17)) & _U32) + _CRC_MASK_DELTA) & _U32


def unmask_crc(masked: int) -> int:
  """Inverse of `mask_crc`."""
  rot = (masked - _CRC_MASK_DELTA) & _U32
  return ((rot >> 17) | (rot << 15)) & _U32
