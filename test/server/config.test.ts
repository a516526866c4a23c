import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig, type Config } from '../../src/config.js';

describe('configuration', () => {
  it('has defaults for an embedded start', () => {
    expect(readConfig([], {})).toEqual({
      host: '127.0.0.1', port: 8080, db: './data/ioasd.db', policy: undefined, topology: undefined, sysfs: undefined, proc: '/proc', logLevel: 'info', adminToken: undefined,
      ioasidRange: { min: 1, max: 2 ** 31 - 1 }, rateLimit: { max: 6000, windowMs: 60_000 },
    });
    expect((readConfig(['--ioasid-range', '100-200'], {}) as Config).ioasidRange).toEqual({ min: 100, max: 200 });
    expect(readConfig(['--sysfs', '/host/sys'], { IOASD_PROC: '/host/proc' })).toMatchObject({ sysfs: '/host/sys', proc: '/host/proc' });
    expect(readConfig(['--proc', '/p'], { IOASD_PROC: '/q' })).toMatchObject({ proc: '/p' });
  });

  it('reads IOASD_* variables, and flags win over them', () => {
    const env = { IOASD_HOST: '0.0.0.0', IOASD_PORT: '9000', IOASD_DB: '/data/x.db', IOASD_POLICY: 'group-first', IOASD_LOG_LEVEL: 'warn' };
    expect(readConfig([], env)).toMatchObject({ host: '0.0.0.0', port: 9000, db: '/data/x.db', policy: 'group-first', logLevel: 'warn' });
    expect(readConfig(['--port', '0', '--policy', 'device-first', '--topology', 't.json'], env)).toMatchObject({ port: 0, policy: 'device-first', topology: 't.json' });
  });

  it('refuses bad values with a message naming the option', () => {
    const bad: [string[], Record<string, string>, RegExp][] = [
      [['--port', '70000'], {}, /--port/],
      [['--port', 'http'], {}, /--port/],
      [[], { IOASD_POLICY: 'vfio' }, /IOASD_POLICY/],
      [['--log-level', 'loud'], {}, /--log-level/],
      [['--topology', 'a', '--sysfs', 'b'], {}, /cannot both/],
      [['--bogus'], {}, /bogus/],
      [[], { IOASD_ADMIN_TOKEN: 'short' }, /IOASD_ADMIN_TOKEN/],
      [['--ioasid-range', '0-10'], {}, /--ioasid-range/],
      [[], { IOASD_IOASID_RANGE: '10-5' }, /IOASD_IOASID_RANGE/],
    ];
    for (const [argv, env, message] of bad) expect(() => readConfig(argv, env)).toThrow(message);
    expect(() => readConfig(['--port', '-1'], {})).toThrow(ConfigError);
  });

  it('answers help', () => {
    expect(readConfig(['--help'], {})).toBe('help');
  });
});
