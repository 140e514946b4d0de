// The kernel matrix's options, cells and the reading of a cell's console (no boot here; the boots
// are in kernel-matrix.test.ts, behind GIANTWEB_HEAVY).
import { describe, expect, it } from "vitest";
import { analyse, enginePanicIn, markdownTable, parseArgs, planCells, type Cell } from "../../scripts/guest-matrix.ts";

const kernels = [47, 50, 53, 54, 55, 56, 57].map((n) => `linux-image-6.1.0-${n}-686-unsigned`);

describe("matrix options and cells", () => {
  it("covers every kernel apt lists x vCPUs {2,4} x both machines x both initramfs x {128,512} MiB by default", () => {
    const cells = planCells(parseArgs([]), kernels);
    expect(cells.length).toBe(7 * 2 * 2 * 2 * 2);
    expect(new Set(cells.map((c) => c.kernel))).toEqual(new Set([47, 50, 53, 54, 55, 56, 57]));
    expect(new Set(cells.map((c) => `${c.machine}/${c.initrd}/${c.memoryMiB}/${c.vcpus}`)).size).toBe(16);
  });

  it("filters by kernel, vCPUs, machine, initramfs and memory", () => {
    const o = parseArgs(["--kernels", "56,57", "--vcpus", "2", "--machine", "cluster", "--initrd", "large", "--memory", "128", "--timeout", "30"]);
    expect(o.timeoutS).toBe(30);
    const cells = planCells(o, kernels);
    expect(cells).toEqual([56, 57].map((k) => ({ kernel: k, kernelPackage: `linux-image-6.1.0-${k}-686-unsigned`, vcpus: 2, machine: "cluster", initrd: "large", memoryMiB: 128 })));
  });

  it("names what is wrong with an option", () => {
    expect(() => parseArgs(["--machine", "qemu"])).toThrow(/--machine takes smp1, cluster .* got "qemu"/);
    expect(() => parseArgs(["--vcpus", "two"])).toThrow(/--vcpus takes positive integers/);
    expect(() => parseArgs(["--vcpus", "16"])).toThrow(/at most 8/);
    expect(() => parseArgs(["--kernels"])).toThrow(/--kernels needs a value/);
    expect(() => parseArgs(["--bogus", "1"])).toThrow(/unknown option --bogus/);
    expect(() => planCells(parseArgs(["--kernels", "58"]), kernels)).toThrow(/no kernel with ABI 58 \(it has 47, 50, 53, 54, 55, 56, 57\)/);
  });
});

describe("reading a cell", () => {
  const cell: Cell = { kernel: 57, kernelPackage: kernels[6]!, vcpus: 2, machine: "smp1", initrd: "default", memoryMiB: 128 };
  const run = { booted: true, seconds: 59.44, timedOut: false, error: null, log: "x.log", stderr: "" };

  it("a boot with every CPU online", () => {
    const console = "[    1.2] smp: Bringing up secondary CPUs ...\r\n[    1.5] smp: Brought up 1 node, 2 CPUs\r\ngiantweb guest up: Linux 6.1.0-57-686, 2 CPU(s) online\r\ngiantweb:/root# ";
    const r = analyse(cell, { ...run, console });
    expect(r).toMatchObject({ ok: true, cpusUp: 2, cpusOnline: 2, kernelRelease: "6.1.0-57-686", firstError: null, enginePanic: null, seconds: 59.4 });
  });

  it("an AP that never came: the console's do_boot_cpu line and v86's panic from stderr", () => {
    const console = "[   12.009215] smpboot: do_boot_cpu failed(-1) to wakeup CPU#1\r\n[   12.1] smp: Brought up 1 node, 1 CPU\r\ngiantweb guest up: Linux 6.1.0-57-686, 1 CPU(s) online\r\ngiantweb:/root# ";
    const stderr = "some noise\npanicked at src/rust/cpu/cpu.rs:2731:9:\n#GP | ltr: invalid type (type = 0x0)\n";
    const r = analyse(cell, { ...run, console, stderr });
    expect(r.ok).toBe(false);
    expect(r.booted).toBe(true);
    expect([r.cpusUp, r.cpusOnline]).toEqual([1, 1]);
    expect(r.firstError).toBe("[   12.009215] smpboot: do_boot_cpu failed(-1) to wakeup CPU#1");
    expect(r.enginePanic).toBe("panicked at src/rust/cpu/cpu.rs:2731:9: #GP | ltr: invalid type (type = 0x0)");
    const table = markdownTable([r]);
    expect(table).toContain("| 57 | smp1 | 2 | default | 128 | **partly** | 1/1 | 59.4 | [   12.009215] smpboot: do_boot_cpu failed(-1) to wakeup CPU#1 | panicked at src/rust/cpu/cpu.rs:2731:9: #GP \\| ltr:");
  });

  it("a hung boot (timeout) and a node failure reported by the cluster", () => {
    const hung = analyse({ ...cell, machine: "cluster" }, { ...run, booted: false, timedOut: true, seconds: 600, console: "x86: Booting SMP configuration:\r\n" });
    expect(hung).toMatchObject({ ok: false, booted: false, cpusUp: null, firstError: null, timedOut: true });
    expect(markdownTable([hung])).toContain("| **no** | -/- | >600 |");
    const failed = analyse({ ...cell, machine: "cluster" }, { ...run, booted: false, console: "", error: "node 1 (vCPU 1) failed: engine panic: #GP | ltr\nmore" });
    expect(failed.firstError).toBe("node 1 (vCPU 1) failed: engine panic: #GP | ltr");
    expect(enginePanicIn("thread panicked at foo.rs:1:2: boom\n")).toBe("thread panicked at foo.rs:1:2: boom");
  });
});
