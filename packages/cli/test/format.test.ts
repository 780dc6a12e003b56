import { describe, expect, it } from 'vitest';
import { cellText, chooseColumns, describeIssues, formatIssuePath, formatRecord, formatTable } from '../src/format.js';

describe('formatTable', () => {
  it('aligns columns under upper-case headers, with - for missing values', () => {
    const rows = [
      { id: 'p1', name: 'lab', policy: { timeZone: 'Europe/Paris' } },
      { id: 'pool-22', name: null, policy: {} },
    ];
    const text = formatTable(rows, [{ key: 'id' }, { key: 'name' }, { key: 'policy.timeZone', header: 'tz' }]);
    expect(text.split('\n')).toEqual([
      'ID       NAME  TZ',
      'p1       lab   Europe/Paris',
      'pool-22  -     -',
    ]);
  });

  it('says (none) for an empty list', () => {
    expect(formatTable([], [{ key: 'id' }])).toBe('(none)');
  });

  it('keeps cells on one line and cuts very long ones', () => {
    const text = formatTable([{ note: `a\nb${'x'.repeat(100)}` }], [{ key: 'note' }]);
    const cell = text.split('\n')[1]!;
    expect(cell.startsWith('a b')).toBe(true);
    expect(cell.length).toBe(60);
    expect(cell.endsWith('…')).toBe(true);
  });
});

describe('cellText', () => {
  it('renders scalars, scalar lists and objects', () => {
    expect(cellText(true)).toBe('true');
    expect(cellText(0)).toBe('0');
    expect(cellText(['a', 'b'])).toBe('a,b');
    expect(cellText({ a: 1 })).toBe('{"a":1}');
    expect(cellText(undefined)).toBe('-');
  });
});

describe('chooseColumns', () => {
  it('keeps only preferred columns some row has', () => {
    expect(chooseColumns([{ id: 1, name: 'x' }], [{ key: 'id' }, { key: 'hostname' }, { key: 'name' }])).toEqual([{ key: 'id' }, { key: 'name' }]);
  });
  it('falls back to the rows\' own scalar fields when none of the preferred exist', () => {
    expect(chooseColumns([{ uuid: 'u', nested: { a: 1 }, size: 3 }], [{ key: 'id' }])).toEqual([{ key: 'uuid' }, { key: 'size' }]);
  });
});

describe('formatRecord', () => {
  it('prints aligned key/value lines and indents nested objects and object lists', () => {
    const text = formatRecord({ id: 'j1', state: 'RUNNING', spec: { cores: 2 }, tasks: [{ id: 't1', state: 'DONE' }], labels: ['gpu'] });
    expect(text.split('\n')).toEqual([
      'id:     j1',
      'state:  RUNNING',
      'spec:',
      '  cores: 2',
      'tasks:',
      '  - id:    t1',
      '    state: DONE',
      'labels: gpu',
    ]);
  });
});

describe('API error details', () => {
  it('turns issue paths into dotted field names', () => {
    expect(formatIssuePath(['policy', 'officeHours', 0, 'start'])).toBe('policy.officeHours[0].start');
    expect(formatIssuePath('name')).toBe('name');
    expect(formatIssuePath([])).toBe('(whole body)');
  });
  it('lists each issue with its field', () => {
    const details = { issues: [{ path: ['name'], message: 'Required' }, { path: ['ttlSeconds'], message: 'Too big', code: 'too_big' }] };
    expect(describeIssues(details)).toEqual(['name: Required', 'ttlSeconds: Too big']);
    expect(describeIssues(undefined)).toEqual([]);
    expect(describeIssues({ other: 1 })).toEqual([]);
  });
});
