/**
 * fail2ban time values: plain seconds, `-1` (permanent), or a number with a unit; several
 * may be summed (`1h 30m`, `1d12h`), as fail2ban's str2seconds does.
 * Units as fail2ban spells them: s/ss/se/sec/second(s), m/mm/mi/min/minute(s), h/hh/ho/hou/hour(s),
 * d/dd/da/day(s), w/ww/we/wee/week(s), mo/mon/month(s), y/yy/ye/yea/year(s).
 */
// the spellings of fail2ban's MyTime.str2seconds, unit for unit
const UNITS: ReadonlyArray<[RegExp, number]> = [
  [/^(?:years?|yea?|yy?)$/i, 365 * 86400 + 6 * 3600],
  [/^(?:months?|mon?)$/i, (365 * 86400 + 6 * 3600) / 12],
  [/^(?:weeks?|wee?|ww?)$/i, 7 * 86400],
  [/^(?:days?|da|dd?)$/i, 86400],
  [/^(?:hours?|hou?|hh?)$/i, 3600],
  [/^(?:minutes?|min?|mm?)$/i, 60],
  [/^(?:seconds?|sec?|ss?)$/i, 1],
];

/** Seconds, or null when the text is not a time value. `-1` means permanent. */
export function parseDuration(input: string): number | null {
  const s = input.trim();
  if (s.length === 0) return null;
  if (/^[-+]?\d+(?:\.\d+)?$/.test(s)) return Number(s);
  const re = /([-+]?\d+(?:\.\d+)?)\s*([a-z]+)?\s*/giy;
  let total = 0;
  let pos = 0;
  let any = false;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    if (m[0].length === 0) break;
    const n = Number(m[1]);
    const unit = m[2];
    let mult = 1;
    if (unit !== undefined) {
      const found = UNITS.find(([r]) => r.test(unit));
      if (!found) return null;
      mult = found[1];
    }
    total += n * mult;
    pos = re.lastIndex;
    any = true;
  }
  if (!any || pos !== s.length) return null;
  return total;
}
