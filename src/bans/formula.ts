/**
 * `bantime.formula` is a Python expression in fail2ban (evaluated with `eval`). We accept the
 * arithmetic subset such formulas use — numbers, `ban.Time`, `ban.Count`, `ban.Factor`,
 * `banFactor`, `math.*`, `min/max/abs/float/int/round`, `+ - * / // % ** << >>`, comparisons,
 * `and/or/not`, `x if c else y` — and refuse anything else at config load, never at ban time.
 */
export type FormulaVars = Readonly<Record<string, number>>;
export type CompiledFormula = (vars: FormulaVars) => number;

type Node =
  | { t: 'num'; v: number }
  | { t: 'var'; name: string }
  | { t: 'un'; op: string; a: Node }
  | { t: 'bin'; op: string; a: Node; b: Node }
  | { t: 'if'; c: Node; a: Node; b: Node }
  | { t: 'call'; fn: string; args: Node[] };

const FUNCS: Readonly<Record<string, (...a: number[]) => number>> = {
  'math.exp': Math.exp,
  'math.log': (x, base) => (base === undefined ? Math.log(x) : Math.log(x) / Math.log(base)),
  'math.log2': Math.log2,
  'math.log10': Math.log10,
  'math.pow': Math.pow,
  'math.sqrt': Math.sqrt,
  'math.floor': Math.floor,
  'math.ceil': Math.ceil,
  min: Math.min,
  max: Math.max,
  abs: Math.abs,
  float: (x) => x,
  int: Math.trunc,
  round: Math.round,
};
const CONSTS: Readonly<Record<string, number>> = { 'math.e': Math.E, 'math.pi': Math.PI, True: 1, False: 0 };

const TOKEN = /\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_][\w.]*)|(\*\*|\/\/|<<|>>|<=|>=|==|!=|[-+*/%<>(),]))/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(src);
    if (!m) throw new SyntaxError(`unexpected "${src.slice(pos).trim().slice(0, 10)}"`);
    out.push(m[1] ?? m[2] ?? m[3] ?? '');
    pos = TOKEN.lastIndex;
  }
  return out;
}

const BINARY: Readonly<Record<string, number>> = {
  or: 1, and: 2, '<': 4, '>': 4, '<=': 4, '>=': 4, '==': 4, '!=': 4,
  '<<': 6, '>>': 6, '+': 7, '-': 7, '*': 8, '/': 8, '//': 8, '%': 8, '**': 10,
};

function parse(tokens: string[]): Node {
  let i = 0;
  const peek = () => tokens[i];
  const next = () => {
    const t = tokens[i++];
    if (t === undefined) throw new SyntaxError('unexpected end of formula');
    return t;
  };
  const expect = (t: string) => {
    if (next() !== t) throw new SyntaxError(`expected "${t}"`);
  };
  function primary(): Node {
    const t = next();
    if (t === '(') {
      const e = ternary();
      expect(')');
      return e;
    }
    if (t === '-' || t === '+') return { t: 'un', op: t, a: unaryOperand() };
    if (t === 'not') return { t: 'un', op: 'not', a: expr(3) };
    if (/^[\d.]/.test(t)) return { t: 'num', v: Number(t) };
    if (/^[A-Za-z_]/.test(t)) {
      if (peek() === '(') {
        next();
        if (!(t in FUNCS)) throw new SyntaxError(`unknown function ${t}`);
        const args: Node[] = [];
        if (peek() !== ')') {
          args.push(ternary());
          while (peek() === ',') {
            next();
            args.push(ternary());
          }
        }
        expect(')');
        return { t: 'call', fn: t, args };
      }
      return { t: 'var', name: t };
    }
    throw new SyntaxError(`unexpected "${t}"`);
  }
  // `-x ** 2` is -(x ** 2) in Python: the operand of a unary minus binds ** first
  function unaryOperand(): Node {
    const base = primary();
    if (peek() === '**') {
      next();
      return { t: 'bin', op: '**', a: base, b: unaryOperand() };
    }
    return base;
  }
  function expr(minPrec: number): Node {
    let left = primary();
    for (;;) {
      const op = peek();
      const prec = op === undefined ? undefined : BINARY[op];
      if (op === undefined || prec === undefined || prec < minPrec) return left;
      next();
      // ** is right-associative
      const right = expr(op === '**' ? prec : prec + 1);
      left = { t: 'bin', op, a: left, b: right };
    }
  }
  function ternary(): Node {
    const a = expr(1);
    if (peek() === 'if') {
      next();
      const c = expr(1);
      expect('else');
      const b = ternary();
      return { t: 'if', c, a, b };
    }
    return a;
  }
  const root = ternary();
  if (i !== tokens.length) throw new SyntaxError(`unexpected "${tokens[i]}"`);
  return root;
}

function evaluate(n: Node, vars: FormulaVars): number {
  switch (n.t) {
    case 'num':
      return n.v;
    case 'var': {
      const v = vars[n.name] ?? CONSTS[n.name];
      if (v === undefined) throw new ReferenceError(`unknown name ${n.name}`);
      return v;
    }
    case 'un': {
      const a = evaluate(n.a, vars);
      return n.op === '-' ? -a : n.op === '+' ? a : a ? 0 : 1;
    }
    case 'if':
      return evaluate(n.c, vars) ? evaluate(n.a, vars) : evaluate(n.b, vars);
    case 'call':
      return (FUNCS[n.fn] as (...a: number[]) => number)(...n.args.map((a) => evaluate(a, vars)));
    case 'bin': {
      if (n.op === 'and') return evaluate(n.a, vars) ? evaluate(n.b, vars) : evaluate(n.a, vars);
      if (n.op === 'or') return evaluate(n.a, vars) || evaluate(n.b, vars);
      const a = evaluate(n.a, vars);
      const b = evaluate(n.b, vars);
      switch (n.op) {
        case '+': return a + b;
        case '-': return a - b;
        case '*': return a * b;
        case '/': return a / b;
        case '//': return Math.floor(a / b);
        case '%': return a - b * Math.floor(a / b);
        case '**': return a ** b;
        case '<<': return a * 2 ** Math.trunc(b);
        case '>>': return Math.floor(a / 2 ** Math.trunc(b));
        case '<': return a < b ? 1 : 0;
        case '>': return a > b ? 1 : 0;
        case '<=': return a <= b ? 1 : 0;
        case '>=': return a >= b ? 1 : 0;
        case '==': return a === b ? 1 : 0;
        case '!=': return a !== b ? 1 : 0;
      }
      throw new SyntaxError(`operator ${n.op}`);
    }
  }
}

/** Compile once at load; the error text names what is not supported. */
export function compileFormula(src: string): { ok: true; formula: CompiledFormula } | { ok: false; message: string } {
  try {
    const tree = parse(tokenize(src));
    // names are checked now, with representative values, so a typo fails at load
    const probe = { 'ban.Time': 600, 'ban.Count': 1, 'ban.Factor': 1, banFactor: 1 };
    evaluate(tree, probe);
    return { ok: true, formula: (vars) => evaluate(tree, vars) };
  } catch (e) {
    return { ok: false, message: `unsupported bantime.formula: ${e instanceof Error ? e.message : String(e)}` };
  }
}
