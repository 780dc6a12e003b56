export { SchedulerEngine, ReplanLimitError, scopeOf, coreEventOf, systemClock, silentLogger, type Clock, type Logger, type EngineOptions, type HandleOutcome } from './engine.js';
export { commitPlan, StaleSnapshotError, UnsupportedTransitionError, SCHEDULER_ACTOR, type CommitResult, type PlannedDispatch } from './commit.js';
export { loadSnapshot, type LoadedSnapshot, type Scope } from './snapshot.js';
export {
  dispatchCommands,
  pendingCommandsForHost,
  pendingCommandsForHosts,
  redispatchStale,
  frameOfOperation,
  hostCommandChannel,
  DEFAULT_AGENT_CHANNEL_PREFIX,
} from './dispatch.js';
export { wireKey, agentCommandFor, commandFrameFor, subjectOfCommand, type AgentCommand, type CommandNames } from './commands.js';
export { runtimeEventSchema, parseRuntimeEvent, InvalidSchedulerEventError, TIMER_KINDS, type RuntimeEvent, type RuntimeEventType } from './events.js';
export { SchedulerEvents, DeadLetters, EVENT_PRIORITY, QUEUE_NAMES, DEFAULT_QUEUE_PREFIX, EVENT_JOB_OPTIONS, type DeadLetter, type QueueConnection } from './queues.js';
export { runTimer, checkHeartbeats, ALL_TIMERS, DEFAULT_TIMER_SETTINGS, type RuntimeTimer, type TimerSettings } from './timers.js';
export { createSchedulerRuntime, type SchedulerRuntime, type SchedulerRuntimeOptions } from './runtime.js';
export * as rowMapping from './mapping.js';
export { AgentEventBridge, eventForFrame, DEFAULT_AGENT_EVENT_STREAM, BRIDGE_GROUP, type AgentBridgeOptions } from './agent-bridge.js';
