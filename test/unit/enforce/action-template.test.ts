import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderCommand, type RenderInput } from '../../../src/enforce/action-template.js';

const dir = mkdtempSync(join(tmpdir(), `aegis-tpl-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Render, run with the real /bin/sh, return what it wrote to `out`. */
function runIn(command: string, dynamic: Record<string, string> | null, statics: Record<string, string> = {}): string {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const r = renderCommand({ command, statics: { out, ...statics }, dynamic } satisfies RenderInput);
  if (!r.ok) throw new Error(r.error);
  execFileSync('/bin/sh', ['-c', r.value.script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...r.value.env }, cwd: dir });
  return readFileSync(out, 'utf8');
}

const EVIL = ['x; touch /tmp/pwned-aegis', '$(id)', '`id`', "a'b\"c", '$HOME ${PATH} \\n * ?', 'a\nb; touch /tmp/pwned-aegis', '<ip> %(x)s'];

describe('static tags', () => {
  it('expands static tags recursively, with family-free nesting like <ipt_<type>/_rule>', () => {
    const r = renderCommand({
      command: '<iptables> -I f2b-<name> <ipt_<type>/_rule>',
      statics: { iptables: 'iptables <lockingopt>', lockingopt: '-w', name: 'sshd', type: 'multiport', 'ipt_multiport/_rule': '-m multiport --dports <port>', port: '22,2222' },
      dynamic: null,
    });
    expect(r.ok && r.value.script).toBe('iptables -w -I f2b-sshd -m multiport --dports 22,2222');
  });

  it('leaves unknown tags and shell redirections alone, and handles <br> and <sp>', () => {
    const r = renderCommand({ command: 'a<sp>b<br>c 2>/dev/null <unknown>', statics: {}, dynamic: null });
    expect(r.ok && r.value.script).toBe('a b\nc 2>/dev/null <unknown>');
  });

  it('refuses a self-referencing tag instead of looping', () => {
    const r = renderCommand({ command: '<a>', statics: { a: 'x<b>', b: 'y<a>' }, dynamic: null });
    expect(r.ok).toBe(false);
  });
});

describe('dynamic tags arrive as data', () => {
  for (const value of EVIL) {
    it(`keeps ${JSON.stringify(value)} one word in every quoting context`, () => {
      const dyn = { 'F-USER': value, ip: '198.18.0.7' };
      expect(runIn(`printf '%s|' <F-USER> > <out>`, dyn)).toBe(`${value}|`);
      expect(runIn(`printf '%s|' "user=<F-USER> ip=<ip>" > <out>`, dyn)).toBe(`user=${value} ip=198.18.0.7|`);
      expect(runIn(`printf '%s|' 'user=<F-USER>' > <out>`, dyn)).toBe(`user=${value}|`);
      expect(runIn(`printf '%s|' "$(printf %s "<F-USER>")" > <out>`, dyn)).toBe(`${value}|`);
      expect(runIn(`printf '%s|' "\`printf %s <F-USER>\`" > <out>`, dyn)).toBe(`${value}|`);
      expect(runIn(`cat > <out> <<EOF\nuser <F-USER>\nEOF`, dyn)).toBe(`user ${value}\n`);
      expect(existsSync('/tmp/pwned-aegis')).toBe(false);
    });
  }

  it('places a value from the log in a static tag that itself holds <F-USER>', () => {
    // the dynamic tag reaches the command through a static one: still a reference
    expect(runIn('<_cmd>', { 'F-USER': '$(id)' }, { _cmd: `printf %s "[<F-USER>]" > <out>` })).toBe('[$(id)]');
  });

  it('gives missing F-* tags an empty value, not a literal shell redirection', () => {
    expect(runIn(`printf '%s|' "<F-NOPE>" > <out>`, { ip: '198.18.0.1' })).toBe('|');
  });

  it('puts a plain value into a quoted here-document as text', () => {
    expect(runIn(`cat > <out> <<'EOF'\n<F-USER> $(x)\nEOF`, { 'F-USER': 'alice.b-1' })).toBe('alice.b-1 $(x)\n');
  });

  it('refuses a value that could end a quoted here-document early or mean something', () => {
    expect(renderCommand({ command: `cat <<'EOF'\n<F-USER>\nEOF`, statics: {}, dynamic: { 'F-USER': '$(id)' } }).ok).toBe(false);
    const r = renderCommand({ command: `cat <<'EOF'\n<F-USER>\nEOF`, statics: {}, dynamic: { 'F-USER': 'a\nEOF\ntouch /tmp/pwned-aegis' } });
    expect(r.ok).toBe(false);
  });

  it('allows numbers in $(( )) and refuses anything else there', () => {
    expect(runIn('echo $(( <bantime> * 2 )) > <out>', { bantime: '600' })).toBe('1200\n');
    const r = renderCommand({ command: 'echo $(( <F-X> + 1 ))', statics: {}, dynamic: { 'F-X': 'a[$(id)]' } });
    expect(r.ok).toBe(false);
  });

  it('ignores tags inside comments', () => {
    expect(runIn('printf x > <out> # <F-USER>', { 'F-USER': 'y' })).toBe('x');
  });

  it('never puts the raw value into the script text', () => {
    const r = renderCommand({ command: 'echo <F-USER> "<F-USER>" \'<F-USER>\'', statics: {}, dynamic: { 'F-USER': 'x; touch /tmp/pwned-aegis' } });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.script).not.toContain('touch');
      expect(r.value.env).toEqual({ AEGIS_TAG_F_USER: 'x; touch /tmp/pwned-aegis' });
    }
  });
});
