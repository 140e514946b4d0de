import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checksWithStatus,
  describeFailures,
  parseSelftestLine,
  parseSelftestOutput,
  SelftestParseError,
} from "../../../src/guests/selftest/report.ts";
import { expectedReport, reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { SerialLineCollector } from "../../../src/guests/selftest/run-common.ts";

const FIRMWARE_NOISE = "\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n\r\nBooting from ROM..\r\n";

const SAMPLE = `${FIRMWARE_NOISE}
SELFTEST BEGIN version=1
INFO cmdline /x/selftest.elf debugexit scale=1
INFO firmware.madt apic_ids=0,1
PASS firmware.tables_consistent
RESULT tsc.mhz 2600.152 MHz TSC ticks over 10 ms counted by PIT channel 2 (mode 0), median of 3
FAIL ipi.nmi wrong number of deliveries on CPU 1 (too few)
SKIP tso.iriw needs 4 CPUs (2 writers, 2 readers)
RESULT ipi.rtt.0.1 43.778 us median of round trips
SUMMARY pass=1 fail=1 skip=1 cpus=2
`;

/** Runs `f` and returns the SelftestParseError it throws. */
function parseError(text: string): SelftestParseError {
  try {
    parseSelftestOutput(text);
  } catch (err) {
    if (err instanceof SelftestParseError) return err;
    throw new Error(`expected a SelftestParseError, got ${String(err)}`);
  }
  throw new Error("expected a SelftestParseError, but parsing succeeded");
}

const begin = "SELFTEST BEGIN version=1\n";

describe("self-test report parser", () => {
  it("parses a report after firmware output, keeping order, details and measurement notes", () => {
    const r = parseSelftestOutput(SAMPLE);
    expect(r.version).toBe(1);
    expect([...r.checks.keys()]).toEqual(["firmware.tables_consistent", "ipi.nmi", "tso.iriw"]);
    expect(r.checks.get("ipi.nmi")).toEqual({ status: "fail", detail: "wrong number of deliveries on CPU 1 (too few)" });
    expect(r.checks.get("tso.iriw")).toEqual({ status: "skip", reason: "needs 4 CPUs (2 writers, 2 readers)" });
    expect(r.results.get("tsc.mhz")).toEqual({
      value: 2600.152,
      unit: "MHz",
      how: "TSC ticks over 10 ms counted by PIT channel 2 (mode 0), median of 3",
    });
    expect(r.results.get("ipi.rtt.0.1")?.value).toBe(43.778);
    expect(r.info).toEqual([
      { key: "cmdline", text: "/x/selftest.elf debugexit scale=1" },
      { key: "firmware.madt", text: "apic_ids=0,1" },
    ]);
    expect(r.summary).toEqual({ pass: 1, fail: 1, skip: 1, cpus: 2 });
    expect(checksWithStatus(r, "pass")).toEqual(["firmware.tables_consistent"]);
    expect(describeFailures(r)).toBe("ipi.nmi: wrong number of deliveries on CPU 1 (too few)");
  });

  it("rejects output without the BEGIN marker or without a SUMMARY", () => {
    expect(parseError(FIRMWARE_NOISE).message).toMatch(/no "SELFTEST BEGIN" line/);
    const e = parseError(`${begin}PASS a.b\n`);
    expect(e.message).toMatch(/no SUMMARY line: the guest stopped early \(last line: "PASS a.b"\)/);
  });

  it.each([
    ["RESULT x.y 12 ", /no unit/],
    ["RESULT x.y abc us measured somehow", /value "abc" is not a decimal number/],
    ["RESULT x.y 1.5 us", /does not say how it was measured/],
    ["FAIL a.b", /has no detail/],
    ["SKIP a.b", /has no reason/],
    ["PASS a.b extra", /exactly one check name/],
    ["PASS Bad-Name", /not a dotted lower-case name/],
    ["HELLO world", /unknown line kind "HELLO"/],
    ["SUMMARY pass=1 fail=0", /malformed SUMMARY/],
  ])("names the problem in a malformed line: %s", (line, message) => {
    const e = parseError(`junk\n${begin}${line}\nSUMMARY pass=0 fail=0 skip=0 cpus=1\n`);
    expect(e.lineNumber).toBe(3);
    expect(e.message).toMatch(message);
    expect(e.message).toContain(line.trim());
  });

  it("rejects duplicate checks and results, a wrong SUMMARY, a restart, lines after SUMMARY and other versions", () => {
    expect(parseError(`${begin}PASS a.b\nFAIL a.b x\nSUMMARY pass=1 fail=1 skip=0 cpus=1\n`).message).toMatch(
      /check a.b is reported twice/,
    );
    expect(parseError(`${begin}RESULT r 1 us x\nRESULT r 2 us x\nSUMMARY pass=0 fail=0 skip=0 cpus=1\n`).message).toMatch(
      /result r is reported twice/,
    );
    expect(parseError(`${begin}PASS a\nSUMMARY pass=2 fail=0 skip=0 cpus=1\n`).message).toMatch(
      /SUMMARY says pass=2 fail=0 skip=0 but the report has pass=1 fail=0 skip=0/,
    );
    expect(parseError(`${begin}${begin}SUMMARY pass=0 fail=0 skip=0 cpus=1\n`).message).toMatch(/second BEGIN/);
    expect(parseError(`${begin}SUMMARY pass=0 fail=0 skip=0 cpus=1\nPASS late\n`).message).toMatch(
      /output continues after SUMMARY/,
    );
    expect(parseError(`SELFTEST BEGIN version=2\nSUMMARY pass=0 fail=0 skip=0 cpus=1\n`).message).toMatch(
      /report version 2 is not the supported version 1/,
    );
    expect(parseError(`${begin}SUMMARY pass=0 fail=0 skip=0 cpus=0\n`).message).toMatch(/no CPU/);
  });

  it("round-trips any well-formed report", () => {
    const name = fc
      .array(fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/), { minLength: 1, maxLength: 3 })
      .map((parts) => parts.join("."));
    const text = fc.stringMatching(/^[A-Za-z0-9(),:=/][ A-Za-z0-9(),:=/.]{0,30}[A-Za-z0-9)]$/);
    const entry = fc.oneof(
      fc.record({ kind: fc.constantFrom("PASS" as const), name }),
      fc.record({ kind: fc.constantFrom("FAIL" as const, "SKIP" as const), name, text }),
      fc.record({
        kind: fc.constant("RESULT" as const),
        name,
        milli: fc.integer({ min: 0, max: 10 ** 12 }),
        unit: fc.constantFrom("us", "ns", "MB/s", "ratio", "count"),
        text,
      }),
    );
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => `${e.kind === "RESULT"}:${e.name}`, maxLength: 20 }), fc.integer({ min: 1, max: 16 }), (entries, cpus) => {
        const lines = entries.map((e) => {
          if (e.kind === "PASS") return `PASS ${e.name}`;
          if (e.kind === "RESULT") return `RESULT ${e.name} ${Math.floor(e.milli / 1000)}.${String(e.milli % 1000).padStart(3, "0")} ${e.unit} ${e.text}`;
          return `${e.kind} ${e.name} ${e.text}`;
        });
        const count = (k: string) => entries.filter((e) => e.kind === k).length;
        const out = `${begin}${lines.join("\r\n")}\nSUMMARY pass=${count("PASS")} fail=${count("FAIL")} skip=${count("SKIP")} cpus=${cpus}\n`;
        const r = parseSelftestOutput(out);
        for (const e of entries) {
          if (e.kind === "RESULT") {
            expect(r.results.get(e.name)).toEqual({ value: e.milli / 1000, unit: e.unit, how: e.text });
          } else {
            const o = r.checks.get(e.name);
            if (e.kind === "PASS") expect(o).toEqual({ status: "pass" });
            else if (e.kind === "FAIL") expect(o).toEqual({ status: "fail", detail: e.text });
            else expect(o).toEqual({ status: "skip", reason: e.text });
          }
        }
        expect(r.summary.cpus).toBe(cpus);
      }),
    );
  });

  it("parses single lines on their own", () => {
    expect(parseSelftestLine("SUMMARY pass=3 fail=0 skip=2 cpus=4")).toEqual({
      kind: "summary",
      pass: 3,
      fail: 0,
      skip: 2,
      cpus: 4,
    });
    expect(() => parseSelftestLine("SELFTEST START")).toThrow(/malformed SELFTEST line/);
  });
});

