// Parser for the self-test guest's serial report (format described in guests/selftest/README.md).
// Anything before the "SELFTEST BEGIN" line is firmware output and ignored; after it, every
// line must be well formed, or parsing fails with the line number and text.

export const SELFTEST_REPORT_VERSION = 1;

export type CheckOutcome =
  | { status: "pass" }
  | { status: "fail"; detail: string }
  | { status: "skip"; reason: string };

export interface SelftestResult {
  value: number;
  unit: string;
  /** How the guest measured it, in its own words. */
  how: string;
}

export interface SelftestSummary {
  pass: number;
  fail: number;
  skip: number;
  cpus: number;
}

export type SelftestLine =
  | { kind: "begin"; version: number }
  | { kind: "pass"; check: string }
  | { kind: "fail"; check: string; detail: string }
  | { kind: "skip"; check: string; reason: string }
  | { kind: "result"; name: string; result: SelftestResult }
  | { kind: "info"; key: string; text: string }
  | ({ kind: "summary" } & SelftestSummary);

export interface SelftestReport {
  version: number;
  /** In the order the guest reported them. */
  checks: Map<string, CheckOutcome>;
  results: Map<string, SelftestResult>;
  info: { key: string; text: string }[];
  summary: SelftestSummary;
}

export class SelftestParseError extends Error {
  override name = "SelftestParseError";
  constructor(
    message: string,
    /** 1-based line number in the whole output, 0 when the problem is not one line. */
    readonly lineNumber: number,
  ) {
    super(lineNumber ? `self-test output line ${lineNumber}: ${message}` : `self-test output: ${message}`);
  }
}

const NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const NUMBER = /^-?\d+(\.\d+)?$/;
const UNIT = /^[A-Za-z/%]+$/;

function field(rest: string): [string, string] {
  const i = rest.indexOf(" ");
  return i < 0 ? [rest, ""] : [rest.slice(0, i), rest.slice(i + 1).trim()];
}

function checkName(name: string, what: string): string {
  if (!NAME.test(name)) throw new Error(`${what} "${name}" is not a dotted lower-case name`);
  return name;
}

/** Parses one line of the report (after the BEGIN marker). Throws a plain Error naming the problem. */
export function parseSelftestLine(line: string): SelftestLine {
  const [word, rest] = field(line.trim());
  switch (word) {
    case "SELFTEST": {
      const m = /^BEGIN version=(\d+)$/.exec(rest);
      if (!m) throw new Error(`malformed SELFTEST line, expected "SELFTEST BEGIN version=N"`);
      return { kind: "begin", version: Number(m[1]) };
    }
    case "PASS":
      if (rest.includes(" ")) throw new Error("PASS takes exactly one check name");
      return { kind: "pass", check: checkName(rest, "check") };
    case "FAIL": {
      const [check, detail] = field(rest);
      if (!detail) throw new Error(`FAIL ${check} has no detail saying what went wrong`);
      return { kind: "fail", check: checkName(check, "check"), detail };
    }
    case "SKIP": {
      const [check, reason] = field(rest);
      if (!reason) throw new Error(`SKIP ${check} has no reason`);
      return { kind: "skip", check: checkName(check, "check"), reason };
    }
    case "RESULT": {
      const [name, r1] = field(rest);
      const [value, r2] = field(r1);
      const [unit, how] = field(r2);
      checkName(name, "result");
      if (!NUMBER.test(value)) throw new Error(`RESULT ${name} value "${value}" is not a decimal number`);
      if (!UNIT.test(unit)) throw new Error(`RESULT ${name} has no unit (got "${unit}")`);
      if (!how) throw new Error(`RESULT ${name} does not say how it was measured`);
      return { kind: "result", name, result: { value: Number(value), unit, how } };
    }
    case "INFO": {
      const [key, text] = field(rest);
      return { kind: "info", key: checkName(key, "info key"), text };
    }
    case "SUMMARY": {
      const m = /^pass=(\d+) fail=(\d+) skip=(\d+) cpus=(\d+)$/.exec(rest);
      if (!m) throw new Error(`malformed SUMMARY, expected "SUMMARY pass=N fail=N skip=N cpus=N"`);
      return { kind: "summary", pass: Number(m[1]), fail: Number(m[2]), skip: Number(m[3]), cpus: Number(m[4]) };
    }
    default:
      throw new Error(`unknown line kind "${word}" (expected PASS, FAIL, SKIP, RESULT, INFO or SUMMARY)`);
  }
}

