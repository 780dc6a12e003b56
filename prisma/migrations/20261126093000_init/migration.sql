-- deskpool control plane: initial schema. Hand-written to match prisma/schema.prisma
-- (Prisma's naming for keys, indexes and foreign keys, so `prisma migrate diff` stays quiet).

-- CreateEnum
CREATE TYPE "storage_mode" AS ENUM ('shared', 'local');
CREATE TYPE "user_role" AS ENUM ('admin', 'user', 'submitter');
CREATE TYPE "host_online_state" AS ENUM ('online', 'offline');
CREATE TYPE "presence_state" AS ENUM ('present', 'idle', 'unknown');
CREATE TYPE "vm_state" AS ENUM ('RUNNING', 'SUSPENDING', 'SUSPENDED', 'RESTORING', 'MIGRATING', 'STOPPED', 'LOST');
CREATE TYPE "job_state" AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'deadline_missed');
CREATE TYPE "task_state" AS ENUM ('queued', 'placed', 'running', 'checkpointing', 'checkpointed', 'succeeded', 'failed', 'cancelled', 'deadline_missed');
CREATE TYPE "operation_status" AS ENUM ('pending', 'sent', 'running', 'succeeded', 'failed', 'refused');

-- CreateTable
CREATE TABLE "pools" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "time_zone" TEXT NOT NULL,
    "office_days" INTEGER[] DEFAULT ARRAY[1, 2, 3, 4, 5]::INTEGER[],
    "office_hours_start" TEXT NOT NULL DEFAULT '08:00',
    "office_hours_end" TEXT NOT NULL DEFAULT '18:00',
    "idle_threshold_minutes" INTEGER NOT NULL DEFAULT 15,
    "night_window_start" TEXT NOT NULL DEFAULT '19:00',
    "night_window_end" TEXT NOT NULL DEFAULT '07:00',
    "batch_allowed" BOOLEAN NOT NULL DEFAULT true,
    "max_batch_percent_owner_present" INTEGER NOT NULL DEFAULT 25,
    "pre_staging" BOOLEAN NOT NULL DEFAULT true,
    "power_management" BOOLEAN NOT NULL DEFAULT true,
    "storage_mode" "storage_mode" NOT NULL DEFAULT 'local',
    "checkpoint_grace_seconds" INTEGER NOT NULL DEFAULT 60,
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pools_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "hosts" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "pool_id" UUID NOT NULL,
    "owner_user_id" UUID,
    "mac" TEXT,
    "cores" INTEGER NOT NULL DEFAULT 0,
    "memory_mib" INTEGER NOT NULL DEFAULT 0,
    "disk_gib" INTEGER NOT NULL DEFAULT 0,
    "gpu" TEXT,
    "labels" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "inventory" JSONB NOT NULL DEFAULT '{}',
    "agent_version" TEXT,
    "online_state" "host_online_state" NOT NULL DEFAULT 'offline',
    "presence_state" "presence_state" NOT NULL DEFAULT 'unknown',
    "presence_since" TIMESTAMPTZ(3),
    "drained" BOOLEAN NOT NULL DEFAULT false,
    "last_heartbeat_at" TIMESTAMPTZ(3),
    "fencing_epoch" INTEGER NOT NULL DEFAULT 0,
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "hosts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "display_name" TEXT NOT NULL DEFAULT '',
    "home_host_id" UUID,
    "pool_id" UUID,
    "role" "user_role" NOT NULL DEFAULT 'user',
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "desktop_vms" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "owner_user_id" UUID NOT NULL,
    "pool_id" UUID NOT NULL,
    "vcpus" INTEGER NOT NULL,
    "memory_mib" INTEGER NOT NULL,
    "max_vcpus" INTEGER NOT NULL,
    "max_memory_mib" INTEGER NOT NULL,
    "disk_gib" INTEGER NOT NULL DEFAULT 0,
    "disk_location" TEXT NOT NULL,
    "state" "vm_state" NOT NULL DEFAULT 'STOPPED',
    "pinned" BOOLEAN NOT NULL DEFAULT false,
    "pinned_until" TIMESTAMPTZ(3),
    "current_host_id" UUID,
    "saved_state_host_id" UUID,
    "saved_state_path" TEXT,
    "fencing_generation" INTEGER NOT NULL DEFAULT 0,
    "version" INTEGER NOT NULL DEFAULT 1,
    "state_changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "desktop_vms_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "batch_jobs" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "submitter_user_id" UUID,
    "submitted_by" TEXT NOT NULL,
    "pool_id" UUID,
    "spec" JSONB NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "state" "job_state" NOT NULL DEFAULT 'queued',
    "task_count" INTEGER NOT NULL,
    "deadline" TIMESTAMPTZ(3),
    "cancel_requested_at" TIMESTAMPTZ(3),
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "batch_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "batch_tasks" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "job_id" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "state" "task_state" NOT NULL DEFAULT 'queued',
    "host_id" UUID,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "checkpoint_host_id" UUID,
    "checkpoint_path" TEXT,
    "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "exit_status" INTEGER,
    "output" TEXT,
    "generation" INTEGER NOT NULL DEFAULT 0,
    "version" INTEGER NOT NULL DEFAULT 1,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "batch_tasks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "operations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "idempotency_key" TEXT NOT NULL,
    "host_id" UUID NOT NULL,
    "vm_id" UUID,
    "task_id" UUID,
    "kind" TEXT NOT NULL,
    "generation" INTEGER NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "status" "operation_status" NOT NULL DEFAULT 'pending',
    "result" JSONB,
    "error" TEXT,
    "progress" DOUBLE PRECISION,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "operations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "enrollment_tokens" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "token_hash" TEXT NOT NULL,
    "pool_id" UUID NOT NULL,
    "note" TEXT NOT NULL DEFAULT '',
    "created_by" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),
    "used_by_host_id" UUID,
    "revoked_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "enrollment_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "host_credentials" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "secret_hash" TEXT NOT NULL,
    "host_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "host_credentials_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_tokens" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "token_hash" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "role" "user_role" NOT NULL,
    "user_id" UUID,
    "revoked_at" TIMESTAMPTZ(3),
    "last_used_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "api_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_events" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "entity_type" TEXT NOT NULL,
    "entity_id" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "cause" TEXT NOT NULL,
    "before" JSONB,
    "after" JSONB,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "pools_name_key" ON "pools"("name");
