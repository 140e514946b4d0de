// The firmware image itself: its layout agrees with the host's, and on stock v86 its reset code
// reaches a 32-bit entry in exactly the state the Linux boot protocol promises (checked by a tiny
// probe kernel that records its registers), or says on COM1 why it cannot.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { V86 } from "v86";
import { afterAll, describe, expect, it } from "vitest";
import { buildFirmware, checkFirmwareImage, FIRMWARE_SRC_DIR } from "../../../src/runtime/nodejs/firmware-build.ts";
import * as L from "../../../src/machine/firmware/layout.ts";
import { startDirectBootV86, type V86Emulator } from "../../../src/runtime/node/v86-direct.ts";
import { fakeBzImage } from "./fake-kernel.ts";

const require = createRequire(import.meta.url);
const wasm = () => new Uint8Array(readFileSync(require.resolve("v86/build/v86.wasm")));
const firmware = () => new Uint8Array(readFileSync(buildFirmware()));

function serialText(emulator: V86Emulator): { text(): string; waitFor(re: RegExp, ms: number): Promise<string> } {
  let out = "";
  emulator.add_listener("serial0-output-byte", (b: number) => (out += String.fromCharCode(b)));
  return {
    text: () => out,
    waitFor: (re, ms) =>
      new Promise((resolve, reject) => {
        const start = Date.now();
        const iv = setInterval(() => {
          if (re.test(out)) (clearInterval(iv), resolve(out));
          else if (Date.now() - start > ms) (clearInterval(iv), reject(new Error(`no ${re} on COM1 within ${ms} ms; got ${JSON.stringify(out)}`)));
        }, 20);
      }),
  };
}

describe("firmware layout", () => {
  it("guests/firmware/layout.h and layout.ts agree", () => {
    const h = readFileSync(join(FIRMWARE_SRC_DIR, "layout.h"), "utf8");
    const define = (name: string) => {
      const m = new RegExp(`#define\\s+${name}\\s+(0x[0-9a-fA-F]+|\\d+)`).exec(h);
      expect(m, `${name} in layout.h`).not.toBeNull();
      return Number(m![1]);
    };
    expect(define("FW_IMAGE_BASE")).toBe(L.FW_IMAGE_BASE);
    expect(define("FW_IMAGE_SIZE")).toBe(L.FW_IMAGE_SIZE);
    expect(define("FW_TABLES_BASE")).toBe(L.FW_TABLES_BASE);
    expect(define("FW_TABLES_END")).toBe(L.FW_TABLES_END);
    expect(define("FW_HANDOFF_ADDR")).toBe(L.FW_HANDOFF_ADDR);
    expect(define("FW_CODE_BASE")).toBe(L.FW_CODE_BASE);
    expect(define("FW_HANDOFF_MAGIC")).toBe(L.FW_HANDOFF_MAGIC);
    expect(define("FW_HANDOFF_VERSION")).toBe(L.FW_HANDOFF_VERSION);
    expect(define("HO_SIZE")).toBe(L.FW_HANDOFF_SIZE);
    expect(L.FW_IMAGE_BASE + L.FW_IMAGE_SIZE).toBe(0x100000);
  });

  it("builds a 128 KiB image whose reset vector jumps into its code page, with the table area empty", () => {
    const img = firmware();
    checkFirmwareImage(img);
    const dv = new DataView(img.buffer, img.byteOffset);
    const target = dv.getUint16(0x1fff3, true) * 16 + dv.getUint16(0x1fff1, true); // EA ip16 cs16
    expect(target).toBeGreaterThanOrEqual(L.FW_CODE_BASE);
    expect(target).toBeLessThan(0xffff0);
    const tables = img.subarray(L.FW_TABLES_BASE - L.FW_IMAGE_BASE, L.FW_CODE_BASE - L.FW_IMAGE_BASE);
    expect(tables.every((b) => b === 0)).toBe(true);
  });

  it("rejects images of the wrong size or without a reset jump", () => {
    expect(() => checkFirmwareImage(new Uint8Array(256 * 1024))).toThrow(/expected 131072/);
    expect(() => checkFirmwareImage(new Uint8Array(128 * 1024))).toThrow(/reset vector/);
  });
});

// The probe "kernel": stores what it found at entry to 0x8000.., then prints "PROBE DONE".
const PROBE_S = `
	.code32
	.globl _start
_start:
	movl %esi, 0x8000
	movl %ebx, 0x8004
	movl %ebp, 0x8008
	movl %edi, 0x800c
	xorl %eax, %eax
	movw %cs, %ax
	movl %eax, 0x8010
	movw %ds, %ax
	movl %eax, 0x8014
	movw %es, %ax
	movl %eax, 0x8018
	movw %ss, %ax
	movl %eax, 0x801c
	pushfl
	popl %eax
	movl %eax, 0x8020
	movl %cr0, %eax
	movl %eax, 0x8024
	xorl %eax, %eax
	inb $0x21, %al
	movl %eax, 0x8028
	inb $0xa1, %al
	movl %eax, 0x802c
	movl $0, 0xfec00000
	movl 0xfec00010, %eax
	movl %eax, 0x8030
	movl $msg, %esi
	movw $0x3f8, %dx
1:	lodsb
	testb %al, %al
	jz 2f
	outb %al, %dx
	jmp 1b
2:	cli
	hlt
	jmp 2b
msg:	.asciz "PROBE DONE\\n"
`;

