-- A job's state follows its tasks: queued until one of them leaves the queue, then running, and
-- once every task has ended: failed if any failed, else deadline_missed if any missed it, else
-- cancelled if any was cancelled, else succeeded. Several writers change task states (the
-- scheduler's commits, the API's cancel), so the database keeps the job in step with them.
-- Kept cheap for jobs of 100k tasks: the only per-statement work is an index probe for "any
-- task still open" (a partial index of open tasks); the full count runs once, when the last
-- task ends.
CREATE INDEX "batch_tasks_open_by_job_idx" ON "batch_tasks" ("job_id")
  WHERE "state" NOT IN ('succeeded', 'failed', 'cancelled', 'deadline_missed');

CREATE FUNCTION deskpool_job_state_from_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- The first task placed starts the job. Times come from the tasks (written on the
  -- scheduler's clock, which a simulated office accelerates); the database's clock is the fallback.
  UPDATE "batch_jobs" j
     SET "state" = 'running',
         "started_at" = COALESCE(j."started_at", (SELECT min(c."started_at") FROM changed c WHERE c."job_id" = j."id"), now())
   WHERE j."state" = 'queued'
     AND j."id" IN (SELECT DISTINCT c."job_id" FROM changed c WHERE c."state" IN ('placed', 'running', 'checkpointing', 'checkpointed', 'stopping'));

  -- The last open task ending ends the job (a job cancelled while tasks ran keeps its state and
  -- gets its finish time then).
  UPDATE "batch_jobs" j
     SET "state" = CASE
           WHEN j."state" = 'cancelled' THEN 'cancelled'::"job_state"
           WHEN EXISTS (SELECT 1 FROM "batch_tasks" t WHERE t."job_id" = j."id" AND t."state" = 'failed') THEN 'failed'::"job_state"
           WHEN EXISTS (SELECT 1 FROM "batch_tasks" t WHERE t."job_id" = j."id" AND t."state" = 'deadline_missed') THEN 'deadline_missed'::"job_state"
           WHEN EXISTS (SELECT 1 FROM "batch_tasks" t WHERE t."job_id" = j."id" AND t."state" = 'cancelled') THEN 'cancelled'::"job_state"
           ELSE 'succeeded'::"job_state"
         END,
         "finished_at" = COALESCE((SELECT max(t."finished_at") FROM "batch_tasks" t WHERE t."job_id" = j."id"), now())
   WHERE j."finished_at" IS NULL
     AND j."id" IN (SELECT DISTINCT c."job_id" FROM changed c WHERE c."state" IN ('succeeded', 'failed', 'cancelled', 'deadline_missed'))
     AND NOT EXISTS (
       SELECT 1 FROM "batch_tasks" t
        WHERE t."job_id" = j."id" AND t."state" NOT IN ('succeeded', 'failed', 'cancelled', 'deadline_missed'));
  RETURN NULL;
END;
$$;

CREATE TRIGGER "batch_tasks_job_state"
  AFTER UPDATE ON "batch_tasks"
  REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION deskpool_job_state_from_tasks();