describe("serial collector", () => {
  it("strips carriage returns and signals once the SUMMARY line is complete, even after escape codes", () => {
    const seen: string[] = [];
    const c = new SerialLineCollector((l) => seen.push(l));
    let done = 0;
    c.onSummary = () => done++;
    c.pushText(`${FIRMWARE_NOISE}SELFTEST BEGIN version=1\r\n`);
    for (const ch of "\x1b[0mSUMMARY pass=0 fail=0 skip=0 cpus=1") c.push(ch.charCodeAt(0));
    expect(done).toBe(0); // the line is not complete yet
    c.pushText("\r\nSUMMARY pass=0 fail=0 skip=0 cpus=1\n");
    expect(done).toBe(1);
    expect(c.finished).toBe(true);
    expect(c.text()).not.toContain("\r");
    expect(seen).toContain("SELFTEST BEGIN version=1");
  });
});

describe("expectations", () => {
  it("asks one CPU without firmware tables for the single-CPU checks only", () => {
    const e = expectedReport(1, false);
    expect(e.pass).toContain("ipi.self");
    expect(e.pass).not.toContain("ipi.fixed");
    expect(e.skip).toContain("ipi.fixed");
    expect(e.skip).toContain("firmware.tables_consistent");
    expect(e.results).not.toContain("speedup.2");
  });
  it("asks 4 CPUs for every check, 6 round-trip pairs and speedups 2..4", () => {
    const e = expectedReport(4, true);
    expect(e.skip).toEqual([]);
    expect(e.pass).toContain("tso.iriw");
    expect(e.results.filter((r) => r.startsWith("ipi.rtt."))).toHaveLength(6);
    expect(e.results.filter((r) => r.startsWith("speedup."))).toEqual(["speedup.2", "speedup.3", "speedup.4"]);
    expect(expectedReport(2, true).skip).toEqual(["tso.iriw"]);
  });
});

