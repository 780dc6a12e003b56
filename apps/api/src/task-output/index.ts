export { TaskOutputStore, DEFAULT_MAX_LOG_BYTES_PER_TASK, type TaskOutputPiece, type TaskFinishedReport, type AppendOutcome, type TaskOutputStoreOptions } from './store.js';
export { assemble, gapMarker, droppedMarker, type OutputChunk, type LogPosition, type Assembled } from './assemble.js';
export { taskOutputRoutes, type TaskOutputRouteOptions } from './routes.js';
