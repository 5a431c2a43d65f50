// rtnetlink numbers from the kernel's uapi headers (linux/netlink.h,
// linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/neighbour.h,
// linux/veth.h). Only what the module uses.

export const AF_UNSPEC = 0;
/** Multicast group of link notifications (rtnetlink.h). */
export const RTNLGRP_LINK = 1;
export const AF_INET = 2;
/** Forwarding database entries (`bridge fdb`) travel as neighbour messages of this family. */
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

// nlmsghdr.type: control messages
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

// nlmsghdr.type: rtnetlink
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWLINKPROP = 108;

// nlmsghdr.flags
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
/** Asks the kernel to send us the notification of what the request changed. */
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** Adds an entry beside existing ones for the same key (`bridge fdb append`). */
export const NLM_F_APPEND = 0x800;
// flags on an NLMSG_ERROR reply
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// extended ack attributes (enum nlmsgerr_attrs)
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const NLA_F_NESTED = 0x8000;
export const NLA_TYPE_MASK = 0x3fff;

// link attributes (IFLA_*)
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_IFALIAS = 20;
export const IFLA_AF_SPEC = 26;
export const IFLA_GROUP = 27;
export const IFLA_NET_NS_FD = 28;
export const IFLA_EXT_MASK = 29;
export const IFLA_NUM_TX_QUEUES = 31;
export const IFLA_NUM_RX_QUEUES = 32;
export const IFLA_LINK_NETNSID = 37;
export const IFLA_PROP_LIST = 52;
export const IFLA_ALT_IFNAME = 53;
// IFLA_AF_SPEC / AF_INET6 (IFLA_INET6_*)
export const IFLA_INET6_ADDR_GEN_MODE = 8;
// IFLA_AF_SPEC / AF_INET: IFLA_INET_CONF holds ipv4_devconf values by index (linux/ip.h)
export const IFLA_INET_CONF = 1;
export const IPV4_DEVCONF_ROUTE_LOCALNET = 26;
/** No automatic IPv6 link-local address (enum in6_addr_gen_mode). */
export const IN6_ADDR_GEN_MODE_NONE = 1;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const VETH_INFO_PEER = 1;
// IFLA_INFO_DATA of kind "vxlan" (IFLA_VXLAN_*, if_link.h)
export const IFLA_VXLAN_ID = 1;
export const IFLA_VXLAN_GROUP = 2;
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_TTL = 5;
export const IFLA_VXLAN_LEARNING = 7;
/** Destination UDP port, in network byte order (unlike nearly every other attribute). */
export const IFLA_VXLAN_PORT = 15;
export const IFLA_VXLAN_GROUP6 = 16;
export const IFLA_VXLAN_LOCAL6 = 17;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

// address attributes (IFA_*)
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;

// route attributes (RTA_*)
export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_TABLE = 15;
/** rtm_flags / rtnh_flags: the gateway is on the link even if no connected route says so (`onlink`). */
export const RTNH_F_ONLINK = 0x4;

export const RT_TABLE_MAIN = 254;
/** rtm_flags of a route lookup: answer with the table entry that matched, not a route made for the lookup. */
export const RTM_F_FIB_MATCH = 0x2000;
export const RTN_UNICAST = 1;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
/**
 * The route protocol that marks the routes to other nodes as ours (`proto 87`).
 * The kernel does not interpret protocols above RTPROT_STATIC; 87 is neither
 * named in rtnetlink.h (8-18, 42, 99, 186-189, 192) nor in iproute2's
 * rt_protos, and is not what other pod networks use by default (Calico: 80).
 */
export const RTPROT_WORKLOADNET = 87;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;

// neighbour attributes (NDA_*)
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
/** A dump filter: only neighbours of this device. */
export const NDA_IFINDEX = 8;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
/** ndm_flags: the entry belongs to the device itself (a VXLAN FDB), not to a bridge it is a port of. */
export const NTF_SELF = 0x02;