export function parseSelftestOutput(output: string): SelftestReport {
  const lines = output.replace(/\r/g, "").split("\n");
  const begin = lines.findIndex((l) => /^SELFTEST BEGIN\b/.test(l.trim()));
  if (begin < 0)
    throw new SelftestParseError("no \"SELFTEST BEGIN\" line: the guest never started, or this is not its output", 0);
  const checks = new Map<string, CheckOutcome>();
  const results = new Map<string, SelftestResult>();
  const info: { key: string; text: string }[] = [];
  let version = 0;
  let summary: SelftestSummary | undefined;
  const counted = { pass: 0, fail: 0, skip: 0 };
  for (let i = begin; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (!text) continue;
    const lineNumber = i + 1;
    if (summary) throw new SelftestParseError(`output continues after SUMMARY: "${text}"`, lineNumber);
    let parsed: SelftestLine;
    try {
      parsed = parseSelftestLine(text);
    } catch (e) {
      throw new SelftestParseError(`${(e as Error).message}: "${text}"`, lineNumber);
    }
    if (i === begin) {
      if (parsed.kind !== "begin") throw new SelftestParseError("expected the BEGIN line", lineNumber);
      if (parsed.version !== SELFTEST_REPORT_VERSION)
        throw new SelftestParseError(
          `report version ${parsed.version} is not the supported version ${SELFTEST_REPORT_VERSION}`,
          lineNumber,
        );
      version = parsed.version;
      continue;
    }
    switch (parsed.kind) {
      case "begin":
        throw new SelftestParseError("a second BEGIN line: the guest restarted", lineNumber);
      case "pass":
      case "fail":
      case "skip": {
        if (checks.has(parsed.check))
          throw new SelftestParseError(`check ${parsed.check} is reported twice`, lineNumber);
        counted[parsed.kind]++;
        checks.set(
          parsed.check,
          parsed.kind === "pass"
            ? { status: "pass" }
            : parsed.kind === "fail"
              ? { status: "fail", detail: parsed.detail }
              : { status: "skip", reason: parsed.reason },
        );
        break;
      }
      case "result":
        if (results.has(parsed.name))
          throw new SelftestParseError(`result ${parsed.name} is reported twice`, lineNumber);
        results.set(parsed.name, parsed.result);
        break;
      case "info":
        info.push({ key: parsed.key, text: parsed.text });
        break;
      case "summary": {
        const { pass, fail, skip, cpus } = parsed;
        if (pass !== counted.pass || fail !== counted.fail || skip !== counted.skip)
          throw new SelftestParseError(
            `SUMMARY says pass=${pass} fail=${fail} skip=${skip} but the report has ` +
              `pass=${counted.pass} fail=${counted.fail} skip=${counted.skip}`,
            lineNumber,
          );
        if (cpus < 1) throw new SelftestParseError("SUMMARY reports no CPU", lineNumber);
        summary = { pass, fail, skip, cpus };
        break;
      }
    }
  }
  if (!summary) {
    const last = lines.slice(begin).reverse().find((l) => l.trim()) ?? "";
    throw new SelftestParseError(`no SUMMARY line: the guest stopped early (last line: "${last.trim()}")`, 0);
  }
  return { version, checks, results, info, summary };
}

/** Checks with the given status, for assertions and messages. */
export function checksWithStatus(report: SelftestReport, status: CheckOutcome["status"]): string[] {
  return [...report.checks].filter(([, o]) => o.status === status).map(([name]) => name);
}

/** One line per failed check, "name: detail", for test failure messages. */
export function describeFailures(report: SelftestReport): string {
  return [...report.checks]
    .flatMap(([name, o]) => (o.status === "fail" ? [`${name}: ${o.detail}`] : []))
    .join("\n");
}
