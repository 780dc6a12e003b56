// Runs once before the whole suite: the services tests need must be reachable, or the run
// fails loudly here instead of tests passing silently without them.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.DESKPOOL_TEST_NO_SERVICES === '1') return;
  try {
    execFileSync('bash', ['scripts/check-services.sh'], { stdio: 'inherit' });
  } catch {
    throw new Error('Test services are not running. Start them with `sudo bash scripts/services.sh`, then rerun `npm test`.');
  }
}
