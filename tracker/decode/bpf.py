"""tcpdump filters: libpcap compiles the expression, a compiled loop runs the BPF program.

>>> prog = BpfFilter("tcp port 80")                    # doctest: +SKIP
>>> prog.matches(frames)                               # doctest: +SKIP
array([ True, False, ...])

The grammar is libpcap's own (tracker/libpcap.py compiles it as ``tcpdump -r``
does), so every
tcpdump expression means here what it means to tcpdump. The program it
returns is classic BPF (the BSD Packet Filter, McCanne and Jacobson 1993;
``pcap/bpf.h``); ``run_bpf`` executes it over every frame of a batch in one
numba loop, as the kernel's ``bpf_filter`` does: 32-bit unsigned arithmetic,
a load beyond the captured bytes or a division by zero rejects the frame, and
the frame is kept when the program returns non-zero. Scapy and libpcap are
loaded only when a filter is given.
"""

from __future__ import annotations

import numpy as np

from tracker import libpcap
from tracker.frames import FrameBatch
from tracker.jit import kernel, kernel_inline

# Instruction classes, sizes, modes, operations and sources (pcap/bpf.h).
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0)
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
SRC_X = 0x08
RVAL_A = 0x10
MISC_TXA = 0x80
MEMWORDS = 16  # BPF_MEMWORDS
U32 = 0xFFFFFFFF


@kernel_inline
def _load(data: np.ndarray, start: int, caplen: int, at: int, size: int) -> int:
    """A big-endian load of ``size`` bytes at ``at`` in the frame, -1 beyond its end."""
    if at < 0 or at + size > caplen:
        return -1
    p = start + at
    # Multiplying (not shifting) keeps numba's integers int64: a shifted uint8
    # becomes uint64, and uint64 mixed with int64 becomes float64.
    if size == 1:
        return int(data[p])
    if size == 2:
        return int(np.int64(data[p]) * 256 + np.int64(data[p + 1]))
    return int(((np.int64(data[p]) * 256 + np.int64(data[p + 1])) * 256
                + np.int64(data[p + 2])) * 256 + np.int64(data[p + 3]))


@kernel_inline
def _alu(op: int, a: int, v: int) -> int:
    """One ALU operation on u32 values; -1 for a division or modulo by zero."""
    if op == ADD:
        return (a + v) & U32
    if op == SUB:
        return (a - v) & U32
    if op == MUL:
        return (a * v) & U32
    if op == DIV or op == MOD:
        if v == 0:
            return -1
        return a // v if op == DIV else a % v
    if op == OR:
        return a | v
    if op == AND:
        return a & v
    if op == LSH:
        return (a << v) & U32 if v < 32 else 0
    if op == RSH:
        return a >> v if v < 32 else 0
    if op == NEG:
        return (-a) & U32
    return a ^ v  # XOR


@kernel_inline
def _run_one(code: np.ndarray, jt: np.ndarray, jf: np.ndarray, k: np.ndarray,
             data: np.ndarray, start: int, caplen: int, wirelen: int,
             mem: np.ndarray) -> bool:
    """Run the program over one frame; True when it returns non-zero."""
    a = 0
    x = 0
    pc = 0
    n = code.shape[0]
    while pc < n:
        c = code[pc]
        cls = c & 0x07
        kk = k[pc]
        if cls == RET:
            return ((a if (c & 0x18) == RVAL_A else kk) & U32) != 0
        if cls == LD or cls == LDX:
            mode = c & 0xE0
            size = 4 if (c & 0x18) == W else 2 if (c & 0x18) == H else 1
            if mode == IMM:
                v = kk
            elif mode == LEN:
                v = wirelen
            elif mode == MEM:
                v = mem[kk & 0x0F]
            elif mode == ABS:
                v = _load(data, start, caplen, kk, size)
            elif mode == IND:
                v = _load(data, start, caplen, x + kk, size)
            else:  # MSH: 4 * (low nibble of the byte at k): an IP header length
                v = _load(data, start, caplen, kk, 1)
                v = -1 if v < 0 else (v & 0x0F) * 4
            if v < 0:
                return False
            if cls == LD:
                a = v
            else:
                x = v
        elif cls == ST:
            mem[kk & 0x0F] = a
        elif cls == STX:
            mem[kk & 0x0F] = x
        elif cls == ALU:
            v = _alu(c & 0xF0, a, x if (c & SRC_X) else kk)
            if v < 0:
                return False
            a = v
        elif cls == JMP:
            op = c & 0xF0
            if op == JA:
                pc += kk
            else:
                v = x if (c & SRC_X) else kk
                if op == JEQ:
                    hit = a == v
                elif op == JGT:
                    hit = a > v
                elif op == JGE:
                    hit = a >= v
                else:
                    hit = (a & v) != 0
                pc += jt[pc] if hit else jf[pc]
        else:  # MISC
            if (c & 0xF8) == MISC_TXA:
                a = x
            else:
                x = a
        pc += 1
    return False


@kernel
def run_bpf(code: np.ndarray, jt: np.ndarray, jf: np.ndarray, k: np.ndarray,
            data: np.ndarray, start: np.ndarray, caplen: np.ndarray, wire: np.ndarray,
            mem: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = the program accepts frame i (``data[start[i]:start[i] + caplen[i]]``);
    ``mem`` is the program's scratch memory (MEMWORDS int64)."""
    for i in range(start.shape[0]):
        cap = min(caplen[i], data.shape[0] - start[i])
        out[i] = _run_one(code, jt, jf, k, data, start[i], cap, wire[i], mem)


def compile_bpf(expression: str, linktype: int) -> np.ndarray:
    """libpcap's program for ``expression`` on a capture file of ``linktype``, as
    ``tcpdump -r`` compiles it (tracker/libpcap.py): rows (code, jt, jf, k), int64."""
    insns = libpcap.for_file(expression, linktype)
    return np.stack([insns["code"], insns["jt"], insns["jf"], insns["k"]]).astype(np.int64)


class BpfFilter:
    """A tcpdump expression, compiled once per link type it meets."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._programs: dict[int, np.ndarray] = {}
        self.program(1)  # Ethernet: a bad expression is an error before anything is read

    def program(self, linktype: int) -> np.ndarray:
        if linktype not in self._programs:
            self._programs[linktype] = compile_bpf(self.expression, linktype)
        return self._programs[linktype]

    def matches(self, frames: FrameBatch) -> np.ndarray:
        """One bool per frame: whether tcpdump would keep it."""
        code, jt, jf, k = self.program(frames.linktype)
        out = np.zeros(len(frames), dtype=np.bool_)
        if len(frames):
            run_bpf(code, jt, jf, k, frames.data, frames.start.astype(np.int64),
                    frames.caplen.astype(np.int64), frames.wire_len.astype(np.int64),
                    np.zeros(MEMWORDS, dtype=np.int64), out)
        return out
