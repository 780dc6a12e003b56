import { describe, expect, it } from 'vitest';
import { configFilePath, requireToken, requireUrl, resolveConfig } from '../src/config.js';
import { UsageError } from '../src/errors.js';

const files = (map: Record<string, string>) => (path: string) => map[path];
const HOME = '/home/ada';
const DEFAULT_PATH = '/home/ada/.config/deskpool/config.json';

describe('configFilePath', () => {
  it('prefers --config, then DESKPOOL_CONFIG, then XDG_CONFIG_HOME, then ~/.config', () => {
    expect(configFilePath({ flags: { config: '/a.json' }, env: { DESKPOOL_CONFIG: '/b.json' }, homeDir: HOME })).toEqual({ path: '/a.json', explicit: true });
    expect(configFilePath({ flags: {}, env: { DESKPOOL_CONFIG: '/b.json' }, homeDir: HOME })).toEqual({ path: '/b.json', explicit: true });
    expect(configFilePath({ flags: {}, env: { XDG_CONFIG_HOME: '/x' }, homeDir: HOME })).toEqual({ path: '/x/deskpool/config.json', explicit: false });
    expect(configFilePath({ flags: {}, env: {}, homeDir: HOME })).toEqual({ path: DEFAULT_PATH, explicit: false });
  });
});

describe('resolveConfig', () => {
  const file = JSON.stringify({ url: 'http://file.example:8080/', token: 'file-token' });

  it('takes flags over environment over the config file, per value', () => {
    const config = resolveConfig({
      flags: { token: 'flag-token' },
      env: { DESKPOOL_URL: 'http://env.example' },
      readFile: files({ [DEFAULT_PATH]: file }),
      homeDir: HOME,
    });
    expect(config.url).toEqual({ value: 'http://env.example', source: 'env' });
    expect(config.token).toEqual({ value: 'flag-token', source: 'flag' });
  });

  it('falls back to the config file and strips trailing slashes from the URL', () => {
    const config = resolveConfig({ flags: {}, env: {}, readFile: files({ [DEFAULT_PATH]: file }), homeDir: HOME });
    expect(config.url).toEqual({ value: 'http://file.example:8080', source: 'config file' });
    expect(config.token).toEqual({ value: 'file-token', source: 'config file' });
    expect(config.configPath).toBe(DEFAULT_PATH);
  });

  it('ignores empty environment variables', () => {
    const config = resolveConfig({ flags: {}, env: { DESKPOOL_URL: '', DESKPOOL_TOKEN: '' }, readFile: files({ [DEFAULT_PATH]: file }), homeDir: HOME });
    expect(config.token?.source).toBe('config file');
    expect(config.url?.source).toBe('config file');
  });

  it('is fine without any config file, and then requireUrl/requireToken say how to provide them', () => {
    const config = resolveConfig({ flags: {}, env: {}, readFile: files({}), homeDir: HOME });
    expect(config.url).toBeUndefined();
    expect(() => requireUrl(config)).toThrow(/--url, set DESKPOOL_URL, or run `deskpool login/);
    expect(() => requireToken(config)).toThrow(/--token, set DESKPOOL_TOKEN/);
  });

  it('fails when an explicitly named config file is missing', () => {
    expect(() => resolveConfig({ flags: { config: '/nope.json' }, env: {}, readFile: files({}), homeDir: HOME })).toThrow(/\/nope.json does not exist/);
  });

  it('names the field of an invalid config file', () => {
    const bad = (text: string) => () => resolveConfig({ flags: {}, env: {}, readFile: files({ [DEFAULT_PATH]: text }), homeDir: HOME });
    expect(bad('{"url": "ftp://x"}')).toThrow(/field "url" must be an http:\/\/ or https:\/\/ URL/);
    expect(bad('{"token": ""}')).toThrow(/field "token" must not be empty/);
    expect(bad('{"url": "http://x", "tokne": "t"}')).toThrow(/tokne/);
    expect(bad('{not json')).toThrow(/is not valid JSON/);
    try {
      bad('{"url": 5}')();
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      expect((e as UsageError).field).toBe('url');
      expect((e as UsageError).exitCode).toBe(2);
    }
  });

  it('says where a bad URL came from', () => {
    expect(() => resolveConfig({ flags: { url: 'localhost:8080' }, env: {}, readFile: files({}), homeDir: HOME })).toThrow(/from --url/);
    expect(() => resolveConfig({ flags: {}, env: { DESKPOOL_URL: 'nope' }, readFile: files({}), homeDir: HOME })).toThrow(/from DESKPOOL_URL/);
  });
});

describe('resolveConfig for login', () => {
  it('accepts a named config file that does not exist yet', () => {
    const config = resolveConfig({ flags: { config: '/new.json', url: 'http://x' }, env: {}, readFile: () => undefined, homeDir: HOME, allowMissingFile: true });
    expect(config).toEqual({ configPath: '/new.json', url: { value: 'http://x', source: 'flag' } });
  });
});
