-- The scheduler looks up, after every event, the operations that event committed but never
-- published (a worker died between commit and publish). Without an index that is a scan of the
-- whole operations table per event; pending operations are few, so a partial index keeps it small.
CREATE INDEX "operations_pending_event_idx" ON "operations" ((("planned" -> 'cause') ->> 'eventId')) WHERE "status" = 'pending' AND "settled_at" IS NULL;
