"""The RTP machinery H.264 (RFC 6184) and H.265 (RFC 7798) share.

Both formats carry NAL units three ways: one per packet, several in an aggregation packet
(STAP-A / AP), or one split over fragmentation units (FU-A / FU). Only the header sizes and bit
positions differ, so each codec describes its syntax in a :class:`NalSyntax` and the depacketizer
and packetizer here do the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nvr.protocol.codecs.annexb import length_prefixed_to_nals
from nvr.protocol.payload.base import (
    AccessUnit,
    BaseDepacketizer,
    BytesLike,
    HeaderExtension,
    PayloadError,
    PayloadPacket,
)
from nvr.protocol.payload.nal import ParameterSets, parse_sprop

_FU_START = 0x80
_FU_END = 0x40


class NalSyntax:
    """How one codec spells NAL and payload headers; subclasses fill in the constants."""

    name: str
    header_len: int  # NAL unit header size in bytes
    max_single_type: int  # highest NAL type that may travel as a single NAL unit packet
    agg_type: int  # STAP-A / AP
    fu_type: int  # FU-A / FU
    fu_type_mask: int  # bits of the FU header holding the NAL type
    max_vcl_type: int  # NAL types 0..max_vcl_type are slices (VCL)
    key_types: frozenset[int]  # NAL types that make an access unit a key frame
    sure_start_types: frozenset[int]  # AUD and the parameter set that starts a key frame
    param_kinds: dict[int, str]  # parameter-set NAL type -> "vps" | "sps" | "pps"
    sprop_keys: tuple[str, ...]  # fmtp parameters carrying parameter sets, in decoding order

    def nal_type(self, first_byte: int) -> int:
        raise NotImplementedError

    def is_key_nal(self, nal: bytes) -> bool:
        """Whether decoding can start at this NAL unit (IDR; for H.265 any IRAP picture)."""
        return self.nal_type(nal[0]) in self.key_types

    def is_key_unit(self, data: bytes) -> bool:
        """Whether a stored access unit (length-prefixed) holds a key picture."""
        return any(self.is_key_nal(nal) for nal in length_prefixed_to_nals(data))

    def parameter_sets(self, nals: Iterable[bytes]) -> ParameterSets:
        """The parameter sets among ``nals`` (e.g. a stored key frame), by kind and id."""
        return ParameterSetTable(self, nals).snapshot()

    def sprop_parameter_sets(self, fmtp: Mapping[str, str]) -> list[bytes]:
        """The parameter sets of the fmtp ``sprop-*`` parameters (keys already lower-case)."""
        return [nal for key in self.sprop_keys for nal in parse_sprop(fmtp.get(key, ""))]

    def valid_single_type(self, t: int) -> bool:
        return t <= self.max_single_type

    def starts_access_unit(self, t: int, body_byte: int) -> bool:
        """Whether a NAL unit of type ``t`` whose first byte after the header is ``body_byte``
        (-1 if none) can only be the first of an access unit; used to resynchronise."""
        raise NotImplementedError

    def param_id(self, nal: bytes) -> int:
        """The id of a parameter set, which decides whether a new one replaces an old one."""
        raise NotImplementedError

    def fu_nal_header(self, payload: bytes, t: int) -> bytes:
        """Rebuild the fragmented NAL unit's header from the FU payload header."""
        raise NotImplementedError

    def fu_payload_header(self, nal: bytes) -> bytes:
        """The FU indicator / payload header for fragments of ``nal``."""
        raise NotImplementedError

    def aggregation_header(self, nals: list[bytes]) -> bytes:
        raise NotImplementedError


class ParameterSetTable:
    """The current parameter sets of a stream, by kind and id."""

    def __init__(self, syntax: NalSyntax, nals: Iterable[bytes] = ()) -> None:
        self._syntax = syntax
        self._tables: dict[str, dict[int, bytes]] = {"vps": {}, "sps": {}, "pps": {}}
        self._snapshot: ParameterSets | None = None
        self.update(nals)

    def update(self, nals: Iterable[bytes]) -> bool:
        """Record parameter-set NAL units; return whether any of them is new or different."""
        syntax = self._syntax
        changed = False
        for nal in nals:
            t = syntax.nal_type(nal[0])
            kind = syntax.param_kinds.get(t)
            if kind is None:
                continue
            try:
                pid = syntax.param_id(nal)
            except PayloadError:
                pid = -1
            table = self._tables[kind]
            if table.get(pid) != nal:
                table[pid] = nal
                changed = True
        if changed:
            self._snapshot = None
        return changed

    def snapshot(self) -> ParameterSets:
        if self._snapshot is None:
            t = self._tables
            self._snapshot = ParameterSets(
                *(tuple(v for _, v in sorted(t[kind].items())) for kind in ("vps", "sps", "pps"))
            )
        return self._snapshot


