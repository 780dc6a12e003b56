/**
 * The agent protocol's version. Bump it on any change an older peer could misread; both ends
 * refuse a hello carrying a version they do not support, with an UNSUPPORTED_VERSION error frame.
 */
export const AGENT_PROTOCOL_VERSION = 1 as const;

/** Versions this build can speak. Kept as a list so a rolling upgrade can accept old and new. */
export const SUPPORTED_AGENT_PROTOCOL_VERSIONS: readonly number[] = [AGENT_PROTOCOL_VERSION];

/**
 * Largest frame either end accepts, in bytes of UTF-8 JSON. Inventory is the biggest legitimate
 * frame (a few KiB); anything near this limit is a bug or an attack, not data.
 */
export const MAX_AGENT_FRAME_BYTES = 64 * 1024;

/** Heartbeat interval an agent uses unless configured otherwise. */
export const DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 15;

export function isSupportedAgentProtocolVersion(version: number): boolean {
  return SUPPORTED_AGENT_PROTOCOL_VERSIONS.includes(version);
}