CREATE UNIQUE INDEX "hosts_name_key" ON "hosts"("name");
CREATE UNIQUE INDEX "hosts_mac_key" ON "hosts"("mac");
CREATE INDEX "hosts_pool_id_idx" ON "hosts"("pool_id");
CREATE INDEX "hosts_online_state_idx" ON "hosts"("online_state");
CREATE UNIQUE INDEX "users_name_key" ON "users"("name");
CREATE UNIQUE INDEX "desktop_vms_name_key" ON "desktop_vms"("name");
CREATE INDEX "desktop_vms_owner_user_id_idx" ON "desktop_vms"("owner_user_id");
CREATE INDEX "desktop_vms_pool_id_idx" ON "desktop_vms"("pool_id");
CREATE INDEX "desktop_vms_current_host_id_idx" ON "desktop_vms"("current_host_id");
CREATE INDEX "desktop_vms_state_idx" ON "desktop_vms"("state");
CREATE INDEX "batch_jobs_submitter_user_id_idx" ON "batch_jobs"("submitter_user_id");
CREATE INDEX "batch_jobs_state_priority_idx" ON "batch_jobs"("state", "priority");
CREATE UNIQUE INDEX "batch_tasks_job_id_index_key" ON "batch_tasks"("job_id", "index");
CREATE INDEX "batch_tasks_state_idx" ON "batch_tasks"("state");
CREATE INDEX "batch_tasks_host_id_idx" ON "batch_tasks"("host_id");
CREATE UNIQUE INDEX "operations_idempotency_key_key" ON "operations"("idempotency_key");
CREATE INDEX "operations_host_id_status_idx" ON "operations"("host_id", "status");
CREATE INDEX "operations_vm_id_idx" ON "operations"("vm_id");
CREATE INDEX "operations_task_id_idx" ON "operations"("task_id");
CREATE UNIQUE INDEX "enrollment_tokens_token_hash_key" ON "enrollment_tokens"("token_hash");
CREATE INDEX "enrollment_tokens_pool_id_idx" ON "enrollment_tokens"("pool_id");
CREATE UNIQUE INDEX "host_credentials_secret_hash_key" ON "host_credentials"("secret_hash");
CREATE INDEX "host_credentials_host_id_idx" ON "host_credentials"("host_id");
CREATE UNIQUE INDEX "api_tokens_token_hash_key" ON "api_tokens"("token_hash");
CREATE INDEX "api_tokens_user_id_idx" ON "api_tokens"("user_id");
CREATE INDEX "audit_events_entity_type_entity_id_idx" ON "audit_events"("entity_type", "entity_id");
CREATE INDEX "audit_events_at_idx" ON "audit_events"("at");
CREATE INDEX "audit_events_actor_idx" ON "audit_events"("actor");

