// Where other PCs live-migrate desktops to this one: from the agent's config into its inventory.
import os from 'node:os';
import { hostInventorySchema } from '@deskpool/protocol';
import { describe, expect, it } from 'vitest';
import { agentConfigSchema, configFromEnv } from '../src/config.js';
import { collectInventory } from '../src/inventory.js';

describe('migration address', () => {
  it('is read from DESKPOOL_AGENT_MIGRATION and advertised in the inventory', async () => {
    const config = agentConfigSchema.parse({
      serverUrl: 'http://localhost:3000',
      ...configFromEnv({ DESKPOOL_AGENT_MIGRATION: JSON.stringify({ uri: 'qemu+ssh://root@10.0.0.7/system', dataUri: 'tcp://10.0.0.7' }) }),
    });
    expect(config.migration).toEqual({ uri: 'qemu+ssh://root@10.0.0.7/system', dataUri: 'tcp://10.0.0.7' });
    const inventory = await collectInventory(os.tmpdir(), null, config.migration);
    expect(inventory.hypervisor).toMatchObject({ migrationUri: 'qemu+ssh://root@10.0.0.7/system', migrationDataUri: 'tcp://10.0.0.7' });
    expect(hostInventorySchema.safeParse(inventory).success).toBe(true);
  });

  it('is absent unless configured, and a malformed one names the key', async () => {
    const inventory = await collectInventory(os.tmpdir(), null);
    expect(inventory.hypervisor).not.toHaveProperty('migrationUri');
    const bad = agentConfigSchema.safeParse({ serverUrl: 'http://localhost:3000', migration: { uri: '' } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['migration', 'uri']);
  });
});
