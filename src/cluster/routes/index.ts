// Routes to the other nodes: what the daemon's wiring uses.
export { NodeRoutes, type NodeRoutesOptions, type NodeRouteStatus, type ReconcileResult, type DeviceStatus, type VxlanOptions } from "./node-routes.js";
export { ROUTING_MODES, type RoutingMode, type RouteKind } from "./wanted.js";
export { podMtu, mayUseVxlan } from "./underlay.js";
export { vtepMac, VXLAN_OVERHEAD, VXLAN_ALIAS, DEFAULT_VXLAN_NAME, DEFAULT_VXLAN_PORT, DEFAULT_VXLAN_VNI } from "./vtep.js";
export { RTPROT_WORKLOADNET } from "../../netlink/codec/constants.js";
