// Starts qemu-system-i386 with COM1 written to a regular file that we tail. Why not `-serial stdio`
// into a pipe: QEMU makes its stdout non-blocking, so when the reader lags (a loaded machine) a
// write fails with EAGAIN, the emulated 8250 keeps THRE clear, the guest's console driver times out
// and overwrites the byte: characters vanish from the log. Writes to a regular file never fail so.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const QEMU_BINARY = "qemu-system-i386";

/** The QEMU version line, or undefined when qemu-system-i386 cannot be run. */
export function qemuVersion(): string | undefined {
  const r = spawnSync(QEMU_BINARY, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.split("\n")[0];
}

export interface QemuProcess {
  child: ChildProcess;
  /** Sends text to the guest's COM1 (only with `input: true`). */
  send(text: string): void;
  /** What QEMU printed on stderr so far. */
  stderr(): string;
  /** Kills QEMU (if still running) and removes the serial file. */
  destroy(): void;
}

export interface QemuProcessOptions {
  /** QEMU's arguments, without any -serial option. */
  args: string[];
  /** Called with every piece of COM1 output, in order, as latin1 text. */
  onOutput(text: string): void;
  /** Keep a pipe to COM1's input (default false). */
  input?: boolean;
  /** How often the serial file is read (default 20 ms). */
  pollMs?: number;
}

export function startQemu(opts: QemuProcessOptions): QemuProcess {
  const dir = mkdtempSync(join(tmpdir(), "gw-qemu-serial-"));
  const file = join(dir, "com1.log");
  const writeFd = openSync(file, "w");
  const readFd = openSync(file, "r");
  // COM1 is QEMU's stdout (now a file); its input, when wanted, is stdin through the same chardev.
  const child = spawn(QEMU_BINARY, [...opts.args, "-serial", "stdio"], {
    stdio: [opts.input ? "pipe" : "ignore", writeFd, "pipe"],
  });
  closeSync(writeFd);
  let err = "";
  child.stderr!.setEncoding("latin1").on("data", (s: string) => (err += s));
  const buf = Buffer.alloc(64 * 1024);
  let pos = 0;
  let open = true;
  const drain = () => {
    // `open` is checked each time: onOutput may destroy this process.
    while (open) {
      const n = readSync(readFd, buf, 0, buf.length, pos);
      if (n <= 0) return;
      pos += n;
      opts.onOutput(buf.toString("latin1", 0, n));
    }
  };
  const timer = setInterval(drain, opts.pollMs ?? 20);
  const close = () => {
    if (!open) return;
    clearInterval(timer);
    open = false;
    closeSync(readFd);
    rmSync(dir, { recursive: true, force: true });
  };
  // Whatever QEMU wrote before it exited is delivered before its "close" listeners run further.
  child.on("exit", () => {
    drain();
    close();
  });
  return {
    child,
    send: (text) => {
      if (!opts.input) throw new Error("this QEMU was started without serial input");
      child.stdin!.write(text);
    },
    stderr: () => err,
    destroy: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      close();
    },
  };
}