class H26xDepacketizer(BaseDepacketizer):
    """RTP packets -> access units of length-prefixed NAL units.

    An access unit ends at the marker bit or, for cameras that forget the marker, when the
    timestamp changes. After a sequence gap or a malformed packet, assembly restarts only at a
    NAL unit that must begin an access unit (parameter set, AUD, SEI or the first slice of a
    picture) so that the remains of a damaged unit are never stored as a unit of their own.
    ``don`` enables the RFC 7798 DONL/DOND fields (``sprop-max-don-diff`` > 0); decoding order
    is assumed to be transmission order. Parameter sets start from the fmtp ``sprop-*`` values;
    bad ones are noted in ``stats.last_error`` and in-band parameter sets are waited for.
    """

    syntax: NalSyntax  # set by each codec's subclass

    def __init__(self, fmtp: Mapping[str, str], clock_rate: int = 90000, don: bool = False) -> None:
        super().__init__(clock_rate)
        syntax = self.syntax
        try:
            parameter_sets = syntax.sprop_parameter_sets(fmtp)
        except PayloadError as exc:
            parameter_sets = []
            self.stats.last_error = str(exc)
        self._hl = syntax.header_len
        self._don = 2 if don else 0
        self._key_types = syntax.key_types
        self._param_kinds = syntax.param_kinds
        self._sets = ParameterSetTable(syntax, parameter_sets)
        self._parts: list[bytes | memoryview] | None = None  # the unit being assembled
        self._key = False
        self._params: list[bytes] = []
        self._fu_index: int | None = None  # index of the fragmented NAL's length placeholder
        self._fu_type = 0
        self._fu_header = b""
        self._fu_size = 0
        self._resync = True  # the next unit must start cleanly
        self._prev_ts: int | None = None  # timestamp and marker of the previous packet
        self._prev_marker = True
        self._gap_ts: int | None = None  # timestamp whose unit a gap may have damaged
        self._first_type = -1  # type of the first NAL unit of the unit being assembled
        self._start_types: set[int] = set()  # types that began complete units so far
        self._fresh = True  # no gap yet
        # For push()'s fast path: first payload bytes of a fragmentation unit packet (forbidden
        # bit clear), and the FU header bits that must equal _fu_type in a continuation.
        self._fu_first = bytes(
            1 if not b & 0x80 and syntax.nal_type(b) == syntax.fu_type else 0 for b in range(256)
        )
        self._fu_cont_mask = _FU_START | syntax.fu_type_mask

    def push(
        self,
        payload: BytesLike,
        marker: bool,
        timestamp: int,
        seq: int,
        extension: HeaderExtension | None = None,
    ) -> list[AccessUnit]:
        """See :meth:`BaseDepacketizer.push`. The next fragment of the NAL unit being assembled
        (most packets of a video frame) takes a short path with the same outcome."""
        hl = self._hl
        if (
            self._fu_index is not None
            and type(payload) is bytes
            and timestamp == self._ts
            and (seq - self._last_seq) & 0xFFFF == 1  # type: ignore[operator]
            and len(payload) > hl + 1
            and self._fu_first[payload[0]]
            and payload[hl] & self._fu_cont_mask == self._fu_type
        ):
            self.stats.packets += 1
            self._last_seq = seq
            self._prev_ts = timestamp
            self._prev_marker = marker
            frag = payload[hl + 1 :]
            parts = self._parts
            assert parts is not None
            parts.append(frag)
            self._fu_size += len(frag)
            if payload[hl] & _FU_END:
                self._end_fragments(parts)
            if marker and self._parts is not None:
                self._complete()
            out = self._out
            if not out:
                return []
            self._out = []
            return out
        return BaseDepacketizer.push(self, payload, marker, timestamp, seq, extension)

    @property
    def parameter_sets(self) -> ParameterSets:
        """The parameter sets in force (from fmtp, then from the stream)."""
        return self._sets.snapshot()

    def _packet(
        self, payload: bytes, marker: bool, ts: int, extension: HeaderExtension | None
    ) -> None:
        if self._parts is not None and ts != self._ts:
            self._complete()
        prev_marker = self._prev_marker
        self._prev_ts, self._prev_marker = ts, marker
        if self._skip_ts is not None:
            if ts == self._skip_ts:
                if marker:
                    self._skip_ts = None
                return
            self._skip_ts = None
        if not payload:
            if marker:
                self._complete()
            return
        hl = self._hl
        if len(payload) <= hl - 1 or payload[0] & 0x80:
            self._malformed("forbidden bit set or payload shorter than the NAL header")
            return
        syntax = self.syntax
        t = syntax.nal_type(payload[0])
        if self._parts is None:
            first = self._first_nal(payload, t)
            if self._resync:
                if not self._clean_start(first, ts, prev_marker):
                    self._skip(ts, marker)
                    return
                self._resync = False
            self._first_type = first[0]
            self._parts = []
            self._ts = ts
            self._key = False
            self._params = []
        if t == syntax.fu_type:
            self._fragment(payload)
        elif self._fu_index is not None:
            self._malformed("NAL unit inside an unfinished fragmented NAL unit")
            return
        elif t == syntax.agg_type:
            self._aggregate(payload)
        elif syntax.valid_single_type(t):
            if self._don:
                self._add_nal(payload[:hl] + payload[hl + 2 :])
            else:
                self._add_nal(payload)
        else:
            self._malformed(f"unsupported {syntax.name} payload type {t}")
            return
        if marker and self._parts is not None:
            self._complete()

    def _add_nal(self, nal: bytes | memoryview) -> None:
        parts = self._parts
        assert parts is not None
        parts.append(len(nal).to_bytes(4, "big"))
        parts.append(nal)
        t = self.syntax.nal_type(nal[0])
        if t in self._key_types:
            self._key = True
        elif t in self._param_kinds:
            self._params.append(bytes(nal))

    def _aggregate(self, payload: bytes) -> None:
        mv = memoryview(payload)
        end = len(payload)
        pos = self._hl + self._don
        hl = self._hl
        while pos < end:
            if pos + 2 > end:
                self._malformed("truncated aggregation packet")
                return
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size < hl or pos + size > end or payload[pos] & 0x80:
                self._malformed("bad NAL unit size in aggregation packet")
                return
            self._add_nal(mv[pos : pos + size])
            pos += size + (self._don >> 1)  # DOND before every further unit

    def _fragment(self, payload: bytes) -> None:
        hl = self._hl
        if len(payload) <= hl + 1:
            self._malformed("fragmentation unit without data")
            return
        fu = payload[hl]
        t = fu & self.syntax.fu_type_mask
        parts = self._parts
        assert parts is not None
        start = hl + 1
        if fu & _FU_START:
            if self._fu_index is not None:
                self._malformed("fragmentation start inside an unfinished NAL unit")
                return
            start += self._don
            self._fu_index = len(parts)
            parts.append(b"")
            self._fu_type = t
            self._fu_header = self.syntax.fu_nal_header(payload, t)
            self._fu_size = hl
        elif self._fu_index is None or t != self._fu_type:
            self._malformed("fragmentation unit without its start")
            return
        frag = payload[start:]
        parts.append(frag)
        self._fu_size += len(frag)
        if fu & _FU_END:
            self._end_fragments(parts)

    def _end_fragments(self, parts: list[bytes | memoryview]) -> None:
        """The last fragment is in: fill in the NAL unit's length and header."""
        index = self._fu_index
        assert index is not None
        parts[index] = self._fu_size.to_bytes(4, "big") + self._fu_header
        self._fu_index = None
        t = self._fu_type
        if t in self._key_types:
            self._key = True
        elif t in self._param_kinds:
            self._params.append(self._fu_header + b"".join(parts[index + 1 :]))

    def _first_nal(self, payload: bytes, t: int) -> tuple[int, int]:
        """(type, first byte after its header) of the first NAL unit a packet starts; type -1
        for a fragment that is not a start."""
        syntax = self.syntax
        hl = self._hl
        if t == syntax.fu_type:
            if len(payload) <= hl + 1 or not payload[hl] & _FU_START:
                return -1, -1
            t = payload[hl] & syntax.fu_type_mask
            body = hl + 1 + self._don
        elif t == syntax.agg_type:
            first = hl + self._don + 2
            if len(payload) <= first:
                return -1, -1
            t = syntax.nal_type(payload[first])
            body = first + hl
        else:
            body = hl + self._don
        return t, payload[body] if body < len(payload) else -1

    def _clean_start(self, first: tuple[int, int], ts: int, prev_marker: bool) -> bool:
        """Whether a packet after a gap is certainly the first of its access unit.

        Its first NAL unit must begin an access unit by the standard and be of a kind (AUD,
        parameter set, SEI, slice) that has begun units of this stream before: where units
        start with an AUD, a slice whose AUD was lost is not taken for a whole unit. Where
        units start with slices, a key frame whose in-band parameter sets were lost is still
        accepted (flagged ``after_loss``): the sets are known from earlier units. Before any
        unit has completed there is nothing to learn from, so only an AUD or the first
        parameter set of a key frame is trusted.
        """
        if ts == self._gap_ts and not prev_marker:
            return False  # the unit the gap cut into
        t, body = first
        if t < 0 or not self.syntax.starts_access_unit(t, body):
            return False
        if self._start_types:
            return self._start_class(t) in self._start_types
        # Nothing learnt yet: at the very start any unit start will do; after a gap only a
        # type that nothing can precede but an AUD (the unit's parameter sets begin a key frame).
        return self._fresh or t in self.syntax.sure_start_types

    def _start_class(self, t: int) -> int:
        """Slices of any type count as one kind of start: an IDR must be able to resynchronise
        a stream that so far began its units with P slices."""
        return -2 if t <= self.syntax.max_vcl_type else t

    def _complete(self) -> None:
        parts = self._parts
        if parts is None:
            return
        if self._fu_index is not None:
            self._malformed("access unit ended inside a fragmented NAL unit")
            return
        changed = self._sets.update(self._params) if self._params else False
        if parts:
            self._emit(b"".join(parts), self._ts, self._key, changed)
            self._start_types.add(self._start_class(self._first_type))
        self._parts = None

    def _has_partial(self) -> bool:
        return self._parts is not None

    def _reset(self) -> None:
        self._parts = None
        self._fu_index = None

    def _lost(self) -> None:
        self._resync = True
        self._fresh = False
        self._gap_ts = self._prev_ts


