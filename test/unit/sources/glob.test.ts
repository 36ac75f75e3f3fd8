import { describe, expect, it } from 'vitest';
import { compileGlob } from '../../../src/sources/glob.js';

describe('logpath globs (Python glob semantics)', () => {
  it('splits a static base from the wildcard part', () => {
    expect(compileGlob('/var/log/nginx/*.log')).toMatchObject({ base: '/var/log/nginx', depth: 0 });
    expect(compileGlob('/srv/*/logs/api-?.log')).toMatchObject({ base: '/srv', depth: 2 });
    expect(compileGlob('/var/log/auth.log')).toMatchObject({ base: '/var/log', depth: 0 });
  });

  it('matches *, ? and [..] inside one path component only', () => {
    const g = compileGlob('/srv/*/logs/api-[0-9]?.log');
    expect(g.matches('/srv/app1/logs/api-1a.log')).toBe(true);
    expect(g.matches('/srv/app1/logs/api-x1.log')).toBe(false);
    expect(g.matches('/srv/a/b/logs/api-11.log')).toBe(false);
    expect(g.mayContain('/srv/app1')).toBe(true);
    expect(g.mayContain('/srv/app1/logs')).toBe(true);
    expect(g.mayContain('/srv/app1/other')).toBe(false);
    expect(g.isLeafDir('/srv/app1/logs')).toBe(true);
    expect(g.isLeafDir('/srv/app1')).toBe(false);
  });

  it('negates a class with ! and keeps literal characters literal', () => {
    const g = compileGlob('/l/a[!b].log');
    expect(g.matches('/l/ac.log')).toBe(true);
    expect(g.matches('/l/ab.log')).toBe(false);
    expect(compileGlob('/l/a+b(1).log').matches('/l/a+b(1).log')).toBe(true);
    expect(compileGlob('/l/a.log').matches('/l/aXlog')).toBe(false);
  });

  it('does not let a wildcard match a leading dot', () => {
    expect(compileGlob('/l/*.log').matches('/l/.hidden.log')).toBe(false);
    expect(compileGlob('/l/.*.log').matches('/l/.hidden.log')).toBe(true);
  });

  it('matches rotated names with app.log*', () => {
    const g = compileGlob('/var/log/app.log*');
    expect(['/var/log/app.log', '/var/log/app.log.1', '/var/log/app.log.2.gz'].every((p) => g.matches(p))).toBe(true);
    expect(g.matches('/var/log/app.txt')).toBe(false);
  });
});