describe("reportProblems", () => {
  const oneCpu = (lines: string[], summary: string) => parseSelftestOutput(`${begin}${lines.join("\n")}\n${summary}\n`);
  it("accepts a complete single-CPU report and names each way another one differs", () => {
    const want = expectedReport(1, false);
    const lines = [
      ...want.pass.map((c) => `PASS ${c}`),
      ...want.skip.map((c) => `SKIP ${c} needs 2 or more CPUs`),
      ...want.results.map((r) => `RESULT ${r} 1.000 us measured`),
    ];
    const ok = oneCpu(lines, `SUMMARY pass=${want.pass.length} fail=0 skip=${want.skip.length} cpus=1`);
    expect(reportProblems(ok, 1, false)).toEqual([]);

    const broken = oneCpu(
      [
        ...lines.filter((l) => l !== "PASS ipi.self" && l !== "PASS tsc.calibrated" && !l.startsWith("RESULT cpu.loop_ms")),
        "SKIP ipi.self no APIC",
        "FAIL tsc.calibrated PIT never reached terminal count",
        "PASS ipi.nmi",
        "RESULT speedup.2 1.000 ratio measured",
      ].filter((l) => l !== "SKIP ipi.nmi needs 2 or more CPUs"),
      `SUMMARY pass=${want.pass.length - 1} fail=1 skip=${want.skip.length} cpus=1`,
    );
    expect(reportProblems(broken, 2, false).sort()).toEqual(
      [
        "the guest ran 1 CPU(s), expected 2",
        "FAIL tsc.calibrated: PIT never reached terminal count",
        "check ipi.self should run on 2 CPU(s) but was skipped: no APIC",
        ...expectedReport(2, false).pass.filter((c) => !want.pass.includes(c) && c !== "ipi.nmi").map((c) => `check ${c} should run on 2 CPU(s) but was skipped: needs 2 or more CPUs`),
        ...expectedReport(2, false).results.filter((r) => !want.results.includes(r) && r !== "speedup.2").map((r) => `result ${r} is missing`),
        "result cpu.loop_ms is missing",
        "unexpected skip bounce.handoff_ns: needs 2 or more CPUs",
      ].sort(),
    );
    expect(reportProblems(broken, 1, false)).toEqual(
      expect.arrayContaining([
        "check ipi.nmi passed but is not expected here (add it to expectations.ts)",
        "unexpected result speedup.2 (add it to expectations.ts)",
        "check ipi.self should run on 1 CPU(s) but was skipped: no APIC",
      ]),
    );
  });
});
