#!/usr/bin/env node
// deskpool-migrate: applies pending SQL migrations to DATABASE_URL (or the URL given as argument).
import { applyMigrations } from '../migrations.js';

const url = process.argv[2] ?? process.env.DATABASE_URL;
if (!url) {
  console.error('deskpool-migrate: set DATABASE_URL or pass the database URL as the first argument.');
  process.exit(2);
}
try {
  const { applied, alreadyApplied } = await applyMigrations(url);
  for (const name of applied) console.log(`applied ${name}`);
  console.log(`${applied.length} applied, ${alreadyApplied.length} already applied`);
} catch (err) {
  console.error(`deskpool-migrate: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
