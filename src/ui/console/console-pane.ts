// The serial console: an xterm.js terminal that fills its container.

import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";

export interface ConsolePane {
  write(bytes: Uint8Array | string): void;
  onInput(handler: (bytes: Uint8Array) => void): void;
  focus(): void;
  clear(): void;
}

export function createConsolePane(container: HTMLElement): ConsolePane {
  const term = new Terminal({
    convertEol: false,
    cursorBlink: true,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
    fontSize: 14,
    scrollback: 5000,
    theme: { background: "#101418" },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(container);
  fit.fit();
  new ResizeObserver(() => fit.fit()).observe(container);
  const encoder = new TextEncoder();
  return {
    write: (bytes) => term.write(bytes),
    onInput: (handler) => {
      term.onData((data) => handler(encoder.encode(data)));
    },
    focus: () => term.focus(),
    clear: () => term.reset(),
  };
}
