/**
 * action.d loading (fail2ban's ActionReader): `NAME.conf`, `NAME.d/*`, `NAME.local` with
 * [INCLUDES], `[Init]` defaults overridden by the jail's `action = NAME[k=v]` params,
 * `[Init?family=inet6]` variants, `%(x)s` and `<tag>` substitution of everything that is known
 * when the jail loads. Tags that depend on the ban (`<ip>`, `<F-USER>`, `<bantime>`,
 * `<matches>`…) and tags with a per-family variant stay in place: the action enforcer fills
 * them per ban from `tags` / `tagsInet6`.
 */
import * as path from 'node:path';
import { ErrorCode } from '../errors.js';
import { DefinitionReader, type OptDef } from './definition.js';
import { configFiles } from './filters.js';
import { ConfigFault, IniCache } from './ini.js';
import type { ActionCommand, ActionDefinition, ActionSpec, Diagnostic, ResolvedJail } from './types.js';

const ACTION_OPTS: ReadonlyMap<string, OptDef> = new Map<string, OptDef>([
  ['actionstart', { type: 'string', def: null }],
  ['actionstart_on_demand', { type: 'bool', def: null }],
  ['actionstop', { type: 'string', def: null }],
  ['actionflush', { type: 'string', def: null }],
  ['actionreload', { type: 'string', def: null }],
  ['actioncheck', { type: 'string', def: null }],
  ['actionrepair', { type: 'string', def: null }],
  ['actionrepair_on_unban', { type: 'bool', def: null }],
  ['actionban', { type: 'string', def: null }],
  ['actionprolong', { type: 'string', def: null }],
  ['actionreban', { type: 'string', def: null }],
  ['actionunban', { type: 'string', def: null }],
  ['norestored', { type: 'bool', def: null }],
]);
const COMMANDS: readonly ActionCommand[] = ['actionstart', 'actionstop', 'actioncheck', 'actionban', 'actionunban', 'actionflush'];
/** filled per ban by the enforcer (fail2ban CommandAction._escapedTags + timeout/bantime) */
const LATE_TAGS: ReadonlySet<string> = new Set(['matches', 'ipmatches', 'ipjailmatches', 'timeout', 'bantime']);

/**
 * The jail options fail2ban passes to each action (`%(x)s` in an action may read them). The
 * resolver records the exact ones per jail; for a jail built elsewhere they are rebuilt here.
 */
const jailVars = new WeakMap<ResolvedJail, ReadonlyMap<string, string>>();
export function recordJailVars(jail: ResolvedJail, vars: ReadonlyMap<string, string>): void {
  jailVars.set(jail, vars);
}
function varsOf(jail: ResolvedJail): Map<string, string> {
  const known = jailVars.get(jail);
  if (known) return new Map(known);
  const v = new Map<string, string>([
    ['enabled', jail.enabled ? 'True' : 'False'],
    ['backend', jail.backend],
    ['maxretry', String(jail.maxretry)],
    ['maxmatches', String(jail.maxmatches)],
    ['findtime', String(jail.findtime)],
    ['bantime', String(jail.bantime)],
    ['logencoding', jail.logencoding],
    ['usedns', jail.usedns],
  ]);
  if (jail.logpath.length > 0) v.set('logpath', jail.logpath.join('\n'));
  if (jail.ignorecommand !== null) v.set('ignorecommand', jail.ignorecommand);
  return v;
}

/** The `actname` fail2ban gives an action: unique per jail when `name` differs from the jail. */
export function actionInstanceName(jailName: string, spec: ActionSpec): string {
  const given = spec.params['actname'];
  if (given !== undefined) return given;
  const n = spec.params['name'] ?? jailName;
  let actname = spec.name;
  if (n !== jailName) actname += n.startsWith(jailName) ? n.slice(jailName.length) : `-${n}`;
  return actname;
}

export function loadAction(
  configDir: string,
  jail: ResolvedJail,
  spec: ActionSpec,
  cache: IniCache = new IniCache(),
): { action: ActionDefinition | null; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const name = spec.name.trim();
  const base = path.isAbsolute(name) ? name.replace(/\.(conf|local)$/, '') : path.join(configDir, 'action.d', name.replace(/\.(conf|local)$/, ''));
  const files = configFiles(base);
  if (files.length === 0) {
    diagnostics.push({
      severity: 'error',
      code: ErrorCode.ACTION_NOT_FOUND,
      file: jail.origin.file,
      line: jail.origin.line,
      section: jail.name,
      key: 'action',
      message: `action ${JSON.stringify(name)} not found (no ${base}.conf or .local)`,
    });
    return { action: null, diagnostics };
  }
  const initOpts = new Map(Object.entries(spec.params));
  if (!initOpts.has('name')) initOpts.set('name', jail.name);
  if (!initOpts.has('actname')) initOpts.set('actname', actionInstanceName(jail.name, spec));
  try {
    const store = cache.load(files);
    diagnostics.push(...store.diagnostics);
    if (diagnostics.some((d) => d.severity === 'error')) return { action: null, diagnostics };
    const reader = new DefinitionReader(store, files[0] ?? `${base}.conf`, initOpts, ACTION_OPTS);
    reader.getOptions(varsOf(jail), false);
    const combined = reader.getCombined(LATE_TAGS);
    const commands: Partial<Record<ActionCommand, string>> = {};
    for (const c of COMMANDS) {
      const v = combined.get(c);
      if (v !== null && v !== undefined && v.trim() !== '') commands[c] = v;
    }
    const tags: Record<string, string> = {};
    const tagsInet6: Record<string, string> = {};
    for (const [k, v] of combined) {
      if (v === null || k.startsWith('known/') || ACTION_OPTS.has(k)) continue;
      const cond = /^(.+)\?family=(inet4|inet6)$/.exec(k);
      if (cond) {
        if (cond[2] === 'inet6') tagsInet6[cond[1] ?? k] = v;
        continue;
      }
      if (k.includes('?')) continue;
      tags[k] = v;
    }
    const action: ActionDefinition = {
      name: actionInstanceName(jail.name, spec),
      file: files[0] ?? `${base}.conf`,
      commands,
      tags,
      tagsInet6,
    };
    return { action: Object.freeze(action), diagnostics };
  } catch (e) {
    if (e instanceof ConfigFault) {
      diagnostics.push(e.diagnostic);
      return { action: null, diagnostics };
    }
    throw e;
  }
}
