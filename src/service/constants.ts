// Facts shared with the reference implementation (see SPEC §8).

export const FIRST_HOP_V4 = "169.254.77.1";
export const FIRST_HOP_V6 = "fe80::1";
/** Every host-side veth has this MAC; pods reach their first hop through it. */
export const HOST_VETH_MAC = "02:9c:52:fe:6d:0a";
export const DEFAULT_LINK_GROUP = 8;
/** The host veth's alias is this + workload id: with the group, it marks what is ours. */
export const ALIAS_PREFIX = "wk";
export const HOST_NAME_PREFIX = "wk";

/** The loopback interface is always ifindex 1 in a network namespace. */
export const LOOPBACK_INDEX = 1;