describe("firmware on stock v86", () => {
  const tmp = mkdtempSync(join(tmpdir(), "gw-probe-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  function probeKernel(): Uint8Array {
    writeFileSync(join(tmp, "probe.S"), PROBE_S);
    execFileSync("gcc", ["-m32", "-c", join(tmp, "probe.S"), "-o", join(tmp, "probe.o")]);
    execFileSync("ld", ["-m", "elf_i386", "-Ttext=0x100000", "-e", "_start", "-o", join(tmp, "probe.elf"), join(tmp, "probe.o")]);
    execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(tmp, "probe.elf"), join(tmp, "probe.bin")]);
    const code = new Uint8Array(readFileSync(join(tmp, "probe.bin")));
    const img = fakeBzImage({ payloadSize: 0x1000 });
    img.set(code, 5 * 512);
    return img;
  }

  it("enters the kernel in 32-bit flat protected mode with ESI = boot_params, interrupts off, PICs masked, IOAPIC ID set", async () => {
    let serial!: ReturnType<typeof serialText>;
    const { emulator, plan } = await startDirectBootV86({
      wasm: wasm(),
      firmware: firmware(),
      bzImage: probeKernel(),
      cmdline: "probe",
      memoryMiB: 32,
      platform: { cpus: 3 },
      beforeStart: (e) => void (serial = serialText(e)),
    });
    try {
      await serial.waitFor(/PROBE DONE/, 60_000);
      const m = new DataView(emulator.read_memory(0x8000, 0x34).slice().buffer);
      const r = (i: number) => m.getUint32(i * 4, true);
      expect(r(0), "ESI = boot_params").toBe(plan.bootParams);
      expect([r(1), r(2), r(3)], "EBX, EBP, EDI are zero").toEqual([0, 0, 0]);
      expect([r(4), r(5), r(6), r(7)], "CS = __BOOT_CS, DS = ES = SS = __BOOT_DS").toEqual([0x10, 0x18, 0x18, 0x18]);
      expect(r(8) & 0x200, "interrupts disabled").toBe(0);
      expect(r(9) & 0x80000001, "protected mode, paging off").toBe(1);
      expect([r(10), r(11)], "both 8259s masked").toEqual([0xff, 0xff]);
      expect(r(12) >>> 24, "IOAPIC ID as the tables say (N = 3)").toBe(3);
    } finally {
      await emulator.destroy();
    }
  });

  it("parks a CPU whose local APIC ID is not 0 (an AP waits for INIT/SIPI) instead of booting the kernel", async () => {
    const { emulator } = await startDirectBootV86({
      wasm: wasm(),
      firmware: firmware(),
      bzImage: probeKernel(),
      cmdline: "probe",
      memoryMiB: 32,
      platform: { cpus: 2 },
      beforeStart: (e) => {
        // v86 internals (test only): its APIC struct starts with the raw ID register value
        const cpu = (e as unknown as { v86: { cpu: { wasm_memory: WebAssembly.Memory; get_apic_addr(): number } } }).v86.cpu;
        new Uint32Array(cpu.wasm_memory.buffer, cpu.get_apic_addr(), 1)[0] = 1 << 24;
      },
    });
    try {
      const cpu = (emulator as unknown as { v86: { cpu: { in_hlt: Uint8Array; instruction_pointer: Int32Array } } }).v86.cpu;
      const deadline = Date.now() + 30_000;
      while (!cpu.in_hlt[0] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      expect(cpu.in_hlt[0], "the CPU halted").toBe(1);
      const eip = cpu.instruction_pointer[0]! >>> 0;
      expect(eip, `EIP 0x${eip.toString(16)} is in the firmware's code page`).toBeGreaterThanOrEqual(L.FW_CODE_BASE);
      expect(eip).toBeLessThan(0xffff0);
      expect([...emulator.read_memory(0x8000, 16)], "the probe kernel never ran").toEqual(new Array(16).fill(0));
    } finally {
      await emulator.destroy();
    }
  });

  it("says on COM1 that the host wrote no handoff, instead of jumping anywhere", async () => {
    const emulator = new V86({
      wasm_fn: async (env: WebAssembly.Imports) => (await WebAssembly.instantiate(wasm(), env)).instance.exports,
      bios: { buffer: firmware().slice().buffer },
      memory_size: 32 * 1024 * 1024,
      acpi: true,
      autostart: true,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    } as ConstructorParameters<typeof V86>[0]);
    const serial = serialText(emulator);
    try {
      await serial.waitFor(/no boot handoff at 0xFE000 .*CPU\)\r\n/, 60_000);
    } finally {
      await emulator.destroy();
    }
  });

  it("refuses a handoff block of another version", async () => {
    let serial!: ReturnType<typeof serialText>;
    const { emulator } = await startDirectBootV86({
      wasm: wasm(),
      firmware: firmware(),
      bzImage: fakeBzImage(),
      cmdline: "",
      memoryMiB: 32,
      platform: { cpus: 1 },
      beforeStart: (e) => {
        serial = serialText(e);
        e.write_memory([L.FW_HANDOFF_VERSION + 1, 0, 0, 0], L.FW_HANDOFF_ADDR + 4);
      },
    });
    try {
      await serial.waitFor(/handoff version mismatch .*out of date\)\r\n/, 60_000);
    } finally {
      await emulator.destroy();
    }
  });
});