class H26xPacketizer:
    """Access units (length-prefixed NAL units) -> RTP payloads.

    Small NAL units are aggregated, large ones fragmented. Parameter sets are remembered from
    the stream and, when ``repeat_parameter_sets`` is set, sent again before every key frame
    that lacks them, so a client can start decoding at any key frame.
    """

    clock_rate = 90000
    syntax: NalSyntax  # set by each codec's subclass, with encoding_name
    encoding_name: str

    def __init__(
        self,
        mtu: int = 1400,
        parameter_sets: Iterable[bytes] = (),
        repeat_parameter_sets: bool = True,
    ) -> None:
        syntax = self.syntax
        if mtu < syntax.header_len + 2:
            raise ValueError(f"MTU {mtu} too small")
        self.mtu = mtu
        self.repeat_parameter_sets = repeat_parameter_sets
        self._sets = ParameterSetTable(syntax, parameter_sets)

    @property
    def parameter_sets(self) -> ParameterSets:
        return self._sets.snapshot()

    def set_parameter_sets(self, nals: Iterable[bytes]) -> None:
        """Parameter sets known out of band (e.g. the store's codec row)."""
        self._sets.update(nals)

    def packetize(self, data: bytes) -> list[PayloadPacket]:
        syntax = self.syntax
        hl = syntax.header_len
        nals = length_prefixed_to_nals(data)
        if not nals:
            raise PayloadError("empty access unit")
        params: list[bytes] = []
        key = False
        for nal in nals:
            if len(nal) < hl or nal[0] & 0x80:
                raise PayloadError("invalid NAL unit header")
            t = syntax.nal_type(nal[0])
            if t in syntax.param_kinds:
                params.append(nal)
            elif t in syntax.key_types:
                key = True
        if params:
            self._sets.update(params)
        elif key and self.repeat_parameter_sets:
            nals = self._sets.snapshot().nals() + nals
        mtu = self.mtu
        out: list[PayloadPacket] = []
        group: list[bytes] = []
        group_size = hl
        for nal in nals:
            if len(nal) > mtu:
                self._flush(group, out)
                group, group_size = [], hl
                self._fragment(nal, out)
            elif group and group_size + 2 + len(nal) <= mtu:
                group.append(nal)
                group_size += 2 + len(nal)
            else:
                self._flush(group, out)
                group, group_size = [nal], hl + 2 + len(nal)
        self._flush(group, out)
        out[-1] = out[-1]._replace(marker=True)
        return out

    def _flush(self, group: list[bytes], out: list[PayloadPacket]) -> None:
        if len(group) == 1:
            out.append(PayloadPacket(group[0], False))
        elif group:
            parts = [self.syntax.aggregation_header(group)]
            for nal in group:
                parts.append(len(nal).to_bytes(2, "big"))
                parts.append(nal)
            out.append(PayloadPacket(b"".join(parts), False))

    def _fragment(self, nal: bytes, out: list[PayloadPacket]) -> None:
        syntax = self.syntax
        hl = syntax.header_len
        prefix = syntax.fu_payload_header(nal)
        t = syntax.nal_type(nal[0])
        step = self.mtu - hl - 1
        last = len(nal) - step
        for pos in range(hl, len(nal), step):
            fu = t | (_FU_START if pos == hl else 0) | (_FU_END if pos >= last else 0)
            out.append(PayloadPacket(prefix + bytes((fu,)) + nal[pos : pos + step], False))
