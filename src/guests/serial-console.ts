// A guest's serial console as text: everything it printed, input to it, and waiting until the
// output matches a pattern. One implementation for every way this project runs a guest (stock v86,
// the engine's vCPUs, our firmware on v86 or on QEMU). No Node APIs: usable in a browser too.

import type { V86 } from "v86";
import { GUEST_PROMPT } from "./initramfs.ts";

// busybox's shell may follow its prompt with a cursor-position query (ESC [ 6 n); no anchor at the end.
/** The default Linux guest's root shell prompt. */
export const PROMPT_RE = new RegExp(`${GUEST_PROMPT}/root# `);

export interface SerialConsole {
  /** Everything the guest printed so far. */
  output(): string;
  send(text: string): void;
  /** Resolves with the whole output once `pattern` matches the output past `from`; rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<string>;
}

/** A console fed by its owner: `append` adds what the guest printed. */
export interface FedConsole extends SerialConsole {
  append(text: string): void;
}

export interface SerialConsoleOptions {
  /** Delivers input to the guest. */
  send(text: string): void;
  /** Names the console in timeout errors (default "the serial console"). */
  name?: string;
  /** More context for timeout errors, e.g. a process's stderr. */
  detail?: () => string;
}

export function createSerialConsole(options: SerialConsoleOptions): FedConsole {
  const name = options.name ?? "the serial console";
  let out = "";
  // Woken on every append, so a wait ends as soon as its pattern appears (no polling).
  const waiters = new Set<() => void>();
  return {
    append(text) {
      out += text;
      for (const w of waiters) w();
    },
    output: () => out,
    send: (text) => options.send(text),
    waitFor(pattern, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(out.slice(from))) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(out);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const detail = options.detail?.();
          reject(new Error(`no ${pattern} on ${name} within ${timeoutMs / 1000} s${detail ? `; ${detail}` : ""}; last output:\n${out.slice(-1500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

type V86Serial0 = Pick<InstanceType<typeof V86>, "add_listener" | "serial0_send">;

/** The console on a v86 emulator's first serial port; attach before the guest starts to see all output. */
export function serial0Console(emulator: V86Serial0, name?: string): SerialConsole {
  const serial = createSerialConsole({ send: (text) => emulator.serial0_send(text), name });
  emulator.add_listener("serial0-output-byte", (b) => serial.append(String.fromCharCode(b)));
  return serial;
}
