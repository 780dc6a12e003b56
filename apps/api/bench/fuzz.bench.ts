// The long form of the fuzz suite (npm run bench -w @deskpool/api): ≥ 10,000 generated cases
// against every API route and the agent protocol, on a real API with PostgreSQL and Redis.
// Writes bench/results/fuzz.json (fuzz.cases, fuzz.responses_5xx and the details).
//   --rest N --agent N --seed S   (defaults 6000, 4500, time-based)
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mergeTallies, runAgentFuzz, runRestFuzz, startFuzzTarget } from '../test/fuzz-kit.js';

const { values } = parseArgs({ options: { rest: { type: 'string', default: '6000' }, agent: { type: 'string', default: '4500' }, seed: { type: 'string' } } });
const restCases = Number(values.rest);
const agentCases = Number(values.agent);
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const out = path.join(repoRoot, 'bench/results/fuzz.json');

async function main(): Promise<void> {
  const started = Date.now();
  const target = await startFuzzTarget();
  let exitCode = 0;
  try {
    const rest = await runRestFuzz(target, { count: restCases, seed });
    const agent = await runAgentFuzz(target, { count: agentCases, seed: seed + 1 });
    const all = mergeTallies(rest, agent);
    const healthy = (await fetch(`${target.url}/healthz`)).status === 200;
    const seconds = Math.round((Date.now() - started) / 1000);
    const method = `seed ${seed}: ${rest.cases} generated requests round-robin over ${target.routes.length} routes (from the route table) and ${agent.cases} agent frames over one real WebSocket; ${all.rejected} refused, ${all.accepted} accepted; database change counter checked around every refused case and a digest of every table around every run of refused cases; API healthy after: ${healthy}; ${seconds} s`;
    const figures = {
      'fuzz.cases': { value: all.cases, unit: 'count', method },
      'fuzz.responses_5xx': { value: all.responses5xx, unit: 'count', method: `${method}; 5xx responses and INTERNAL error frames` },
      'fuzz.rest_cases': { value: rest.cases, unit: 'count', method: 'REST part of fuzz.cases' },
      'fuzz.agent_cases': { value: agent.cases, unit: 'count', method: 'agent protocol part of fuzz.cases' },
      'fuzz.db_changes_from_refused': { value: all.findings.filter((f) => f.kind === 'db-changed').length, unit: 'count', target: '== 0', method: 'refused requests or frames after which the database had changed' },
      'fuzz.other_findings': { value: all.findings.filter((f) => f.kind !== '5xx' && f.kind !== 'db-changed').length, unit: 'count', target: '== 0', method: 'answers without the error envelope, unanswered frames, closed connections' },
    };
    const file = { date: new Date().toISOString(), machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg()[0]!.toFixed(1)}`, figures, findings: all.findings.slice(0, 50), seed };
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(`${out}.tmp.json`, `${JSON.stringify(file, null, 2)}\n`);
    renameSync(`${out}.tmp.json`, out);
    console.log(`fuzz: ${all.cases} cases, ${all.responses5xx} 5xx, ${all.findings.length} findings (seed ${seed}) -> ${path.relative(repoRoot, out)}`);
    for (const f of all.findings.slice(0, 10)) console.log(`  ${f.kind}: ${f.what}\n    ${f.detail}`);
    if (all.findings.length > 0 || !healthy) exitCode = 1;
  } finally {
    await target.close();
  }
  process.exit(exitCode);
}

main().catch((err: unknown) => {
  console.error('fuzz bench failed:', err);
  process.exit(1);
});
