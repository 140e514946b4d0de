// Runs the self-test guest once and prints its report:
//   npx tsx src/guests/selftest/cli.ts qemu <cpus> [scale]
//   npx tsx src/guests/selftest/cli.ts v86 [scale]
// Exits 0 when no check failed, 1 when one did, 2 on a usage or run error.

import { buildSelftest } from "./build.ts";
import { describeFailures, parseSelftestOutput } from "./report.ts";
import { runSelftestQemu } from "./run-qemu.ts";
import { runSelftestV86 } from "./run-v86.ts";

const USAGE = "usage: cli.ts qemu <cpus 1..16> [scale] | cli.ts v86 [scale]";

function positiveInt(s: string | undefined, what: string, fallback: number): number {
  if (s === undefined) return fallback;
  if (!/^\d+$/.test(s) || Number(s) < 1) throw new Error(`${what} must be a positive integer, got "${s}"\n${USAGE}`);
  return Number(s);
}

async function main(argv: string[]): Promise<number> {
  const [platform, a, b] = argv;
  const elf = await buildSelftest();
  const onLine = (line: string) => process.stdout.write(line + "\n");
  let output: string;
  if (platform === "qemu") {
    const cpus = positiveInt(a, "cpus", 2);
    output = (await runSelftestQemu({ elf, cpus, cmdline: `scale=${positiveInt(b, "scale", 1)}`, onLine })).output;
  } else if (platform === "v86") {
    output = (await runSelftestV86({ elf, cmdline: `scale=${positiveInt(a, "scale", 1)}`, onLine })).output;
  } else {
    throw new Error(USAGE);
  }
  const report = parseSelftestOutput(output);
  if (report.summary.fail) process.stderr.write(`failed checks:\n${describeFailures(report)}\n`);
  return report.summary.fail ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  },
);
