export { createAgentGateway, type AgentGateway, type AgentGatewayOptions } from './gateway.js';
export { AgentRegistry, InvalidCommand, hostChannel, DEFAULT_AGENT_CHANNEL_PREFIX } from './registry.js';
export { enrollHost, authenticateHost } from './enroll.js';
export type { AgentEventSink } from './frames.js';
export { discardTaskOutput, type TaskOutputSink } from './task-output.js';
