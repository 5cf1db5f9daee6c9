"""The vectorised OverQ encoder behind ``sw_ref.overq``: integer codes in, slots out.

The greedy scan (docs/overq-encoding.md "OverQ encoding") decides, for every slot, one *role*: what
the slot's value is made of and which state it carries. The role depends only on
which slots are zeros and which are outliers, never on the values themselves, so:

1. classes: two bits per slot (non-zero, outlier), compared on the narrow codes;
2. roles: for R <= 8 a lookup table indexed by the tile's 2R class bits (built once
   per configuration by running the scan on every class pattern); for larger R the
   scan itself, one Python step per row, vectorised over the tiles that have a
   decision to make (all other slots keep their own clipped value);
3. values: elementwise from the role and the slot's own code or its left
   neighbour's (a value only ever moves one slot right), with masks taken from the
   role's bits; states are the role's top bits.

Everything runs on tile-major arrays [tiles, R] of the narrowest unsigned dtype,
so a vector of K = n R slots is used in place, without a transpose, block by block
through reused temporaries. At R = 8 with one-byte codes a tile is one 64-bit word
and steps 1-3 are bitwise operations on words (``_encode_words``).

A role byte is ``VICTIM << 6 | state << 4 | FINE << 3 | HIGH << 2 | LOW << 1 | PREV``:
PREV takes the left neighbour's code; with FINE the raw code t = u (precision), else
t = min(q, 2^(2b) - 1); HIGH gives t >> b, LOW gives t & M, neither gives min(t, M).
VICTIM marks a RANGE slot whose own value was pruned (``victim`` mode).

Victim mode adds one value comparison, q_(k+1) < min(q_k, 2^(2b) - 1) - M: it is
folded into the classes, so the roles stay a function of a 2-bit class per slot and
the tables keep their size. A zero is never a victim candidate's class: the unused
class (not non-zero, outlier) becomes "an outlier whose right neighbour is cheap to
prune" (``victim_ok``), and the table decodes it back into (non-zero, outlier, cheap).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hw.params import (
    STATE_NORMAL,
    STATE_PRECISION,
    STATE_RANGE,
    STATE_SHIFTED,
    ArrayConfig,
)

PREV, LOW, HIGH, FINE, VICTIM = 1, 2, 4, 8, 64
ROLE_PLAIN = STATE_NORMAL << 4  # min(q, M): zeros, normal values, clipped outliers
ROLE_LOW = STATE_NORMAL << 4 | LOW  # a handled outlier's low half
ROLE_PAIR = STATE_NORMAL << 4 | FINE | HIGH  # precision pair: p >> b
ROLE_SHIFTED = STATE_SHIFTED << 4 | PREV  # the left neighbour, clipped to M
ROLE_HIGH = STATE_RANGE << 4 | PREV | HIGH  # the outlier's high half
ROLE_FINE = STATE_PRECISION << 4 | PREV | FINE | LOW  # the pair's fraction bits
ROLE_VICTIM = VICTIM | ROLE_HIGH  # the outlier's high half over a pruned neighbour

LUT_MAX_ROWS = 8  # 4^R patterns: 65536 entries at R = 8


def code_dtype(cfg: ArrayConfig):
    """The narrowest unsigned dtype that holds a code (CB bits)."""
    return np.min_scalar_type((1 << cfg.code_bits) - 1)


def pad_code(cfg: ArrayConfig) -> int:
    """A code that is neither zero nor outlier (q = 1): what a partial tile is padded
    with, so the padding is never a zero the encoder could take."""
    return 1 << cfg.act_bits if cfg.precision_enabled else 1


def classes(c: np.ndarray, cfg: ArrayConfig) -> tuple[np.ndarray, np.ndarray]:
    """(q > 0, q > M) as bool arrays, straight from the codes.

    With precision q = round(u / 2^b) half to even, so q > 0 iff u > 2^(b-1) and
    q > M iff u >= 2^(2b) - 2^(b-1) (M + 1/2 rounds up to the even M + 1).
    """
    dt = c.dtype.type
    if cfg.precision_enabled:
        half = 1 << (cfg.act_bits - 1)
        return c > dt(half), c >= dt((1 << 2 * cfg.act_bits) - half)
    return c != 0, c > dt(cfg.act_max)


def coarse(c: np.ndarray, cfg: ArrayConfig) -> np.ndarray:
    """q from the codes: c, or round(u / 2^b) half to even (in c's dtype) with precision.

    (u + 2^(b-1) - 1 + lsb(u >> b)) >> b; q reaches 2^(2b) for the largest u. The
    sum fits: 3b bits never fill an unsigned dtype (3b is not 8, 16, 32 or 64).
    """
    if not cfg.precision_enabled:
        return c
    b = cfg.act_bits
    dt = c.dtype.type
    odd = (c >> dt(b)) & dt(1)
    return (c + dt((1 << (b - 1)) - 1) + odd) >> dt(b)


def victim_ok(
    c: np.ndarray, out: np.ndarray, cfg: ArrayConfig, no_right: np.ndarray | None = None
) -> np.ndarray:
    """Tile-major [T, R] bool: slot k is an outlier whose right neighbour in the tile
    costs less to prune than the outlier costs to clip, q_(k+1) < min(q_k, 2^(2b)-1) - M.

    ``no_right`` [T] (optional): per tile, the column whose right neighbour is padding
    (the last real slot of a partial tile, see ``encode_tiles``), -1 where none is.
    """
    q = coarse(c, cfg)
    dt = q.dtype.type
    ok = np.zeros(c.shape, dtype=bool)
    wide = np.minimum(q[:, :-1], dt(cfg.wide_max)) if cfg.precision_enabled else q[:, :-1]
    room = wide - dt(cfg.act_max)  # wraps for non-outliers, which ``out`` masks
    np.greater(room, q[:, 1:], out=ok[:, :-1])
    ok &= out
    if no_right is not None:
        tiles = np.flatnonzero(no_right >= 0)
        ok[tiles, no_right[tiles]] = False
    return ok


# --- roles -------------------------------------------------------------------------


def scan_roles(
    nz: np.ndarray, out: np.ndarray, cfg: ArrayConfig, cheap: np.ndarray | None = None
) -> np.ndarray:
    """The greedy scan on slot-major classes [R, V] -> role bytes [R, V] (uint8).

    ``cheap`` [R, V] (victim mode): the outlier's right neighbour may be pruned.

    Per vector it keeps the scan pointer and the role that the next slot takes if
    the pointer passes over it (RANGE or PRECISION right after the claiming slot,
    SHIFTED inside a cascade). Flags are 0/1 bytes combined by arithmetic, so each
    row is a handful of branch-free passes.
    """
    rows, nvec = nz.shape
    roles = np.full((rows, nvec), ROLE_PLAIN, dtype=np.uint8)
    if not cfg.overq_enabled:
        return roles
    idx = np.int16 if rows + cfg.cascade + 2 < 2**15 else np.int32
    nz8, out8 = nz.view(np.uint8), out.view(np.uint8)
    if cfg.range_enabled:  # reach[k]: 1 + (nearest zero after row k) - (k + 1), if in reach
        near = np.empty((rows, nvec), dtype=idx)
        run = np.full(nvec, rows + cfg.cascade + 1, dtype=idx)
        for k in reversed(range(rows)):
            near[k] = run
            np.copyto(run, idx(k), where=~nz[k])
    ptr = np.zeros(nvec, dtype=idx)
    pend = np.full(nvec, ROLE_SHIFTED, dtype=np.uint8)
    active = np.empty(nvec, dtype=bool)
    for k in range(rows):
        np.equal(ptr, k, out=active)
        a8 = active.view(np.uint8)
        # an active slot is PLAIN (0) unless it claims; a passed-over slot takes pend
        role = pend * (a8 ^ np.uint8(1))
        pend = np.full(nvec, ROLE_SHIFTED, dtype=np.uint8)
        ptr += a8  # active: k + 1 for now
        if cfg.range_enabled:
            h8 = a8 & out8[k] & (near[k] <= k + cfg.cascade).view(np.uint8)
            role |= h8 * np.uint8(ROLE_LOW)
            pend += h8 * np.uint8(ROLE_HIGH - ROLE_SHIFTED)
            ptr += h8 * (near[k] - idx(k))  # to the zero's right neighbour
            if cfg.victim_enabled and k + 1 < rows and cheap is not None:
                v8 = a8 & out8[k] & (h8 ^ np.uint8(1)) & cheap[k].view(np.uint8)
                role |= v8 * np.uint8(ROLE_LOW)
                pend += v8 * np.uint8(ROLE_VICTIM - ROLE_SHIFTED)
                ptr += v8  # k + 2: the victim is passed over
        if cfg.precision_enabled and k + 1 < rows:
            p8 = a8 & nz8[k] & (out8[k] ^ np.uint8(1)) & (nz8[k + 1] ^ np.uint8(1))
            role |= p8 * np.uint8(ROLE_PAIR)
            pend += p8 * np.uint8(ROLE_FINE - ROLE_SHIFTED)
            ptr += p8  # k + 2
        roles[k] = role
    return roles


@dataclass(frozen=True)
class _Table:
    """Roles of every class pattern of one tile: index = nz bits | out bits << R."""

    roles: np.ndarray  # [4^R, R] uint8 (viewed as [4^R] uint64 when R = 8)
    handled: np.ndarray  # [4^R] int64: ROLE_LOW slots
    precise: np.ndarray  # [4^R] int64: ROLE_PAIR slots
    victims: np.ndarray  # [4^R] int64: ROLE_VICTIM slots


@lru_cache(maxsize=64)
def _table(rows: int, cascade: int, overq: frozenset) -> _Table:
    """Run ``scan_roles`` once on all 4^rows class patterns (a few ms)."""
    cfg = ArrayConfig(rows=rows, cols=1, cascade=cascade, overq=set(overq))
    pattern = np.arange(4**rows, dtype=np.int64)
    bit = np.arange(rows, dtype=np.int64)[:, None]
    out = ((pattern >> (rows + bit)) & 1).astype(bool)
    nz_bit = ((pattern >> bit) & 1).astype(bool)
    nz = nz_bit | out
    cheap = out & ~nz_bit if cfg.victim_enabled else None  # the otherwise unused class
    roles = np.ascontiguousarray(scan_roles(nz, out, cfg, cheap).T)
    handled = np.count_nonzero(roles == ROLE_LOW, axis=1).astype(np.int64)
    precise = np.count_nonzero(roles == ROLE_PAIR, axis=1).astype(np.int64)
    victims = np.count_nonzero(roles == ROLE_VICTIM, axis=1).astype(np.int64)
    return _Table(roles, handled, precise, victims)


_GATHER8 = np.uint64(0x0102040810204080)  # byte k's bit 0 -> bit 56 + k


def _pattern_index(nz: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Tile-major classes [T, R] (R <= 8) -> pattern index [T] (intp)."""
    t, rows = nz.shape
    if rows == 8:  # eight bool bytes are one word; one multiply gathers their bits
        shift = np.uint64(56)
        nzb = (nz.view(np.uint64).reshape(t) * _GATHER8) >> shift
        outb = (out.view(np.uint64).reshape(t) * _GATHER8) >> shift
        return (nzb | (outb << np.uint64(8))).astype(np.intp)
    index = np.zeros(t, dtype=np.intp)
    for k in range(rows):
        index |= nz[:, k].astype(np.intp) << k
        index |= out[:, k].astype(np.intp) << (rows + k)
    return index


def tile_roles(nz: np.ndarray, out: np.ndarray, cfg: ArrayConfig, cheap: np.ndarray | None = None):
    """Tile-major classes [T, R] -> (roles [T, R] uint8, handled, precise).

    ``cheap`` (victim mode, ``victim_ok``) marks the outliers that may prune.
    """
    t, rows = nz.shape
    if not cfg.overq_enabled:
        return np.full((t, rows), ROLE_PLAIN, dtype=np.uint8), 0, 0
    if rows <= LUT_MAX_ROWS:
        table = _table(rows, cfg.cascade, frozenset(cfg.overq))
        index = _pattern_index(nz if cheap is None else nz & ~cheap, out)
        if rows == 8:
            roles = table.roles.view(np.uint64).reshape(-1)[index].view(np.uint8)
            roles = roles.reshape(t, rows)
        else:
            roles = table.roles[index]
        counts = np.bincount(index, minlength=table.handled.size)
        return roles, int(counts @ table.handled), int(counts @ table.precise)
    # Only tiles with a decision to make need the scan: an outlier, or (precision) a
    # non-zero non-outlier followed by a zero. Every other slot stays PLAIN.
    busy = _any_per_tile(out)
    if cfg.precision_enabled:
        chance = nz[:, :-1] & ~out[:, :-1] & ~nz[:, 1:]
        busy |= _any_per_tile(chance)
    busy = np.flatnonzero(busy)
    roles = np.full((t, rows), ROLE_PLAIN, dtype=np.uint8)
    if busy.size:
        sub = scan_roles(
            np.ascontiguousarray(nz[busy].T),
            np.ascontiguousarray(out[busy].T),
            cfg,
            None if cheap is None else np.ascontiguousarray(cheap[busy].T),
        )
        roles[busy] = sub.T
    handled = int(np.count_nonzero(roles == ROLE_LOW))
    precise = int(np.count_nonzero(roles == ROLE_PAIR))
    return roles, handled, precise


def _any_per_tile(flags: np.ndarray) -> np.ndarray:
    """flags [T, n] (bool) -> [T]: any set, reading 8 flags per word where it can."""
    t, n = flags.shape
    if n % 8 == 0 and flags.flags.c_contiguous:
        return flags.view(np.uint64).reshape(t, n // 8).any(axis=1)
    return flags.any(axis=1)


# --- values and states -------------------------------------------------------------


class _Scratch:
    """Temporaries of one shape, reused across the passes of ``values_from_roles``.

    Every numpy call writes into one of these (``out=``): a fresh array per pass
    would be fresh memory, i.e. page faults, on every call.
    """

    def __init__(self, n: int, dt):
        self.dt = np.dtype(dt)
        self.flag = np.empty(n, dtype=bool)
        self.bufs = [np.empty(n, dtype=dt) for _ in range(4)]

    def take(self, n: int):
        """The first n elements of every buffer (a block may be shorter)."""
        return [buf[:n] for buf in self.bufs]

    def mask(self, roles: np.ndarray, bit: int, out: np.ndarray, invert=False) -> np.ndarray:
        """All ones where the role has ``bit`` (lacks it if ``invert``), else 0."""
        flag = self.flag[: roles.size].view(np.uint8)  # 0 / 1
        np.right_shift(roles, np.uint8(bit.bit_length() - 1), out=flag)
        flag &= np.uint8(1)
        if invert:
            flag ^= np.uint8(1)
        if self.dt.itemsize == 1:
            np.negative(flag.view(np.int8), out=out.view(np.int8))
            return out
        np.copyto(out, flag)
        return np.negative(out, out=out)


def values_from_roles(
    c: np.ndarray,
    roles: np.ndarray,
    cfg: ArrayConfig,
    out: np.ndarray,
    scratch: _Scratch | None = None,
):
    """Slot values of tile-major codes c (any shape) into ``out`` (int64, c's size).

    x = own code, or the left neighbour's (PREV); t = x, or min(q(x), 2^(2b) - 1)
    unless FINE; v = t & M (LOW), t >> b (HIGH), else min(t, M) = (t & M) | M if
    t > M. Every step is a bitwise pass over the narrow dtype.
    """
    b, top = cfg.act_bits, cfg.act_max
    dt = c.dtype.type
    own, rflat = c.reshape(-1), roles.reshape(-1)
    n = own.size
    if scratch is None:
        scratch = _Scratch(n, dt)
    x, lo, m, sat = scratch.take(n)
    if cfg.overq_enabled:  # x = own ^ ((own ^ left) & PREV); slot 0 of a tile is never PREV
        x[0] = own[0]
        np.bitwise_xor(own[1:], own[:-1], out=x[1:])
        x[1:] &= scratch.mask(rflat[1:], PREV, m[1:])
        x[1:] ^= own[1:]
    else:
        np.copyto(x, own)
    if cfg.precision_enabled:  # t = FINE ? x : min(q(x), wide), built in lo
        np.minimum(coarse(x, cfg), dt(cfg.wide_max), out=lo)
        lo ^= x
        lo &= scratch.mask(rflat, FINE, m, invert=True)
        x ^= lo  # x is t from here on
    hi = scratch.flag[:n]  # does t exceed M? (then min(t, M) = M)
    np.greater(x, dt(top), out=hi)
    np.bitwise_and(x, dt(top), out=lo)
    if scratch.dt.itemsize == 1:
        np.negative(hi.view(np.int8), out=m.view(np.int8))
    else:
        np.copyto(m, hi)
        np.negative(m, out=m)
    m &= dt(top)
    if cfg.overq_enabled:
        # min(t, M) except LOW (t & M): drop the saturation where the role is LOW
        np.copyto(sat, m)
        sat &= scratch.mask(rflat, LOW, m, invert=True)
        lo |= sat  # v without HIGH
        # HIGH: v = t >> b
        np.right_shift(x, dt(b), out=x)
        x ^= lo
        x &= scratch.mask(rflat, HIGH, m)
        np.bitwise_xor(lo, x, out=out.reshape(-1))
    else:
        np.bitwise_or(lo, m, out=out.reshape(-1))
    return out


def states_from_roles(
    roles: np.ndarray, out: np.ndarray | None = None, victim: bool = False
) -> np.ndarray:
    """The 2-bit states (int64) are the role's bits 4-5 (above them only VICTIM)."""
    if out is None:
        out = np.empty(roles.shape, dtype=np.int64)
    np.right_shift(roles, np.uint8(4), out=out)
    if victim:
        out &= 3
    return out


BLOCK_SLOTS = 1 << 19  # slots per block: few Python calls per slot, temporaries in the cache


@dataclass
class Encoding:
    """One encoder run on tile-major codes [T, R]: outputs of the same shape."""

    values: np.ndarray  # int64
    states: np.ndarray  # int64
    roles: np.ndarray | None  # uint8 role bytes (None from the one-word path)
    outliers: int  # slots with q > M
    handled: int  # ROLE_LOW slots
    precise: int  # ROLE_PAIR slots
    clipped: np.ndarray  # flat positions of the outliers neither handled nor pruned
    victims: np.ndarray  # flat positions of the pruned slots (victim mode; else empty)


def _no_right(start: int, count: int, tail) -> np.ndarray | None:
    """Per tile of a block, the column whose right neighbour is padding (-1: none)."""
    if tail is None:
        return None
    per_vector, last_len = tail
    index = np.arange(start, start + count)
    return np.where(index % per_vector == per_vector - 1, last_len - 1, -1)


def _positions(flags: np.ndarray, start_slot: int) -> np.ndarray:
    return np.flatnonzero(flags) + start_slot


def encode_tiles(
    tiles: np.ndarray, cfg: ArrayConfig, ports: bool = True, tail: tuple[int, int] | None = None
) -> Encoding:
    """Encode tile-major codes [T, R] (``code_dtype``), block by block of tiles.

    A block is a few hundred KiB of narrow temporaries, reused from block to block,
    so the passes run in the cache and touch no fresh memory; only the outputs are
    written to memory. ``ports=False`` skips the values and states (None): what the
    decoded activations need is the roles and the clipped outliers, and writing two
    int64 arrays is most of the encoder's time. ``tail`` = (tiles per vector, slots in
    a vector's last tile) when the vectors were padded to whole tiles: a victim is never
    taken in the padding (the last real slot has no right neighbour).
    """
    t, rows = tiles.shape
    if rows == 8 and tiles.dtype == np.uint8 and not cfg.precision_enabled:
        return _encode_words(tiles, cfg, ports, tail)
    values = np.empty((t, rows), dtype=np.int64) if ports else None
    states = np.empty((t, rows), dtype=np.int64) if ports else None
    roles = np.empty((t, rows), dtype=np.uint8)
    step = max(1, BLOCK_SLOTS // rows)
    scratch = _Scratch(min(t, step) * rows, tiles.dtype)
    outliers = handled = precise = 0
    clipped, victims = [], []
    for start in range(0, t, step):
        block = tiles[start : start + step]
        nz, out = classes(block, cfg)
        cheap = None
        if cfg.victim_enabled:
            cheap = victim_ok(block, out, cfg, _no_right(start, block.shape[0], tail))
        r, h, p = tile_roles(nz, out, cfg, cheap)
        roles[start : start + step] = r
        if cfg.victim_enabled:
            victims.append(_positions(r.reshape(-1) == ROLE_VICTIM, start * rows))
        if ports:
            values_from_roles(block, r, cfg, values[start : start + step], scratch)
            states_from_roles(r, states[start : start + step], cfg.victim_enabled)
        flat_out = out.reshape(-1)
        index = np.flatnonzero(flat_out)
        outliers += index.size
        handled += h
        precise += p
        if index.size:
            placed = r.reshape(-1)[index]  # a pruned outlier is lost, not clipped
            index = index[(placed != ROLE_LOW) & (placed != ROLE_VICTIM)]
            clipped.append(index + start * rows)
    clipped = np.concatenate(clipped) if clipped else np.zeros(0, dtype=np.intp)
    victims = np.concatenate(victims) if victims else np.zeros(0, dtype=np.intp)
    return Encoding(values, states, roles, outliers, handled, precise, clipped, victims)


def decoded_units(c: np.ndarray, roles: np.ndarray, cfg: ArrayConfig) -> np.ndarray:
    """What ``decode`` gives back for each original slot, in units of step (float64).

    min(q, M), except a handled outlier (ROLE_LOW: min(q, 2^(2b) - 1)), the first
    slot of a precision pair (ROLE_PAIR: min(u, 2^(2b) - 1) / 2^b) and a pruned
    victim (ROLE_VICTIM: 0). A slot a claim passed over decodes to its own min(q, M):
    it moved one right clipped, or it was the consumed zero.
    """
    q = coarse(c, cfg).astype(np.int64)
    d = np.minimum(q, cfg.act_max).astype(np.float64)
    low = roles == ROLE_LOW
    d[low] = np.minimum(q[low], cfg.wide_max)
    if cfg.precision_enabled:
        pair = roles == ROLE_PAIR
        d[pair] = np.minimum(c[pair], cfg.wide_max) / float(1 << cfg.act_bits)
    if cfg.victim_enabled:
        d[roles == ROLE_VICTIM] = 0.0
    return d


# --- R = 8, one-byte codes (A2..A4 range or none): a tile is one 64-bit word ---------

_BYTES = np.uint64(0x0101010101010101)
_HIGH_BITS = np.uint64(0x8080808080808080)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)


@dataclass(frozen=True)
class _WordTable:
    """Per class pattern, byte masks of the eight slots as 64-bit words."""

    prev: np.ndarray  # 0xFF where the slot takes its left neighbour
    keep_sat: np.ndarray  # M where min(t, M) applies (not LOW)
    high: np.ndarray  # 0xFF where the slot is t >> b
    states: np.ndarray  # the state bytes
    clipped: np.ndarray  # uint8 bits: the pattern's outliers that are not handled
    counts: np.ndarray  # int64: outliers + handled << 32 (summed over tiles at once)
    victims: np.ndarray  # uint8 bits: the pattern's pruned slots (victim mode)


@lru_cache(maxsize=64)
def _word_table(cascade: int, overq: frozenset, act_bits: int) -> _WordTable:
    table = _table(8, cascade, overq)
    roles = table.roles  # [65536, 8]
    top = (1 << act_bits) - 1

    def word(bytes_: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(bytes_.astype(np.uint8)).view(np.uint64).reshape(-1)

    pattern = np.arange(roles.shape[0])
    out_bits = (pattern >> 8) & 0xFF
    low_bits = np.packbits(roles == ROLE_LOW, axis=1, bitorder="little")[:, 0]
    victim_bits = np.packbits(roles == ROLE_VICTIM, axis=1, bitorder="little")[:, 0]
    victim_bits = victim_bits.astype(np.int64)
    return _WordTable(
        prev=word(np.where(roles & PREV, 0xFF, 0)),
        keep_sat=word(np.where(roles & LOW, 0, top)),
        high=word(np.where(roles & HIGH, 0xFF, 0)),
        states=word((roles >> 4) & 3),
        clipped=(out_bits & ~low_bits.astype(np.int64) & ~victim_bits).astype(np.uint8),
        counts=np.bitwise_count(out_bits).astype(np.int64) + (table.handled << 32),
        victims=victim_bits.astype(np.uint8),
    )


def _set_bits(bits: np.ndarray, start: int) -> np.ndarray:
    """Flat slot positions of the set bits of per-tile bytes (tile ``start`` first)."""
    some = np.flatnonzero(bits)
    if not some.size:
        return np.zeros(0, dtype=np.intp)
    slot_bits = np.unpackbits(bits[some][:, None], axis=1, bitorder="little")
    tile, slot = np.nonzero(slot_bits)
    return (some[tile] + start) * 8 + slot


def _nonzero_bytes(w: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """0x80 in every non-zero byte of w, else 0 (into scratch)."""
    np.bitwise_and(w, _LOW7, out=scratch)
    scratch += _LOW7  # bit 7 set iff the low 7 bits were not all zero (no carry out)
    scratch |= w
    scratch &= _HIGH_BITS
    return scratch


def _encode_words(
    tiles: np.ndarray, cfg: ArrayConfig, ports: bool = True, tail: tuple[int, int] | None = None
) -> Encoding:
    """``encode_tiles`` for R = 8 and codes of one byte: SWAR on one word per tile.

    Classes, the pattern index and the values are bitwise operations on the 64-bit
    words (a value's left neighbour is the word shifted by a byte); the masks of each
    pattern come from ``_WordTable``. The roles are not materialised (no caller
    needs them without precision). Victim mode computes ``victim_ok`` per block and
    clears those outliers' non-zero bit: that is their class in the table.
    """
    t = tiles.shape[0]
    b, top = cfg.act_bits, cfg.act_max
    values = np.empty((t, 8), dtype=np.int64) if ports else None
    states = np.empty((t, 8), dtype=np.int64) if ports else None
    words = tiles.view(np.uint64).reshape(t)
    wt = _word_table(cfg.cascade, frozenset(cfg.overq), b) if cfg.overq_enabled else None
    step = max(1, BLOCK_SLOTS // 8)
    n = min(t, step)
    s1, s2, s3, s4 = (np.empty(n, dtype=np.uint64) for _ in range(4))
    bytes_m = np.uint64(top) * _BYTES
    outliers = handled = 0
    clipped, victims = [], []
    for start in range(0, t, step):
        w = words[start : start + step]
        m = w.size
        a, bb, c, d = s1[:m], s2[:m], s3[:m], s4[:m]
        # pattern index: non-zero bytes | outlier bytes (a bit above M) << 8
        nz = _nonzero_bytes(w, a)
        np.bitwise_and(w, ~bytes_m, out=c)
        out = _nonzero_bytes(c, bb)
        nz >>= np.uint64(7)
        nz *= _GATHER8
        nz >>= np.uint64(56)
        out >>= np.uint64(7)
        out *= _GATHER8
        out >>= np.uint64(56)  # (the product's lower bytes hold cross terms)
        out <<= np.uint64(8)
        if cfg.victim_enabled:  # cheap outliers take the unused class (not non-zero)
            nz &= ~_cheap_bits(w, top, _no_right(start, m, tail), c, d)
        out |= nz
        index = out.view(np.int64)
        if wt is None:  # no OverQ: every slot is min(q, M), NORMAL
            if ports:
                _plain_words(
                    w,
                    values[start : start + m],
                    states[start : start + m],
                    b,
                    top,
                    bytes_m,
                    a,
                    c,
                    d,
                )
            seen = np.flatnonzero(index >> 8)
            outliers += int(np.bitwise_count(index[seen] >> 8).sum())
            if seen.size:
                bits = np.unpackbits(
                    (index[seen] >> 8).astype(np.uint8)[:, None], axis=1, bitorder="little"
                )
                tile, slot = np.nonzero(bits)
                clipped.append((seen[tile] + start) * 8 + slot)
            continue
        idx = index
        if ports:
            _overq_words(
                w,
                idx,
                wt,
                values[start : start + m],
                states[start : start + m],
                b,
                top,
                bytes_m,
                a,
                c,
                d,
            )
        counts = int(wt.counts[idx].sum())
        outliers += counts & 0xFFFFFFFF
        handled += counts >> 32
        clipped.append(_set_bits(wt.clipped[idx], start))
        if cfg.victim_enabled:
            victims.append(_set_bits(wt.victims[idx], start))
    clipped = np.concatenate(clipped) if clipped else np.zeros(0, dtype=np.intp)
    victims = np.concatenate(victims) if victims else np.zeros(0, dtype=np.intp)
    return Encoding(values, states, None, outliers, handled, 0, clipped, victims)


_NOT_LAST = np.uint64(0x00FFFFFFFFFFFFFF)


def _cheap_bits(w, top, no_right, c, d) -> np.ndarray:
    """``victim_ok`` on words: bit k set where byte k is an outlier and its right
    neighbour (byte k + 1, the word shifted down a byte) is below q_k - M (into c)."""
    np.right_shift(w, np.uint64(8), out=d)  # byte k: q_(k+1); byte 7: 0 (masked below)
    wb, nb, cb = w.view(np.uint8), d.view(np.uint8), c.view(np.uint8)
    np.subtract(wb, np.uint8(top), out=cb)  # q_k - M, wrapping where q_k <= M
    np.greater(cb, nb, out=cb.view(bool))
    np.greater(wb, np.uint8(top), out=nb.view(bool))
    cb &= nb  # 0 / 1 per byte
    c &= _NOT_LAST
    c *= _GATHER8
    c >>= np.uint64(56)
    if no_right is not None:
        tiles = np.flatnonzero(no_right >= 0)
        c[tiles] &= ~(np.uint64(1) << no_right[tiles].astype(np.uint64))
    return c


def _plain_words(w, values, states, b, top, bytes_m, a, c, d) -> None:
    """No OverQ: every slot is min(q, M), NORMAL (SWAR on the words w)."""
    np.bitwise_and(w, bytes_m, out=c)  # lo
    np.right_shift(w, np.uint64(b), out=d)
    d &= bytes_m  # hi
    sat = _nonzero_bytes(d, a)
    sat >>= np.uint64(7)
    sat *= np.uint64(top)
    c |= sat
    np.copyto(values.reshape(-1), c.view(np.uint8))
    states[...] = 0


def _overq_words(w, idx, wt: _WordTable, values, states, b, top, bytes_m, a, c, d) -> None:
    """The slot values and states of the words w with class patterns idx (SWAR)."""
    # x = w, or the left neighbour (w << 8) where the pattern says PREV
    np.left_shift(w, np.uint64(8), out=c)
    c ^= w
    c &= wt.prev[idx]
    c ^= w  # x
    np.right_shift(c, np.uint64(b), out=d)
    d &= bytes_m  # hi = t >> b (b <= 4: no bits of the next byte survive the mask)
    c &= bytes_m  # lo = t & M
    sat = _nonzero_bytes(d, a)
    sat >>= np.uint64(7)
    sat *= np.uint64(top)  # M in every byte whose t exceeds M
    sat &= wt.keep_sat[idx]
    c |= sat  # min(t, M), or t & M where LOW
    d ^= c
    d &= wt.high[idx]
    c ^= d  # t >> b where HIGH
    np.copyto(values.reshape(-1), c.view(np.uint8))
    np.copyto(states.reshape(-1), wt.states[idx].view(np.uint8))
