-- Batch task console output and results, as the agent reports them (task-output and
-- task-finished frames). Additive only.

-- Console output in chunks keyed by where they sit in the stream: (task, generation, byte
-- offset within that generation's console). A replayed frame hits the same key and is stored
-- once; a chunk that starts past the end of what is stored leaves a visible gap.
CREATE TABLE "task_output_chunks" (
    "task_id" UUID NOT NULL,
    "generation" INTEGER NOT NULL,
    "offset" BIGINT NOT NULL,
    "length" INTEGER NOT NULL,
    "data" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "task_output_chunks_pkey" PRIMARY KEY ("task_id", "generation", "offset"),
    CONSTRAINT "task_output_chunks_task_id_fkey" FOREIGN KEY ("task_id") REFERENCES "batch_tasks"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "task_output_chunks_offset_check" CHECK ("offset" >= 0 AND "length" > 0)
);

-- One row per task with output: bytes kept, bytes dropped for the size cap, and the stream
-- position before which chunks were dropped (a late replay of a dropped chunk is ignored).
CREATE TABLE "task_output_logs" (
    "task_id" UUID NOT NULL,
    "stored_bytes" BIGINT NOT NULL DEFAULT 0,
    "dropped_bytes" BIGINT NOT NULL DEFAULT 0,
    "kept_from_generation" INTEGER NOT NULL DEFAULT 0,
    "kept_from_offset" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "task_output_logs_pkey" PRIMARY KEY ("task_id"),
    CONSTRAINT "task_output_logs_task_id_fkey" FOREIGN KEY ("task_id") REFERENCES "batch_tasks"("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- How a task's run ended, as its agent reported it: exit code (null when the guest gave
-- none), the result it wrote, and why it ended when not by itself.
CREATE TABLE "task_results" (
    "task_id" UUID NOT NULL,
    "generation" INTEGER NOT NULL,
    "exit_code" INTEGER,
    "result" TEXT,
    "reason" TEXT,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "task_results_pkey" PRIMARY KEY ("task_id"),
    CONSTRAINT "task_results_task_id_fkey" FOREIGN KEY ("task_id") REFERENCES "batch_tasks"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
