-- State the scheduler's planning core keeps that the first migration had no place for.
-- Additive only: every new column has a default or is nullable, so running code is unaffected.

-- A host that went silent must be reconciled before it may start anything (fencing).
ALTER TABLE "hosts"
    ADD COLUMN "needs_reconcile" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "asleep" BOOLEAN NOT NULL DEFAULT false;

-- MIGRATING: the host a desktop is leaving; LOST: the other host it may be on.
-- desired_host_id: a person waits for this desktop there (tapped while it was busy).
-- augmented_*: resources hot-added on top of vcpus/memory_mib.
ALTER TABLE "desktop_vms"
    ADD COLUMN "source_host_id" UUID,
    ADD COLUMN "desired_host_id" UUID,
    ADD COLUMN "augmented_vcpus" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "augmented_memory_mib" INTEGER NOT NULL DEFAULT 0;

-- Arrival history for pre-staging, and the last pre-staging done for the user.
ALTER TABLE "users"
    ADD COLUMN "arrivals" TIMESTAMPTZ(3)[] NOT NULL DEFAULT '{}',
    ADD COLUMN "pre_stage" JSONB;

-- Batch time given up for pre-staging on one local day: {"localDate": "...", "usedCoreMs": n}.
ALTER TABLE "pools" ADD COLUMN "pre_stage_budget" JSONB;

-- A task being stopped (not checkpointed), and what happens after.
ALTER TYPE "task_state" ADD VALUE IF NOT EXISTS 'stopping';
ALTER TABLE "batch_tasks"
    ADD COLUMN "restarts" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "after_stop" TEXT;

-- planned: the planning core's command this operation carries out (type, subject, parameters).
-- settled_at: when the scheduler took the operation's answer into account (or dropped it);
-- until then it is in flight for planning, whatever the agent-side status says.
ALTER TABLE "operations"
    ADD COLUMN "planned" JSONB,
    ADD COLUMN "settled_at" TIMESTAMPTZ(3);

CREATE INDEX "operations_in_flight_idx" ON "operations"("host_id") WHERE "planned" IS NOT NULL AND "settled_at" IS NULL;
