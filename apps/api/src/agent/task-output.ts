import type { TaskFinishedFrame, TaskOutputFrame } from '@deskpool/protocol';

/**
 * Where batch guests' console output and final results go once the gateway has checked that the
 * sending host ran the task at that generation. Both calls must be idempotent: a frame whose ack
 * was lost is sent again (same taskId, generation and offset), and must not be stored twice.
 * A failure (throw) leaves the frame unacknowledged, so the agent sends it again later.
 */
export interface TaskOutputSink {
  append(hostId: string, frame: TaskOutputFrame): Promise<void>;
  finished(hostId: string, frame: TaskFinishedFrame): Promise<void>;
}

/** Keeps nothing: the default until job logs and results have a store. */
export const discardTaskOutput: TaskOutputSink = {
  append: () => Promise.resolve(),
  finished: () => Promise.resolve(),
};
