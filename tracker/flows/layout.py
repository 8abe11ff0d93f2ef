"""Column numbers of the flow table's state arrays, shared by the numba kernel.

The flow table keeps its state in a few 2-D numpy arrays, one row per slot
(open flow), so that the compiled kernel reads a flow's fields from one place
and growing the table is one ``np.resize`` per array:

- ``conn``  int64 (slots, C_N): connection fields, C_*;
- ``ep``    int64 (2 * slots, E_N): TCP endpoint fields, row ``2 * slot + side``,
  where side 0 is key side a and side 1 key side b (an endpoint follows its host,
  so a flip of roles only changes ``C_ORIG_SIDE``, as Zeek's FlipRoles swaps
  its orig/resp endpoint pointers);
- ``keys``  uint64 (slots, 5): the flow key (key.py);
- ``hist``  uint8 (slots, HIST_MAX): Zeek's history letters.
Module-level ints are compile-time constants for numba.
"""

from __future__ import annotations

HIST_MAX = 48  # history letters kept per flow; more are counted in C_HIST_LEN only

# --- conn columns ------------------------------------------------------------
C_FLOW_ID = 0
C_START = 1  # ts of the first packet (Zeek start_time)
C_LAST = 2  # Zeek last_time: last counted packet, frozen once both sides closed
C_SEEN = 3  # ts of the last packet of any kind
C_INACT_TO = 4  # current inactivity timeout (ns); 0 = none
C_WAKE_SEQ = 5  # sequence number of the flow's live heap entry, -1 if none
C_WAKE_T = 6  # time of that entry
C_DELETE_T = 7  # due time of the TCP conn-delete timer, -1 if none
C_PROTO = 8
C_ORIG_SIDE = 9  # 0: side a is the originator, 1: side b
C_FLAGS = 10  # F_* bits
C_HIST_SEEN = 11  # Zeek's hist_seen bit set (role-indexed, not swapped by flips)
C_HIST_LEN = 12
C_ORIG_REASON = 13
C_END_REASON = 14
C_END_TS = 15
C_VLAN = 16  # outer VLAN id of the first packet, -1 if none
C_LRU_PREV = 17
C_LRU_NEXT = 18
C_ATTEMPT_T = 19  # due time of the pending attempt timer (F_ATTEMPT set)
C_PKTS = 20  # + side
C_IP_BYTES = 22  # + side
C_WIRE = 24  # + side
C_PAYLOAD = 26  # + side
C_DSIZE = 28  # + side: UDP length - 8 (Zeek's UpdateLength) / ICMP bytes after the header
C_DACTIVE = 30  # + side: UDP/ICMP side sent a good packet (Zeek UDP_ACTIVE)
# + 0..N_EXPIRE-1: due times of pending expire checks, -1 if none: TCP's
# (TCPSessionAdapter::ExpireTimer), or a UDP flow's DNS analyzer's (DNS_Analyzer::ExpireTimer)
C_EXPIRE = 32
N_EXPIRE = 4  # at most three chains can run at once (creation + one per side's close)
C_ENCAP = 36  # the tunnel stack (PacketBatch.encap, as int64) of the flow's last packet
C_TCHANGES = 37  # tunnel changes counted (Conn.cc CheckEncapsulation)
C_NPARENTS = 38
C_PARENTS = 39  # + 0..MAX_PARENTS-1: tunnel_parents ids, in order of appearance
MAX_PARENTS = 6  # the first parent and one per counted change
C_MISSED = 45  # Zeek's missed_bytes: the lengths of the content gaps
# Where the flow ended, for a table that numbers rows (G_ROW_IDS, a cluster's stitch):
# 2 x row + 1 when the row itself ended it, 2 x row when a timer did before the row ...
C_END_ROW = 46
C_FIRED_T = 47  # ... and then that timer's due time (-1: no timer)
C_N = 48

F_OPEN = 1
F_ACTIVE = 2  # TCPSessionAdapter::is_active
F_ATTEMPT = 4  # an attempt timer is pending
F_DNS_SEEN = 8  # the DNS analyzer has seen its first message
F_NTP_FLIPPED = 16  # the NTP analyzer flipped the roles (it does so once)
F_PARTIAL = 32  # TCP: the first packet was no SYN (Zeek's is_partial)

# --- TCP endpoint columns (TCP_Endpoint.h) -----------------------------------
E_STATE = 0
E_PREV = 1
E_START_SEQ = 2
E_LAST_SEQ = 3
E_ACK_SEQ = 4
E_SEQ_WRAPS = 5
E_ACK_WRAPS = 6
E_DID_CLOSE = 7
E_FIN_CNT = 8
E_H_SYN = 9  # hist_last_SYN
E_H_FIN = 10
E_H_RST = 11
E_RXMT_CNT = 12
E_RXMT_THR = 13
E_WIN0_CNT = 14
E_WIN0_THR = 15
E_CHK_CNT = 16  # also the UDP bad-checksum counter of this side
E_CHK_THR = 17
E_NS = 18  # NS_* evidence bits for the netstat / conntrack states
E_FIN_END = 19  # absolute sequence number one past this side's FIN
# The content-gap reassembler of this side's data (TCP_Reassembler; ZEEK-FACTS 8):
E_REASM = 20  # last_reassem_seq: one past the data delivered in order (relative, from 1)
E_FIN_REL = 21  # relative sequence number one past this side's FIN (Zeek's FIN_seq)
E_GAP_CNT = 22  # gaps in this side's data, for the scaled G letter
E_GAP_THR = 23
E_SKIP = 24  # skip_deliveries: too much data above a hole, no more gaps
E_NBLK = 25  # blocks buffered above a hole
E_BLK = 26  # + 2 * j, 2 * j + 1: block j's [start, end), j < MAX_BLOCKS
MAX_BLOCKS = 3  # more holes at once are merged (the nearest two blocks become one)
E_N = 32

