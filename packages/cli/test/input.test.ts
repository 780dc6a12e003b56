import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyAssignments, parseAssignment, parseLimit, parseTimestamp, readDocument } from '../src/input.js';

describe('--set assignments', () => {
  it('parses JSON values, else strings, and nests dotted keys', () => {
    const body = applyAssignments({ name: 'keep', policy: { idleMinutes: 5 } }, [
      parseAssignment('policy.timeZone=Europe/Paris'),
      parseAssignment('policy.maxBatchCores=8'),
      parseAssignment('labels=["gpu"]'),
      parseAssignment('note=a=b'),
    ]);
    expect(body).toEqual({ name: 'keep', policy: { idleMinutes: 5, timeZone: 'Europe/Paris', maxBatchCores: 8 }, labels: ['gpu'], note: 'a=b' });
  });
  it('refuses malformed assignments and prototype keys', () => {
    expect(() => parseAssignment('novalue')).toThrow(/key=value/);
    expect(() => parseAssignment('=x')).toThrow(/key=value/);
    expect(() => parseAssignment('__proto__.x=1')).toThrow(/bad key/);
  });
});

describe('option parsers', () => {
  it('bounds --limit to 1..200 whole numbers', () => {
    expect(parseLimit('200')).toBe(200);
    expect(() => parseLimit('0')).toThrow(/at least 1/);
    expect(() => parseLimit('201')).toThrow(/at most 200/);
    expect(() => parseLimit('2.5')).toThrow(/whole number/);
    expect(() => parseLimit('ten')).toThrow(/number/);
  });
  it('normalises timestamps to ISO 8601', () => {
    expect(parseTimestamp('2026-11-26T08:00:00Z')).toBe('2026-11-26T08:00:00.000Z');
    expect(() => parseTimestamp('yesterday-ish')).toThrow(/date\/time/);
  });
});

describe('readDocument', () => {
  const dir = mkdtempSync(join(tmpdir(), 'deskpool-cli-input-'));
  it('reads YAML and JSON objects', () => {
    writeFileSync(join(dir, 'job.yaml'), 'name: render\ntasks: 3\n');
    writeFileSync(join(dir, 'job.json'), '{"name": "render"}');
    expect(readDocument(join(dir, 'job.yaml'))).toEqual({ name: 'render', tasks: 3 });
    expect(readDocument(join(dir, 'job.json'))).toEqual({ name: 'render' });
  });
  it('names the problem with unreadable, malformed or non-object files', () => {
    writeFileSync(join(dir, 'bad.json'), '{"name": ');
    writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
    expect(() => readDocument(join(dir, 'missing.yaml'))).toThrow(/cannot read .*ENOENT/);
    expect(() => readDocument(join(dir, 'bad.json'))).toThrow(/not valid JSON/);
    expect(() => readDocument(join(dir, 'list.yaml'))).toThrow(/one object .* not a list/);
  });
});