-- AddForeignKey
ALTER TABLE "hosts" ADD CONSTRAINT "hosts_pool_id_fkey" FOREIGN KEY ("pool_id") REFERENCES "pools"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "hosts" ADD CONSTRAINT "hosts_owner_user_id_fkey" FOREIGN KEY ("owner_user_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "users" ADD CONSTRAINT "users_home_host_id_fkey" FOREIGN KEY ("home_host_id") REFERENCES "hosts"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "users" ADD CONSTRAINT "users_pool_id_fkey" FOREIGN KEY ("pool_id") REFERENCES "pools"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "desktop_vms" ADD CONSTRAINT "desktop_vms_owner_user_id_fkey" FOREIGN KEY ("owner_user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "desktop_vms" ADD CONSTRAINT "desktop_vms_pool_id_fkey" FOREIGN KEY ("pool_id") REFERENCES "pools"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "desktop_vms" ADD CONSTRAINT "desktop_vms_current_host_id_fkey" FOREIGN KEY ("current_host_id") REFERENCES "hosts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "desktop_vms" ADD CONSTRAINT "desktop_vms_saved_state_host_id_fkey" FOREIGN KEY ("saved_state_host_id") REFERENCES "hosts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "batch_jobs" ADD CONSTRAINT "batch_jobs_submitter_user_id_fkey" FOREIGN KEY ("submitter_user_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "batch_jobs" ADD CONSTRAINT "batch_jobs_pool_id_fkey" FOREIGN KEY ("pool_id") REFERENCES "pools"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "batch_tasks" ADD CONSTRAINT "batch_tasks_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "batch_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "batch_tasks" ADD CONSTRAINT "batch_tasks_host_id_fkey" FOREIGN KEY ("host_id") REFERENCES "hosts"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "batch_tasks" ADD CONSTRAINT "batch_tasks_checkpoint_host_id_fkey" FOREIGN KEY ("checkpoint_host_id") REFERENCES "hosts"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "operations" ADD CONSTRAINT "operations_host_id_fkey" FOREIGN KEY ("host_id") REFERENCES "hosts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "operations" ADD CONSTRAINT "operations_vm_id_fkey" FOREIGN KEY ("vm_id") REFERENCES "desktop_vms"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "operations" ADD CONSTRAINT "operations_task_id_fkey" FOREIGN KEY ("task_id") REFERENCES "batch_tasks"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "enrollment_tokens" ADD CONSTRAINT "enrollment_tokens_pool_id_fkey" FOREIGN KEY ("pool_id") REFERENCES "pools"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "enrollment_tokens" ADD CONSTRAINT "enrollment_tokens_used_by_host_id_fkey" FOREIGN KEY ("used_by_host_id") REFERENCES "hosts"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "host_credentials" ADD CONSTRAINT "host_credentials_host_id_fkey" FOREIGN KEY ("host_id") REFERENCES "hosts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- The audit trail is append-only: history cannot be rewritten, even by the application.
CREATE FUNCTION "audit_events_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "audit_events_no_update_delete"
    BEFORE UPDATE OR DELETE ON "audit_events"
    FOR EACH ROW EXECUTE FUNCTION "audit_events_refuse_change"();

CREATE TRIGGER "audit_events_no_truncate"
    BEFORE TRUNCATE ON "audit_events"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_refuse_change"();
