-- The admin dashboard's timeline of the night: one row per sampling period with the PCs by
-- state, the estimated power draw and the batch tasks done so far. Every API process samples;
-- the first to write a period's row wins (INSERT ... ON CONFLICT DO NOTHING on "at").
-- Additive only.
CREATE TABLE "fleet_samples" (
    -- The start of the sampling period, by the control plane's clock.
    "at" TIMESTAMPTZ(3) NOT NULL PRIMARY KEY,
    -- PCs per dashboard state: {"present": 3, "batch": 12, "asleep": 4, ...}
    "pcs" JSONB NOT NULL,
    "power_watts" DOUBLE PRECISION NOT NULL,
    -- The same PCs if every one were on with its desktop running.
    "always_on_watts" DOUBLE PRECISION NOT NULL,
    "desktops_running" INTEGER NOT NULL,
    "tasks_running" INTEGER NOT NULL,
    -- Batch tasks in state succeeded at that time (cumulative; throughput is the difference).
    "tasks_succeeded" INTEGER NOT NULL
);
