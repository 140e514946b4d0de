import { describe, expect, it } from "vitest";
import { markedCommand, markedOutput, MARKED_OUTPUT_DONE } from "../../harness/console-output.ts";

describe("a marked command's output on the serial console", () => {
  it("is what the shell printed between the markers, not the echoed command line", () => {
    const typed = markedCommand("nproc");
    expect(typed).toBe("echo '==''start'; nproc; echo '==''done'\n");
    const text = "echo '==''start'; nproc; echo '==''done'\r\n==start\r\n4\r\n==done\r\ngiantweb:/root# ";
    expect(MARKED_OUTPUT_DONE.test(text)).toBe(true);
    expect(markedOutput(text).trim()).toBe("4");
  });

  it("survives a kernel line dropped into the middle of the echo (the CI failure of 2026-12-03)", () => {
    const text = "echo '==''start'; nproc; ech\r\n[  812.345678] smpboot: Booting Node 0 Processor 3 APIC 0x3\r\no '==''done'\r\n==start\r\n4\r\n==done\r\n";
    expect(markedOutput(text).trim()).toBe("4");
  });

  it("leaves out kernel lines inside the output and keeps the rest", () => {
    const text = "==start\r\n0-2\r\n[   99.000001] CPU 2 is now offline\r\n3\r\n==done\r\n";
    expect(markedOutput(text).trim()).toBe("0-2\n3");
  });

  it("is not complete until the end marker is printed, and names a missing start marker", () => {
    expect(MARKED_OUTPUT_DONE.test("echo '==''start'; nproc; echo '==''done'\r\n==start\r\n4\r\n")).toBe(false);
    expect(MARKED_OUTPUT_DONE.test("echo '==''start'; nproc; echo '==''done'\r\n")).toBe(false);
    expect(() => markedOutput("4\r\n==done\r\n")).toThrow(/no ==start marker/);
  });
});
