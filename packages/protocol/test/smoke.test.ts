import { describe, expect, it } from 'vitest';
import * as protocol from '@deskpool/protocol';

describe('workspace wiring', () => {
  it('resolves workspace packages from their sources', () => {
    expect(typeof protocol).toBe('object');
  });
});