# Zeek EndpointState (TCP_Endpoint.h)
INACTIVE = 0
SYN_SENT = 1
SYN_ACK_SENT = 2
PARTIAL = 3
ESTABLISHED = 4
CLOSED = 5
RESET = 6

# Evidence bits for netstat.py (what this side sent / what happened to its FIN)
NS_SYN = 1  # a bare SYN
NS_SYNACK = 2
NS_ACK = 4  # an ACK without SYN
NS_FIN = 8
NS_FIN_ACKED = 16  # the peer acknowledged this side's FIN
NS_RST = 32
NS_FIN_FIRST = 64  # this side's FIN was the flow's first
NS_DATA = 128
NS_HS_ACK = 256  # an ACK without SYN after the peer's SYN-ACK

# --- global scalars ----------------------------------------------------------
G_NT = 0  # network time: the newest packet time seen
G_NT_SET = 1
G_NEXT_ID = 2
G_HEAP_N = 3
G_HEAP_SEQ = 4
G_OPEN = 5
G_FREE_N = 6
G_ENDED_N = 7
G_LRU_HEAD = 8
G_LRU_TAIL = 9
G_EVICTED = 10
G_HT_N = 11
G_TUNNELS = 12  # 1 once a tunnelled packet was seen: flows' tunnel stacks need checking
G_ROW = 13  # C_END_ROW of a flow ended now
G_ROW_BASE = 14  # the number of the batch's first row in its part of the capture
G_ROW_IDS = 15  # 1: a new flow's id is ROW_ID + its first row's number (number_rows)
G_N = 16
ROW_ID = 1 << 62  # above every counted id: a stitch renumbers these (flows/stitch.py)

# --- options (FlowOptions in ns) ---------------------------------------------
O_TCP_INACT = 0
O_UDP_INACT = 1
O_ICMP_INACT = 2
O_OTHER_INACT = 3
O_ATTEMPT = 4
O_CLOSE = 5
O_SYN_TO = 6
O_SESSION = 7
O_LINGER = 8
O_LONG_INACT = 9
O_CAP = 10  # -1: no cap
O_ACTIVE = 11  # -1: no active timeout
O_DNS_SESSION = 12
O_N = 13

# --- per-packet input columns (int64) ----------------------------------------
P_TS = 0
P_PROTO = 1
P_SPORT = 2
P_DPORT = 3
P_FLAGS = 4
P_SEQ = 5
P_ACK = 6
P_WIN = 7
P_LEN = 8  # TCP payload / UDP length - 8 / ICMP bytes after the 8-byte header
P_PAYLOAD = 9  # payload_bytes counter
P_IP_LEN = 10
P_WIRE = 11
P_VLAN = 12
P_GOOD = 13  # GOOD_*: checksum good (or not checked), bad, or a TCP header cut short
GOOD_BAD_CHECKSUM, GOOD_YES, GOOD_HEADER_CUT = 0, 1, -1
P_BCAST = 14
P_SRC_A = 15
P_DNS_QR = 16  # QR bit of a UDP payload read as a DNS header, -1 if none
P_NTP_MODE = 17  # mode of a UDP payload read as an NTP header, -1 if none
P_CARRIER = 18  # row of this batch carrying the packet in a UDP tunnel (its parent), -1
P_TUNNEL = 19  # id of the IP tunnel that is the packet's immediate parent, -1 if none
P_ENCAP = 20  # the packet's tunnel stack (PacketBatch.encap as int64), 0 if none
TCP_PAYLOAD_CUT = 0x1000  # in P_FLAGS: the TCP payload was not captured whole
TUNNEL_REFUSED = 0x2000  # in P_FLAGS: a UDP tunnel past the depth limit (PacketBatch.tunnel_refused)
P_N = 21

# Timer kinds (all of a flow's timers share one wake-up entry in the heap)
T_INACT = 0
T_ATTEMPT = 1
T_EXPIRE = 2
T_DELETE = 3

# End reasons (codes into records.END_REASONS) and originator reasons
END_FIN = 0
END_RST = 1
END_IDLE = 2
END_REUSE = 3
END_ACTIVE = 4
END_EVICTED = 5
END_EOF = 6
END_STOPPED = 7
END_INTERRUPTED = 8
END_ERROR = 9
END_OPEN = 10  # not an end: a snapshot of a flow still open
WHY_SYN = 0
WHY_SYNACK = 1
WHY_SERVER_PORT = 2
WHY_FIRST = 3

# Kernel return codes
DONE = 0
NEED_SLOTS = 1
NEED_HASH = 2
NEED_HEAP = 3
NEED_ENDED = 4
